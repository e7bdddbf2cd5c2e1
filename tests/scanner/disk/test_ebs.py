"""scanner.disk.ebs: an EBS snapshot read through the EBS direct APIs, against moto and Stubber.

moto (5.2.1) serves the happy paths: snapshots written with PutSnapshotBlock read back through
ListSnapshotBlocks and GetSnapshotBlock. It reports BlockSize 512 where EBS says 524288 (the
fixture corrects its model), does not paginate, and raises KeyError instead of the API's errors,
so errors, throttling and pagination are played through botocore's Stubber. Nothing sleeps: the
device's sleep is injected.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError, ResponseStreamingError
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws

from scanner.cancel import Cancel, ScanInterrupted
from scanner.disk.device import BlockCache, DiskError
from scanner.disk.ebs import (
    ATTEMPTS,
    EBS_BLOCK_SIZE,
    NO_CLIENT_RETRIES,
    EbsSnapshotDevice,
    require_completed,
)
from tests.aws import REGION, with_ebs_block_size

B = EBS_BLOCK_SIZE
SNAP = "snap-0123456789abcdef0"
TOKEN = "AAAA"


def checksum(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def block(seed: int) -> bytes:
    """A 512 KiB block whose every 32 bytes differ, so an offset mistake shows."""
    head = hashlib.sha256(str(seed).encode()).digest()
    return (head * (B // len(head)))[:B]


def client() -> Any:
    return boto3.client("ebs", region_name=REGION, config=NO_CLIENT_RETRIES)


class Sleeps(list[float]):
    """The device's sleep, recorded instead of slept."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(autouse=True)
def _local_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest gives fake credentials; make sure no endpoint override points anywhere real.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_EBS", raising=False)


# -- moto -------------------------------------------------------------------------------------

WRITTEN = {0: block(0), 3: block(3), 4: block(4), 10: block(10), 11: block(11), 12: block(12)}


@pytest.fixture
def moto_ebs() -> Iterator[Any]:
    with mock_aws():
        yield client()


def put_snapshot(
    ebs: Any, blocks: dict[int, bytes], gib: int = 1, wrong: frozenset[int] = frozenset()
) -> str:
    """A completed snapshot holding `blocks`; those in `wrong` carry a bad checksum (moto
    stores the checksum it is given without checking it)."""
    snapshot_id = str(ebs.start_snapshot(VolumeSize=gib)["SnapshotId"])
    with_ebs_block_size(snapshot_id)
    for index, data in blocks.items():
        digest = checksum(b"other" if index in wrong else data)
        ebs.put_snapshot_block(
            SnapshotId=snapshot_id,
            BlockIndex=index,
            BlockData=data,
            DataLength=len(data),
            Checksum=digest,
            ChecksumAlgorithm="SHA256",
        )
    ebs.complete_snapshot(SnapshotId=snapshot_id, ChangedBlocksCount=len(blocks))
    return snapshot_id


def test_written_blocks_read_back_byte_exact(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), sleep=Sleeps())
    assert device.size == 1024**3
    assert device.volume_blocks == 2048
    assert device.blocks_listed == len(WRITTEN)
    assert device.requests == 1
    for index, data in WRITTEN.items():
        assert device.pread(index * B, B) == data
    assert device.blocks_fetched == len(WRITTEN)
    assert device.bytes_fetched == len(WRITTEN) * B
    assert device.requests == 1 + len(WRITTEN)
    assert (device.retries, device.throttled_retries) == (0, 0)


def test_reads_spanning_blocks(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), sleep=Sleeps())
    # Two written blocks, 3 and 4.
    assert device.pread(4 * B - 100, 300) == WRITTEN[3][-100:] + WRITTEN[4][:200]
    assert (device.blocks_fetched, device.requests) == (2, 3)
    # Written block 4 into unwritten block 5: only block 4 costs a request.
    assert device.pread(5 * B - 10, 30) == WRITTEN[4][-10:] + bytes(20)
    assert (device.blocks_fetched, device.requests, device.zero_blocks_read) == (3, 4, 1)
    # Three written blocks and the unwritten one before them, fetched in parallel.
    start = 9 * B + 7
    got = device.pread(start, 3 * B)
    assert got == (bytes(B) + WRITTEN[10] + WRITTEN[11] + WRITTEN[12])[7 : 7 + 3 * B]
    assert (device.blocks_fetched, device.requests) == (6, 7)


