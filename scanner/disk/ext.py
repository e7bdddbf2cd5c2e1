"""A read-only ext2/ext3/ext4 reader over a `BlockDevice`, in pure Python.

Our own rather than a binding: pytsk3 ships no wheels, and libfsext refuses `large_dir` and fails
on `inline_data` inodes, both of which real AMIs carry. The journal is never replayed (the
`dirty` sentence says when that matters) and no checksum is verified: checksums catch bit rot,
while every structure here is bounds-checked anyway because the image is untrusted.

Layout (see the kernel's Documentation/filesystems/ext4): a superblock at byte 1024; group
descriptors after it (or spread over the groups with `meta_bg`); each group's inode table; an
inode's data either inline (in `i_block` plus the `system.data` extended attribute), in an extent
tree, or in an ext2 block map of direct and indirect pointers.
"""

from __future__ import annotations

import struct
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, NoReturn, TypeVar

from scanner.disk.device import BlockDevice, DiskError, read_exact
from scanner.disk.filesystem import Kind, Node

SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 1024
MAGIC = 0xEF53
ROOT_INODE = 2

# Superblock feature bits: only those that change how the image is read, or what it is called.
COMPAT_HAS_JOURNAL = 0x4
COMPAT_SPARSE_SUPER2 = 0x200
COMPAT_ORPHAN_FILE = 0x1000

INCOMPAT_COMPRESSION = 0x1
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_MMP = 0x100
INCOMPAT_FLEX_BG = 0x200
INCOMPAT_EA_INODE = 0x400
INCOMPAT_DIRDATA = 0x1000
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_ENCRYPT = 0x10000
INCOMPAT_CASEFOLD = 0x20000
# Everything else is an incompatible feature we cannot read correctly, as the kernel would refuse
# to mount it. Compression (never merged) and external journal devices are left out on purpose.
INCOMPAT_UNDERSTOOD = (
    INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_META_BG
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_DIRDATA
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD
)
INCOMPAT_EXT4 = INCOMPAT_UNDERSTOOD & ~(INCOMPAT_FILETYPE | INCOMPAT_RECOVER | INCOMPAT_META_BG)

RO_COMPAT_SPARSE_SUPER = 0x1
RO_COMPAT_HUGE_FILE = 0x8
RO_COMPAT_GDT_CSUM = 0x10
RO_COMPAT_DIR_NLINK = 0x20
RO_COMPAT_EXTRA_ISIZE = 0x40
RO_COMPAT_BIGALLOC = 0x200
RO_COMPAT_METADATA_CSUM = 0x400
RO_COMPAT_ORPHAN_PRESENT = 0x10000
RO_COMPAT_EXT4 = (
    RO_COMPAT_HUGE_FILE
    | RO_COMPAT_GDT_CSUM
    | RO_COMPAT_DIR_NLINK
    | RO_COMPAT_EXTRA_ISIZE
    | RO_COMPAT_BIGALLOC
    | RO_COMPAT_METADATA_CSUM
    | RO_COMPAT_ORPHAN_PRESENT
)

STATE_VALID = 0x1
STATE_ERROR = 0x2

# Inode flags.
FLAG_ENCRYPT = 0x800
FLAG_HUGE_FILE = 0x40000
FLAG_EXTENTS = 0x80000
FLAG_EA_INODE = 0x200000
FLAG_INLINE_DATA = 0x10000000

S_IFMT = 0xF000
S_IFREG = 0x8000
S_IFDIR = 0x4000
S_IFLNK = 0xA000

GOOD_OLD_INODE_SIZE = 128
I_BLOCK_OFFSET = 0x28
I_BLOCK_SIZE = 60
DIRECT_BLOCKS = 12

