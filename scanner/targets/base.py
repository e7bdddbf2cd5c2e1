"""What every target kind shares: how it is named, and how it runs a scan into a ScanRun."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from scanner.model import Severity
from scanner.run import ScanRun


class TargetError(Exception):
    """The target string or its options are wrong (exit code 2); one line for people."""


class ScanAborted(Exception):
    """The scan could not complete (exit code 3); the report is still written."""


@dataclass(frozen=True)
class ScanOptions:
    """Everything the command line (or a config file) says about how to scan."""

    user: str | None = None
    identity_file: Path | None = None
    connect_timeout_s: float = 15.0
    collect_timeout_s: float = 600.0
    baseline_login_user: str | None = None
    scan_date: str | None = None
    known_hosts: Path | None = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    fail_on: Severity | None = None


class Target(Protocol):
    kind: str
    id: str
    platform: str

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        """Gather and judge into `run`; raise ScanAborted when the scan cannot complete."""
        ...
