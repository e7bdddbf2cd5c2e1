"""The one abstraction over every way of reaching a host: run a script, get rc/stdout/stderr."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class CommandResult:
    exit_status: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    duration_s: float = 0.0
    truncated: bool = False


class Transport(Protocol):
    """Runs a whole collection script on the target in one execution."""

    description: str
    # How many remote executions (SSH exec channels, WinRM commands) this transport opened.
    exec_count: int

    def run_script(self, script: str, timeout_s: float) -> CommandResult: ...

    def close(self) -> None: ...


class TransportError(Exception):
    """The target could not be reached or logged in to; the message is one line for people."""


class ConnectError(TransportError):
    """Nothing answered, the connection was refused, or it timed out."""


class AuthError(TransportError):
    """The target answered but rejected every credential offered."""


class HostKeyError(TransportError):
    """The host key did not match the pinned or known one."""


# Stdout beyond this is dropped: the script bounds every probe (4 MiB) and copied file (1 MiB), so
# a real host sends a few MiB and only a runaway or hostile guest gets here. Judging what was
# read costs about three times this in memory.
MAX_SCRIPT_OUTPUT = 64 * 1024 * 1024
