"""The byte devices every layer reads through: local files, slices, and the block cache."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from scanner.disk.device import (
    CACHE_BLOCK,
    BlockCache,
    DiskError,
    FileDevice,
    SliceDevice,
    read_exact,
)
from scanner.disk.fileobj import DeviceFile


class CountingDevice:
    """Bytes in memory that count the reads made of them."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.description = "memory"
        self.reads: list[tuple[int, int]] = []

    def pread(self, offset: int, length: int) -> bytes:
        self.reads.append((offset, length))
        return self.data[offset : offset + length]


@pytest.fixture
def data() -> bytes:
    return os.urandom(5 * CACHE_BLOCK + 1234)


def test_a_file_device_reads_what_the_file_holds_and_stops_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "disk.img"
    path.write_bytes(b"abcdefgh")
    device = FileDevice(path)
    assert device.size == 8
    assert device.pread(2, 3) == b"cde"
    assert device.pread(6, 100) == b"gh"
    assert device.pread(8, 10) == b""


def test_a_missing_file_is_a_disk_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DiskError, match=r"missing\.img"):
        FileDevice(tmp_path / "missing.img")


def test_a_slice_reads_only_its_own_range_and_refuses_to_run_past_its_parent(data: bytes) -> None:
    parent = CountingDevice(data)
    part = SliceDevice(parent, 100, 1000, "partition 1 of memory")
    assert part.pread(0, 10) == data[100:110]
    assert part.pread(990, 100) == data[1090:1100]
    assert part.pread(1000, 1) == b""
    with pytest.raises(DiskError, match="past the end of memory"):
        SliceDevice(parent, len(data) - 10, 11, "partition 2 of memory")


def test_read_exact_names_what_lies_past_the_end(data: bytes) -> None:
    device = CountingDevice(data)
    with pytest.raises(DiskError, match=r"superblock at byte \d+ lies past the end"):
        read_exact(device, len(data) - 2, 4, "superblock")


def test_the_cache_reads_each_block_once_and_reads_runs_of_blocks_together(data: bytes) -> None:
    below = CountingDevice(data)
    cache = BlockCache(below, blocks=8)
    assert cache.pread(10, 3 * CACHE_BLOCK) == data[10 : 10 + 3 * CACHE_BLOCK]
    # Four blocks were missing and consecutive: one read below.
    assert below.reads == [(0, 4 * CACHE_BLOCK)]
    assert cache.pread(CACHE_BLOCK + 5, 100) == data[CACHE_BLOCK + 5 : CACHE_BLOCK + 105]
    assert len(below.reads) == 1
    assert (cache.misses, cache.hits) == (4, 1)
    # The last, short block reads to the device's end.
    assert cache.pread(len(data) - 50, 500) == data[-50:]


def test_the_cache_forgets_the_least_recently_used_block(data: bytes) -> None:
    below = CountingDevice(data)
    cache = BlockCache(below, blocks=2)
    for index in (0, 1, 0, 2):
        cache.pread(index * CACHE_BLOCK, 1)
    below.reads.clear()
    cache.pread(0, 1)  # still held: it was used more recently than block 1
    assert below.reads == []
    cache.pread(CACHE_BLOCK, 1)  # evicted
    assert below.reads == [(CACHE_BLOCK, CACHE_BLOCK)]


def test_a_device_that_returns_less_than_it_promised_is_an_error(data: bytes) -> None:
    class Shrunk(CountingDevice):
        def pread(self, offset: int, length: int) -> bytes:
            return super().pread(offset, length)[: length // 2]

    with pytest.raises(DiskError, match="ends early"):
        BlockCache(Shrunk(data)).pread(0, 2 * CACHE_BLOCK)


def test_a_device_reads_as_a_file_object(data: bytes) -> None:
    handle = DeviceFile(CountingDevice(data))
    handle.seek(-10, os.SEEK_END)
    assert handle.read() == data[-10:]
    handle.seek(5)
    assert handle.read(5) == data[5:10]
    assert handle.get_offset() == 10
    assert handle.get_size() == len(data)


def test_sequential_reads_fetch_ahead_in_growing_windows_and_random_ones_do_not() -> None:
    data = os.urandom(40 * CACHE_BLOCK)
    below = CountingDevice(data)
    cache = BlockCache(below)
    step = CACHE_BLOCK // 2
    streamed = b"".join(cache.pread(offset, step) for offset in range(0, len(data), step))
    assert streamed == data
    sizes = [length // CACHE_BLOCK for _, length in below.reads]
    # 1, then 2, 4, 8 … blocks per read below, never more than the window allows.
    assert sizes[:4] == [1, 2, 4, 8]
    assert len(below.reads) < 10
    below.reads.clear()
    scattered = BlockCache(below)
    for index in (30, 3, 17, 9):
        scattered.pread(index * CACHE_BLOCK, 10)
    assert [length for _, length in below.reads] == [CACHE_BLOCK] * 4


def test_one_threads_reads_never_look_sequential_to_another() -> None:
    # Two readers of neighbouring blocks: the second must not take the first's read as its
    # own stream and fetch ahead into blocks that others then fetch again.
    data = os.urandom(8 * CACHE_BLOCK)
    below = CountingDevice(data)
    cache = BlockCache(below)

    def read(index: int) -> None:
        assert cache.pread(index * CACHE_BLOCK, 10) == data[index * CACHE_BLOCK :][:10]

    for index in (0, 1, 2):
        reader = threading.Thread(target=read, args=(index,))
        reader.start()
        reader.join()
    assert below.reads == [(i * CACHE_BLOCK, CACHE_BLOCK) for i in (0, 1, 2)]
    # The same thread reading on from where it stopped still fetches ahead.
    read(3)
    read(4)
    assert [length // CACHE_BLOCK for _, length in below.reads[3:]] == [1, 2]
