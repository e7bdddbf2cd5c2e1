"""What the peer's tests share: settings, account records, and the judgements' small helpers."""

from __future__ import annotations

from dataclasses import dataclass

# Marketplace vetting connects from 10.0.0.0/16 and 10.2.0.0/16 (amiscan asks sshd -T for the
# ends of both ranges, as these four addresses).
VETTING_ADDRESSES = ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")

# Shells with which no one logs in (any path ending so).
NO_LOGIN_SHELLS = (
    "nologin",
    "false",
    "/bin/sync",
    "/sbin/shutdown",
    "/sbin/halt",
    "/usr/sbin/halt",
)


@dataclass(frozen=True)
class Peer:
    """The command-line settings bench/peer.py passes (see conftest.pytest_addoption)."""

    sshd_config: str
    sshd_bin: str
    scan_port: int
    client_addr: str
    login_key: tuple[str, ...]
    sudo: str


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    home: str
    shell: str

    @property
    def can_log_in(self) -> bool:
        return not (self.shell or "/bin/sh").endswith(NO_LOGIN_SHELLS)
