"""XFS, read through libfsxfs (the `pyfsxfs` binding of the PyPI package libfsxfs-python).

libfsxfs decodes inodes, extent maps and file data; this module adds what the scanner needs
around it:

- every libfsxfs failure, and every failure of the device underneath, becomes a one-line
  DiskError naming the file system and the operation;
- names as bytes: libfsxfs hands names out as str and refuses an entry whose name is not UTF-8
  (Linux allows any bytes but "/" and NUL), so a directory holding such a name is listed by
  this module's own decoding of XFS directory blocks instead (`_RawDirectories`);
- the state of the log: libfsxfs does not look at it, so `_log_state` finds the log's head as
  the kernel does (without its torn-write checks, which only matter when replaying) and checks
  that the last record is an unmount record.
"""

from __future__ import annotations

import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyfsxfs  # type: ignore[import-not-found]  # libfsxfs-python ships no type stubs

from scanner.disk.device import BlockDevice, DiskError, read_exact
from scanner.disk.fileobj import DeviceFile
from scanner.disk.filesystem import Kind, Node
from scanner.disk.libyal import LibyalFileSystem

MAGIC = b"XFSB"
# Symlink targets are at most 1024 bytes (XFS_SYMLINK_MAXLEN); more is corruption.
SYMLINK_MAX = 1024


def probe(device: BlockDevice) -> bool:
    """Whether the device starts with an XFS superblock."""
    return device.size >= 512 and device.pread(0, 4) == MAGIC


@dataclass(frozen=True)
class _Superblock:
    """The fields of the primary superblock that this module reads itself (all big-endian)."""

    version: int
    block_size: int
    ag_blocks: int
    ag_count: int
    log_start: int
    log_blocks: int
    inode_size: int
    inodes_per_block_log: int
    ag_block_log: int
    dir_block_log: int
    has_ftype: bool

    @classmethod
    def parse(cls, data: bytes, where: str) -> _Superblock:
        (block_size,) = struct.unpack_from(">I", data, 4)
        (log_start,) = struct.unpack_from(">Q", data, 48)
        ag_blocks, ag_count = struct.unpack_from(">II", data, 84)
        (log_blocks,) = struct.unpack_from(">I", data, 96)
        versionnum, _sector_size, inode_size = struct.unpack_from(">HHH", data, 100)
        block_log, inodes_per_block_log, ag_block_log = data[120], data[123], data[124]
        dir_block_log = data[192]
        (features2,) = struct.unpack_from(">I", data, 200)
        (incompat,) = struct.unpack_from(">I", data, 216)
        version = versionnum & 0xF
        # The ranges mkfs.xfs and the kernel accept: anything else is not a superblock we can
        # compute addresses from (and would make the shifts below absurd).
        if (
            version not in (4, 5)
            or block_size not in {1 << n for n in range(9, 17)}
            or block_size != 1 << block_log
            or inode_size not in (256, 512, 1024, 2048)
            or block_size != inode_size << inodes_per_block_log
            or not 1 <= ag_blocks < 1 << 31
            or ag_blocks > 1 << ag_block_log
            or not 1 <= ag_count < 1 << 24
            or block_log + dir_block_log > 16
        ):
            raise DiskError(f"{where}: the XFS superblock is corrupt (impossible geometry)")
        if version == 5:
            # XFS_SB_FEAT_INCOMPAT_FTYPE
            has_ftype = bool(incompat & 0x1)
        else:
            # XFS_SB_VERSION_MOREBITSBIT, then XFS_SB_VERSION2_FTYPE
            has_ftype = bool(versionnum & 0x8000) and bool(features2 & 0x200)
        return cls(
            version=version,
            block_size=block_size,
            ag_blocks=ag_blocks,
            ag_count=ag_count,
            log_start=log_start,
            log_blocks=log_blocks,
            inode_size=inode_size,
            inodes_per_block_log=inodes_per_block_log,
            ag_block_log=ag_block_log,
            dir_block_log=dir_block_log,
            has_ftype=has_ftype,
        )

    def block_offset(self, fsblock: int) -> int:
        """The byte offset of a file-system block number (AG number in the high bits)."""
        ag, block = fsblock >> self.ag_block_log, fsblock & ((1 << self.ag_block_log) - 1)
        if ag >= self.ag_count or block >= self.ag_blocks:
            raise ValueError(f"block {fsblock} lies outside the file system")
        return (ag * self.ag_blocks + block) * self.block_size

    def inode_offset(self, inode: int) -> int:
        """The byte offset of an inode: its number encodes AG, block and slot."""
        slot = inode & ((1 << self.inodes_per_block_log) - 1)
        return self.block_offset(inode >> self.inodes_per_block_log) + slot * self.inode_size


