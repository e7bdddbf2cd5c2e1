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
    CollectionError,
    LiveSettings,
    build_script,
    parse_output,
)
from scanner.facts.base import Fact, Probe
from scanner.transports.local import LocalTransport


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


def test_corrupt_encoded_fields_raise_a_collection_error() -> None:
    marker = "AMISCAN-0000"
    encoded = base64.b64encode(b"b64").decode()
    stdout = (
        f"{marker} ENV encoding {encoded}\n{marker} PROBE t.x 0 0 0 3 !!!notbase64 -\n".encode()
    )
    with pytest.raises(CollectionError):
        parse_output(stdout, marker)


@pytest.mark.parametrize(
    ("name", "pattern"),
    [("bad name!", "/etc/x"), ("ok.name", "/etc/$(reboot)"), ("ok.name", "relative/path")],
)
def test_unsafe_probe_names_and_file_patterns_are_refused(name: str, pattern: str) -> None:
    fact = Fact(name, name, derive=lambda g: None, probe=Probe("true"), patterns=(pattern,))
    with pytest.raises(ValueError):
        build_script([fact], LiveSettings())