EXTENT_MAGIC = 0xF30A
EXTENT_ENTRY = 12
# The kernel's EXT4_MAX_EXTENT_DEPTH: a deeper tree is corrupt, and the bound makes cycles
# impossible because every level must be exactly one shallower than its parent.
MAX_EXTENT_DEPTH = 5
# An extent's ee_len above this marks it unwritten (allocated, reads as zeros).
MAX_INIT_EXTENT = 32768
LOGICAL_BLOCK_LIMIT = 1 << 32

XATTR_MAGIC = 0xEA020000
XATTR_INDEX_SYSTEM = 7
DIRENT_HEADER = 8
DIRENT_MIN = 12
# PATH_MAX: a longer "symlink" is a corrupt inode, not a target to hand to path resolution.
MAX_SYMLINK = 4096
# Directory blocks read per request: large enough to be quick, small enough that a huge
# (large_dir) directory never sits in memory whole.
DIRECTORY_CHUNK_BLOCKS = 64

_U32 = struct.Struct("<I")
_DIRENT = struct.Struct("<IHBB")
_EXTENT_HEADER = struct.Struct("<HHHHI")
_EXTENT_LEAF = struct.Struct("<IHHI")
_EXTENT_INDEX = struct.Struct("<IIHH")
_XATTR_ENTRY = struct.Struct("<BBHIII")

K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe LRU map: readers may be shared by worker threads."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class _Superblock:
    inodes_count: int
    blocks_count: int
    first_data_block: int
    log_block_size: int
    log_cluster_size: int
    blocks_per_group: int
    inodes_per_group: int
    magic: int
    state: int
    rev_level: int
    inode_size: int
    feature_compat: int
    feature_incompat: int
    feature_ro_compat: int
    uuid: bytes
    volume_name: bytes
    last_orphan: int
    desc_size: int
    first_meta_bg: int
    backup_bgs: tuple[int, int]

    @classmethod
    def parse(cls, raw: bytes) -> _Superblock:
        def u16(offset: int) -> int:
            return int(struct.unpack_from("<H", raw, offset)[0])

        def u32(offset: int) -> int:
            return _u32(raw, offset)

        rev_level = u32(0x4C)
        # Revision 0 predates features and variable inode sizes; its fields there are unused.
        dynamic = rev_level >= 1
        incompat = u32(0x60) if dynamic else 0
        blocks_hi = u32(0x150) if incompat & INCOMPAT_64BIT else 0
        return cls(
            inodes_count=u32(0x0),
            blocks_count=u32(0x4) | blocks_hi << 32,
            first_data_block=u32(0x14),
            log_block_size=u32(0x18),
            log_cluster_size=u32(0x1C),
            blocks_per_group=u32(0x20),
            inodes_per_group=u32(0x28),
            magic=u16(0x38),
            state=u16(0x3A),
            rev_level=rev_level,
            inode_size=u16(0x58) if dynamic else GOOD_OLD_INODE_SIZE,
            feature_compat=u32(0x5C) if dynamic else 0,
            feature_incompat=incompat,
            feature_ro_compat=u32(0x64) if dynamic else 0,
            uuid=raw[0x68:0x78],
            volume_name=raw[0x78:0x88],
            last_orphan=u32(0xE8),
            desc_size=u16(0xFE),
            first_meta_bg=u32(0x104),
            backup_bgs=(u32(0x24C), u32(0x250)),
        )


@dataclass(frozen=True)
class _Inode:
    number: int
    mode: int
    size: int
    flags: int
    # i_blocks in 512-byte units, whatever unit the inode stores it in.
    sectors: int
    file_acl: int
    i_block: bytes
    # The in-inode extended attribute area (after i_extra_isize), empty on 128-byte inodes.
    xattrs: bytes

    @property
    def kind(self) -> Kind:
        file_type = self.mode & S_IFMT
        if file_type == S_IFREG:
            return Kind.FILE
        if file_type == S_IFDIR:
            return Kind.DIRECTORY
        if file_type == S_IFLNK:
            return Kind.SYMLINK
        return Kind.OTHER


