"""What every target kind shares: how it is named, and how it runs a scan into a ScanRun."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from scanner.errors import ScanAborted, TargetError
from scanner.model import Platform, Severity
from scanner.run import ScanRun

if TYPE_CHECKING:
    from scanner.registry import Check


@dataclass(frozen=True)
class ScanOptions:
    """Everything the command line (or a config file) says about how to scan."""

    user: str | None = None
    identity_file: Path | None = None
    # None: the target's own default (seconds to log in over SSH; the whole boot wait for an AMI).
    connect_timeout_s: float | None = None
    collect_timeout_s: float = 600.0
    # AMI scans.
    region: str | None = None
    profile: str | None = None
    instance_type: str | None = None
    subnet_id: str | None = None
    address: str = "public"
    allow_cidr: str | None = None
    scan_port: int = 22
    winrm_port: int = 5985
    key_name: str | None = None
    keep_instance: bool = False
    no_launch: bool = False
    # With --no-launch: judge only the image attributes, do not read the snapshots.
    no_snapshot: bool = False
    poll_interval_s: float = 2.0
    # After a trust-on-first-use login, how long to wait for the console's host key fingerprints
    # (cloud-init prints them late in first boot, often after sshd already answers).
    host_key_wait_s: float = 60.0
    baseline_login_user: str | None = None
    scan_date: str | None = None
    known_hosts: Path | None = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    fail_on: Severity | None = None


__all__ = ["ScanAborted", "ScanOptions", "Target", "TargetError", "checks_for"]

# An offline source's platform: Linux or Windows, known once its files are read.
UNKNOWN_PLATFORM = "unknown"


class Target(Protocol):
    kind: str
    id: str
    platform: str

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        """Gather and judge into `run`; raise ScanAborted when the scan cannot complete."""
        ...


def checks_for(target: Target, selected: Sequence[Check], image_only: bool = False) -> list[Check]:
    """The selected checks that can apply to the target, before it is scanned.

    An AMI's platform and an offline source's OS are known only during the scan, which narrows
    the list then; the image checks need an AMI's attributes.
    """
    if target.kind == "ami":
        return [c for c in selected if c.platform is Platform.IMAGE or not image_only]
    if target.platform == UNKNOWN_PLATFORM:
        return [c for c in selected if c.platform in (Platform.LINUX, Platform.WINDOWS)]
    return [c for c in selected if c.platform.value == target.platform]


def aws_session(options: ScanOptions) -> Any:
    """The boto3 session an AWS target scans with; a usage problem (an unknown region or
    profile, no region) is bad input (exit 2), never a scan that starts."""
    from scanner.aws.errors import AwsError
    from scanner.aws.session import make_session

    try:
        return make_session(options.profile, options.region)
    except AwsError as exc:
        if exc.usage:
            raise TargetError(str(exc)) from None
        raise
