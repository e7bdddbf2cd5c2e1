"""LocalTransport: a script that outlives its deadline is killed, and what it started cannot
hold the scan."""

from __future__ import annotations

import time

from scanner.transports.local import LocalTransport


def test_a_script_is_run_and_its_output_returned() -> None:
    result = LocalTransport().run_script("echo out; echo err >&2; exit 3\n", 10.0)
    assert (result.exit_status, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
    assert not result.timed_out


def test_a_daemon_holding_the_output_open_does_not_outlast_the_deadline() -> None:
    started = time.monotonic()
    # The daemon leaves the script's session, so killing the session leaves it (and the pipe).
    result = LocalTransport().run_script("setsid sleep 8 &\necho started\nsleep 8\n", 0.5)
    assert result.timed_out and result.exit_status is None
    assert time.monotonic() - started < 5.0
