"""Run the collection script on this machine (e.g. as the last step of a Packer build)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from scanner.cancel import NEVER, Cancel
from scanner.transports.base import CommandResult

# How long a killed script's pipes are drained before they are abandoned.
_REAP_S = 2.0


class LocalTransport:
    description = "this machine"

    def __init__(self, cancel: Cancel = NEVER) -> None:
        self.exec_count = 0
        self.cancel = cancel

    def run_script(self, script: str, timeout_s: float) -> CommandResult:
        self.exec_count += 1
        started = time.monotonic()
        # A new session so that a timeout kills every process the script started.
        process = subprocess.Popen(
            ["/bin/sh", "-s"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = started + timeout_s
        stdin: bytes | None = script.encode()
        while True:
            try:
                # Short slices, so that a cancelled scan stops the script promptly.
                stdout, stderr = process.communicate(
                    stdin, timeout=min(0.2, max(deadline - time.monotonic(), 0.01))
                )
                return CommandResult(
                    process.returncode, stdout, stderr, False, time.monotonic() - started
                )
            except subprocess.TimeoutExpired:
                stdin = None
                if self.cancel.is_set or time.monotonic() >= deadline:
                    os.killpg(process.pid, signal.SIGKILL)
                    stdout, stderr = _reap(process)
                    self.cancel.check()
                    return CommandResult(None, stdout, stderr, True, time.monotonic() - started)

    def close(self) -> None:
        """Nothing to release."""


def _reap(process: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """What a killed script printed, waiting a bounded time: a process that left the script's
    session (a daemon it started) can hold its pipes open forever."""
    try:
        return process.communicate(timeout=_REAP_S)
    except subprocess.TimeoutExpired:
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        process.wait(timeout=_REAP_S)
        return b"", b""
