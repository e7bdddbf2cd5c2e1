"""What the file-system layers over libyal bindings (XFS, NTFS) share.

Each binding is called under one lock (neither it nor the file object it reads is
thread-safe), every failure becomes a one-line DiskError naming the file system and the
operation, opened file entries are kept in a small LRU, and file data is read in bounded pieces.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from scanner.disk.device import BlockDevice, DiskError

# A libyal binding returns what it is asked for in one buffer: an image that claims a 1 TiB file
# must not make one call allocate 1 TiB, so reads are cut into pieces this big.
READ_CHUNK = 16 * 1024 * 1024
# File entries kept: a scan reads a file in several calls, and lists a directory then looks at
# each entry, so the last few hundred cover the working set.
ENTRY_CACHE = 512

_T = TypeVar("_T")


class WatchedDevice:
    """The device as a libyal library sees it, remembering the last DiskError it raised.

    libyal reports a failed read of its file object as a generic IOError; the device's own
    message (a truncated image, a failed snapshot request) says more, so it is raised instead.
    """

    def __init__(self, device: BlockDevice) -> None:
        self.device = device
        self.description = device.description
        self.size = device.size
        self.error: DiskError | None = None

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return self.device.pread(offset, length)
        except DiskError as exc:
            self.error = exc
            raise


def libyal_message(exc: BaseException) -> str:
    """The root cause out of a libyal error chain.

    libyal joins its backtrace as "binding_function: what failed. innermost_function: why.
    outer_function: ...", so the second part is the cause; the function names mean nothing to a
    user.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    parts = re.split(r"(?<=\.) (?=[a-z][a-z0-9_]*: )", text)
    cause = parts[1] if len(parts) > 1 else parts[0]
    cause = re.sub(r"^[a-z][a-z0-9_]*: ", "", cause).rstrip(".")
    return cause[:300]


class LibyalFileSystem:
    """The plumbing of a file system read through a libyal binding (see the module's doc)."""

    def __init__(self, device: BlockDevice, description: str) -> None:
        self.description = description
        self._device = WatchedDevice(device)
        self._lock = threading.RLock()
        self._entries: OrderedDict[int, Any] = OrderedDict()

    def _call(self, what: str, function: Callable[..., _T], *args: Any) -> _T:
        """`function(*args)` under the lock, any failure turned into a one-line DiskError."""
        with self._lock:
            self._device.error = None
            try:
                return function(*args)
            except DiskError as exc:
                raise DiskError(f"{self.description}: {what}: {exc}") from None
            except Exception as exc:
                # libyal raises IOError for corrupt structures, but also MemoryError for an
                # absurd allocation and ValueError/OverflowError for out-of-range arguments.
                device_error = self._device.error
                cause = str(device_error) if device_error else libyal_message(exc)
                raise DiskError(f"{self.description}: {what}: {cause}") from None

    def _fail(self, what: str, why: str) -> DiskError:
        return DiskError(f"{self.description}: {what}: {why}")

    def _cached(self, key: int) -> Any:
        """The file entry opened for `key` and still cached, or None (call under the lock)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def _remember(self, key: int, entry: Any) -> None:
        """Cache an opened file entry (call under the lock)."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > ENTRY_CACHE:
            self._entries.popitem(last=False)

    def _read_entry(self, entry: Any, what: str, offset: int, length: int, size: int) -> bytes:
        """`length` bytes of a file entry's data from `offset`, never past its `size`."""
        if offset < 0 or length < 0:
            raise ValueError("negative offset or length")
        # Never more than the file holds: the length asked for may be "everything".
        length = max(0, min(length, size - offset))
        parts: list[bytes] = []
        while length > 0:
            want = min(length, READ_CHUNK)
            # read_buffer_at_offset moves the entry's own offset too: under the lock, as one
            # call, so two threads reading one file cannot interleave.
            data: bytes = self._call(what, entry.read_buffer_at_offset, want, offset)
            if len(data) != want:
                raise self._fail(
                    what,
                    f"{len(data)} of {want} bytes at offset {offset} (the file is {size} bytes)",
                )
            parts.append(data)
            offset += want
            length -= want
        return b"".join(parts)