class XfsFileSystem(LibyalFileSystem):
    """An XFS file system (v4 or v5) on a BlockDevice, read-only, through libfsxfs.

    Names that are not UTF-8 are returned byte-exact (see `_RawDirectories`). Sparse files read
    as zeros in their holes. `dirty` reports a log that was not cleanly unmounted; the log is
    never replayed, and an external log device cannot be seen from here (such a file system is
    reported clean). Calls are serialised: libfsxfs and the file object it reads are not
    thread-safe.
    """

    def __init__(self, device: BlockDevice, description: str | None = None) -> None:
        where = description or f"XFS file system on {device.description}"
        superblock = read_exact(device, 0, 512, "the XFS superblock")
        if superblock[:4] != MAGIC:
            raise DiskError(f"{device.description}: no XFS superblock (no XFSB magic at byte 0)")
        self._sb = _Superblock.parse(superblock, where)
        super().__init__(
            device, description or f"XFS (v{self._sb.version}) file system on {device.description}"
        )
        self._raw = _RawDirectories(self)
        self._volume: Any = pyfsxfs.volume()
        self._call(
            "cannot open the volume", self._volume.open_file_object, DeviceFile(self._device)
        )
        root = self._call("cannot read the root directory", self._volume.get_root_directory)
        self.root: int = self._call("cannot read the root directory", root.get_inode_number)
        self.dirty = _log_state(self._device, self._sb, self.description)

    # -- plumbing -------------------------------------------------------------------------------

    def _entry(self, inode: int) -> Any:
        """The libfsxfs file_entry of an inode, from a small LRU (opening one reads the inode
        and its extent map)."""
        with self._lock:
            entry = self._cached(inode)
            if entry is not None:
                return entry
            if not 0 < inode < 1 << 64:
                raise DiskError(f"{self.description}: inode {inode} does not exist")
            entry = self._call(
                f"cannot read inode {inode}", self._volume.get_file_entry_by_inode, inode
            )
            if entry is None:
                raise DiskError(f"{self.description}: cannot read inode {inode}: not found")
            self._remember(inode, entry)
            return entry

    def _mode(self, inode: int) -> int:
        entry = self._entry(inode)
        mode: int = self._call(f"cannot read inode {inode}", entry.get_file_mode)
        return mode

    def _size(self, inode: int) -> int:
        entry = self._entry(inode)
        size: int = self._call(f"cannot read inode {inode}", entry.get_size)
        if not 0 <= size < 1 << 63:
            raise DiskError(f"{self.description}: inode {inode} has an impossible size {size}")
        return size

    # -- the FileSystem protocol ----------------------------------------------------------------

    def node(self, inode: int) -> Node:
        mode = self._mode(inode)
        kind = {
            stat.S_IFREG: Kind.FILE,
            stat.S_IFDIR: Kind.DIRECTORY,
            stat.S_IFLNK: Kind.SYMLINK,
        }.get(stat.S_IFMT(mode), Kind.OTHER)
        return Node(inode, kind, self._size(inode))

    def entries(self, directory: int) -> Iterator[tuple[bytes, int]]:
        if stat.S_IFMT(self._mode(directory)) != stat.S_IFDIR:
            raise DiskError(f"{self.description}: inode {directory} is not a directory")
        # The whole listing is taken before the first entry is yielded, so a fallback to the raw
        # reader part-way cannot yield an entry twice.
        listed = self._listing(directory)
        yield from listed

    def _listing(self, directory: int) -> list[tuple[bytes, int]]:
        what = f"cannot list directory inode {directory}"
        entry = self._entry(directory)
        count: int = self._call(what, entry.get_number_of_sub_file_entries)
        listed: list[tuple[bytes, int]] = []
        for index in range(count):
            try:
                child = self._call(what, entry.get_sub_file_entry, index)
                name: str | None = self._call(what, child.get_name)
                number: int = self._call(what, child.get_inode_number)
            except DiskError as exc:
                # A name that is not UTF-8 (libfsxfs cannot return it), or an entry whose inode
                # does not open (libfsxfs opens each entry's inode while listing, but a listing
                # needs only the directory): the directory's own blocks still give every
                # (name, inode), and a bad child inode fails later, on its own.
                try:
                    return self._raw.listing(directory)
                except DiskError:
                    raise exc from None
            if name is None:
                raise DiskError(f"{self.description}: {what}: entry {index} has no name")
            listed.append((name.encode("utf-8", "surrogateescape"), number))
        return listed

    def read(self, inode: int, offset: int, length: int) -> bytes:
        if stat.S_IFMT(self._mode(inode)) != stat.S_IFREG:
            raise DiskError(f"{self.description}: inode {inode} is not a regular file")
        entry = self._entry(inode)
        return self._read_entry(
            entry, f"cannot read inode {inode}", offset, length, self._size(inode)
        )

    def read_link(self, inode: int) -> bytes:
        if stat.S_IFMT(self._mode(inode)) != stat.S_IFLNK:
            raise DiskError(f"{self.description}: inode {inode} is not a symbolic link")
        what = f"cannot read the target of symbolic link inode {inode}"
        target: str | None = self._call(what, self._entry(inode).get_symbolic_link_target)
        if target is None:
            raise DiskError(f"{self.description}: {what}: it has none")
        data = target.encode("utf-8", "surrogateescape")
        if len(data) > SYMLINK_MAX:
            raise DiskError(f"{self.description}: {what}: {len(data)} bytes is too long")
        return data


