"""SSHTransport against an in-process hostile server: every wait ends at its deadline or on cancel."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanner.cancel import Cancel, ScanInterrupted
from scanner.transports.base import ConnectError
from scanner.transports.ssh import Credentials, HostKeyPolicy, SSHTransport, load_private_key
from tests.hostile.ssh_server import USER, Behaviour, HostileSSHServer

# Far above every deadline used here, far below "hangs".
BOUND_S = 10.0


ServerFor = Callable[[Behaviour], HostileSSHServer]


@pytest.fixture
def server_for(tmp_path: Path) -> Iterator[ServerFor]:
    """Start a hostile server of a kind; every one is stopped after the test."""
    started: list[HostileSSHServer] = []

    def start(behaviour: Behaviour) -> HostileSSHServer:
        server = HostileSSHServer(behaviour, tmp_path / behaviour.value).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def _transport(
    server: HostileSSHServer, cancel: Cancel | None = None, **kwargs: int
) -> SSHTransport:
    return SSHTransport(
        "127.0.0.1",
        server.port,
        USER,
        Credentials(
            keys=[load_private_key(server.key_path)], use_agent=False, use_default_keys=False
        ),
        HostKeyPolicy(),
        connect_timeout_s=1.0,
        cancel=cancel or Cancel(),
        **kwargs,
    )


@pytest.mark.parametrize(
    ("behaviour", "stage"),
    [
        (Behaviour.NO_BANNER, "waiting for the SSH banner"),
        (Behaviour.BANNER_THEN_SILENCE, "exchanging keys"),
        (Behaviour.AUTH_NEVER_ANSWERED, "authenticating as ec2-user"),
    ],
)
def test_a_login_that_stalls_ends_at_the_connect_timeout(
    server_for: ServerFor, behaviour: Behaviour, stage: str
) -> None:
    server = server_for(behaviour)
    started = time.monotonic()
    with pytest.raises(ConnectError, match=rf"did not answer within 1s \({stage}\)"):
        _transport(server).connect(probe_users=())
    assert time.monotonic() - started < BOUND_S


def test_an_exec_request_never_answered_ends_at_the_collection_timeout(
    server_for: ServerFor,
) -> None:
    server = server_for(Behaviour.EXEC_NEVER_ANSWERED)
    transport = _transport(server)
    transport.connect(probe_users=())
    started = time.monotonic()
    with pytest.raises(ConnectError, match=r"within 1s \(waiting for the answer to the exec"):
        transport.run_script("true\n", timeout_s=1.0)
    assert time.monotonic() - started < BOUND_S
    transport.close()


def test_a_one_byte_window_is_a_timed_out_collection(server_for: ServerFor) -> None:
    server = server_for(Behaviour.TINY_WINDOW)
    transport = _transport(server)
    transport.connect(probe_users=())
    started = time.monotonic()
    result = transport.run_script("echo hello\n" * 10_000, timeout_s=1.0)
    assert result.timed_out and result.exit_status is None
    assert time.monotonic() - started < BOUND_S
    transport.close()


def test_endless_output_is_cut_at_the_limit(server_for: ServerFor) -> None:
    server = server_for(Behaviour.ENDLESS_OUTPUT)
    transport = _transport(server, max_output=1024 * 1024)
    transport.connect(probe_users=())
    result = transport.run_script("true\n", timeout_s=BOUND_S)
    assert result.truncated and not result.timed_out
    assert result.exit_status is None
    assert len(result.stdout) == 1024 * 1024


@pytest.mark.parametrize("behaviour", [Behaviour.EXEC_NEVER_ANSWERED, Behaviour.TINY_WINDOW])
def test_cancelling_ends_a_stalled_collection_at_once(
    server_for: ServerFor, behaviour: Behaviour
) -> None:
    server = server_for(behaviour)
    cancel = Cancel()
    transport = _transport(server, cancel)
    transport.connect(probe_users=())
    timer = threading.Timer(0.3, cancel.set, args=("SIGTERM",))
    timer.start()
    started = time.monotonic()
    with pytest.raises(ScanInterrupted, match="SIGTERM"):
        transport.run_script("true\n" * 10_000, timeout_s=60.0)
    assert time.monotonic() - started < 2.0
    timer.join()


def test_cancelling_ends_a_stalled_login_at_once(server_for: ServerFor) -> None:
    server = server_for(Behaviour.NO_BANNER)
    cancel = Cancel()
    transport = _transport(server, cancel)
    transport.connect_timeout_s = 60.0
    timer = threading.Timer(0.3, cancel.set, args=("SIGINT",))
    timer.start()
    started = time.monotonic()
    with pytest.raises(ScanInterrupted, match="SIGINT"):
        transport.connect(probe_users=())
    assert time.monotonic() - started < 2.0
    timer.join()


def test_paramiko_tracebacks_are_debug_output_only(caplog: pytest.LogCaptureFixture) -> None:
    paramiko_log = logging.getLogger("paramiko.transport")
    root = logging.getLogger()
    with caplog.at_level(logging.WARNING):
        paramiko_log.error("Traceback (most recent call last):")
    assert "Traceback" not in caplog.text
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG):
            paramiko_log.error("Traceback (most recent call last):")
    finally:
        root.setLevel(level)
    assert "Traceback" in caplog.text
