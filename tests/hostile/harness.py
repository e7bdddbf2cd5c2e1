"""Running amiscan against hostile input without letting a regression hang or sink the test run.

Every run is a child process with a wall-clock bound (SIGKILL on overrun) and an address-space
limit set in the child (`resource.setrlimit`), so a read that loads a giant file whole fails fast
instead of swapping the machine, and an endless wait fails the test instead of hanging CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parents[2]
# Generous for a scan of a small tree, far below what loading a multi-GiB file would need.
DEFAULT_MEMORY_BYTES = 1536 * 1024 * 1024
DEFAULT_TIMEOUT_S = 120.0
# ESC (CSI, OSC, …), the C1 controls and the other C0 controls a terminal acts on. Tab and
# newline are layout, not escapes.
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


@dataclass(frozen=True)
class Run:
    """One bounded amiscan run: how it ended, what it printed, how long and how big it got."""

    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    killed: bool
    # Peak resident set of the child, in KiB (its own rusage, from os.wait4).
    peak_rss_kib: int
    workdir: Path
    reports: dict[str, Path] = field(default_factory=dict)

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")

    def json_report(self) -> dict[str, Any]:
        path = self.reports["json"]
        assert path.is_file(), f"no JSON report; stderr:\n{self.err}"
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document

    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.json_report()["results"]}


def _limit_memory(limit_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def run_amiscan(
    args: Sequence[str],
    workdir: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    memory_bytes: int = DEFAULT_MEMORY_BYTES,
    env: Mapping[str, str] | None = None,
    reports: Sequence[str] = ("json",),
    stdin: bytes | None = None,
) -> Run:
    """`amiscan ARGS` in `workdir` with the requested report formats written there.

    `reports` names formats (json, html, junit, sarif, markdown); each is written to
    `workdir/report.<format>` and listed in `Run.reports`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    paths = {name: workdir / f"report.{name}" for name in reports}
    flags: list[str] = []
    for name, path in paths.items():
        flags += [f"--{name}", str(path)]
    if "html" not in paths and args and args[0] not in ("checks",):
        flags.append("--no-html")
    environment = dict(env if env is not None else os.environ)
    environment["HOME"] = str(workdir)
    environment.pop("SSH_AUTH_SOCK", None)
    # The code under test is this checkout's, whatever an installed copy points at.
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), environment.get("PYTHONPATH", "")])
    )
    command = [sys.executable, "-m", "scanner", *args, *flags]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=environment,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: _limit_memory(memory_bytes),
        start_new_session=True,
    )
    streams = _drain(process, stdin)
    status, usage, killed = _reap(process.pid, started + timeout_s)
    for reader in streams.threads:
        reader.join()
    seconds = time.monotonic() - started
    returncode = os.waitstatus_to_exitcode(status)
    process.returncode = returncode  # reaped here, not by Popen
    return Run(
        tuple(args),
        returncode,
        b"".join(streams.stdout),
        b"".join(streams.stderr),
        seconds,
        killed,
        usage.ru_maxrss,
        workdir,
        paths,
    )


@dataclass
class _Streams:
    stdout: list[bytes]
    stderr: list[bytes]
    threads: list[threading.Thread]


def _drain(process: subprocess.Popen[bytes], stdin: bytes | None) -> _Streams:
    """Read both pipes (and feed stdin) in threads, so a chatty child never blocks on a pipe."""
    streams = _Streams([], [], [])

    def read(pipe: IO[bytes] | None, into: list[bytes]) -> None:
        if pipe is not None:
            into.append(pipe.read())
            pipe.close()

    def write(pipe: IO[bytes] | None) -> None:
        if pipe is not None:
            with contextlib.suppress(BrokenPipeError):
                pipe.write(stdin or b"")
            pipe.close()

    jobs = [(read, (process.stdout, streams.stdout)), (read, (process.stderr, streams.stderr))]
    if stdin is not None:
        jobs.append((write, (process.stdin,)))  # type: ignore[arg-type]
    for target, job_args in jobs:
        thread = threading.Thread(target=target, args=job_args, daemon=True)
        thread.start()
        streams.threads.append(thread)
    return streams


def _reap(pid: int, deadline: float) -> tuple[int, resource.struct_rusage, bool]:
    """Wait for the child until `deadline`, SIGKILL its process group after; its own rusage.

    os.wait4 gives this child's peak memory exactly (RUSAGE_CHILDREN would mix in every child
    this test process ever reaped).
    """
    while True:
        reaped, status, usage = os.wait4(pid, os.WNOHANG)
        if reaped:
            return status, usage, False
        if time.monotonic() >= deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            return status, usage, True
        time.sleep(0.02)


def assert_failed_cleanly(run: Run, code: int, *, reports: bool = True) -> None:
    """The documented exit code, no traceback, no raw control byte, the reports written."""
    assert not run.killed, f"amiscan {' '.join(run.args)} overran and was killed"
    assert run.returncode == code, (run.returncode, run.err[-2000:])
    assert_inert(run)
    if reports:
        for name, path in run.reports.items():
            assert path.is_file(), f"the {name} report was not written; stderr:\n{run.err}"


def assert_inert(run: Run) -> None:
    """No traceback and no byte a terminal would act on, on either stream."""
    assert b"Traceback" not in run.stderr, run.err[-3000:]
    assert b"Traceback" not in run.stdout, run.out[-3000:]
    for name, stream in (("stdout", run.stdout), ("stderr", run.stderr)):
        match = RAW_CONTROL.search(stream)
        assert match is None, f"raw control byte {match.group()!r} on {name}: {stream[-600:]!r}"


def error_lines(run: Run) -> list[str]:
    """The lines amiscan printed as errors ("amiscan: error: …" or "… scan incomplete: …")."""
    return [
        line
        for line in run.err.splitlines()
        if line.startswith("amiscan:") and ("error" in line or "incomplete" in line)
    ]
