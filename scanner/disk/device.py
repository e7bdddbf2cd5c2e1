"""Byte-addressed devices: the one interface every layer of a disk image reads through."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol


class DiskError(Exception):
    """The image cannot be read as what it claims to be. Its message is one line for the user,
    naming the image (or volume) and what is wrong with it."""


class BlockDevice(Protocol):
    """A read-only run of bytes: a file, a snapshot, a decoded image, a partition, a volume."""

    description: str
    size: int

    def pread(self, offset: int, length: int) -> bytes:
        """`length` bytes from `offset`; fewer only where the device ends. DiskError when the
        bytes exist but cannot be read (a truncated image, a failed request, a bad checksum)."""
        ...


def read_exact(device: BlockDevice, offset: int, length: int, what: str) -> bytes:
    """`length` bytes at `offset`, or DiskError saying that `what` lies past the device's end."""
    if offset < 0 or length < 0 or offset + length > device.size:
        raise DiskError(
            f"{device.description}: {what} at byte {offset} lies past the end "
            f"({device.size} bytes); the image is truncated or corrupt"
        )
    data = device.pread(offset, length)
    if len(data) != length:
        raise DiskError(f"{device.description}: {what} at byte {offset} could not be read whole")
    return data


class FileDevice:
    """A local file read with pread (no seek state, so any thread may read)."""

    def __init__(self, path: Path) -> None:
        self.description = str(path)
        try:
            self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise DiskError(f"{path}: {exc.strerror or exc}") from None
        self.size = os.fstat(self._fd).st_size

    def pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        chunks: list[bytes] = []
        while length > 0:
            try:
                chunk = os.pread(self._fd, length, offset)
            except OSError as exc:
                raise DiskError(
                    f"{self.description}: read failed at byte {offset}: {exc}"
                ) from None
            if not chunk:
                # The file shrank under us: what was promised is not there.
                raise DiskError(f"{self.description}: ends early at byte {offset}")
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        os.close(self._fd)


class SliceDevice:
    """`length` bytes of another device from `start`: a partition, or a logical volume's run."""

    def __init__(self, parent: BlockDevice, start: int, length: int, description: str) -> None:
        if start < 0 or length < 0 or start + length > parent.size:
            raise DiskError(
                f"{description} runs from byte {start} to {start + length}, past the end of "
                f"{parent.description} ({parent.size} bytes)"
            )
        self.parent = parent
        self.start = start
        self.size = length
        self.description = description

    def pread(self, offset: int, length: int) -> bytes:
        if offset >= self.size or length <= 0:
            return b""
        return self.parent.pread(self.start + offset, min(length, self.size - offset))


# The cache's block: EBS snapshots are read in 512 KiB blocks, and so is everything else, so one
# request fills one cache entry.
CACHE_BLOCK = 512 * 1024
# 256 blocks = 128 MiB at most held in memory; a scan touches tens of blocks.
CACHE_BLOCKS = 256
# Sequential reads (a large package list streamed through) fetch ahead, doubling up to this
# many blocks: a remote snapshot then fetches them in parallel instead of one round trip each.
READAHEAD_BLOCKS = 32


class BlockCache:
    """An LRU cache of aligned CACHE_BLOCK blocks over a slow device (a remote snapshot, or an
    image format whose reads cost a lookup)."""

    def __init__(self, device: BlockDevice, blocks: int = CACHE_BLOCKS) -> None:
        self.device = device
        self.description = device.description
        self.size = device.size
        self._capacity = blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        # Bytes read from the device below (the last block of a device may be short).
        self.bytes_read = 0
        # Each thread's reads are a stream of their own: two readers of distant blocks must not
        # look sequential to each other (each would fetch ahead into blocks the other then
        # fetches again).
        self._stream = threading.local()

    def _cached(self, index: int) -> bytes | None:
        with self._lock:
            cached = self._blocks.get(index)
            if cached is not None:
                self._blocks.move_to_end(index)
                self.hits += 1
            return cached

    def _fill(self, first: int, count: int) -> dict[int, bytes]:
        """Blocks first..first+count-1 in one read of the device below (a remote snapshot
        fetches the blocks of one read in parallel), kept in the cache."""
        data = self.device.pread(first * CACHE_BLOCK, count * CACHE_BLOCK)
        blocks = {
            first + n: data[n * CACHE_BLOCK : (n + 1) * CACHE_BLOCK]
            for n in range(count)
            if n * CACHE_BLOCK < len(data)
        }
        with self._lock:
            self.misses += len(blocks)
            self.bytes_read += len(data)
            for index, block in blocks.items():
                self._blocks[index] = block
                self._blocks.move_to_end(index)
            while len(self._blocks) > self._capacity:
                self._blocks.popitem(last=False)
        return blocks

    def _with_readahead(self, missing: list[int]) -> list[int]:
        """`missing` extended past its end when this thread's reads are sequential (each
        continues where its last one stopped); the window doubles while they stay sequential."""
        stream = self._stream
        sequential = missing[0] == getattr(stream, "next_block", -1)
        window = min(getattr(stream, "window", 1) * 2, READAHEAD_BLOCKS) if sequential else 1
        with self._lock:
            last_block = (self.size - 1) // CACHE_BLOCK
            extra: list[int] = []
            candidate = missing[-1] + 1
            while len(extra) < window - 1 and candidate <= last_block:
                if candidate in self._blocks:
                    break
                extra.append(candidate)
                candidate += 1
        stream.window = window
        stream.next_block = (extra or missing)[-1] + 1
        return missing + extra

    def pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        if length == 0:
            return b""
        first, last = offset // CACHE_BLOCK, (offset + length - 1) // CACHE_BLOCK
        blocks: dict[int, bytes] = {}
        missing: list[int] = []
        for index in range(first, last + 1):
            cached = self._cached(index)
            if cached is None:
                missing.append(index)
            else:
                blocks[index] = cached
        if missing:
            missing = self._with_readahead(missing)
        # Consecutive missing blocks are read together (bounded by the cache's own size).
        run_start = 0
        for position in range(1, len(missing) + 1):
            if position == len(missing) or missing[position] != missing[position - 1] + 1:
                run = missing[run_start:position]
                for chunk in range(0, len(run), self._capacity // 2 or 1):
                    part = run[chunk : chunk + (self._capacity // 2 or 1)]
                    blocks.update(self._fill(part[0], len(part)))
                run_start = position
        data = b"".join(blocks.get(index, b"") for index in range(first, last + 1))
        within = offset - first * CACHE_BLOCK
        result = data[within : within + length]
        if len(result) != length:
            raise DiskError(f"{self.description}: ends early at byte {offset + len(result)}")
        return result
