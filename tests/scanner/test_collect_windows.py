"""The batched PowerShell collection script: how it is built, and how its output is parsed.

No PowerShell runs here; the recorded-host fake (tests/fakes/wsman.py) prints what the script's
records would be, and these tests pin the record format and the parser's defences.
"""

from __future__ import annotations

import base64
import re
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


def test_a_corrupt_record_fails_its_probe_only() -> None:
    script = build_script([fact("p.bad"), fact("p.good")])
    text = (
        f"{script.marker} PROBE p.bad ok 1 4 !!notbase64!! -\r\n"
        f"{script.marker} PROBE p.good ok 1 2 {b64('ok')} -\r\n"
        f"{script.marker} PROBE p.short ok\r\n"
        f"{script.marker} END\r\n"
    )
    collected = parse_output(text.encode(), script.marker)
    assert collected.outputs["p.bad"].rc == 1 and "corrupt" in collected.outputs["p.bad"].error_text
    assert collected.outputs["p.good"].text == "ok"
    assert "p.short" not in collected.outputs


def test_the_recorded_compliant_host_covers_every_probe() -> None:
    script = build_script(windows_facts())
    collected = parse_output(
        play_collection_script(script.text, COMPLIANT, {}).stdout, script.marker
    )
    assert set(collected.outputs) == set(script.probe_names)
    assert all(output.rc == 0 for output in collected.outputs.values())