@dataclass(frozen=True)
class _Run:
    """`count` logical blocks from `logical`, stored from `physical` (None: reads as zeros)."""

    logical: int
    count: int
    physical: int | None


def _u32(data: bytes | memoryview, offset: int) -> int:
    return int(_U32.unpack_from(data, offset)[0])


def _continues(run: _Run, following: _Run) -> bool:
    """Whether `following` extends `run` on disk as well as in the file."""
    if run.logical + run.count != following.logical:
        return False
    if run.physical is None or following.physical is None:
        return run.physical is None and following.physical is None
    return following.physical == run.physical + run.count


def probe(device: BlockDevice) -> bool:
    """Whether the device starts with an ext2/3/4 superblock."""
    if device.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE:
        return False
    return device.pread(SUPERBLOCK_OFFSET + 0x38, 2) == struct.pack("<H", MAGIC)


def _version(sb: _Superblock) -> str:
    if sb.feature_incompat & INCOMPAT_EXT4 or sb.feature_ro_compat & RO_COMPAT_EXT4:
        return "ext4"
    if sb.feature_compat & (COMPAT_HAS_JOURNAL | COMPAT_ORPHAN_FILE):
        return "ext3"
    return "ext2"


def _is_power_of(value: int, base: int) -> bool:
    while value > 1 and value % base == 0:
        value //= base
    return value == 1