def test_unwritten_blocks_are_zeros_without_a_request(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), sleep=Sleeps())
    assert device.pread(100 * B + 5, 2 * B) == bytes(2 * B)
    assert device.pread(2047 * B, B) == bytes(B)
    assert (device.requests, device.blocks_fetched, device.zero_blocks_read) == (1, 0, 4)


def test_reads_stop_at_the_end(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, {2047: block(7)}), sleep=Sleeps())
    assert device.pread(device.size - 10, 100) == block(7)[-10:]
    assert device.pread(device.size, 5) == b""
    assert device.pread(0, 0) == b""


def test_prefetch_fetches_once_and_is_taken_by_the_next_read(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), sleep=Sleeps())
    device.prefetch([10, 11, 12, 500, 10])
    assert (device.requests, device.blocks_fetched) == (4, 3)
    assert device.pread(10 * B, 3 * B) == WRITTEN[10] + WRITTEN[11] + WRITTEN[12]
    assert device.requests == 4
    # Held until read once: the cache above keeps what is read.
    assert device.pread(10 * B, 1) == WRITTEN[10][:1]
    assert device.requests == 5


def test_concurrent_readers_through_a_cache(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), max_workers=4)
    cache = BlockCache(device)
    errors: list[BaseException] = []

    def read(index: int) -> None:
        try:
            for _ in range(5):
                assert cache.pread(index * B + 1, 10) == WRITTEN[index][1:11]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read, args=(i,)) for i in WRITTEN for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    # Each block at most once per thread that missed it; never more than the readers.
    assert len(WRITTEN) <= device.blocks_fetched <= 2 * len(WRITTEN)
    assert device.requests == 1 + device.blocks_fetched
    device.close()


def test_checksum_mismatch(moto_ebs: Any) -> None:
    snapshot_id = put_snapshot(moto_ebs, WRITTEN, wrong=frozenset({11}))
    device = EbsSnapshotDevice(moto_ebs, snapshot_id, sleep=Sleeps())
    assert device.pread(10 * B, 1) == WRITTEN[10][:1]
    with pytest.raises(DiskError) as caught:
        device.pread(10 * B, 2 * B)
    assert str(caught.value) == f"snapshot {snapshot_id} block 11 failed its SHA-256 checksum"
    # Not retried: the data is wrong, not the connection.
    assert device.retries == 0


def test_stats(moto_ebs: Any) -> None:
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), sleep=Sleeps())
    device.pread(3 * B, 2 * B)
    stats = device.stats()
    assert stats["blocks_listed"] == 6
    assert stats["blocks_fetched"] == 2
    assert stats["bytes_fetched"] == 2 * B
    assert stats["requests"] == 3
    assert stats["summary"] == (
        "fetched 2 of the 2,048 blocks of 512 KiB (1.0 MiB, 0.10% of the 1 GiB volume; "
        "6 hold data) in 3 requests"
    )


def test_cancelled_read_makes_no_request(moto_ebs: Any) -> None:
    cancel = Cancel()
    device = EbsSnapshotDevice(moto_ebs, put_snapshot(moto_ebs, WRITTEN), cancel=cancel)
    cancel.set("SIGINT")
    with pytest.raises(ScanInterrupted):
        device.pread(0, 10)
    assert device.requests == 1


def test_require_completed_against_moto(moto_ebs: Any) -> None:
    snapshot_id = put_snapshot(moto_ebs, WRITTEN)
    ec2 = boto3.client("ec2", region_name=REGION)
    assert require_completed(ec2, snapshot_id)["SnapshotId"] == snapshot_id


# -- Stubber ----------------------------------------------------------------------------------


def listing(
    blocks: dict[int, str], *, volume: int = 1, block_size: int = B, next_token: str | None = None
) -> dict[str, Any]:
    page: dict[str, Any] = {
        "Blocks": [{"BlockIndex": i, "BlockToken": t} for i, t in blocks.items()],
        "VolumeSize": volume,
        "BlockSize": block_size,
    }
    if next_token is not None:
        page["NextToken"] = next_token
    return page


def block_response(data: bytes, *, digest: str | None = None, length: int | None = None) -> Any:
    return {
        "BlockData": StreamingBody(io.BytesIO(data), len(data)),
        "DataLength": len(data) if length is None else length,
        "Checksum": checksum(data) if digest is None else digest,
        "ChecksumAlgorithm": "SHA256",
    }


