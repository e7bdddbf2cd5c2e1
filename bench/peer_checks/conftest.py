"""The pytest-testinfra peer of amiscan's Linux checks: shared options, fixtures and counters.

bench/peer.py runs these tests as a seller would: `python3 -m pytest --hosts=paramiko://…`, one
test per amiscan Linux check, each asking the host through testinfra's API (one SSH exec channel
per command, as testinfra's paramiko backend does). This file adds what a benchmark needs on top:

* a counter of the SSH session channels and exec requests paramiko made, written as JSON (with
  a per-test breakdown) to --peer-counter at the end of the session;
* each test's outcome, written as JSON to --peer-results, so that bench/peer.py can set the
  verdicts beside amiscan's.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paramiko
import pytest
import testinfra.host
from peer_support import Account, Peer

# --- counting exec channels ---------------------------------------------------------------------

_counts: Counter[str] = Counter()
_per_test: Counter[str] = Counter()
_current = ["(outside tests)"]

_open_session = paramiko.Transport.open_session
_exec_command = paramiko.Channel.exec_command
# --peer-nodelay: set TCP_NODELAY on testinfra's connection (paramiko leaves Nagle's algorithm on,
# which on loopback adds up to ~40 ms, a delayed ACK, to many execs).
_nodelay = [False]


def _counted_open_session(self: paramiko.Transport, *args: Any, **kwargs: Any) -> paramiko.Channel:
    _counts["sessions"] += 1
    if _nodelay[0] and isinstance(self.sock, socket.socket):
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return _open_session(self, *args, **kwargs)


def _counted_exec_command(self: paramiko.Channel, command: Any) -> None:
    _counts["execs"] += 1
    _per_test[_current[0]] += 1
    _exec_command(self, command)


paramiko.Transport.open_session = _counted_open_session  # type: ignore[method-assign]
paramiko.Channel.exec_command = _counted_exec_command  # type: ignore[method-assign]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("peer", "amiscan peer benchmark")
    group.addoption("--peer-sshd-config", default="/etc/ssh/sshd_config")
    group.addoption("--peer-sshd-bin", default="/usr/sbin/sshd")
    group.addoption("--peer-scan-port", type=int, default=22)
    group.addoption(
        "--peer-client-addr", default="", help="this machine's address, as sshd sees it"
    )
    group.addoption(
        "--peer-login-key", default="", help="public key file of the key we log in with"
    )
    group.addoption(
        "--peer-sudo",
        choices=("auto", "always"),
        default="auto",
        help="auto: wrap privileged commands in sudo unless logged in as root",
    )
    group.addoption("--peer-nodelay", action="store_true", help="TCP_NODELAY on the connection")
    group.addoption("--peer-counter", default="", help="write exec counts (JSON) here")
    group.addoption("--peer-results", default="", help="write test outcomes (JSON) here")


def pytest_configure(config: pytest.Config) -> None:
    _nodelay[0] = bool(config.getoption("--peer-nodelay"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _current[0] = item.name.split("[", 1)[0]  # without testinfra's host parameter


_outcomes: dict[str, str] = {}
_durations: defaultdict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    name = report.nodeid.rsplit("::", 1)[-1].split("[", 1)[0]
    _durations[name] += report.duration
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _outcomes[name] = report.outcome


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    if counter := config.getoption("--peer-counter"):
        Path(counter).write_text(json.dumps({**_counts, "per_test": dict(_per_test)}))
    if results := config.getoption("--peer-results"):
        Path(results).write_text(json.dumps({"outcomes": _outcomes, "durations": _durations}))


# --- shared settings and fixtures ---------------------------------------------------------------


@pytest.fixture(scope="session")
def peer(request: pytest.FixtureRequest) -> Peer:
    option = request.config.getoption
    key_file = option("--peer-login-key")
    key = Path(key_file).read_text().split()[:2] if key_file else []
    return Peer(
        sshd_config=option("--peer-sshd-config"),
        sshd_bin=option("--peer-sshd-bin"),
        scan_port=option("--peer-scan-port"),
        client_addr=option("--peer-client-addr"),
        login_key=tuple(key),
        sudo=option("--peer-sudo"),
    )


@pytest.fixture(scope="module")
def login_user(host: testinfra.host.Host) -> str:
    """The user testinfra logged in as (from the --hosts spec: no command needed)."""
    return str(host.backend.host.user)


@pytest.fixture(scope="module")
def as_root(
    host: testinfra.host.Host, peer: Peer, login_user: str
) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """`with as_root(): …` runs the commands inside through sudo (not needed when root)."""

    def enter() -> contextlib.AbstractContextManager[Any]:
        if peer.sudo == "always" or login_user != "root":
            sudo: contextlib.AbstractContextManager[Any] = host.sudo()
            return sudo
        return contextlib.nullcontext()

    return enter


@pytest.fixture(scope="module")
def accounts(host: testinfra.host.Host) -> list[Account]:
    found = []
    for line in host.file("/etc/passwd").content_string.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")) or not fields[2].isdigit():
            continue
        found.append(Account(fields[0], int(fields[2]), fields[5], fields[6]))
    return found


@pytest.fixture(scope="module")
def homes(host: testinfra.host.Host, as_root: Callable[[], Any]) -> list[str]:
    """/root and /home/*, the homes amiscan's history and AWS-file patterns cover."""
    with as_root():
        listed = host.file("/home").listdir()
    return ["/root", *(f"/home/{name}" for name in sorted(listed))]