class _RawDirectories:
    """XFS directories decoded from the image, for what libfsxfs will not return.

    Only the name → inode part of the format: short-form directories inside the inode, and the
    data blocks (single-block, leaf, node and B-tree directories all keep their entries in data
    blocks; the leaf and free-space blocks are hash indexes, not needed to list). libfsxfs still
    supplies the directory's extent map.
    """

    # Data block magics: single-block and multi-block directories, v4 then v5 (CRC) formats.
    DATA_MAGICS = {b"XD2B": 16, b"XD2D": 16, b"XDB3": 64, b"XDD3": 64}
    BLOCK_MAGICS = (b"XD2B", b"XDB3")

    def __init__(self, fs: XfsFileSystem) -> None:
        self._fs = fs

    def _fail(self, directory: int, why: str) -> DiskError:
        return DiskError(f"{self._fs.description}: cannot list directory inode {directory}: {why}")

    def listing(self, directory: int) -> list[tuple[bytes, int]]:
        fs, sb = self._fs, self._fs._sb
        try:
            where = sb.inode_offset(directory)
        except ValueError as exc:
            raise self._fail(directory, str(exc)) from None
        raw = read_exact(fs._device, where, sb.inode_size, f"inode {directory}")
        if raw[:2] != b"IN":
            raise self._fail(directory, "the inode has no IN magic")
        version, data_format = raw[4], raw[5]
        core = 176 if version >= 3 else 100
        fork_offset = raw[82]
        fork_end = core + fork_offset * 8 if fork_offset else sb.inode_size
        if fork_end > sb.inode_size or fork_end < core:
            raise self._fail(directory, "the inode's fork offset is impossible")
        if data_format == 1:
            return self._short_form(directory, raw[core:fork_end])
        if data_format in (2, 3):
            return self._blocks(directory)
        raise self._fail(directory, f"unknown directory format {data_format}")

    def _short_form(self, directory: int, fork: bytes) -> list[tuple[bytes, int]]:
        """Entries stored in the inode: a header (count, 8-byte-inode count, parent), then
        (name length, offset tag, name, [file type], inode number) each."""
        if len(fork) < 6:
            raise self._fail(directory, "the short-form directory is truncated")
        # `count` entries; if any inode number needs 8 bytes (`wide` of them), all take 8.
        count, wide = fork[0], fork[1]
        inode_bytes = 8 if wide else 4
        position = 2 + inode_bytes
        ftype = 1 if self._fs._sb.has_ftype else 0
        listed: list[tuple[bytes, int]] = []
        for _ in range(count):
            if position + 3 > len(fork):
                raise self._fail(directory, "the short-form directory is truncated")
            length = fork[position]
            name_at = position + 3
            number_at = name_at + length + ftype
            end = number_at + inode_bytes
            if length == 0 or end > len(fork):
                raise self._fail(directory, "a short-form directory entry is corrupt")
            number = int.from_bytes(fork[number_at:end], "big")
            listed.append((fork[name_at : name_at + length], number))
            position = end
        return listed

    def _blocks(self, directory: int) -> list[tuple[bytes, int]]:
        fs, sb = self._fs, self._fs._sb
        what = f"cannot list directory inode {directory}"
        entry = fs._entry(directory)
        count: int = fs._call(what, entry.get_number_of_extents)
        block_size = sb.block_size << sb.dir_block_log
        listed: list[tuple[bytes, int]] = []
        # The extents in order, as one stream cut into directory blocks: a directory block
        # larger than a file-system block may be split across two extents.
        pending = b""
        for index in range(count):
            encoded, length, _flags = fs._call(what, entry.get_extent, index)
            # libfsxfs gives the extent's start as its file-system block number (AG number in
            # the high bits) times the block size, not as a byte offset in the volume.
            try:
                start = sb.block_offset(encoded // sb.block_size)
            except ValueError as exc:
                raise self._fail(directory, f"extent {index}: {exc}") from None
            if length < 0 or start + length > fs._device.size:
                raise self._fail(directory, f"extent {index} lies outside the file system")
            while length > 0:
                take = min(length, block_size - len(pending))
                pending += read_exact(fs._device, start, take, f"directory inode {directory}")
                start += take
                length -= take
                if len(pending) == block_size:
                    listed.extend(self._data_block(directory, pending))
                    pending = b""
        return listed

    def _data_block(self, directory: int, block: bytes) -> list[tuple[bytes, int]]:
        """The entries of one directory block; nothing for leaf, node and free-index blocks."""
        header = self.DATA_MAGICS.get(block[:4])
        if header is None:
            return []
        end = len(block)
        if block[:4] in self.BLOCK_MAGICS:
            # A single-block directory ends with its hash leaf (8 bytes an entry) and a tail
            # (leaf count, stale count).
            (leaves,) = struct.unpack_from(">I", block, end - 8)
            end -= 8 + 8 * leaves
            if end < header:
                raise self._fail(directory, "a directory block's leaf count is impossible")
        ftype = 1 if self._fs._sb.has_ftype else 0
        listed: list[tuple[bytes, int]] = []
        position = header
        while position + 8 <= end:
            if block[position : position + 2] == b"\xff\xff":
                # An unused region: 0xffff, then its length.
                (length,) = struct.unpack_from(">H", block, position + 2)
                if length < 8 or length % 8:
                    raise self._fail(directory, "a directory block's free region is corrupt")
                position += length
                continue
            (number,) = struct.unpack_from(">Q", block, position)
            name_length = block[position + 8] if position + 8 < end else 0
            # inode, name length, name, [file type], tag; padded to 8 bytes.
            size = (8 + 1 + name_length + ftype + 2 + 7) & ~7
            if name_length == 0 or position + size > end:
                raise self._fail(directory, "a directory block entry is corrupt")
            name = block[position + 9 : position + 9 + name_length]
            if name not in (b".", b".."):
                listed.append((name, number))
            position += size
        return listed


# The log is written in 512-byte basic blocks; each starts with its cycle number, except a
# record header, which starts with this magic and has the cycle next.
_LOG_MAGIC = 0xFEEDBABE
_BB = 512
# XLOG_UNMOUNT_TRANS in an operation header's flags.
_UNMOUNT = 0x20
# A record is at most 256 KiB, plus its headers: how far back from the head to look for the
# last record's header.
_RECORD_SPAN = (256 * 1024 + 8 * _BB) // _BB


def _log_state(device: BlockDevice, sb: _Superblock, description: str) -> str:
    """ "" when the last thing written to the internal log is an unmount record, else why not.

    The kernel's way (xlog_find_head, xlog_find_tail): the log is written in a circle, each pass
    stamping blocks with the next cycle number, so the head is where the cycle number drops;
    the record just before the head is an unmount record after a clean unmount.
    """
    if sb.log_start == 0:
        # An external log device: not on this image.
        return ""
    try:
        start = sb.block_offset(sb.log_start)
    except ValueError:
        return f"{description}: the log's position in the superblock is corrupt"
    blocks = sb.log_blocks * sb.block_size // _BB
    if blocks < 2 or start + blocks * _BB > device.size:
        return f"{description}: the log lies outside the file system; it may need recovery"

    def cycle(block: int) -> int:
        data = read_exact(device, start + block * _BB, 8, "the XFS log")
        word, following = struct.unpack(">II", data)
        return int(following if word == _LOG_MAGIC else word)

    not_clean = (
        f"{description}: the log was not cleanly unmounted (it needs recovery, which is not "
        "done here: the latest changes may be missing)"
    )
    first, last = cycle(0), cycle(blocks - 1)
    if first == 0:
        return not_clean
    if first == last:
        # One cycle throughout: the head is at the end (the next write wraps to block 0).
        head = blocks
    else:
        # The last pass left [0, head) on cycle `first`, and [head, end) on `first - 1`:
        # binary search for the first block not on `first`.
        low, high = 0, blocks - 1
        while high - low > 1:
            middle = (low + high) // 2
            if cycle(middle) == first:
                low = middle
            else:
                high = middle
        head = high
    # The last record header before the head (wrapping to the log's end).
    for back in range(1, min(_RECORD_SPAN, blocks) + 1):
        block = (head - back) % blocks
        header = read_exact(device, start + block * _BB, _BB, "the XFS log")
        if struct.unpack_from(">I", header, 0)[0] != _LOG_MAGIC:
            continue
        version, length = struct.unpack_from(">II", header, 8)
        (operations,) = struct.unpack_from(">I", header, 40)
        (record_size,) = struct.unpack_from(">I", header, 320)
        # v2 logs with records over 32 KiB have one extra header block per 32 KiB.
        header_blocks = max(1, -(-record_size // (32 * 1024))) if version & 2 else 1
        data_block = (block + header_blocks) % blocks
        end = (block + header_blocks + -(-length // _BB)) % blocks
        if operations != 1 or end != head % blocks:
            return not_clean
        operation = read_exact(device, start + data_block * _BB, 12, "the XFS log")
        return "" if operation[9] & _UNMOUNT else not_clean
    return not_clean