class ExtFileSystem:
    """An ext2, ext3 or ext4 file system, read through the `FileSystem` protocol."""

    root = ROOT_INODE

    def __init__(self, device: BlockDevice, description: str | None = None) -> None:
        self.device = device
        self.description = f"ext file system on {device.description}"
        raw = read_exact(device, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, "the ext superblock")
        sb = _Superblock.parse(raw)
        if sb.magic != MAGIC:
            raise DiskError(f"{device.description}: no ext2/3/4 superblock (bad magic)")
        self._sb = sb
        self.version = _version(sb)
        self.description = description or f"{self.version} file system on {device.description}"
        self._validate()
        self.block_size = 1024 << sb.log_block_size
        self.uuid = str(uuid.UUID(bytes=sb.uuid))
        self.label = sb.volume_name.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.dirty = self._dirty()
        self._filetype = bool(sb.feature_incompat & INCOMPAT_FILETYPE)
        self._huge_file = bool(sb.feature_ro_compat & RO_COMPAT_HUGE_FILE)
        self._desc_size = sb.desc_size if sb.feature_incompat & INCOMPAT_64BIT else 32
        self._pointers = self.block_size // 4
        self._descriptors: _Lru[int, int] = _Lru(4096)
        self._inodes: _Lru[int, _Inode] = _Lru(4096)
        self._blocks: _Lru[int, bytes] = _Lru(256)
        root = self._inode(ROOT_INODE)
        if root.kind is not Kind.DIRECTORY:
            self._corrupt("the root inode (2) is not a directory")

    # --- The FileSystem protocol -------------------------------------------------------------

    def node(self, inode: int) -> Node:
        found = self._inode(inode)
        return Node(inode=inode, kind=found.kind, size=found.size)

    def entries(self, directory: int) -> Iterator[tuple[bytes, int]]:
        found = self._inode(directory)
        if found.kind is not Kind.DIRECTORY:
            self._corrupt(f"inode {directory} is not a directory")
        self._refuse_encrypted(found)
        if found.flags & FLAG_INLINE_DATA:
            yield from self._inline_entries(found)
            return
        blocks = self._block_count(found, found.size)
        for run in self._runs(found, 0, blocks):
            # Holes in a directory are skipped as the kernel's readdir skips them.
            if run.physical is None:
                continue
            for start in range(0, run.count, DIRECTORY_CHUNK_BLOCKS):
                count = min(DIRECTORY_CHUNK_BLOCKS, run.count - start)
                data = self._read_blocks(found, run.physical + start, count)
                for index in range(count):
                    begin = index * self.block_size
                    yield from self._dirents(found, data, begin, begin + self.block_size)

    def read(self, inode: int, offset: int, length: int) -> bytes:
        found = self._inode(inode)
        if found.kind is not Kind.FILE:
            self._corrupt(f"inode {inode} is not a regular file")
        if offset < 0 or length < 0:
            raise ValueError("offset and length must not be negative")
        return self._read_data(found, offset, min(offset + length, found.size))

    def read_link(self, inode: int) -> bytes:
        found = self._inode(inode)
        if found.kind is not Kind.SYMLINK:
            self._corrupt(f"inode {inode} is not a symlink")
        if found.size == 0 or found.size > MAX_SYMLINK:
            self._corrupt(f"symlink inode {inode} has an impossible length ({found.size})")
        self._refuse_encrypted(found)
        if self._is_fast_symlink(found):
            target = found.i_block[: found.size]
        else:
            target = self._read_data(found, 0, found.size)
        if b"\0" in target:
            self._corrupt(f"symlink inode {inode} has a NUL byte in its target")
        return target

    # --- Superblock and group descriptors ----------------------------------------------------

    def _corrupt(self, problem: str) -> NoReturn:
        raise DiskError(f"{self.description}: {problem}")

    def _validate(self) -> None:
        sb = self._sb
        if sb.log_block_size > 6:
            self._corrupt(f"impossible block size (log {sb.log_block_size})")
        block_size = 1024 << sb.log_block_size
        unknown = sb.feature_incompat & ~INCOMPAT_UNDERSTOOD
        if sb.feature_incompat & INCOMPAT_JOURNAL_DEV:
            self._corrupt("this is an external journal device, not a file system")
        if unknown:
            self._corrupt(f"uses incompatible features this reader does not know (0x{unknown:x})")
        if sb.blocks_per_group == 0 or sb.inodes_per_group == 0:
            self._corrupt("zero blocks or inodes per group")
        if sb.inodes_per_group > 8 * block_size:
            self._corrupt(f"impossible inodes per group ({sb.inodes_per_group})")
        if not GOOD_OLD_INODE_SIZE <= sb.inode_size <= block_size or not _is_power_of(
            sb.inode_size, 2
        ):
            self._corrupt(f"impossible inode size ({sb.inode_size})")
        if sb.feature_incompat & INCOMPAT_64BIT and (
            not 64 <= sb.desc_size <= min(block_size, 1024) or not _is_power_of(sb.desc_size, 2)
        ):
            self._corrupt(f"impossible group descriptor size ({sb.desc_size})")
        if sb.first_data_block >= sb.blocks_count:
            self._corrupt(f"impossible block count ({sb.blocks_count})")
        groups = -(-(sb.blocks_count - sb.first_data_block) // sb.blocks_per_group)
        if sb.inodes_count == 0 or sb.inodes_count > groups * sb.inodes_per_group:
            self._corrupt(f"impossible inode count ({sb.inodes_count})")

    def _dirty(self) -> str:
        sb = self._sb
        reasons: list[str] = []
        if sb.feature_incompat & INCOMPAT_RECOVER:
            reasons.append(
                f"the {self.version} journal needs recovery (the image was taken from a running "
                "system, e.g. an AMI made with --no-reboot); it was not replayed, so the last "
                "writes may be missing"
            )
        elif not sb.feature_compat & COMPAT_HAS_JOURNAL and not sb.state & STATE_VALID:
            reasons.append(
                "the file system was not cleanly unmounted (the image was taken from a running "
                "system), so recent writes may be missing or half done"
            )
        if sb.state & STATE_ERROR:
            reasons.append("the kernel recorded errors on it")
        if sb.last_orphan or sb.feature_ro_compat & RO_COMPAT_ORPHAN_PRESENT:
            reasons.append(
                "its orphan list is not empty (files deleted while open, or truncations, "
                "were not finished)"
            )
        return "; ".join(reasons)

    def _has_superblock(self, group: int) -> bool:
        sb = self._sb
        if group == 0:
            return True
        if sb.feature_compat & COMPAT_SPARSE_SUPER2:
            # At most two backups, in the groups the superblock names (0 meaning none).
            return group in sb.backup_bgs
        if not sb.feature_ro_compat & RO_COMPAT_SPARSE_SUPER:
            return True
        return any(_is_power_of(group, base) for base in (3, 5, 7))

    def _descriptor_offset(self, group: int) -> int:
        sb = self._sb
        per_block = self.block_size // self._desc_size
        # The superblock's own block: 1 with 1 KiB blocks, else 0 (it shares block 0).
        superblock_block = SUPERBLOCK_OFFSET // self.block_size
        index, within = divmod(group, per_block)
        if not sb.feature_incompat & INCOMPAT_META_BG or index < sb.first_meta_bg:
            block = superblock_block + 1 + index
        else:
            # meta_bg keeps each descriptor block in the first group of the run it describes.
            first = index * per_block
            block = sb.first_data_block + first * sb.blocks_per_group
            block += self._has_superblock(first)
            if self.block_size == 1024 and first == 0 and sb.first_data_block == 0:
                block += 1
        return block * self.block_size + within * self._desc_size

    def _inode_table(self, group: int) -> int:
        cached = self._descriptors.get(group)
        if cached is not None:
            return cached
        offset = self._descriptor_offset(group)
        raw = read_exact(
            self.device, offset, self._desc_size, f"{self.version} group descriptor {group}"
        )
        table = _u32(raw, 8)
        if self._desc_size >= 64:
            table |= _u32(raw, 0x28) << 32
        table_blocks = -(-self._sb.inodes_per_group * self._sb.inode_size // self.block_size)
        if table == 0 or table + table_blocks > self._sb.blocks_count:
            self._corrupt(f"group {group}'s inode table lies outside the file system")
        self._descriptors.put(group, table)
        return table

    # --- Inodes ------------------------------------------------------------------------------

    def _inode(self, number: int) -> _Inode:
        if not 1 <= number <= self._sb.inodes_count:
            self._corrupt(f"inode number {number} is out of range (1-{self._sb.inodes_count})")
        cached = self._inodes.get(number)
        if cached is not None:
            return cached
        group, index = divmod(number - 1, self._sb.inodes_per_group)
        offset = self._inode_table(group) * self.block_size + index * self._sb.inode_size
        raw = read_exact(self.device, offset, self._sb.inode_size, f"{self.version} inode {number}")
        found = self._parse_inode(number, raw)
        self._inodes.put(number, found)
        return found

    def _parse_inode(self, number: int, raw: bytes) -> _Inode:
        mode = struct.unpack_from("<H", raw, 0)[0]
        size = _u32(raw, 0x4) | _u32(raw, 0x6C) << 32
        sectors, flags = struct.unpack_from("<2I", raw, 0x1C)
        blocks_hi, acl_hi = struct.unpack_from("<2H", raw, 0x74)
        if self._huge_file:
            sectors |= blocks_hi << 32
            if flags & FLAG_HUGE_FILE:
                sectors *= self.block_size // 512
        xattrs = b""
        if len(raw) > GOOD_OLD_INODE_SIZE:
            extra = struct.unpack_from("<H", raw, GOOD_OLD_INODE_SIZE)[0]
            if extra % 4 or GOOD_OLD_INODE_SIZE + extra > len(raw):
                self._corrupt(f"inode {number} has an impossible extra size ({extra})")
            xattrs = raw[GOOD_OLD_INODE_SIZE + extra :]
        return _Inode(
            number=number,
            mode=mode,
            size=size,
            flags=flags,
            sectors=sectors,
            file_acl=_u32(raw, 0x68) | acl_hi << 32,
            i_block=raw[I_BLOCK_OFFSET : I_BLOCK_OFFSET + I_BLOCK_SIZE],
            xattrs=xattrs,
        )

    def _refuse_encrypted(self, inode: _Inode) -> None:
        if inode.flags & FLAG_ENCRYPT:
            self._corrupt(
                f"inode {inode.number} is encrypted (fscrypt); it cannot be read without its key"
            )

    def _is_fast_symlink(self, inode: _Inode) -> bool:
        # The kernel's test: no data blocks besides an extended-attribute block. A blockless
        # link too long for i_block is corrupt; it goes down the data path and reads as holes,
        # which read_link then rejects for its NUL bytes.
        if inode.flags & FLAG_INLINE_DATA:
            return False
        cluster = 1024 << self._sb.log_cluster_size
        if not self._sb.feature_ro_compat & RO_COMPAT_BIGALLOC:
            cluster = self.block_size
        acl_sectors = cluster // 512 if inode.file_acl else 0
        return inode.sectors - acl_sectors == 0 and inode.size < I_BLOCK_SIZE

    # --- Inline data ---------------------------------------------------------------------------

    def _xattr(self, inode: _Inode, index: int, name: bytes) -> bytes | None:
        """An attribute from the in-inode area, or None."""
        area = inode.xattrs
        if len(area) < 4 or _u32(area, 0) != XATTR_MAGIC:
            return None
        values = memoryview(area)[4:]
        position = 0
        while position + 4 <= len(values) and _u32(values, position) != 0:
            if position + _XATTR_ENTRY.size > len(values):
                self._corrupt(f"inode {inode.number} has a truncated extended attribute")
            name_len, name_index, value_offs, value_inum, value_size, _ = _XATTR_ENTRY.unpack_from(
                values, position
            )
            name_end = position + _XATTR_ENTRY.size + name_len
            if name_end > len(values):
                self._corrupt(f"inode {inode.number} has a truncated extended attribute")
            if name_index == index and values[name_end - name_len : name_end] == name:
                if value_inum:
                    self._corrupt(
                        f"inode {inode.number} keeps its inline data in another inode, which "
                        "this reader does not support"
                    )
                if value_offs + value_size > len(values):
                    self._corrupt(
                        f"inode {inode.number} has an extended attribute value past the inode"
                    )
                return bytes(values[value_offs : value_offs + value_size])
            position = (name_end + 3) & ~3
        return None

    def _inline(self, inode: _Inode) -> bytes:
        extra = self._xattr(inode, XATTR_INDEX_SYSTEM, b"data")
        return inode.i_block + (extra or b"")

    def _inline_entries(self, inode: _Inode) -> Iterator[tuple[bytes, int]]:
        # i_block holds the parent's inode number then dirents; system.data holds more dirents.
        yield from self._dirents(inode, inode.i_block, 4, I_BLOCK_SIZE)
        extra = self._xattr(inode, XATTR_INDEX_SYSTEM, b"data")
        if extra:
            yield from self._dirents(inode, extra, 0, len(extra))

    # --- Directories ---------------------------------------------------------------------------

    def _dirents(
        self, directory: _Inode, data: bytes, start: int, end: int
    ) -> Iterator[tuple[bytes, int]]:
        """Live entries of one directory block; htree index blocks and checksum tails are
        dirents with inode 0, so they are skipped like deleted entries."""
        position = start
        while position < end:
            if end - position < DIRENT_MIN:
                self._bad_dirent(directory, "is cut short")
            child, rec_len, name_len, file_type = _DIRENT.unpack_from(data, position)
            if not self._filetype:
                name_len |= file_type << 8
            if rec_len in (0, 65535) and self.block_size >= 65536:
                rec_len = self.block_size
            if rec_len < DIRENT_MIN or rec_len % 4 or position + rec_len > end:
                self._bad_dirent(directory, f"has an impossible record length ({rec_len})")
            if DIRENT_HEADER + name_len > rec_len:
                self._bad_dirent(directory, f"has a name longer than its record ({name_len})")
            if child:
                name = data[position + DIRENT_HEADER : position + DIRENT_HEADER + name_len]
                if name not in (b".", b".."):
                    self._check_entry(directory, name, child)
                    yield name, child
            position += rec_len

    def _check_entry(self, directory: _Inode, name: bytes, child: int) -> None:
        if not name or b"/" in name or b"\0" in name:
            self._bad_dirent(directory, f"has an impossible name {name!r}")
        if child > self._sb.inodes_count:
            self._bad_dirent(directory, f"names inode {child}, past the last inode")

    def _bad_dirent(self, directory: _Inode, problem: str) -> NoReturn:
        self._corrupt(f"an entry in directory inode {directory.number} {problem}")

    # --- Data ----------------------------------------------------------------------------------

    def _block_count(self, inode: _Inode, end: int) -> int:
        blocks = -(-end // self.block_size)
        if blocks > LOGICAL_BLOCK_LIMIT:
            self._corrupt(f"inode {inode.number} has an impossible size ({inode.size})")
        return blocks

    def _read_data(self, inode: _Inode, offset: int, end: int) -> bytes:
        if offset >= end:
            return b""
        self._refuse_encrypted(inode)
        if inode.flags & FLAG_INLINE_DATA:
            data = self._inline(inode)
            if inode.size > len(data):
                self._corrupt(f"inode {inode.number}'s inline data is shorter than its size")
            return data[offset:end]
        first = offset // self.block_size
        last = self._block_count(inode, end)
        parts: list[bytes] = []
        for run in self._runs(inode, first, last):
            if run.physical is None:
                parts.append(bytes(run.count * self.block_size))
            else:
                parts.append(self._read_blocks(inode, run.physical, run.count))
        skip = offset - first * self.block_size
        return b"".join(parts)[skip : skip + end - offset]

    def _read_blocks(self, inode: _Inode, physical: int, count: int) -> bytes:
        if physical + count > self._sb.blocks_count:
            self._corrupt(
                f"inode {inode.number} points at block {physical + count - 1}, past the end of "
                f"the file system ({self._sb.blocks_count} blocks)"
            )
        return read_exact(
            self.device,
            physical * self.block_size,
            count * self.block_size,
            f"{self.version} block {physical} (inode {inode.number})",
        )

    def _metadata_block(self, inode: _Inode, physical: int) -> bytes:
        cached = self._blocks.get(physical)
        if cached is None:
            cached = self._read_blocks(inode, physical, 1)
            self._blocks.put(physical, cached)
        return cached

    def _runs(self, inode: _Inode, first: int, end: int) -> Iterator[_Run]:
        """Runs covering logical blocks [first, end) exactly: adjacent mapped blocks merged so
        that one pread serves each contiguous run, and gaps returned as holes."""
        if inode.flags & FLAG_EXTENTS:
            mapped = self._extent_runs(inode, inode.i_block, None, first, end)
        else:
            mapped = self._map_runs(inode, first, end)
        position = first
        pending: _Run | None = None
        for run in mapped:
            if pending is not None and _continues(pending, run):
                pending = _Run(pending.logical, pending.count + run.count, pending.physical)
            else:
                if pending is not None:
                    yield pending
                if run.logical > position:
                    yield _Run(position, run.logical - position, None)
                pending = run
            position = run.logical + run.count
        if pending is not None:
            yield pending
        if position < end:
            yield _Run(position, end - position, None)

    def _extent_runs(
        self, inode: _Inode, node: bytes, depth: int | None, first: int, end: int
    ) -> Iterator[_Run]:
        """Extents of one tree node clipped to [first, end), in logical order."""
        magic, count, _, node_depth, _ = _EXTENT_HEADER.unpack_from(node, 0)
        if magic != EXTENT_MAGIC:
            self._corrupt(f"inode {inode.number} has a bad extent header (magic 0x{magic:04x})")
        if node_depth > MAX_EXTENT_DEPTH or (depth is not None and node_depth != depth):
            self._corrupt(f"inode {inode.number} has an extent tree of impossible depth")
        if _EXTENT_HEADER.size + count * EXTENT_ENTRY > len(node):
            self._corrupt(f"inode {inode.number} has more extents than its node holds")
        if node_depth == 0:
            yield from self._leaf_runs(inode, node, count, first, end)
        else:
            yield from self._index_runs(inode, node, count, node_depth, first, end)

    def _leaf_runs(
        self, inode: _Inode, node: bytes, count: int, first: int, end: int
    ) -> Iterator[_Run]:
        previous_end = 0
        for index in range(count):
            logical, length, start_hi, start_lo = _EXTENT_LEAF.unpack_from(
                node, _EXTENT_HEADER.size + index * EXTENT_ENTRY
            )
            unwritten = length > MAX_INIT_EXTENT
            if unwritten:
                length -= MAX_INIT_EXTENT
            physical = start_hi << 32 | start_lo
            if length == 0 or logical < previous_end or physical == 0:
                self._corrupt(f"inode {inode.number} has overlapping or empty extents")
            previous_end = logical + length
            if previous_end <= first:
                continue
            if logical >= end:
                break
            start = max(logical, first)
            stop = min(previous_end, end)
            yield _Run(start, stop - start, None if unwritten else physical + start - logical)

    def _index_runs(
        self, inode: _Inode, node: bytes, count: int, depth: int, first: int, end: int
    ) -> Iterator[_Run]:
        entries = [
            _EXTENT_INDEX.unpack_from(node, _EXTENT_HEADER.size + index * EXTENT_ENTRY)
            for index in range(count)
        ]
        for index, (logical, leaf_lo, leaf_hi, _) in enumerate(entries):
            if logical >= end:
                break
            # Each child covers up to its right sibling, so children never overlap: a node
            # visited twice only ever sees disjoint ranges and the walk stays bounded.
            following = entries[index + 1][0] if index + 1 < count else end
            if following <= logical:
                self._corrupt(f"inode {inode.number} has extent index entries out of order")
            start, stop = max(logical, first), min(following, end)
            if start < stop:
                child = self._metadata_block(inode, leaf_hi << 32 | leaf_lo)
                yield from self._extent_runs(inode, child, depth - 1, start, stop)

    def _map_runs(self, inode: _Inode, first: int, end: int) -> Iterator[_Run]:
        """Mapped blocks of an ext2/ext3 block map in [first, end), one per yield."""
        pointers = struct.unpack_from(f"<{DIRECT_BLOCKS + 3}I", inode.i_block)
        for logical in range(first, min(end, DIRECT_BLOCKS)):
            if pointers[logical]:
                yield _Run(logical, 1, pointers[logical])
        base = DIRECT_BLOCKS
        for level in range(1, 4):
            span = self._pointers**level
            if end <= base:
                return
            if first < base + span and pointers[DIRECT_BLOCKS + level - 1]:
                yield from self._indirect_runs(
                    inode, pointers[DIRECT_BLOCKS + level - 1], level, base, first, end
                )
            base += span
        if end > base:
            self._corrupt(f"inode {inode.number} is larger than its block map can address")

    def _indirect_runs(
        self, inode: _Inode, block: int, level: int, base: int, first: int, end: int
    ) -> Iterator[_Run]:
        data = self._metadata_block(inode, block)
        pointers = struct.unpack(f"<{self._pointers}I", data)
        span = self._pointers ** (level - 1)
        low = max(0, (first - base) // span)
        high = min(self._pointers, -(-(end - base) // span))
        for index in range(low, high):
            pointer = pointers[index]
            if not pointer:
                continue
            logical = base + index * span
            if level == 1:
                yield _Run(logical, 1, pointer)
            else:
                yield from self._indirect_runs(inode, pointer, level - 1, logical, first, end)
