"""NTFS, read through libfsntfs (the `pyfsntfs` binding of the PyPI package libfsntfs-python).

libfsntfs decodes the MFT, directory indexes ($I30) and file data, including LZNT1-compressed,
sparse and WOF-compressed ("CompactOS": XPRESS or LZX in the WofCompressedData stream) files.
This module adds what the scanner needs around it:

- inodes are MFT entry numbers; the root directory is entry 5;
- every libfsntfs failure, and every failure of the device underneath, becomes a one-line
  DiskError naming the file system and the operation;
- reparse points, which the binding does not expose beyond a symbolic link's raw target: the
  entry's own MFT record is read (through libfsntfs's view of $MFT) and its $REPARSE_POINT
  attribute decoded here, so symbolic links and junctions become symlinks whose targets are
  paths inside the image ("\\??\\C:\\Windows" → "/Windows"), and other reparse points are told
  apart (see `NtfsFileSystem.node`);
- the volume's dirty flag, from $Volume's $VOLUME_INFORMATION, decoded the same way;
- names compared as Windows compares them: `fold` maps a name through the volume's own $UpCase
  table (NTFS names are case-insensitive; `case_insensitive` says so to the tree).
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyfsntfs  # type: ignore[import-not-found]  # libfsntfs-python ships no type stubs

from scanner.disk.device import BlockDevice, DiskError, read_exact
from scanner.disk.fileobj import DeviceFile
from scanner.disk.filesystem import Kind, Node
from scanner.disk.libyal import ENTRY_CACHE, LibyalFileSystem

MAGIC = b"NTFS    "
ROOT = 5
# MFT entries 0-23 are reserved for the metafiles ($MFT … $Extend and spares): a "$" name at the
# root pointing below this is file-system bookkeeping, while "$Recycle.Bin" or "$WinREAgent"
# (ordinary directories with ordinary entry numbers) are listed.
FIRST_USER_ENTRY = 24
# MFT entry 3 holds the volume's name and flags; 10 the upper-case table.
VOLUME_ENTRY = 3
UPCASE_ENTRY = 10
# Reparse data is at most 16 KiB (MAXIMUM_REPARSE_DATA_BUFFER_SIZE); a symlink target is less.
REPARSE_MAX = 16 * 1024

# Reparse tags (ntifs.h).
TAG_MOUNT_POINT = 0xA0000003  # a junction, or a volume mount point
TAG_SYMLINK = 0xA000000C
TAG_LX_SYMLINK = 0xA000001D  # a symbolic link made by WSL: its target is a UTF-8 POSIX path
TAG_WOF = 0x80000017  # Windows Overlay Filter: CompactOS compression, or WIMBoot
# Tags with this bit make the entry stand for another name (a link); without it, the entry's
# own contents are still there (cloud placeholders, deduplicated or WOF-compressed files).
TAG_NAME_SURROGATE = 0x20000000
SYMLINK_FLAG_RELATIVE = 0x1

# $STANDARD_INFORMATION file attribute flags.
ATTR_REPARSE_POINT = 0x400
ATTR_ENCRYPTED = 0x4000

# MFT attribute types.
_ATTR_VOLUME_INFORMATION = 0x70
_ATTR_REPARSE_POINT = 0xC0
_ATTR_END = 0xFFFFFFFF
# Update sequence arrays protect every 512 bytes of a record, whatever the sector size.
_FIXUP_STRIDE = 512


def probe(device: BlockDevice) -> bool:
    """Whether the device starts with an NTFS boot sector ("NTFS    " at byte 3)."""
    return device.size >= 512 and device.pread(3, 8) == MAGIC


def _utf8(text: str) -> bytes:
    # NTFS names are UTF-16 and may hold unpaired surrogates: kept, not replaced.
    return text.encode("utf-8", "surrogatepass")


def _utf16(data: bytes) -> str:
    return data.decode("utf-16-le", "surrogatepass")


@dataclass(frozen=True)
class _Attribute:
    type: int
    name: str
    # The value of a resident attribute; None when it lives in clusters elsewhere.
    value: bytes | None


def parse_record(data: bytes) -> list[_Attribute]:
    """The attributes of one raw MFT record ("FILE", update sequence applied); ValueError when
    the record is corrupt."""
    if len(data) < 48 or data[:4] != b"FILE":
        raise ValueError("the MFT record has no FILE signature")
    usa_offset, usa_count = struct.unpack_from("<HH", data, 4)
    if (
        usa_count < 2
        or (usa_count - 1) * _FIXUP_STRIDE != len(data)
        or usa_offset + 2 * usa_count > len(data)
    ):
        raise ValueError("the MFT record's update sequence is corrupt")
    record = bytearray(data)
    check = data[usa_offset : usa_offset + 2]
    for n in range(1, usa_count):
        end = n * _FIXUP_STRIDE
        if record[end - 2 : end] != check:
            # A torn write: this part of the record is from another update than the rest.
            raise ValueError("the MFT record's update sequence does not match (a torn write)")
        record[end - 2 : end] = data[usa_offset + 2 * n : usa_offset + 2 * n + 2]
    (first,) = struct.unpack_from("<H", record, 0x14)
    (used,) = struct.unpack_from("<I", record, 0x18)
    end = min(used, len(record))
    attributes: list[_Attribute] = []
    position = first
    while position + 8 <= end:
        kind, length = struct.unpack_from("<II", record, position)
        if kind == _ATTR_END:
            return attributes
        if length < 24 or length % 8 or position + length > end:
            raise ValueError(f"an attribute at byte {position} of the MFT record is corrupt")
        non_resident, name_length = record[position + 8], record[position + 9]
        (name_offset,) = struct.unpack_from("<H", record, position + 10)
        if name_offset + 2 * name_length > length:
            raise ValueError(f"an attribute name at byte {position} of the MFT record is corrupt")
        name = _utf16(
            bytes(record[position + name_offset : position + name_offset + 2 * name_length])
        )
        value: bytes | None = None
        if not non_resident:
            value_length, value_offset = struct.unpack_from("<IH", record, position + 16)
            if value_offset + value_length > length:
                raise ValueError(
                    f"an attribute value at byte {position} of the MFT record is corrupt"
                )
            value = bytes(record[position + value_offset : position + value_offset + value_length])
        attributes.append(_Attribute(kind, name, value))
        position += length
    raise ValueError("the MFT record's attribute list has no end marker")


def _windows_path_in_image(path: str, relative: bool) -> str:
    """A Windows link target as a path in the image's own tree.

    "\\??\\C:\\Windows\\System32" → "/Windows/System32": the drive letter is dropped, since the
    volume cannot know which letter it had (the system volume is C: on every AMI); relative
    targets keep their form. Targets on other devices ("\\??\\Volume{…}\\", "\\??\\UNC\\…")
    come out as absolute paths that do not exist in the image, so they dangle as they would.
    """
    if not relative:
        for prefix in ("\\??\\", "\\\\?\\", "\\\\.\\", "\\DosDevices\\"):
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        if re.match(r"^[A-Za-z]:(\\|$)", path):
            path = path[2:] or "\\"
        elif not path.startswith("\\"):
            # "Volume{…}\\", "UNC\\server\\share": outside this volume.
            path = "\\??\\" + path
    return path.replace("\\", "/")


def link_target(tag: int, data: bytes) -> bytes | None:
    """The target of a symbolic-link, junction or WSL-symlink reparse point (the reparse data
    after its 8-byte header), as a path in the image; None for other tags. ValueError when the
    data is corrupt."""
    if tag == TAG_LX_SYMLINK:
        # A format version (2), then the POSIX target as UTF-8, unterminated.
        if len(data) < 4:
            raise ValueError("the WSL symbolic link's data is truncated")
        return data[4:]
    if tag not in (TAG_SYMLINK, TAG_MOUNT_POINT):
        return None
    # Substitute name and print name, (offset, length) each in bytes into the path buffer,
    # which follows the four fields and, for a symbolic link, a flags word.
    buffer_at = 12 if tag == TAG_SYMLINK else 8
    if len(data) < buffer_at:
        raise ValueError("the link's reparse data is truncated")
    sub_offset, sub_length, print_offset, print_length = struct.unpack_from("<HHHH", data, 0)
    relative = False
    if tag == TAG_SYMLINK:
        (flags,) = struct.unpack_from("<I", data, 8)
        relative = bool(flags & SYMLINK_FLAG_RELATIVE)
    paths = data[buffer_at:]
    # The substitute name is what Windows follows; the print name is for display, used only
    # when the substitute is absent.
    offset, length = (sub_offset, sub_length) if sub_length else (print_offset, print_length)
    if length == 0 or length % 2 or offset + length > len(paths):
        raise ValueError("the link's target lies outside its reparse data")
    target = _utf16(paths[offset : offset + length])
    return _utf8(_windows_path_in_image(target, relative))


@dataclass(frozen=True)
class _Info:
    """What `node` and `read` need of an MFT entry, decided once."""

    kind: Kind
    size: int
    # Why its data cannot be read ("" when it can).
    unreadable: str = ""
    target: bytes = b""


class NtfsFileSystem(LibyalFileSystem):
    """An NTFS file system on a BlockDevice, read-only, through libfsntfs.

    Inodes are MFT entry numbers. Only a file's unnamed $DATA stream is read (alternate data
    streams are not); sparse runs read as zeros; LZNT1- and WOF-compressed files are
    decompressed; EFS-encrypted files, and WOF files whose data lives in an external WIM
    (WIMBoot), are listed but raise DiskError when read. DOS 8.3 short names are not listed
    (libfsntfs folds a short-name index entry into its long name's). Calls are serialised:
    libfsntfs and the file object it reads are not thread-safe.

    `dirty` reports the volume's dirty flag (set while Windows has it mounted, and left set by
    a crash or a pending chkdsk); $LogFile is never replayed. A hibernated Windows (hiberfil.sys
    with fast startup) is not detected.
    """

    # NTFS looks names up case-insensitively (through $UpCase): see `fold`.
    case_insensitive = True

    def __init__(self, device: BlockDevice, description: str | None = None) -> None:
        boot = read_exact(device, 0, 512, "the NTFS boot sector")
        if boot[3:11] != MAGIC:
            raise DiskError(
                f"{device.description}: no NTFS boot sector (no 'NTFS    ' signature at byte 3)"
            )
        super().__init__(device, description or f"NTFS file system on {device.description}")
        self._infos: OrderedDict[int, _Info] = OrderedDict()
        self._upcase: array[int] | None = None
        self._volume: Any = pyfsntfs.volume()
        self._call(
            "cannot open the volume", self._volume.open_file_object, DeviceFile(self._device)
        )
        self._record_size: int = self._call(
            "cannot open the volume", self._volume.get_mft_entry_size
        )
        if self._record_size not in {1 << n for n in range(8, 17)}:
            raise DiskError(
                f"{self.description}: cannot open the volume: MFT records of "
                f"{self._record_size} bytes are impossible"
            )
        self.root = ROOT
        if self.node(ROOT).kind is not Kind.DIRECTORY:
            raise DiskError(f"{self.description}: MFT entry 5 (the root) is not a directory")
        self.dirty = self._volume_state()

    # -- plumbing -------------------------------------------------------------------------------

    def _entry(self, index: int) -> Any:
        """The libfsntfs file_entry of an MFT entry, from a small LRU (opening one reads the
        record, its attribute list and extension records, and a directory's index root)."""
        with self._lock:
            entry = self._cached(index)
            if entry is not None:
                return entry
            what = f"cannot read MFT entry {index}"
            if not 0 <= index < 1 << 48:
                raise self._fail(what, "no such entry")
            entry = self._call(what, self._volume.get_file_entry, index)
            if entry is None:
                raise self._fail(what, "not found")
            if not self._call(what, entry.is_allocated):
                raise self._fail(what, "it is not in use")
            if self._call(what, entry.get_base_record_file_reference):
                raise self._fail(what, "it is an extension of another entry, not a file")
            self._remember(index, entry)
            return entry

    def _record(self, index: int) -> list[_Attribute]:
        """The attributes in an entry's own MFT record (not in its extension records), read
        through libfsntfs's view of $MFT (which may itself be fragmented)."""
        what = f"cannot read MFT entry {index}"
        mft = self._entry(0)
        offset = index * self._record_size
        data: bytes = self._call(what, mft.read_buffer_at_offset, self._record_size, offset)
        if len(data) != self._record_size:
            raise self._fail(what, "it lies past the end of the MFT")
        try:
            return parse_record(data)
        except ValueError as exc:
            raise self._fail(what, str(exc)) from None

    def _info(self, index: int) -> _Info:
        with self._lock:
            info = self._infos.get(index)
            if info is not None:
                self._infos.move_to_end(index)
                return info
            info = self._decide(index)
            self._infos[index] = info
            while len(self._infos) > ENTRY_CACHE * 8:
                self._infos.popitem(last=False)
            return info

    def _decide(self, index: int) -> _Info:
        what = f"cannot read MFT entry {index}"
        entry = self._entry(index)
        flags: int = self._call(what, entry.get_file_attribute_flags) or 0
        is_directory: bool = self._call(what, entry.has_directory_entries_index)
        size: int = self._call(what, entry.get_size) if not is_directory else 0
        if not 0 <= size < 1 << 63:
            raise self._fail(what, f"an impossible size {size}")
        unreadable = "it is encrypted (EFS)" if flags & ATTR_ENCRYPTED else ""
        if not flags & ATTR_REPARSE_POINT:
            kind = Kind.DIRECTORY if is_directory else Kind.FILE
            return _Info(kind, size, unreadable)
        tag, data = self._reparse_point(index, entry)
        if tag is None:
            # Reparse data that is not in the base record (non-resident, or moved to an
            # extension record): libfsntfs still knows a symbolic link's target.
            raw: str | None = self._call(what, entry.get_symbolic_link_target)
            if raw is None:
                return _Info(Kind.DIRECTORY if is_directory else Kind.OTHER, size)
            relative = not re.match(r"^(\\\?\?\\|\\\\\?\\|[A-Za-z]:\\)", raw)
            target = _utf8(_windows_path_in_image(raw, relative))
            return _Info(Kind.SYMLINK, len(target), target=target)
        try:
            target_or_none = link_target(tag, data)
        except ValueError as exc:
            raise self._fail(what, str(exc)) from None
        if target_or_none is not None:
            return _Info(Kind.SYMLINK, len(target_or_none), target=target_or_none)
        if tag & TAG_NAME_SURROGATE:
            # Some other kind of link (a container layer, a global reparse point): its
            # contents are elsewhere.
            return _Info(Kind.OTHER, size)
        if is_directory:
            # A cloud-files or similar directory: its entries are still on the volume.
            return _Info(Kind.DIRECTORY, 0)
        if tag == TAG_WOF:
            return _Info(Kind.FILE, size, unreadable or self._wof_problem(index, entry, data))
        # Deduplicated files, cloud placeholders, app-execution aliases: their unnamed $DATA
        # does not hold their contents.
        return _Info(Kind.OTHER, size)

    def _reparse_point(self, index: int, entry: Any) -> tuple[int | None, bytes]:
        """(tag, data after the 8-byte header) of the entry's $REPARSE_POINT when it is in the
        base record, else (None, b"")."""
        for attribute in self._record(index):
            if attribute.type != _ATTR_REPARSE_POINT or attribute.value is None:
                continue
            value = attribute.value
            if len(value) < 8:
                raise self._fail(f"cannot read MFT entry {index}", "its reparse point is truncated")
            tag, length = struct.unpack_from("<IH", value, 0)
            if 8 + length > len(value) or length > REPARSE_MAX:
                raise self._fail(
                    f"cannot read MFT entry {index}", "its reparse data overruns its attribute"
                )
            return tag, value[8 : 8 + length]
        return None, b""

    def _wof_problem(self, index: int, entry: Any, data: bytes) -> str:
        """Why a WOF file cannot be read, or "" when libfsntfs decompresses it: the data must be
        in the file's own WofCompressedData stream (not in a WIM file elsewhere), compressed
        with XPRESS (4, 8 or 16 KiB) or LZX."""
        if len(data) < 16:
            return "its WOF reparse data is truncated"
        _version, provider, _file_version, algorithm = struct.unpack_from("<IIII", data, 0)
        if provider != 2:
            return "its contents are in a WIM file outside the volume (WIMBoot)"
        if algorithm not in (0, 1, 2, 3):
            return f"it is WOF-compressed with unknown algorithm {algorithm}"
        has_stream: bool = self._call(
            f"cannot read MFT entry {index}",
            entry.has_alternate_data_stream_by_name,
            "WofCompressedData",
        )
        return "" if has_stream else "it is WOF-compressed but has no WofCompressedData stream"

    def _volume_state(self) -> str:
        try:
            attributes = self._record(VOLUME_ENTRY)
        except DiskError as exc:
            return f"{exc}; whether the volume was cleanly unmounted is unknown"
        for attribute in attributes:
            if attribute.type == _ATTR_VOLUME_INFORMATION and attribute.value is not None:
                if len(attribute.value) < 12:
                    break
                # 8 reserved bytes, the NTFS version (major, minor), then the flags.
                (flags,) = struct.unpack_from("<H", attribute.value, 10)
                if flags & 0x0001:
                    return (
                        f"{self.description}: the volume is marked dirty (Windows did not "
                        "shut down cleanly, or a chkdsk is pending; $LogFile is not replayed "
                        "here: the latest changes may be missing)"
                    )
                return ""
        return (
            f"{self.description}: $Volume has no volume information; whether the volume was "
            "cleanly unmounted is unknown"
        )

    # -- the FileSystem protocol ----------------------------------------------------------------

    def node(self, inode: int) -> Node:
        info = self._info(inode)
        return Node(inode, info.kind, info.size)

    def entries(self, directory: int) -> Iterator[tuple[bytes, int]]:
        if self._info(directory).kind is not Kind.DIRECTORY:
            raise DiskError(f"{self.description}: MFT entry {directory} is not a directory")
        # The whole listing is taken before the first entry is yielded: the lock is not held
        # across yields, and a failure part-way yields nothing rather than half a directory.
        listed = self._listing(directory)
        yield from listed

    def _listing(self, directory: int) -> list[tuple[bytes, int]]:
        what = f"cannot list directory MFT entry {directory}"
        entry = self._entry(directory)
        count: int = self._call(what, entry.get_number_of_sub_file_entries)
        listed: list[tuple[bytes, int]] = []
        seen: set[tuple[bytes, int]] = set()
        for position in range(count):
            child = self._call(what, entry.get_sub_file_entry, position)
            name: str | None = self._call(what, child.get_name)
            reference: int = self._call(what, child.get_file_reference)
            if name is None:
                raise self._fail(what, f"entry {position} has no name")
            # A file reference: the entry number in the low 48 bits, a sequence number above.
            index = reference & ((1 << 48) - 1)
            encoded = _utf8(name)
            if encoded in (b".", b"..") or not encoded or b"/" in encoded or b"\0" in encoded:
                continue
            if directory == ROOT and encoded.startswith(b"$") and index < FIRST_USER_ENTRY:
                continue
            if (encoded, index) in seen:
                continue
            seen.add((encoded, index))
            listed.append((encoded, index))
            with self._lock:
                # The child is opened already: keep it for the node() that follows a listing.
                if index not in self._entries:
                    self._remember(index, child)
        return listed

    def read(self, inode: int, offset: int, length: int) -> bytes:
        info = self._info(inode)
        if info.kind is not Kind.FILE:
            raise DiskError(f"{self.description}: MFT entry {inode} is not a regular file")
        what = f"cannot read MFT entry {inode}"
        if info.unreadable:
            raise self._fail(what, info.unreadable)
        return self._read_entry(self._entry(inode), what, offset, length, info.size)

    def read_link(self, inode: int) -> bytes:
        info = self._info(inode)
        if info.kind is not Kind.SYMLINK:
            raise DiskError(f"{self.description}: MFT entry {inode} is not a symbolic link")
        return info.target

    # -- case-insensitive names -----------------------------------------------------------------

    def fold(self, name: bytes) -> bytes:
        """`name` as Windows compares it: each UTF-16 unit through the volume's $UpCase table.
        Two names are the same file name on this volume when their folds are equal."""
        try:
            units = name.decode("utf-8", "surrogatepass").encode("utf-16-le", "surrogatepass")
        except UnicodeError:
            # Not a name NTFS can hold: it folds to itself (and matches nothing).
            return name
        table = self._upcase_table()
        codes = array("H", units)
        if sys.byteorder == "big":
            codes.byteswap()
        folded = array("H", (table[code] for code in codes))
        if sys.byteorder == "big":
            folded.byteswap()
        return _utf8(_utf16(folded.tobytes()))

    def _upcase_table(self) -> array[int]:
        """$UpCase (65,536 little-endian units), or, when it is unreadable, Python's own
        one-to-one upper-casing of the Basic Multilingual Plane."""
        with self._lock:
            if self._upcase is not None:
                return self._upcase
            table = array("H")
            try:
                data = self.read(UPCASE_ENTRY, 0, 65536 * 2)
            except DiskError:
                data = b""
            if len(data) == 65536 * 2:
                table.frombytes(data)
                if sys.byteorder == "big":
                    table.byteswap()
            else:
                for code in range(65536):
                    upper = chr(code).upper()
                    single = len(upper) == 1 and ord(upper) < 65536
                    table.append(ord(upper) if single else code)
            self._upcase = table
            return table
