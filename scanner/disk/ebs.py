"""An EBS snapshot as a `BlockDevice`, read block by block through the EBS direct APIs.

No volume is created and no instance runs: ListSnapshotBlocks gives the token of every block the
snapshot holds, GetSnapshotBlock returns one 512 KiB block with its SHA-256, and a block that was
never written reads as zeros without a request. A scan touches tens of blocks of a volume of
thousands, so this costs seconds and cents where restoring a volume costs minutes.

Only completed snapshots can be read this way, and not public or AWS Marketplace-owned ones:
the EBS direct APIs refuse those.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import math
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from scanner.aws.errors import describe
from scanner.cancel import NEVER, Cancel
from scanner.disk.device import CACHE_BLOCK, DiskError

T = TypeVar("T")

# The EBS direct APIs' one block size. The cache above reads in blocks of the same size, so one
# cache miss is one GetSnapshotBlock.
EBS_BLOCK_SIZE = 524288
assert CACHE_BLOCK == EBS_BLOCK_SIZE
_GIB = 1024**3
# The API's maximum: a 8 GiB volume lists in two requests, against a quota of 50 per second.
LIST_MAX_RESULTS = 10000
# GetSnapshotBlock allows 1,000 requests/s per snapshot; a handful of parallel requests already
# saturates one scan's needs, and more would only get throttled when several scans share an
# account.
DEFAULT_WORKERS = 8
MAX_WORKERS = 64
# Blocks fetched by `prefetch` and not yet read: 64 blocks of 512 KiB = 32 MiB at most.
PREFETCH_BLOCKS = 64

# Our retry loop: 6 attempts, full-jitter exponential backoff from 0.25 s, each sleep at most
# 8 s: a request that keeps failing gives up after under 8 s of sleeping.
ATTEMPTS = 6
BACKOFF_BASE = 0.25
BACKOFF_CAP = 8.0

# The device retries on its own (counting, cancellable, and covering the body read, which
# botocore never retries), so its client had best not retry as well: the two multiply. Clients
# that do retry get fewer attempts from the device (see `_client_attempts`). Merge this into
# the client's Config.
NO_CLIENT_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})

_THROTTLING_CODES = frozenset(
    {
        "RequestThrottledException",
        "ThrottlingException",
        "Throttling",
        "TooManyRequestsException",
        # DEPENDENCY_SERVICE_QUOTA_EXCEEDED: KMS's request rate, shared by the account.
        "ServiceQuotaExceededException",
    }
)
_SERVER_CODES = frozenset({"InternalServerException", "InternalFailure", "ServiceUnavailable"})
# Connection failures, timeouts, and a body cut short: none says anything about the snapshot.
_TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
)
_KMS_WORDS = ("kms", "decrypt", "customer key", "cmk")


def require_completed(ec2_client: Any, snapshot_id: str) -> dict[str, Any]:
    """The snapshot as DescribeSnapshots has it, once it is `completed`; DiskError otherwise.

    The EBS direct APIs read only completed snapshots, and what they answer for a pending one
    says less than this does (the state and its progress).
    """
    try:
        response = ec2_client.describe_snapshots(SnapshotIds=[snapshot_id])
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in {"InvalidSnapshot.NotFound", "InvalidSnapshotID.Malformed"}:
            raise DiskError(
                f"snapshot {snapshot_id} not found in this region and account ({code})"
            ) from None
        raise DiskError(str(describe(exc, f"describing snapshot {snapshot_id}"))) from None
    except BotoCoreError as exc:
        raise DiskError(str(describe(exc, f"describing snapshot {snapshot_id}"))) from None
    snapshots = response.get("Snapshots") or []
    if not snapshots:
        raise DiskError(f"snapshot {snapshot_id} not found in this region and account")
    snapshot: dict[str, Any] = snapshots[0]
    state = str(snapshot.get("State", "unknown"))
    if state != "completed":
        progress = snapshot.get("Progress")
        detail = f" ({progress})" if progress else ""
        message = snapshot.get("StateMessage")
        why = f": {message}" if message else ""
        raise DiskError(
            f"snapshot {snapshot_id} is {state}{detail}{why}; EBS direct APIs read only "
            "completed snapshots"
        )
    return snapshot


def _client_attempts(client: Any) -> int:
    """How many attempts the client itself makes per call (botocore normalises the setting to
    total_max_attempts; without it, legacy mode's default is 5 and standard mode's 3)."""
    retries = getattr(getattr(getattr(client, "meta", None), "config", None), "retries", None)
    if not isinstance(retries, dict):
        return 1
    total = retries.get("total_max_attempts")
    if isinstance(total, int):
        return max(1, total)
    return 5 if retries.get("mode", "legacy") == "legacy" else 3


def _client_pool(client: Any) -> int:
    """The client's connection pool size (botocore's default is 10)."""
    config = getattr(getattr(client, "meta", None), "config", None)
    pool = getattr(config, "max_pool_connections", None)
    return pool if isinstance(pool, int) and pool > 0 else MAX_WORKERS


def _full_jitter(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based): full jitter, so parallel
    workers throttled together do not retry together."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))  # noqa: S311


class _Retry(Exception):
    """A retryable failure of one attempt; `throttled` tells the counters which kind."""

    def __init__(self, cause: BaseException, throttled: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.throttled = throttled


class EbsSnapshotDevice:
    """A completed EBS snapshot read through the EBS direct APIs; any thread may read.

    Opening lists every block (one request per 10,000 blocks). `pread` fetches the blocks it
    covers in parallel, verifies each against its SHA-256, and reads unlisted blocks as zeros.
    Nothing is cached but what `prefetch` fetched ahead (until read once): put a `BlockCache`
    on top.

    The device does the retrying: give it a client configured with `NO_CLIENT_RETRIES`. A client
    that retries on its own gets fewer attempts from the device, so the product stays bounded.
    """

    def __init__(
        self,
        ebs_client: Any,
        snapshot_id: str,
        *,
        cancel: Cancel = NEVER,
        max_workers: int = DEFAULT_WORKERS,
        attempts: int = ATTEMPTS,
        sleep: Callable[[float], None] | None = None,
        backoff: Callable[[int], float] = _full_jitter,
    ) -> None:
        self.snapshot_id = snapshot_id
        self.description = f"EBS snapshot {snapshot_id}"
        self._client = ebs_client
        self._cancel = cancel
        # More workers than pooled connections would only churn connections.
        self._workers = max(1, min(max_workers, MAX_WORKERS, _client_pool(ebs_client)))
        client_attempts = _client_attempts(ebs_client)
        # A retrying client multiplies our attempts: keep at least one retry of our own (for
        # the body read, which botocore never retries) but no more than the budget.
        self._attempts = (
            max(1, attempts)
            if client_attempts <= 1
            else max(2, math.ceil(attempts / client_attempts))
        )
        self._sleep = sleep if sleep is not None else cancel.sleep
        self._backoff = backoff
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._prefetched: OrderedDict[int, bytes] = OrderedDict()
        self._inflight: dict[int, Future[bytes]] = {}

        self.blocks_fetched = 0
        self.bytes_fetched = 0
        self.requests = 0
        self.retries = 0
        self.throttled_retries = 0
        self.zero_blocks_read = 0

        self._tokens: dict[int, str] = {}
        self.volume_size_gib = 0
        self._list_blocks()
        self.size = self.volume_size_gib * _GIB
        self.volume_blocks = self.size // EBS_BLOCK_SIZE
        self.blocks_listed = len(self._tokens)

    # -- listing --------------------------------------------------------------------------

    def _list_blocks(self) -> None:
        """Every block's token, looping on NextToken (botocore has no paginator for it)."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            kwargs: dict[str, Any] = {
                "SnapshotId": self.snapshot_id,
                "MaxResults": LIST_MAX_RESULTS,
            }
            if token is not None:
                kwargs["NextToken"] = token
            page = self._with_retries(
                "ebs:ListSnapshotBlocks",
                functools.partial(self._request, "list_snapshot_blocks", kwargs),
            )
            self._take_page(page)
            next_token = page.get("NextToken")
            if not next_token:
                return
            # A token that comes round again would loop forever (a service bug, or a proxy).
            if next_token in seen:
                raise DiskError(
                    f"{self.description}: ListSnapshotBlocks returned the same NextToken twice"
                )
            seen.add(next_token)
            token = str(next_token)

    def _take_page(self, page: dict[str, Any]) -> None:
        block_size = page.get("BlockSize")
        if block_size != EBS_BLOCK_SIZE:
            raise DiskError(
                f"{self.description}: block size {block_size!r} bytes; only {EBS_BLOCK_SIZE} "
                "(512 KiB) blocks can be read"
            )
        volume_size = page.get("VolumeSize")
        if not isinstance(volume_size, int) or volume_size <= 0:
            raise DiskError(f"{self.description}: ListSnapshotBlocks gave no volume size")
        if self.volume_size_gib and volume_size != self.volume_size_gib:
            raise DiskError(
                f"{self.description}: the volume size changed between pages "
                f"({self.volume_size_gib} GiB, then {volume_size} GiB)"
            )
        self.volume_size_gib = volume_size
        limit = volume_size * (_GIB // EBS_BLOCK_SIZE)
        for block in page.get("Blocks") or []:
            index = block.get("BlockIndex")
            token = block.get("BlockToken")
            if not isinstance(index, int) or not 0 <= index < limit or not token:
                raise DiskError(
                    f"{self.description}: ListSnapshotBlocks listed block {index!r}, outside "
                    f"the {volume_size} GiB volume or without a token"
                )
            self._tokens[index] = str(token)

    # -- requests and retries -------------------------------------------------------------

    def _request(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """One call, counting the HTTP requests it made (the client's own retries included)."""
        try:
            response: dict[str, Any] = getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            self._count_requests(exc.response)
            raise
        except BotoCoreError:
            self._count_requests({})
            raise
        self._count_requests(response)
        return response

    def _count_requests(self, response: Mapping[str, Any]) -> None:
        made = 1 + int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0)
        with self._lock:
            self.requests += made

    def _with_retries(self, action: str, attempt_once: Callable[[], T]) -> T:
        """`attempt_once()` until it succeeds, fails for good, or the attempts run out;
        throttling, 5xx and connection failures are retried with backoff, the rest is a
        DiskError at once. Cancellation is checked before every attempt."""
        attempt = 0
        while True:
            attempt += 1
            self._cancel.check()
            try:
                try:
                    return attempt_once()
                except ClientError as exc:
                    throttled = _error_code(exc) in _THROTTLING_CODES
                    if not throttled and not _is_server_error(exc):
                        raise self._client_error(exc, action) from None
                    raise _Retry(exc, throttled) from None
                except _TRANSIENT_ERRORS as exc:
                    raise _Retry(exc, throttled=False) from None
                except BotoCoreError as exc:
                    raise DiskError(
                        f"{self.description}: {describe(exc, f'calling {action}')}"
                    ) from None
            except _Retry as failure:
                if attempt >= self._attempts:
                    raise self._gave_up(failure.cause, action, attempt) from None
                with self._lock:
                    self.retries += 1
                    if failure.throttled:
                        self.throttled_retries += 1
                self._sleep(self._backoff(attempt))

    def _gave_up(self, cause: BaseException, action: str, attempts: int) -> DiskError:
        if isinstance(cause, ClientError):
            code = _error_code(cause)
            kind = "throttled" if code in _THROTTLING_CODES else "failed"
            return DiskError(
                f"{self.description}: {action} {kind} {attempts} times in a row "
                f"({code}: {_error_message(cause)}); try again later"
            )
        if isinstance(cause, EndpointConnectionError):
            return DiskError(
                f"{self.description}: cannot reach the EBS endpoint "
                f"({cause.kwargs.get('endpoint_url', '?')}) after {attempts} attempts; check the "
                "network, and AWS_ENDPOINT_URL if it is set"
            )
        return DiskError(f"{self.description}: {action} failed {attempts} times in a row: {cause}")

    def _client_error(self, exc: ClientError, action: str) -> DiskError:
        """The one line a person can act on, for an error that retrying will not fix."""
        code = _error_code(exc)
        reason = str(
            exc.response.get("Reason", "") or exc.response.get("Error", {}).get("Reason", "")
        )
        message = _error_message(exc)
        said = f" ({code}{', ' + reason if reason else ''}: {message})" if message else f" ({code})"
        name = f"snapshot {self.snapshot_id}"
        if _mentions_pending(message):
            return DiskError(
                f"{name} is not completed; EBS direct APIs read only completed snapshots{said}"
            )
        if code == "AccessDeniedException":
            if reason == "DEPENDENCY_ACCESS_DENIED" or _mentions_kms(message):
                return DiskError(
                    f"{name}: access to the KMS key that encrypts it was denied{said}; the "
                    "credentials need kms:Decrypt on that key"
                )
            return DiskError(
                f"{name}: access denied for {action}{said}; the credentials need "
                "ebs:ListSnapshotBlocks and ebs:GetSnapshotBlock on it, and public or AWS "
                "Marketplace-owned snapshots cannot be read with EBS direct APIs at all"
            )
        if code == "ResourceNotFoundException":
            if reason == "DEPENDENCY_RESOURCE_NOT_FOUND" or _mentions_kms(message):
                return DiskError(f"{name}: the KMS key that encrypts it was not found{said}")
            return DiskError(
                f"{name} not found, or not completed yet, in this region and account{said}"
            )
        if code == "ValidationException":
            if reason == "INVALID_BLOCK_TOKEN":
                # Tokens are valid for seven days: only a device kept open that long sees this.
                return DiskError(f"{name}: its block tokens expired; open it again{said}")
            return DiskError(f"{name}: {action} was rejected{said}")
        if _mentions_kms(message):
            return DiskError(f"{name}: its KMS key could not be used{said}")
        return DiskError(f"{self.description}: {describe(exc, f'calling {action}')}")

    # -- blocks ---------------------------------------------------------------------------

    def _fetch(self, index: int) -> bytes:
        """Block `index`, verified, padded to a whole block."""
        token = self._tokens[index]
        data = self._with_retries("ebs:GetSnapshotBlock", lambda: self._fetch_once(index, token))
        with self._lock:
            self.blocks_fetched += 1
            self.bytes_fetched += len(data)
        return data.ljust(EBS_BLOCK_SIZE, b"\0")

    def _fetch_once(self, index: int, token: str) -> bytes:
        response = self._request(
            "get_snapshot_block",
            {"SnapshotId": self.snapshot_id, "BlockIndex": index, "BlockToken": token},
        )
        body = response["BlockData"]
        try:
            # One byte more than a block: a longer body is an error, not something to buffer.
            data = _read_at_most(body, EBS_BLOCK_SIZE + 1)
        finally:
            body.close()
        where = f"{self.description}: block {index}"
        if len(data) > EBS_BLOCK_SIZE:
            raise DiskError(f"{where} is longer than {EBS_BLOCK_SIZE} bytes")
        declared = response.get("DataLength")
        if declared is not None and declared != len(data):
            raise DiskError(f"{where} has {len(data)} bytes where {declared} were announced")
        algorithm = response.get("ChecksumAlgorithm")
        checksum = response.get("Checksum")
        if algorithm != "SHA256" or not checksum:
            raise DiskError(f"{where} came without a SHA-256 checksum ({algorithm!r})")
        try:
            expected = base64.b64decode(str(checksum), validate=True)
        except binascii.Error:
            expected = b""
        if hashlib.sha256(data).digest() != expected:
            raise DiskError(
                f"snapshot {self.snapshot_id} block {index} failed its SHA-256 checksum"
            )
        return data

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self._workers, thread_name_prefix=f"ebs-{self.snapshot_id}"
                )
            return self._executor

    def _start(self, index: int) -> Future[bytes]:
        """A future for block `index`: an in-flight fetch is shared, not repeated."""
        with self._lock:
            future = self._inflight.get(index)
            if future is not None:
                return future
        pool = self._pool()
        with self._lock:
            future = self._inflight.get(index)
            if future is None:
                future = pool.submit(self._fetch, index)
                self._inflight[index] = future
                future.add_done_callback(functools.partial(self._finished, index))
            return future

    def _finished(self, index: int, future: Future[bytes]) -> None:
        with self._lock:
            if self._inflight.get(index) is future:
                del self._inflight[index]

    def _blocks(self, indexes: Sequence[int]) -> dict[int, bytes]:
        """The listed blocks among `indexes`, fetched in parallel (a prefetched one is taken)."""
        found: dict[int, bytes] = {}
        wanted: list[int] = []
        with self._lock:
            for index in indexes:
                data = self._prefetched.pop(index, None)
                if data is not None:
                    found[index] = data
                elif index in self._tokens:
                    wanted.append(index)
        if len(wanted) == 1 and wanted[0] not in self._inflight:
            # One block: no thread hop.
            found[wanted[0]] = self._fetch(wanted[0])
            return found
        futures = {index: self._start(index) for index in wanted}
        # The first failure ends the read; the other fetches are not cancelled, as another
        # reader may be waiting on them, and they stop at their next attempt on cancellation.
        done, _ = wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                raise error
        for index, future in futures.items():
            found[index] = future.result()
        return found

    def pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length == 0 or offset < 0:
            return b""
        first = offset // EBS_BLOCK_SIZE
        last = (offset + length - 1) // EBS_BLOCK_SIZE
        indexes = range(first, last + 1)
        blocks = self._blocks(indexes)
        zero = bytes(EBS_BLOCK_SIZE)
        parts: list[bytes] = []
        for index in indexes:
            block = blocks.get(index)
            if block is None:
                with self._lock:
                    self.zero_blocks_read += 1
                block = zero
            start = offset - index * EBS_BLOCK_SIZE if index == first else 0
            end = offset + length - index * EBS_BLOCK_SIZE if index == last else EBS_BLOCK_SIZE
            parts.append(block[start:end])
        return b"".join(parts)

    def prefetch(self, block_indexes: Iterable[int]) -> None:
        """Fetch these blocks now, in parallel, and hold them (at most PREFETCH_BLOCKS) until a
        `pread` takes them. Unlisted, held and out-of-range blocks cost nothing."""
        with self._lock:
            wanted = sorted(
                {
                    index
                    for index in block_indexes
                    if index in self._tokens and index not in self._prefetched
                }
            )[:PREFETCH_BLOCKS]
        if not wanted:
            return
        futures = {index: self._start(index) for index in wanted}
        wait(futures.values())
        with self._lock:
            for index, future in futures.items():
                # A failure is left for the pread that needs the block to report.
                if future.cancelled() or future.exception() is not None:
                    continue
                self._prefetched[index] = future.result()
                self._prefetched.move_to_end(index)
            while len(self._prefetched) > PREFETCH_BLOCKS:
                self._prefetched.popitem(last=False)

    # -- reporting and lifetime -----------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The counters, and `summary`: "fetched 21 of the 16,384 blocks of 512 KiB (10.5 MiB,
        0.13% of the 8 GiB volume; 1,064 hold data) in 23 requests"."""
        with self._lock:
            fetched = self.blocks_fetched
            stats: dict[str, Any] = {
                "snapshot_id": self.snapshot_id,
                "volume_size_gib": self.volume_size_gib,
                "volume_blocks": self.volume_blocks,
                "blocks_listed": self.blocks_listed,
                "blocks_fetched": fetched,
                "bytes_fetched": self.bytes_fetched,
                "zero_blocks_read": self.zero_blocks_read,
                "requests": self.requests,
                "retries": self.retries,
                "throttled_retries": self.throttled_retries,
            }
            mib = self.bytes_fetched / 2**20
        share = 100 * fetched / self.volume_blocks if self.volume_blocks else 0.0
        retried = f"; {self.retries} retried" if self.retries else ""
        stats["summary"] = (
            f"fetched {fetched:,} of the {self.volume_blocks:,} blocks of 512 KiB "
            f"({mib:,.1f} MiB, {share:.2f}% of the {self.volume_size_gib} GiB volume; "
            f"{self.blocks_listed:,} hold data) in {self.requests:,} requests{retried}"
        )
        return stats

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
            self._prefetched.clear()
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> EbsSnapshotDevice:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_at_most(body: Any, limit: int) -> bytes:
    """Up to `limit` bytes of a streaming body; a read may return less than asked for."""
    chunks: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = body.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_message(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return str(error.get("Message", "") or exc.response.get("Message", "")).strip()


def _is_server_error(exc: ClientError) -> bool:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return _error_code(exc) in _SERVER_CODES or (isinstance(status, int) and status >= 500)


def _mentions_kms(message: str) -> bool:
    lowered = message.lower()
    return any(word in lowered for word in _KMS_WORDS)


def _mentions_pending(message: str) -> bool:
    lowered = message.lower()
    return "pending" in lowered or "not completed" in lowered or "not in a completed" in lowered
