"""Run the collection script on this machine (e.g. as the last step of a Packer build)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from scanner.transports.base import CommandResult


class LocalTransport:
    description = "this machine"

    def __init__(self) -> None:
        self.exec_count = 0

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
        try:
            stdout, stderr = process.communicate(script.encode(), timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            return CommandResult(None, stdout, stderr, True, time.monotonic() - started)
        return CommandResult(process.returncode, stdout, stderr, False, time.monotonic() - started)

    def close(self) -> None:
        """Nothing to release."""