def get_params(index: int) -> dict[str, Any]:
    return {"SnapshotId": SNAP, "BlockIndex": index, "BlockToken": f"{TOKEN}{index}"}


def list_params(token: str | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"SnapshotId": SNAP, "MaxResults": 10000}
    if token is not None:
        params["NextToken"] = token
    return params


Opened = Callable[..., EbsSnapshotDevice]


@pytest.fixture
def stubbed() -> Iterator[tuple[Stubber, Opened, Sleeps]]:
    """A stubbed client, and a function opening a device on it after listing blocks 0 to 3."""
    ebs = client()
    stubber = Stubber(ebs)
    sleeps = Sleeps()

    def open_device(**kwargs: Any) -> EbsSnapshotDevice:
        return EbsSnapshotDevice(ebs, SNAP, sleep=sleeps, **kwargs)

    with stubber:
        yield stubber, open_device, sleeps
    stubber.assert_no_pending_responses()


def list_four(stubber: Stubber) -> None:
    stubber.add_response(
        "list_snapshot_blocks", listing({i: f"{TOKEN}{i}" for i in range(4)}), list_params()
    )


def test_next_token_pagination(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    stubber.add_response(
        "list_snapshot_blocks", listing({0: "AAAA0", 1: "AAAA1"}, next_token="t1"), list_params()
    )
    # An empty page with a token is legal: the API may return fewer blocks than asked for.
    stubber.add_response("list_snapshot_blocks", listing({}, next_token="t2"), list_params("t1"))
    stubber.add_response("list_snapshot_blocks", listing({2047: "AAAA2047"}), list_params("t2"))
    stubber.add_response("get_snapshot_block", block_response(block(9)), get_params(2047))
    device = open_device()
    assert (device.blocks_listed, device.requests) == (3, 3)
    assert device.pread(2047 * B, B) == block(9)


def test_a_repeated_next_token_ends_the_listing(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    stubber.add_response("list_snapshot_blocks", listing({}, next_token="t1"), list_params())
    stubber.add_response("list_snapshot_blocks", listing({}, next_token="t1"), list_params("t1"))
    with pytest.raises(DiskError, match="same NextToken twice"):
        open_device()


@pytest.mark.parametrize("block_size", [512, 4096, 1048576])
def test_other_block_sizes_are_refused(
    stubbed: tuple[Stubber, Opened, Sleeps], block_size: int
) -> None:
    stubber, open_device, _ = stubbed
    stubber.add_response("list_snapshot_blocks", listing({}, block_size=block_size))
    with pytest.raises(DiskError, match=f"block size {block_size} bytes; only 524288"):
        open_device()


def test_a_block_outside_the_volume_is_refused(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    stubber.add_response("list_snapshot_blocks", listing({2048: "AAAA"}))
    with pytest.raises(DiskError, match="listed block 2048, outside the 1 GiB volume"):
        open_device()


def test_throttling_is_retried(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, sleeps = stubbed
    stubber.add_client_error("list_snapshot_blocks", "RequestThrottledException")
    list_four(stubber)
    for _ in range(2):
        stubber.add_client_error(
            "get_snapshot_block",
            "RequestThrottledException",
            "Rate exceeded",
            modeled_fields={"Reason": "RESOURCE_LEVEL_THROTTLE"},
        )
    stubber.add_response("get_snapshot_block", block_response(block(1)), get_params(1))
    device = open_device()
    assert device.pread(B, B) == block(1)
    assert (device.throttled_retries, device.retries, device.requests) == (3, 3, 5)
    assert len(sleeps) == 3
    assert all(0 <= s <= 8 for s in sleeps)


def test_server_errors_are_retried_but_not_counted_as_throttling(
    stubbed: tuple[Stubber, Opened, Sleeps],
) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    stubber.add_client_error("get_snapshot_block", "InternalServerException", http_status_code=500)
    stubber.add_client_error("get_snapshot_block", "BadGateway", http_status_code=502)
    stubber.add_response("get_snapshot_block", block_response(block(2)), get_params(2))
    device = open_device()
    assert device.pread(2 * B, 4) == block(2)[:4]
    assert (device.retries, device.throttled_retries) == (2, 0)


def test_throttling_gives_up_after_the_attempts(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, sleeps = stubbed
    list_four(stubber)
    for _ in range(ATTEMPTS):
        stubber.add_client_error("get_snapshot_block", "ThrottlingException", "Slow down")
    device = open_device()
    with pytest.raises(DiskError, match=rf"throttled {ATTEMPTS} times in a row"):
        device.pread(0, 1)
    assert len(sleeps) == ATTEMPTS - 1


def test_cancellation_stops_the_retries(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, _, _ = stubbed
    list_four(stubber)
    stubber.add_client_error("get_snapshot_block", "RequestThrottledException")
    cancel = Cancel()
    device = EbsSnapshotDevice(
        stubber.client, SNAP, cancel=cancel, sleep=lambda _: cancel.set("SIGTERM")
    )
    with pytest.raises(ScanInterrupted):
        device.pread(0, 1)
    assert device.requests == 2


@pytest.mark.parametrize(
    ("operation", "code", "reason", "message", "expected"),
    [
        (
            "get_snapshot_block",
            "AccessDeniedException",
            "UNAUTHORIZED_ACCOUNT",
            "User is not authorized",
            r"access denied for ebs:GetSnapshotBlock .*ebs:ListSnapshotBlocks and "
            r"ebs:GetSnapshotBlock.*AWS Marketplace-owned snapshots cannot be read",
        ),
        (
            "list_snapshot_blocks",
            "AccessDeniedException",
            "UNAUTHORIZED_ACCOUNT",
            "",
            r"access denied for ebs:ListSnapshotBlocks \(AccessDeniedException\)",
        ),
        (
            "get_snapshot_block",
            "AccessDeniedException",
            "DEPENDENCY_ACCESS_DENIED",
            "Access denied to KMS key arn:aws:kms:us-east-1:123456789012:key/abc",
            r"KMS key that encrypts it was denied .*arn:aws:kms.*kms:Decrypt",
        ),
        (
            "list_snapshot_blocks",
            "ResourceNotFoundException",
            "SNAPSHOT_NOT_FOUND",
            "The snapshot does not exist",
            r"snapshot snap-0123456789abcdef0 not found, or not completed yet",
        ),
        (
            "list_snapshot_blocks",
            "ResourceNotFoundException",
            "SNAPSHOT_NOT_FOUND",
            "The snapshot 'snap-0123456789abcdef0' is pending",
            r"^snapshot snap-0123456789abcdef0 is not completed; EBS direct APIs read only",
        ),
        (
            "list_snapshot_blocks",
            "ValidationException",
            "INVALID_SNAPSHOT_ID",
            "Snapshot id is invalid",
            r"ebs:ListSnapshotBlocks was rejected \(ValidationException, INVALID_SNAPSHOT_ID: "
            r"Snapshot id is invalid\)",
        ),
        (
            "get_snapshot_block",
            "ValidationException",
            "INVALID_BLOCK_TOKEN",
            "The block token is invalid",
            r"its block tokens expired",
        ),
        (
            "get_snapshot_block",
            "KMSInvalidStateException",
            None,
            "KMS key is disabled",
            r"its KMS key could not be used \(KMSInvalidStateException: KMS key is disabled\)",
        ),
    ],
)
def test_errors_are_one_line(
    stubbed: tuple[Stubber, Opened, Sleeps],
    operation: str,
    code: str,
    reason: str | None,
    message: str,
    expected: str,
) -> None:
    stubber, open_device, sleeps = stubbed
    fields = {"Reason": reason} if reason else None
    if operation == "get_snapshot_block":
        list_four(stubber)
    stubber.add_client_error(operation, code, message, modeled_fields=fields)
    with pytest.raises(DiskError) as caught:
        open_device().pread(0, 1)
    text = str(caught.value)
    assert "\n" not in text
    assert re.search(expected, text), text
    # None of these is retried: waiting changes nothing.
    assert not sleeps


def test_a_body_longer_than_a_block(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    stubber.add_response("get_snapshot_block", block_response(block(1) + b"x"))
    with pytest.raises(DiskError, match="block 1 is longer than 524288 bytes"):
        open_device().pread(B, 1)


def test_a_body_shorter_than_announced(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    stubber.add_response("get_snapshot_block", block_response(b"abc", length=B))
    with pytest.raises(DiskError, match=f"block 1 has 3 bytes where {B} were announced"):
        open_device().pread(B, 1)


def test_a_missing_checksum(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    response = block_response(block(1))
    del response["Checksum"]
    stubber.add_response("get_snapshot_block", response)
    with pytest.raises(DiskError, match="block 1 came without a SHA-256 checksum"):
        open_device().pread(B, 1)


def test_a_garbled_checksum(stubbed: tuple[Stubber, Opened, Sleeps]) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    stubber.add_response("get_snapshot_block", block_response(block(1), digest="not base64!"))
    with pytest.raises(DiskError, match="block 1 failed its SHA-256 checksum"):
        open_device().pread(B, 1)


class FlakyBody:
    """A body whose first read fails as a reset connection would."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.closed = False

    def read(self, amount: int = -1) -> bytes:
        raise ResponseStreamingError(error="connection reset by peer")

    def close(self) -> None:
        self.closed = True


def test_connection_failures_and_cut_bodies_are_retried(
    stubbed: tuple[Stubber, Opened, Sleeps], monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber, open_device, sleeps = stubbed
    list_four(stubber)
    device = open_device()
    flaky = FlakyBody(block(3))
    outcomes: list[Any] = [
        EndpointConnectionError(endpoint_url="https://ebs.us-east-1.amazonaws.com"),
        dict(block_response(block(3)), BlockData=flaky),
        block_response(block(3)),
    ]

    def get_snapshot_block(**kwargs: Any) -> Any:
        assert kwargs == get_params(3)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    monkeypatch.setattr(stubber.client, "get_snapshot_block", get_snapshot_block)
    assert device.pread(3 * B, B) == block(3)
    assert flaky.closed
    assert (device.retries, device.throttled_retries, device.requests) == (2, 0, 4)
    assert len(sleeps) == 2


def test_an_unreachable_endpoint(
    stubbed: tuple[Stubber, Opened, Sleeps], monkeypatch: pytest.MonkeyPatch
) -> None:
    stubber, open_device, _ = stubbed
    list_four(stubber)
    device = open_device()

    def unreachable(**kwargs: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://ebs.example.invalid")

    monkeypatch.setattr(stubber.client, "get_snapshot_block", unreachable)
    with pytest.raises(DiskError, match=r"cannot reach the EBS endpoint \(https://ebs.example"):
        device.pread(0, 1)
    assert device.requests == 1 + ATTEMPTS


def test_a_retrying_client_gets_fewer_attempts() -> None:
    retrying = boto3.client(
        "ebs", region_name=REGION, config=Config(retries={"mode": "standard", "max_attempts": 5})
    )
    with Stubber(retrying) as stubber:
        stubber.add_response("list_snapshot_blocks", listing({}))
        device = EbsSnapshotDevice(retrying, SNAP, max_workers=64)
    # 6 attempts by the client: the device keeps 2, so 12 requests at most, not 36.
    assert device._attempts == 2
    # Never more workers than pooled connections (botocore's default pool is 10).
    assert device._workers == 10
    with Stubber(client()) as stubber:
        stubber.add_response("list_snapshot_blocks", listing({}))
        assert EbsSnapshotDevice(stubber.client, SNAP)._attempts == ATTEMPTS


# -- require_completed ------------------------------------------------------------------------


def test_a_pending_snapshot_is_refused() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    with Stubber(ec2) as stubber:
        stubber.add_response(
            "describe_snapshots",
            {"Snapshots": [{"SnapshotId": SNAP, "State": "pending", "Progress": "43%"}]},
            {"SnapshotIds": [SNAP]},
        )
        with pytest.raises(DiskError) as caught:
            require_completed(ec2, SNAP)
    assert str(caught.value) == (
        f"snapshot {SNAP} is pending (43%); EBS direct APIs read only completed snapshots"
    )


def test_a_missing_snapshot_is_refused() -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    with Stubber(ec2) as stubber:
        stubber.add_client_error("describe_snapshots", "InvalidSnapshot.NotFound", "gone")
        with pytest.raises(DiskError, match=f"snapshot {SNAP} not found in this region"):
            require_completed(ec2, SNAP)
        stubber.add_client_error("describe_snapshots", "UnauthorizedOperation", "no")
        with pytest.raises(DiskError, match=r"access denied for ec2:DescribeSnapshots"):
            require_completed(ec2, SNAP)
