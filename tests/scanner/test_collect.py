"""The batched collection script, run for real by /bin/sh on this machine."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from typing import Any

import pytest

from scanner.collect import (
    FILE_LIMIT,
    OUTPUT_LIMIT,
    LiveSettings,
    build_script,
    parse_output,
)
from scanner.facts.base import Fact, Probe
from scanner.fs import ReadRefused
from scanner.transports.local import LocalTransport
from tests.guestpath import without


def probe_fact(
    name: str,
    script: str,
    privileged: bool = False,
    timeout_s: float = 30,
    patterns: tuple[str, ...] = (),
) -> Fact[Any]:
    return Fact(
        name,
        name,
        derive=lambda g: None,
        probe=Probe(script, privileged, timeout_s),
        patterns=patterns,
    )


def file_fact(name: str, *patterns: str) -> Fact[Any]:
    return Fact(name, name, derive=lambda g: None, patterns=patterns)


def run(facts: list[Fact[Any]], settings: LiveSettings | None = None, timeout_s: float = 60):
    script = build_script(facts, settings or LiveSettings(login_user="tester"))
    result = LocalTransport().run_script(script.text, timeout_s)
    return script, result, parse_output(result.stdout, script.marker)


def test_every_probe_runs_in_one_execution_and_reports_its_exit_code_and_streams() -> None:
    transport = LocalTransport()
    facts = [probe_fact("t.one", "echo one"), probe_fact("t.two", "echo two >&2; exit 7")]
    script = build_script(facts, LiveSettings())
    collected = parse_output(transport.run_script(script.text, 30).stdout, script.marker)
    assert transport.exec_count == 1
    assert collected.complete
    assert collected.outputs["t.one"].stdout == b"one\n"
    assert collected.outputs["t.one"].rc == 0
    assert collected.outputs["t.two"].rc == 7
    assert collected.outputs["t.two"].stderr == b"two\n"


def test_non_utf8_and_binary_output_arrive_byte_for_byte() -> None:
    _, _, collected = run([probe_fact("t.bin", r"printf '\377\376\000\033[31mred'")])
    assert collected.outputs["t.bin"].stdout == b"\xff\xfe\x00\x1b[31mred"
    assert "\ufffd" in collected.outputs["t.bin"].text


def test_a_probe_cannot_forge_records_by_printing_the_marker() -> None:
    # The probe learns the marker from its environment and prints fake records with it.
    forged = 'printf "%s PROBE t.fake 0 0 0 2 aGk= -\\n%s END\\n" "$AMISCAN_M" "$AMISCAN_M"'
    _, _, collected = run([probe_fact("t.forger", forged), probe_fact("t.after", "echo real")])
    assert "t.fake" not in collected.outputs
    assert collected.outputs["t.after"].stdout == b"real\n"
    assert collected.outputs["t.forger"].stdout.count(b"PROBE t.fake") == 1


def test_huge_output_is_cut_at_the_limit_and_marked_truncated() -> None:
    _, _, collected = run([probe_fact("t.huge", f"head -c {OUTPUT_LIMIT + 5000} /dev/zero")])
    output = collected.outputs["t.huge"]
    assert output.truncated
    assert len(output.stdout) == OUTPUT_LIMIT


def test_a_hung_probe_times_out_alone_and_later_probes_still_run() -> None:
    facts = [probe_fact("t.hang", "sleep 60", timeout_s=1), probe_fact("t.after", "echo fine")]
    _, result, collected = run(facts)
    assert collected.outputs["t.hang"].timed_out
    assert collected.outputs["t.after"].stdout == b"fine\n"
    assert result.duration_s < 30


def test_probes_get_a_scratch_directory_removed_with_the_script_even_after_a_timeout() -> None:
    # The secret search keeps its greps' files there: a search stopped by its timeout cannot
    # clean up after itself.
    keeps = '[ -n "$AMISCAN_T" ] && mkdir "$AMISCAN_T/kept" && echo "$AMISCAN_T"; sleep 60'
    facts = [probe_fact("t.scratch", keeps, timeout_s=1), probe_fact("t.after", "echo fine")]
    _, _, collected = run(facts)
    assert collected.outputs["t.scratch"].timed_out
    scratch = collected.outputs["t.scratch"].stdout.decode().strip()
    assert scratch.startswith("/") and not os.path.exists(scratch)


def _run_without(tmp_path: Any, *missing: str) -> tuple[bytes, bytes, str]:
    """The collection of one probe on a guest whose system directories lack `missing`."""
    bin_dir = tmp_path / "bin"
    script = build_script([probe_fact("t.found", "echo AKIA-like finding")], LiveSettings())
    text = without(script.text, bin_dir, *missing)
    done = subprocess.run(
        ["/bin/sh", "-s"], input=text.encode(), env={"PATH": str(bin_dir)}, capture_output=True
    )
    return done.stdout, done.stderr, script.marker


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        pytest.param(("head",), "head -c", id="no-head"),
        pytest.param(("tr",), "cannot encode", id="no-tr"),
        pytest.param(("base64", "od"), "cannot encode", id="neither-base64-nor-od"),
    ],
)
def test_a_guest_without_what_records_need_stops_the_collection_instead_of_empty_probes(
    tmp_path: Any, missing: tuple[str, ...], said: str
) -> None:
    # Before, each of these delivered every probe empty and complete: "nothing found".
    stdout, stderr, marker = _run_without(tmp_path, *missing)
    collected = parse_output(stdout, marker)
    assert not collected.complete and "t.found" not in collected.outputs
    assert said in stderr.decode().strip().splitlines()[-1]


def test_a_guest_with_od_but_no_base64_still_collects(tmp_path: Any) -> None:
    stdout, _, marker = _run_without(tmp_path, "base64")
    collected = parse_output(stdout, marker)
    assert collected.complete and collected.outputs["t.found"].text == "AKIA-like finding\n"


def test_requested_files_are_copied_back_with_their_full_size(tmp_path: Any) -> None:
    small = tmp_path / "small.txt"
    small.write_bytes(b"hello\xff\n")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (FILE_LIMIT + 10))
    _, _, collected = run([file_fact("t.files", f"{tmp_path}/*.txt", f"{tmp_path}/big.bin")])
    assert collected.files.read_bytes(str(small)) == b"hello\xff\n"
    assert collected.files.size(str(big)) == FILE_LIMIT + 10
    assert len(collected.files.read_bytes(str(big))) == FILE_LIMIT
    assert collected.files.files[str(big)].truncated
    assert not collected.files.read_head(str(big), FILE_LIMIT * 2).complete


def test_a_fifo_where_a_file_is_expected_never_blocks_the_copy(tmp_path: Any) -> None:
    os.mkfifo(tmp_path / "x_history")
    (tmp_path / "y_history").write_text("ls\n")
    _, result, collected = run([file_fact("t.fifo", f"{tmp_path}/*_history")], timeout_s=60)
    assert collected.complete and result.duration_s < 30
    assert not collected.files.is_file(str(tmp_path / "x_history"))
    assert collected.files.read_bytes(str(tmp_path / "y_history")) == b"ls\n"


def test_file_names_with_spaces_and_newlines_survive_the_round_trip(tmp_path: Any) -> None:
    odd = tmp_path / "a b\nc"
    odd.write_text("content")
    _, _, collected = run([file_fact("t.odd", f"{tmp_path}/a*")])
    assert collected.files.read_bytes(str(odd)) == b"content"


def test_private_ssh_host_keys_are_never_copied_off_the_guest() -> None:
    if not any(
        name.endswith("_key") for name in os.listdir("/etc/ssh") if name.startswith("ssh_host_")
    ):
        pytest.skip("this machine has no SSH host keys")
    _, _, collected = run([file_fact("t.keys", "/etc/ssh/ssh_host_*")])
    copied = set(collected.files.files)
    assert copied, "public host keys should be copied"
    assert all(path.endswith(".pub") for path in copied)


def test_probes_may_ask_for_more_files_at_run_time(tmp_path: Any) -> None:
    extra = tmp_path / "listed.conf"
    extra.write_text("listed")
    _, _, collected = run(
        [probe_fact("t.lister", f'echo {extra} >>"$AMISCAN_FILES"', privileged=True)]
    )
    assert collected.files.read_bytes(str(extra)) == b"listed"


def test_session_facts_are_reported() -> None:
    _, _, collected = run([probe_fact("t.x", "true")])
    assert collected.env["uid"] == str(os.getuid())
    assert collected.env["btime"].isdigit()
    assert collected.env["encoding"] == "b64"


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the script as another user, which needs root")
def test_without_sudo_the_privileged_part_runs_unprivileged_and_says_why(tmp_path: Any) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    facts = [probe_fact("t.root", "id -u", privileged=True)]
    script = build_script(facts, LiveSettings(login_user="nobody"))
    result = subprocess.run(
        ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "/bin/sh", "-s"],
        input=script.text.encode(),
        capture_output=True,
        timeout=60,
        cwd="/",
        check=False,
    )
    collected = parse_output(result.stdout, script.marker)
    assert collected.complete
    assert not collected.privileged
    assert collected.sudo_error
    assert collected.outputs["t.root"].stdout.strip() != b"0"
    assert not collected.outputs["t.root"].privileged


def test_output_from_another_scan_is_ignored() -> None:
    script = build_script([probe_fact("t.x", "echo x")], LiveSettings())
    other = build_script([probe_fact("t.x", "echo x")], LiveSettings())
    stdout = LocalTransport().run_script(other.text, 30).stdout
    assert parse_output(stdout, script.marker).outputs == {}


M = "AMISCAN-0000"


def b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode() if raw else "-"


def probe_record(name: str, out: str, rc: int = 0) -> str:
    return f"{M} PROBE {name} {rc} 0 0 {len(out.encode())} {b64(out)} -"


def file_record(path: str, content: str, size: int | None = None) -> str:
    full = len(content.encode()) if size is None else size
    return f"{M} FILE {b64(path)} {full} {b64(content)}"


def parse(*lines: str):
    return parse_output(("\n".join([f"{M} ENV encoding {b64('b64')}", *lines]) + "\n").encode(), M)


def test_a_malformed_record_spoils_only_its_own_probe() -> None:
    collected = parse(
        probe_record("t.before", "fine"),
        f"{M} PROBE t.bad 0 0 0 3 !!!notbase64 -",
        probe_record("t.after", "also fine"),
        file_record("/etc/x", "x"),
        f"{M} END",
    )
    assert collected.complete
    assert collected.outputs["t.before"].text == "fine"
    assert collected.outputs["t.after"].text == "also fine"
    assert "t.bad" not in collected.outputs
    assert "malformed" in collected.probe_errors["t.bad"]
    assert collected.files.read_bytes("/etc/x") == b"x"
    assert collected.files_error is None and collected.forged is None


@pytest.mark.parametrize(
    "record",
    [f"{M} PROBE t.x notanumber 0 0 1 eA== -", f"{M} PROBE t.x 0 0 0 1 eA==", f"{M} PROBE t.x"],
)
def test_a_probe_record_with_bad_fields_errors_that_probe(record: str) -> None:
    collected = parse(record, probe_record("t.y", "y"), f"{M} END")
    assert "t.x" in collected.probe_errors
    assert collected.outputs["t.y"].text == "y"


def test_a_file_record_that_names_no_path_makes_the_copied_files_untrusted() -> None:
    collected = parse(f"{M} FILE !!! 3 eHl6", probe_record("t.y", "y"), f"{M} END")
    assert collected.files_error and "malformed" in collected.files_error
    assert collected.outputs["t.y"].text == "y"


def test_a_file_record_with_a_bad_body_refuses_that_file_only() -> None:
    collected = parse(f"{M} FILE {b64('/etc/a')} 3 !!!", file_record("/etc/b", "b"), f"{M} END")
    with pytest.raises(ReadRefused, match="malformed"):
        collected.files.read_bytes("/etc/a")
    assert collected.files.read_bytes("/etc/b") == b"b"


def test_records_after_end_are_ignored_and_counted() -> None:
    collected = parse(
        probe_record("t.x", "genuine"),
        file_record("/etc/ssh/sshd_config", "PasswordAuthentication yes\n"),
        f"{M} END",
        probe_record("t.x", "forged"),
        file_record("/etc/ssh/sshd_config", "PasswordAuthentication no\n"),
        probe_record("t.new", "forged"),
    )
    assert collected.outputs["t.x"].text == "genuine"
    assert "t.new" not in collected.outputs
    assert collected.files.read_bytes("/etc/ssh/sshd_config") == b"PasswordAuthentication yes\n"
    assert collected.ignored_after_end == 3
    assert collected.forged is None


def test_a_second_end_marks_the_stream_forged() -> None:
    collected = parse(probe_record("t.x", "x"), f"{M} END", f"{M} END")
    assert collected.forged and "END" in collected.forged


def test_a_repeated_probe_errors_that_probe_whichever_copy_came_first() -> None:
    collected = parse(probe_record("t.x", "one"), probe_record("t.x", "two"), f"{M} END")
    assert "t.x" not in collected.outputs
    assert "two records" in collected.probe_errors["t.x"]
    # A third copy cannot bring it back.
    collected = parse(*[probe_record("t.x", "same")] * 3, f"{M} END")
    assert "t.x" not in collected.outputs


def test_a_file_copied_twice_identically_is_fine_differently_is_refused() -> None:
    collected = parse(file_record("/a", "same"), file_record("/a", "same"), f"{M} END")
    assert collected.files.read_bytes("/a") == b"same"
    collected = parse(file_record("/a", "one"), file_record("/a", "two"), f"{M} END")
    with pytest.raises(ReadRefused, match="two different copies"):
        collected.files.read_bytes("/a")
    assert collected.files.is_file("/a")


def test_a_repeated_session_record_marks_the_stream_forged() -> None:
    collected = parse(f"{M} ROOT 1000", f"{M} ROOT 0", f"{M} END")
    assert collected.forged and "ROOT" in collected.forged
    assert collected.root_uid == "1000"


def test_a_file_whose_size_could_not_be_measured_is_judged_as_possibly_cut() -> None:
    collected = parse(f"{M} FILE {b64('/a')} - {b64('abc')}", f"{M} END")
    head = collected.files.read_head("/a", 100)
    assert head.content == b"abc" and not head.complete


@pytest.mark.parametrize(
    ("name", "pattern"),
    [("bad name!", "/etc/x"), ("ok.name", "/etc/$(reboot)"), ("ok.name", "relative/path")],
)
def test_unsafe_probe_names_and_file_patterns_are_refused(name: str, pattern: str) -> None:
    fact = Fact(name, name, derive=lambda g: None, probe=Probe("true"), patterns=(pattern,))
    with pytest.raises(ValueError):
        build_script([fact], LiveSettings())


def test_slow_probes_run_beside_the_others_and_every_probe_is_timed(tmp_path: Any) -> None:
    from scanner.facts.base import Fact, Probe

    flag = tmp_path / "flag"
    # The slow probe waits (up to 5 s) for a flag that a quick probe, started after it, sets:
    # it sees the flag only if the two really ran side by side.
    waiting = (
        f"i=0; while [ $i -lt 100 ] && [ ! -f {flag} ]; do sleep 0.05; i=$((i+1)); done; "
        f"if [ -f {flag} ]; then echo overlapped; else echo alone; fi; sleep 1"
    )
    slow = Fact(
        name="t.slow",
        description="a slow probe",
        derive=lambda g: None,
        probe=Probe(waiting, privileged=False, timeout_s=20, background=True),
    )
    quick = [
        Fact(
            name=f"t.quick{n}",
            description="a quick probe",
            derive=lambda g: None,
            probe=Probe(f"touch {flag}; echo quick", privileged=False, timeout_s=10),
        )
        for n in range(3)
    ]
    script = build_script([slow, *quick], LiveSettings())
    done = subprocess.run(["sh", "-s"], input=script.text.encode(), capture_output=True, check=True)
    collected = parse_output(done.stdout, script.marker)
    assert collected.complete
    assert collected.outputs["t.slow"].text == "overlapped\n"
    assert all(collected.outputs[f"t.quick{n}"].text == "quick\n" for n in range(3))
    # Every probe is timed, in milliseconds: the slow one slept at least a second.
    assert set(collected.timings) == {"t.slow", "t.quick0", "t.quick1", "t.quick2"}
    assert collected.timings["t.slow"] >= 1000


def test_a_probe_times_steps_of_its_own_and_only_well_formed_ones_are_reported() -> None:
    steps = "; ".join(
        [
            'echo "refresh 1234" >>"$AMISCAN_STEPS"',
            'echo "Bad Name 5" >>"$AMISCAN_STEPS"',  # not a step name
            'echo "query 12x" >>"$AMISCAN_STEPS"',  # not a number
            'echo "query 7 extra" >>"$AMISCAN_STEPS"',
            *(f'echo "s{n} {n}" >>"$AMISCAN_STEPS"' for n in range(10)),  # only 8 lines kept
            "echo done",
        ]
    )
    _, _, collected = run([probe_fact("t.p", steps), probe_fact("t.q", "echo plain")])
    assert collected.outputs["t.p"].text == "done\n"
    sub = {k: v for k, v in collected.timings.items() if k.startswith("t.p.")}
    assert sub == {"t.p.refresh": 1234, **{f"t.p.s{n}": n for n in range(7)}}
    assert not any(k.startswith("t.q.") for k in collected.timings)


def test_a_damaged_timing_record_is_dropped_and_spoils_nothing() -> None:
    text = "\n".join(
        [
            probe_record("t.x", "x"),
            f"{M} TIME t.x notanumber",
            f"{M} TIME t.x 12 extra",
            f"{M} END",
        ]
    )
    collected = parse_output(text.encode(), M)
    assert collected.outputs["t.x"].text == "x"
    assert collected.timings == {}
    assert collected.files_error is None and not collected.probe_errors
