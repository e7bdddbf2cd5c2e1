"""`snapshot:snap-…` against moto's EBS direct API, with AWS's faults injected where moto has
none: each a one-line reason and exit 3, never a traceback, and throttling survived."""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from moto.ec2.models import ec2_backends

from scanner.cancel import Cancel
from scanner.model import Report, Verdict
from scanner.orchestrate import scan_one
from scanner.registry import load_checks
from scanner.targets import resolve_target, snapshot
from scanner.targets.base import ScanOptions, TargetError
from tests.aws import ACCOUNT, REGION
from tests.diskimages import EBS_BLOCK, make_ext4, make_gpt_disk, upload_snapshot
from tests.imagetree import build_compliant
from tests.verdicts import assert_one_line_error


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield


@pytest.fixture
def ebs(aws: None) -> Any:
    return boto3.client("ebs", region_name=REGION)


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    root = build_compliant(tmp_path / "root").root
    return make_gpt_disk(make_ext4(root, tmp_path / "root.ext4"), tmp_path / "disk.img")


Handler = Callable[..., Any]


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> dict[str, Handler]:
    """Operation name → handler registered before each call on the target's EBS client."""
    registered: dict[str, Handler] = {}

    def wrap(real: Callable[[Any], Any], session: Any) -> Any:
        client = real(session)
        for operation, handler in registered.items():
            client.meta.events.register(f"before-call.ebs.{operation}", handler)
        return client

    monkeypatch.setattr(snapshot, "ebs_client", functools.partial(wrap, snapshot.ebs_client))
    return registered


def error(code: str, message: str, status: int = 400) -> Handler:
    def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        return AWSResponse(None, status, {}, None), {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }

    return answer


def scan(snapshot_id: str) -> Report:
    options = ScanOptions(region=REGION, known_hosts=None)
    target = resolve_target(f"snapshot:{snapshot_id}", options)
    checks = [c for c in load_checks().values() if c.platform.value == "linux"]
    return scan_one(target, checks, options, Cancel(), lambda _: None).report


def test_a_malformed_snapshot_id_is_bad_input(aws: None) -> None:
    with pytest.raises(TargetError, match="is not a snapshot id"):
        resolve_target("snapshot:snap-xyz", ScanOptions(region=REGION))


def test_a_snapshot_is_judged_reading_only_the_blocks_it_needs(ebs: Any, disk: Path) -> None:
    snapshot_id = upload_snapshot(ebs, disk)
    report = scan(snapshot_id)
    assert report.verdict is Verdict.PASS
    read = report.target.details["read"]
    assert read.startswith(f"{snapshot_id}: fetched ")
    assert "% of the 1 GiB volume" in read
    assert report.target.details["contents"].startswith("a Linux root")


def test_throttling_is_retried_and_the_scan_completes(
    ebs: Any, disk: Path, hooks: dict[str, Handler]
) -> None:
    snapshot_id = upload_snapshot(ebs, disk)
    throttled = {"left": 2}

    def throttle(**kwargs: Any) -> Any:
        if throttled["left"]:
            throttled["left"] -= 1
            return error("RequestThrottledException", "Rate exceeded")(**kwargs)
        return None

    hooks["GetSnapshotBlock"] = throttle
    report = scan(snapshot_id)
    assert throttled["left"] == 0
    assert report.verdict is Verdict.PASS


@pytest.mark.parametrize(
    ("operation", "code", "message", "fragments"),
    [
        (
            "ListSnapshotBlocks",
            "AccessDeniedException",
            "User is not authorized to perform: ebs:ListSnapshotBlocks",
            ("ebs:ListSnapshotBlocks", "Marketplace"),
        ),
        (
            "GetSnapshotBlock",
            "AccessDeniedException",
            "User is not authorized to perform: ebs:GetSnapshotBlock",
            ("ebs:GetSnapshotBlock",),
        ),
        (
            "ListSnapshotBlocks",
            "ResourceNotFoundException",
            "The snapshot does not exist",
            ("not found",),
        ),
    ],
)
def test_aws_refusals_are_one_line_and_exit_3(
    ebs: Any,
    disk: Path,
    hooks: dict[str, Handler],
    operation: str,
    code: str,
    message: str,
    fragments: tuple[str, ...],
) -> None:
    snapshot_id = upload_snapshot(ebs, disk)
    hooks[operation] = error(code, message)
    assert_one_line_error(scan(snapshot_id), snapshot_id, *fragments)


def test_a_block_that_fails_its_checksum_is_never_judged(ebs: Any, disk: Path) -> None:
    snapshot_id = upload_snapshot(ebs, disk)
    # Block 0 holds the partition table; store it with a checksum of other bytes.
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    with disk.open("rb") as handle:
        block = handle.read(EBS_BLOCK)
    ebs.put_snapshot_block(
        SnapshotId=snapshot_id,
        BlockIndex=0,
        BlockData=block,
        DataLength=EBS_BLOCK,
        Checksum=wrong,
        ChecksumAlgorithm="SHA256",
    )
    assert_one_line_error(scan(snapshot_id), "SHA-256")


def test_a_snapshot_that_is_not_completed_says_so(ebs: Any, disk: Path) -> None:
    snapshot_id = upload_snapshot(ebs, disk)
    model = ec2_backends[ACCOUNT][REGION].snapshots[snapshot_id]
    model.status = "pending"
    assert_one_line_error(scan(snapshot_id), "pending", "completed")


def test_a_snapshot_that_does_not_exist_is_named(aws: None) -> None:
    assert_one_line_error(scan("snap-0123456789abcdef0"), "snap-0123456789abcdef0", "not found")
