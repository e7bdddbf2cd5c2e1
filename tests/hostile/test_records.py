"""A hostile guest behind a real sshd forges, repeats and damages collection records.

The guest is a ForceCommand wrapper: it runs the scanner's real collection script (so the
records, and the per-scan marker, are genuine), then rewrites the record stream before the
scanner sees it. The genuine sshd has PasswordAuthentication yes; the forgeries say no.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tests.conftest import SshdFactory
from tests.hostile.harness import Run, assert_failed_cleanly, error_lines, run_amiscan
from tests.sshd import SshdServer

PASSWORD = "linux.ssh.password-authentication"
EFFECTIVE_PROBE = "linux.sshd.effective"

# The guest side: run the original command ("sh -s", the script on stdin), then tamper.
FORGER = r'''
import base64, os, re, subprocess, sys

mode = sys.argv[1]
result = subprocess.run(["/bin/sh", "-c", os.environ["SSH_ORIGINAL_COMMAND"]], stdout=subprocess.PIPE)
lines = result.stdout.decode("ascii", "replace").splitlines()
marker = next(ln.split(" ")[0] for ln in lines if re.match(r"^AMISCAN-[0-9a-f]+ END$", ln))


def flipped(line):
    """The same record with every 'passwordauthentication yes' turned into 'no'."""
    fields = line.split(" ")
    out = []
    for field in fields:
        try:
            raw = base64.b64decode(field, validate=True)
        except Exception:
            out.append(field)
            continue
        new = re.sub(rb"(?im)^(\s*passwordauthentication)\s+yes", rb"\1 no", raw)
        out.append(base64.b64encode(new).decode() if new != raw else field)
    return " ".join(out)


records = [ln for ln in lines if ln.startswith(marker + " ") and not ln.endswith(" END")]
others = [ln for ln in lines if not ln.startswith(marker + " ")]
end = marker + " END"
if mode == "after-end":
    body = lines + [flipped(r) for r in records]
elif mode == "after-end-with-end":
    body = lines + [flipped(r) for r in records] + [end]
elif mode == "duplicate":
    body = others + records + [flipped(r) for r in records] + [end]
elif mode == "forged-first":
    body = others + [flipped(r) for r in records] + records + [end]
elif mode == "malformed":
    prefix = f"{marker} PROBE {sys.argv[2]} "
    body = [ln[: len(ln) // 2] + "!!" if ln.startswith(prefix) else ln for ln in lines]
else:
    raise SystemExit(f"unknown mode {mode}")
sys.stdout.write("\n".join(body) + "\n")
sys.stdout.flush()
sys.exit(result.returncode)
'''


def hostile_guest(sshd_factory: SshdFactory, tmp_path: Path, *mode: str) -> SshdServer:
    forger = tmp_path / "forger.py"
    forger.write_text(FORGER)
    command = shlex.join([sys.executable, str(forger), *mode])
    return sshd_factory(
        f"PasswordAuthentication yes\nForceCommand {command}\n", name=f"sshd-{mode[0]}"
    )


def scan(server: SshdServer, tmp_path: Path) -> Run:
    return run_amiscan(
        [server.url, "-i", str(server.key_path), "--scan-port", str(server.port)],
        tmp_path / "work",
        reports=("json", "html"),
        timeout_s=180,
    )


def test_records_after_end_are_ignored(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    run = scan(hostile_guest(sshd_factory, tmp_path, "after-end"), tmp_path)
    assert_failed_cleanly(run, 1)
    assert run.statuses()[PASSWORD] == "fail"
    notes = run.json_report().get("notes", [])
    assert any("after the end" in note for note in notes), notes


def test_a_second_end_marks_the_whole_stream_forged(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    run = scan(hostile_guest(sshd_factory, tmp_path, "after-end-with-end"), tmp_path)
    assert_failed_cleanly(run, 3)
    assert run.statuses()[PASSWORD] == "error"
    assert any("END records" in line for line in error_lines(run)), run.err


def test_a_duplicate_record_before_end_cannot_override_the_genuine_one(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    run = scan(hostile_guest(sshd_factory, tmp_path, "duplicate"), tmp_path)
    # The session records repeat: the stream is forged and nothing in it is judged.
    assert_failed_cleanly(run, 3)
    statuses = run.statuses()
    assert statuses[PASSWORD] == "error"
    assert "pass" not in {s for k, s in statuses.items() if k.startswith("linux.ssh.")}
    assert run.json_report()["verdict"] == "error"


def test_a_forgery_printed_first_does_not_win_either(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    run = scan(hostile_guest(sshd_factory, tmp_path, "forged-first"), tmp_path)
    assert_failed_cleanly(run, 3)
    assert run.statuses()[PASSWORD] == "error"


def test_one_malformed_record_errors_only_its_own_probe(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    run = scan(hostile_guest(sshd_factory, tmp_path, "malformed", EFFECTIVE_PROBE), tmp_path)
    report = run.json_report()
    results = {r["id"]: r for r in report["results"]}
    assert results[PASSWORD]["status"] != "pass"
    # The other records were kept: the secrets and history checks were judged.
    for check in ("linux.secrets.shell-history", "linux.secrets.private-keys"):
        assert results[check]["status"] in ("pass", "fail", "warn"), results[check]
    assert any(EFFECTIVE_PROBE in note for note in report.get("notes", [])), report.get("notes")
    assert_failed_cleanly(run, run.returncode)
    assert run.returncode in (1, 3)
