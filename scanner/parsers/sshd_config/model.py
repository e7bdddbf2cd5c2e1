"""The data types: a connection, an effective setting, a problem sshd reports, a bad value."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True)
class ConnectionInfo:
    """What sshd knows about a connection when it evaluates Match blocks (`sshd -T -C`)."""

    user: str
    addr: str
    host: str | None = None  # None -> same as addr (UseDNS no, the default: sshd uses the IP)
    laddr: str | None = None
    lport: int | None = None
    rdomain: str | None = None
    groups: tuple[str, ...] = ()  # the user's groups, for Match Group


@dataclass(frozen=True)
class Setting:
    """One effective option: its values as `sshd -T` reports them, and where they came from."""

    keyword: str
    values: tuple[str, ...]
    source: str
    line: str = ""


class Severity(Enum):
    """How sshd reacts to a problem line."""

    FATAL = "error"  # sshd refuses to start (or `sshd -t` fails)
    WARNING = "warning"  # sshd logs it and carries on


@dataclass(frozen=True)
class Problem:
    """A line sshd would reject or warn about."""

    location: str  # "path:line"
    message: str
    kind: Severity = Severity.FATAL

    def __str__(self) -> str:
        return f"{self.location}: {self.kind.value}: {self.message}"


class BadValue(Exception):
    """A line sshd would reject; the message says why."""


class ConfigTooLarge(Exception):
    """Judging the configuration would take more work than the scanner allows; says why."""
