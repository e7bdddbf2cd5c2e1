"""`snapshot:snap-…`: an EBS snapshot read through the EBS direct APIs; nothing is launched.

Only the blocks the checks need are fetched (tens of 512 KiB blocks for a typical root), each
verified against its SHA-256 checksum.
"""

from __future__ import annotations

import re

from boto3.session import Session

from scanner.aws.session import ebs_client, ec2_client
from scanner.disk.device import BlockCache, DiskError
from scanner.disk.ebs import EbsSnapshotDevice, require_completed
from scanner.errors import ScanAborted
from scanner.facts.base import Mode, ScanContext
from scanner.run import ScanRun
from scanner.targets.base import UNKNOWN_PLATFORM, ScanOptions, TargetError, aws_session
from scanner.targets.disk import judge_disks

_SNAPSHOT_ID = re.compile(r"^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$")


def is_snapshot_id(text: str) -> bool:
    return bool(_SNAPSHOT_ID.match(text))


class SnapshotTarget:
    kind = "snapshot"
    # Linux or Windows: known once the volumes are read.
    platform = UNKNOWN_PLATFORM

    def __init__(self, snapshot_id: str, options: ScanOptions) -> None:
        if not is_snapshot_id(snapshot_id):
            raise TargetError(
                f"{snapshot_id!r} is not a snapshot id (snap- followed by 8 or 17 hex digits)"
            )
        self.session = aws_session(options)
        self.snapshot_id = snapshot_id
        self.id = f"snapshot:{snapshot_id}"
        self.region = str(self.session.region_name)

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        run.details.update(
            {
                "snapshot_id": self.snapshot_id,
                "region": self.region,
                "mode": "offline (EBS direct APIs; files only, no commands)",
            }
        )
        context = ScanContext(
            mode=Mode.OFFLINE,
            target_kind=self.kind,
            baseline_login_user=options.baseline_login_user,
            scan_date=options.scan_date,
        )
        judge_snapshots(run, self.session, [(self.snapshot_id, "")], context)


def judge_snapshots(
    run: ScanRun, session: Session, snapshots: list[tuple[str, str]], context: ScanContext
) -> None:
    """Judge the offline checks from EBS snapshots: (snapshot id, the device name an AMI's
    block device mapping gives it, or ""), the boot disk's first. What was fetched goes into
    the report's `read` whatever happens; ScanAborted when a snapshot cannot be read."""
    devices = _open_snapshots(run, [snapshot for snapshot, _ in snapshots], session)
    try:
        judge_disks(
            run,
            list(devices),
            context,
            f"snapshot {snapshots[0][0]}",
            [device for _, device in snapshots],
        )
    finally:
        run.details["read"] = _figures(devices)
        _close_all(devices)


def _open_snapshots(run: ScanRun, snapshot_ids: list[str], session: Session) -> list[BlockCache]:
    """Each snapshot as a cached block device; ScanAborted with the reason when one is unreadable."""
    ec2 = ec2_client(session)
    ebs = ebs_client(session)
    devices: list[BlockCache] = []
    with run.phase("listed", "Listing the snapshot's blocks"):
        try:
            for snapshot_id in snapshot_ids:
                require_completed(ec2, snapshot_id)
                devices.append(BlockCache(EbsSnapshotDevice(ebs, snapshot_id, cancel=run.cancel)))
        except DiskError as exc:
            _close_all(devices)
            raise ScanAborted(str(exc)) from None
        except BaseException:
            _close_all(devices)
            raise
    return devices


def _close_all(devices: list[BlockCache]) -> None:
    """Stop the snapshots' fetch threads."""
    for cache in devices:
        if isinstance(cache.device, EbsSnapshotDevice):
            cache.device.close()


def _figures(devices: list[BlockCache]) -> str:
    """Blocks and bytes fetched through the EBS direct APIs, for the report."""
    parts = []
    for cache in devices:
        device = cache.device
        if isinstance(device, EbsSnapshotDevice):
            parts.append(f"{device.snapshot_id}: {device.stats()['summary']}")
    return "; ".join(parts)
