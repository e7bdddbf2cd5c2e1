"""`amiscan ssh://…` against hostile SSH servers: every wait ends, exit 3, one line, a report.

The servers (tests/hostile/ssh_server.py) run in this process on 127.0.0.1; amiscan runs as a
bounded child (tests/hostile/harness.py). The signal tests start the child themselves, since
they must signal it mid-scan, with the same bounds.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.hostile.harness import (
    DEFAULT_MEMORY_BYTES,
    REPO,
    Run,
    assert_failed_cleanly,
    error_lines,
    run_amiscan,
)
from tests.hostile.ssh_server import Behaviour, HostileSSHServer
from tests.imagetree import build_compliant
from tests.plugins import install_plugin, plugin_env

# What a hostile server may cost a scan with --connect-timeout 2 --timeout 5, with room for a
# slow CI machine: far below "hangs".
BOUND_S = 30.0
TIMEOUTS = ("--connect-timeout", "2", "--timeout", "5")
Popen = subprocess.Popen[bytes]


@pytest.fixture
def hostile(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HostileSSHServer]:
    behaviour: Behaviour = request.param
    with HostileSSHServer(behaviour, tmp_path / "server") as server:
        yield server


def _scan(server: HostileSSHServer, workdir: Path) -> Run:
    return run_amiscan(
        [server.url, "-i", str(server.key_path), *TIMEOUTS], workdir, timeout_s=BOUND_S
    )


def _assert_error_report(run: Run, reason: str) -> None:
    assert_failed_cleanly(run, 3)
    lines = error_lines(run)
    assert len(lines) == 1, run.err
    assert reason in lines[0], lines
    report = run.json_report()
    assert report["verdict"] == "error"
    assert report["results"], "every selected check is in the report"
    # Nothing was judged: every check that applies is an error (a live-only skip stays a skip).
    assert {r["status"] for r in report["results"]} <= {"error", "skip"}
    assert any(r["status"] == "error" for r in report["results"])


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        (Behaviour.NO_BANNER, "did not answer within 2s (waiting for the SSH banner)"),
        (Behaviour.BANNER_THEN_SILENCE, "did not answer within 2s (exchanging keys)"),
        (Behaviour.AUTH_NEVER_ANSWERED, "did not answer within 2s (authenticating as ec2-user)"),
        (
            Behaviour.EXEC_NEVER_ANSWERED,
            "did not answer within 5s (waiting for the answer to the exec request)",
        ),
        (Behaviour.TINY_WINDOW, "the collection script did not finish within 5s"),
    ],
    indirect=["hostile"],
    ids=lambda value: value.value if isinstance(value, Behaviour) else None,
)
def test_a_server_that_stalls_is_a_scan_that_could_not_complete(
    hostile: HostileSSHServer, reason: str, tmp_path: Path
) -> None:
    run = _scan(hostile, tmp_path / "work")
    _assert_error_report(run, reason)
    assert run.seconds < BOUND_S


@pytest.mark.parametrize("hostile", [Behaviour.ENDLESS_OUTPUT], indirect=True)
def test_endless_output_is_cut_off_not_kept(hostile: HostileSSHServer, tmp_path: Path) -> None:
    run = _scan(hostile, tmp_path / "work")
    assert_failed_cleanly(run, 3)
    assert len(error_lines(run)) == 1, run.err
    assert run.json_report()["verdict"] == "error"
    # Not one byte beyond the output limit (64 MiB) and what judging it costs.
    assert run.peak_rss_kib < 512 * 1024, run.peak_rss_kib


# --- signals -------------------------------------------------------------------------------


def _start(args: Sequence[str], workdir: Path, env: dict[str, str] | None = None) -> Popen:
    """amiscan as the harness runs it (memory limit, own session, private HOME), not waited for."""
    workdir.mkdir(parents=True, exist_ok=True)
    environment = dict(env if env is not None else os.environ)
    environment["HOME"] = str(workdir)
    environment.pop("SSH_AUTH_SOCK", None)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), environment.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-m", "scanner", *args, "--json", str(workdir / "report.json")]
    return subprocess.Popen(
        [*command, "--no-html"],
        cwd=workdir,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: resource.setrlimit(
            resource.RLIMIT_AS, (DEFAULT_MEMORY_BYTES, DEFAULT_MEMORY_BYTES)
        ),
        start_new_session=True,
    )


def _finish(process: Popen, args: Sequence[str], workdir: Path, timeout_s: float) -> Run:
    """Wait at most `timeout_s` (SIGKILL on overrun) and describe the run as the harness does."""
    started = time.monotonic()
    killed = False
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        killed = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    seconds = time.monotonic() - started
    return Run(
        tuple(args),
        process.returncode,
        stdout,
        stderr,
        seconds,
        killed,
        0,
        workdir,
        {"json": workdir / "report.json"},
    )


def _wait_for(condition: Callable[[], bool], what: str, process: Popen) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            pytest.fail(f"amiscan never reached {what}; stderr:\n{stderr.decode(errors='replace')}")
        time.sleep(0.05)


@pytest.mark.parametrize(
    "hostile",
    [Behaviour.EXEC_NEVER_ANSWERED, Behaviour.TINY_WINDOW, Behaviour.NO_BANNER],
    indirect=True,
    ids=lambda value: value.value,
)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_ends_a_stalled_scan_at_once_with_the_report(
    hostile: HostileSSHServer, signum: signal.Signals, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    # Long timeouts: only the signal may end these scans in time.
    args = [hostile.url, "-i", str(hostile.key_path), "--connect-timeout", "60", "--timeout", "60"]
    process = _start(args, workdir)
    if hostile.behaviour is Behaviour.NO_BANNER:
        _wait_for(lambda: hostile.connections > 0, "the server", process)
    else:
        _wait_for(hostile.exec_requested.is_set, "the exec request", process)
    time.sleep(0.3)
    process.send_signal(signum)
    run = _finish(process, args, workdir, timeout_s=BOUND_S)
    assert_failed_cleanly(run, 3)
    assert run.seconds < 3.0, run.seconds
    assert "interrupted; cleaning up" in run.err
    assert f"interrupted ({signum.name})" in error_lines(run)[-1]
    assert run.json_report()["verdict"] == "error"


HANGING_CHECK = '''
"""A plug-in check that never returns: a scan that cannot stop promptly."""

import os
import time
from pathlib import Path

from scanner.model import Outcome, Platform, Policy, Severity, Status
from scanner.registry import check


@check(
    id="acme.hang",
    title="a check that hangs",
    severity=Severity.LOW,
    platform=Platform.LINUX,
    policy=Policy("ACME-9", "https://wiki.example.com/acme-9"),
    rationale="Keeps the scan busy after the first signal.",
    remediation="None.",
    needs=[],
)
def hang(facts):
    Path(os.environ["AMISCAN_TEST_HANGING"]).write_text("judging")
    time.sleep(120)
    return Outcome(Status.PASS, "never")
'''


def test_a_second_signal_exits_at_once_saying_so(tmp_path: Path) -> None:
    root = tmp_path / "image"
    build_compliant(root)
    flag = tmp_path / "hanging"
    site = install_plugin(tmp_path / "site", textwrap.dedent(HANGING_CHECK), name="acme_hang")
    env = plugin_env(site, dict(os.environ))
    env["AMISCAN_TEST_HANGING"] = str(flag)
    workdir = tmp_path / "work"
    args = [f"dir:{root}", "--checks", "acme.hang"]
    process = _start(args, workdir, env)
    _wait_for(flag.exists, "the hanging check", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None, "the first signal waits for the scan to clean up"
    process.send_signal(signal.SIGTERM)
    run = _finish(process, args, workdir, timeout_s=BOUND_S)
    assert_failed_cleanly(run, 3, reports=False)
    assert run.seconds < 3.0, run.seconds
    assert "interrupted; cleaning up" in run.err
    second = [line for line in run.err.splitlines() if "second signal" in line]
    assert second == [
        "amiscan: second signal (SIGTERM): exiting now without waiting for cleanup "
        "(`amiscan cleanup` deletes what an AMI scan left in AWS)"
    ], run.err
