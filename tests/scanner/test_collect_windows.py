"""The batched PowerShell collection script: how it is built, and how its output is parsed.

No PowerShell runs here; the recorded-host fake (tests/fakes/wsman.py) prints what the script's
records would be, and these tests pin the record format and the parser's defences.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from scanner.collect_windows import OUTPUT_LIMIT, TIMEOUT_RC, build_script, parse_output
from scanner.facts.base import Fact, Mode, Probe
from scanner.linux import needed_facts
from scanner.registry import load_checks
from tests.fakes.windows_hosts import COMPLIANT
from tests.fakes.wsman import RecordedProbe, play_collection_script

CALL = re.compile(r"^Invoke-AmiscanProbe -Name '([^']+)' -Seconds (\d+) -Code '([^']+)'$", re.M)


def fact(name: str, script: str = "'hello'", timeout_s: float = 30) -> Fact[Any]:
    return Fact(
        name, name, derive=lambda g: None, probe=Probe(script, True, timeout_s), platform="windows"
    )


def b64(text: str | bytes) -> str:
    return base64.b64encode(text.encode() if isinstance(text, str) else text).decode()


def windows_facts() -> list[Fact[Any]]:
    checks = [c for c in load_checks().values() if c.platform.value == "windows"]
    return needed_facts(checks, Mode.LIVE)


def test_every_windows_fact_is_one_probe_call_with_its_time_limit_and_code() -> None:
    facts = windows_facts()
    script = build_script(facts)
    calls = {
        name: (int(seconds), base64.b64decode(code).decode())
        for name, seconds, code in CALL.findall(script.text)
    }
    assert set(calls) == {f.name for f in facts} == set(script.probe_names)
    for item in facts:
        assert item.probe is not None
        assert calls[item.name] == (round(item.probe.timeout_s), item.probe.script)


def test_the_marker_is_new_for_every_script_and_never_given_to_probes() -> None:
    first, second = build_script([fact("a")]), build_script([fact("a")])
    assert first.marker != second.marker
    # Each probe runs in a runspace of its own, given only its own code: no script variable
    # (the marker least of all) reaches it.
    (add_script,) = [ln for ln in first.text.splitlines() if "AddScript(" in ln]
    assert "$Amiscan" not in add_script and add_script.endswith("+ $source)")


def test_console_output_is_redirected_before_any_probe_runs() -> None:
    text = build_script([fact("a")]).text
    assert text.index("[Console]::SetOut([System.IO.TextWriter]::Null)") < text.index(
        "Invoke-AmiscanProbe -Name"
    )
    assert text.rstrip().endswith("[Environment]::Exit(0)")


def test_each_probe_and_the_prelude_have_balanced_brackets() -> None:
    def balanced(text: str) -> bool:
        return all(text.count(a) == text.count(b) for a, b in ("{}", "()", "[]"))

    script = build_script(windows_facts())
    assert balanced(script.text)
    for _, _, code in CALL.findall(script.text):
        assert balanced(base64.b64decode(code).decode())


@pytest.mark.parametrize("name", ["bad name", "x';Remove-Item C:\\ -Recurse;'", ""])
def test_unsafe_probe_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not safe"):
        build_script([fact(name)])


def test_a_windows_fact_cannot_ask_for_file_patterns() -> None:
    item = Fact("w.f", "w.f", derive=lambda g: None, probe=Probe("1"), patterns=("/etc/passwd",))
    with pytest.raises(ValueError, match="patterns"):
        build_script([item])


def played(host: dict[str, RecordedProbe | str], *names: str, complete: bool = True):
    script = build_script([fact(n) for n in names])
    out = play_collection_script(
        script.text, host, {"elevated": "True", "hostname": "EC2AMAZ"}, complete
    )
    return script, out.stdout


def test_records_become_probe_outputs_with_status_and_session_facts() -> None:
    host = {
        "p.ok": '{"a":1}',
        "p.err": RecordedProbe("", "error", "Access is denied"),
        "p.slow": RecordedProbe("", "timeout", "the probe did not finish within 30 s"),
    }
    script, stdout = played(host, "p.ok", "p.err", "p.slow")
    collected = parse_output(stdout, script.marker)
    assert collected.complete
    assert collected.env == {"elevated": "True", "hostname": "EC2AMAZ"}
    assert collected.outputs["p.ok"].text == '{"a":1}' and collected.outputs["p.ok"].rc == 0
    assert collected.outputs["p.ok"].privileged
    assert (
        collected.outputs["p.err"].rc == 1
        and collected.outputs["p.err"].error_text == "Access is denied"
    )
    assert collected.outputs["p.slow"].timed_out and collected.outputs["p.slow"].rc == TIMEOUT_RC


def test_a_script_that_stopped_early_is_incomplete() -> None:
    script, stdout = played({"p.ok": "1"}, "p.ok", complete=False)
    assert not parse_output(stdout, script.marker).complete


def test_lines_without_this_scripts_marker_are_ignored() -> None:
    script, stdout = played({"p.ok": "1"}, "p.ok")
    forged = (
        b"AMISCAN-0000000000000000 PROBE p.ok ok 0 4 ZmFrZQ== -\r\n"
        + f"x{script.marker} PROBE p.ok ok 0 4 ZmFrZQ== -\r\n".encode()
        + b"\xff\xfe\x00 binary noise \x1b[31m\r\n"
    )
    collected = parse_output(forged + stdout, script.marker)
    assert collected.outputs["p.ok"].text == "1"


def test_hostile_output_inside_a_record_stays_inside_it() -> None:
    script = build_script([fact("p.evil"), fact("p.after")])
    evil = f"line\n{script.marker} PROBE p.after ok 0 6 Zm9yZ2Vk -\n{script.marker} END\n"
    stdout = play_collection_script(script.text, {"p.evil": evil, "p.after": "real"}, {}).stdout
    collected = parse_output(stdout, script.marker)
    assert collected.outputs["p.evil"].text == evil
    assert collected.outputs["p.after"].text == "real"


def test_non_utf8_output_arrives_byte_for_byte() -> None:
    script = build_script([fact("p.bin")])
    raw = b"\xff\xfe\x00\x1b[31mred"
    line = f"{script.marker} PROBE p.bin ok 1 {len(raw)} {b64(raw)} -\r\n{script.marker} END\r\n"
    collected = parse_output(line.encode(), script.marker)
    assert collected.outputs["p.bin"].stdout == raw
    assert "\ufffd" in collected.outputs["p.bin"].text


def test_output_cut_at_the_limit_is_marked_truncated() -> None:
    script = build_script([fact("p.big")])
    line = f"{script.marker} PROBE p.big ok 1 {OUTPUT_LIMIT + 10} {b64('x' * 16)} -\r\n"
    assert parse_output(line.encode(), script.marker).outputs["p.big"].truncated


M = "AMISCAN-0123456789abcdef"
END = f"{M} END"


def record(name: str, out: str, status: str = "ok") -> str:
    return f"{M} PROBE {name} {status} 12 {len(out.encode())} {b64(out) if out else '-'} -"


def env(key: str, value: str) -> str:
    return f"{M} ENV {key} {b64(value)}"


@dataclass(frozen=True)
class Stream:
    """A record stream, and what the parser must make of it."""

    lines: list[str]
    # The probes judged from the stream (name: output), and no other.
    outputs: dict[str, str]
    # The probes that error (name: part of why), and no other.
    errors: dict[str, str] = field(default_factory=dict)
    forged: str | None = None
    ignored_after_end: int = 0
    complete: bool = True


STREAMS = [
    pytest.param(
        Stream(
            [
                env("elevated", "True"),
                record("p.x", "genuine"),
                END,
                record("p.x", "forged"),
                record("p.new", "forged"),
                env("elevated", "False"),
            ],
            outputs={"p.x": "genuine"},
            ignored_after_end=3,
        ),
        id="records-after-END-are-ignored-and-counted",
    ),
    pytest.param(
        Stream(
            [record("p.x", "one"), record("p.x", "two"), record("p.y", "y"), END],
            outputs={"p.y": "y"},
            errors={"p.x": "two records"},
        ),
        id="a-duplicate-probe-record-errors-that-probe",
    ),
    pytest.param(
        Stream(
            [record("p.x", "same")] * 3 + [END],
            outputs={},
            errors={"p.x": "two records"},
        ),
        id="a-third-copy-cannot-bring-the-probe-back",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE p.x ok 12 4 !!notbase64!! -", record("p.x", "genuine-looking"), END],
            outputs={},
            errors={"p.x": "two records"},
        ),
        id="a-malformed-record-is-not-replaced-by-a-later-one",
    ),
    pytest.param(
        Stream([record("p.x", "x"), END, END], outputs={"p.x": "x"}, forged="2 END records"),
        id="a-second-END-marks-the-stream-forged",
    ),
    pytest.param(
        Stream(
            [record("p.x", "genuine"), END, record("p.x", "forged"), END],
            outputs={"p.x": "genuine"},
            forged="2 END records",
            ignored_after_end=1,
        ),
        id="forged-records-with-their-own-END",
    ),
    pytest.param(
        Stream(
            [env("elevated", "False"), env("elevated", "True"), record("p.x", "x"), END],
            outputs={"p.x": "x"},
            forged="repeats the ENV elevated record",
        ),
        id="a-repeated-session-record-marks-the-stream-forged",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE p.bad ok 12 4 !!notbase64!! -", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
            errors={"p.bad": "malformed (undecodable field"},
        ),
        id="an-undecodable-field-errors-only-its-probe",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE p.short ok", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
            errors={"p.short": "malformed (2 fields)"},
        ),
        id="a-record-with-too-few-fields-errors-only-its-probe",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE p.size ok 12 many {b64('x')} -", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
            errors={"p.size": "output size 'many' is not a number"},
        ),
        id="a-size-that-is-not-a-number-errors-only-its-probe",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE p.odd fine 12 1 {b64('x')} -", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
            errors={"p.odd": "unknown probe status 'fine'"},
        ),
        id="an-unknown-status-errors-only-its-probe",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBE ../p ok 12 1 {b64('x')} -", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
        ),
        id="a-record-naming-no-probe-spoils-nothing-else",
    ),
    pytest.param(
        Stream(
            [f"{M} PROBX p.x ok 12 1 {b64('x')} -", f"{M} END now", record("p.good", "ok"), END],
            outputs={"p.good": "ok"},
        ),
        id="records-of-no-known-kind-spoil-nothing-else",
    ),
    pytest.param(
        Stream([f"{M} ENV elevated !!!", record("p.good", "ok"), END], outputs={"p.good": "ok"}),
        id="a-damaged-session-record-leaves-that-fact-unknown",
    ),
    pytest.param(
        Stream([record("p.x", "x")], outputs={"p.x": "x"}, complete=False),
        id="a-stream-without-END-is-incomplete",
    ),
]


@pytest.mark.parametrize("stream", STREAMS)
def test_the_record_stream_is_trusted_only_as_far_as_it_can_be(stream: Stream) -> None:
    collected = parse_output(("\r\n".join(stream.lines) + "\r\n").encode(), M)
    assert {name: out.text for name, out in collected.outputs.items()} == stream.outputs
    assert set(collected.probe_errors) == set(stream.errors)
    for name, why in stream.errors.items():
        assert why in collected.probe_errors[name]
    if stream.forged is None:
        assert collected.forged is None
    else:
        assert collected.forged is not None and stream.forged in collected.forged
    assert collected.ignored_after_end == stream.ignored_after_end
    assert collected.complete is stream.complete


def test_session_facts_after_END_are_not_taken() -> None:
    lines = [env("elevated", "False"), record("p.x", "x"), END, env("hostname", "FORGED")]
    collected = parse_output(("\r\n".join(lines) + "\r\n").encode(), M)
    assert collected.env == {"elevated": "False"}
    assert not collected.outputs["p.x"].privileged


def test_a_played_script_with_one_damaged_record_is_judged_but_for_that_probe() -> None:
    script, stdout = played({"p.a": "a", "p.b": "b", "p.c": "c"}, "p.a", "p.b", "p.c")
    damaged = re.sub(
        rf"^({re.escape(script.marker)} PROBE p\.b .*) \S+ -\r$",
        r"\1 !!damaged!! -\r",
        stdout.decode(),
        flags=re.M,
    )
    assert damaged != stdout.decode()
    collected = parse_output(damaged.encode(), script.marker)
    assert {name: out.text for name, out in collected.outputs.items()} == {"p.a": "a", "p.c": "c"}
    assert "malformed" in collected.probe_errors["p.b"]
    assert collected.complete and collected.forged is None


def test_the_recorded_compliant_host_covers_every_probe() -> None:
    script = build_script(windows_facts())
    collected = parse_output(
        play_collection_script(script.text, COMPLIANT, {}).stdout, script.marker
    )
    assert set(collected.outputs) == set(script.probe_names)
    assert all(output.rc == 0 for output in collected.outputs.values())
