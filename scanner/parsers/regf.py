"""Windows registry hives (the regf format): keys, values and their data, read-only.

A hive is a 4 KiB base block followed by hive bins; everything past the base block is addressed
by cell offsets relative to the first bin. A cell is a little-endian int32 size (negative when
allocated) and its data: an `nk` key, a `vk` value, a subkey list (`lf`, `lh`, `li`, or an `ri`
index of such lists), a value list, or `db` big data split into segments.

The hive comes from the image being scanned, so it is untrusted: every offset, count and length
is checked against the hive before it is followed, lists are bounded, and anything malformed
raises `BadHive` naming what and where, never a bare IndexError or struct.error.

Why not a library: libregf-python returned the wrong bytes for a REG_BINARY value stored inline
in its `vk` record, and regipy reads hives only from a path, whole, and read the hive's own
header as the data of a zero-length value; both were tried on hives written by hivex.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

BASE_BLOCK = 4096
_SIGNATURE = b"regf"
# Registry value types (winnt.h).
REG_NONE = 0
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_DWORD_BIG_ENDIAN = 5
REG_LINK = 6
REG_MULTI_SZ = 7
REG_QWORD = 11
TYPE_NAMES = {
    REG_NONE: "REG_NONE",
    REG_SZ: "REG_SZ",
    REG_EXPAND_SZ: "REG_EXPAND_SZ",
    REG_BINARY: "REG_BINARY",
    REG_DWORD: "REG_DWORD",
    REG_DWORD_BIG_ENDIAN: "REG_DWORD_BIG_ENDIAN",
    REG_LINK: "REG_LINK",
    REG_MULTI_SZ: "REG_MULTI_SZ",
    REG_QWORD: "REG_QWORD",
}
_KEY_COMP_NAME = 0x0020
_VALUE_COMP_NAME = 0x0001
_INLINE_DATA = 0x80000000
_NO_CELL = 0xFFFFFFFF
# Hives of format 1.4 and later split data over 16344 bytes into `db` segments.
_BIG_DATA_THRESHOLD = 16344
# Windows caps a key at 512 Ki subkeys and values; a hostile hive claiming more is refused
# before anything is allocated for it.
MAX_ENTRIES = 1 << 19
_NK_FIXED = 76
_VK_FIXED = 20


class BadHive(ValueError):
    """Not a well-formed registry hive."""


@dataclass(frozen=True)
class RegistryValue:
    """A value of a key: its name ("" for the default value), type and raw data.

    The data is read when first asked for: looking a value up by name reads no other value's.
    """

    name: str
    type: int
    read: Callable[[], bytes] = field(repr=False, compare=False)

    @functools.cached_property
    def data(self) -> bytes:
        return self.read()

    @property
    def type_name(self) -> str:
        return TYPE_NAMES.get(self.type, f"type 0x{self.type:x}")

    def as_int(self) -> int | None:
        """A DWORD or QWORD value as an integer; None for other types or short data."""
        if self.type == REG_DWORD and len(self.data) >= 4:
            return int(struct.unpack_from("<I", self.data)[0])
        if self.type == REG_DWORD_BIG_ENDIAN and len(self.data) >= 4:
            return int(struct.unpack_from(">I", self.data)[0])
        if self.type == REG_QWORD and len(self.data) >= 8:
            return int(struct.unpack_from("<Q", self.data)[0])
        return None

    def as_number(self) -> int | None:
        """A DWORD or QWORD, or a string of decimal digits (settings stored either way)."""
        number = self.as_int()
        if number is not None:
            return number
        text = (self.as_text() or "").strip()
        return int(text) if text.isascii() and text.isdigit() else None

    def as_text(self) -> str | None:
        """A REG_SZ or REG_EXPAND_SZ value as text, up to its first NUL; None for other types."""
        if self.type not in (REG_SZ, REG_EXPAND_SZ):
            return None
        return _utf16(self.data).split("\0", 1)[0]

    def as_strings(self) -> tuple[str, ...]:
        """A REG_MULTI_SZ value's strings (REG_SZ gives its one string); () for other types."""
        if self.type == REG_MULTI_SZ:
            return tuple(s for s in _utf16(self.data).split("\0") if s)
        text = self.as_text()
        return (text,) if text else ()


def _utf16(data: bytes) -> str:
    return data[: len(data) & ~1].decode("utf-16-le", errors="replace")


@dataclass(frozen=True)
class _Header:
    primary_sequence: int
    secondary_sequence: int
    major: int
    minor: int
    root: int
    bins_size: int


class Hive:
    """A parsed hive held in memory (hives are read whole: SOFTWARE is tens of MiB at most)."""

    def __init__(self, data: bytes, name: str = "hive") -> None:
        self.name = name
        # Cells are views into the hive, never copies: a hostile hive that points many list
        # entries at one huge cell would otherwise cost entries times cell size.
        self._data = memoryview(data).toreadonly()
        # Value data by value record: entries repeating one record share its bytes.
        self._value_data_cache: dict[int, bytes] = {}
        self._header = _parse_header(data, name)
        end = BASE_BLOCK + self._header.bins_size
        if len(data) < end:
            raise BadHive(
                f"{name} is truncated: {len(data)} bytes, its header says {end} "
                "(copied while Windows was writing it?)"
            )
        self._end = end

    @property
    def dirty(self) -> bool:
        """Whether Windows left changes in the transaction logs (.LOG1/.LOG2) not in this file."""
        return self._header.primary_sequence != self._header.secondary_sequence

    @property
    def sequence_numbers(self) -> tuple[int, int]:
        return (self._header.primary_sequence, self._header.secondary_sequence)

    @property
    def root(self) -> RegistryKey:
        return self._key_at(self._header.root, "")

    def key(self, path: str) -> RegistryKey | None:
        """The key at a backslash-separated path from the root (case-insensitive), or None."""
        return self.root.key(path)

    # --- cells --------------------------------------------------------------------------------

    def _cell(self, offset: int, what: str) -> memoryview:
        """The data of the cell at `offset` (relative to the first bin), without its size."""
        start = BASE_BLOCK + offset
        if offset == _NO_CELL or offset < 0 or start + 4 > self._end:
            raise BadHive(f"{self.name}: {what} points outside the hive (offset 0x{offset:x})")
        (size,) = struct.unpack_from("<i", self._data, start)
        length = abs(size)
        if length < 8 or start + length > self._end:
            raise BadHive(f"{self.name}: {what} at 0x{offset:x} has a bad cell size ({size})")
        return self._data[start + 4 : start + length]

    def _key_at(self, offset: int, parent_path: str) -> RegistryKey:
        cell = self._cell(offset, "a key")
        if len(cell) < _NK_FIXED or bytes(cell[:2]) != b"nk":
            raise BadHive(f"{self.name}: no key record at 0x{offset:x}")
        (flags,) = struct.unpack_from("<H", cell, 2)
        subkey_count, _, subkey_list = struct.unpack_from("<III", cell, 20)
        value_count, value_list = struct.unpack_from("<II", cell, 36)
        (name_length,) = struct.unpack_from("<H", cell, 72)
        raw_name = bytes(cell[_NK_FIXED : _NK_FIXED + name_length])
        if len(raw_name) != name_length:
            raise BadHive(f"{self.name}: the key name at 0x{offset:x} runs past its cell")
        name = _name(raw_name, compressed=bool(flags & _KEY_COMP_NAME))
        path = f"{parent_path}\\{name}" if parent_path else name
        if offset == self._header.root:
            path = ""
        return RegistryKey(
            self, offset, name, path, subkey_count, subkey_list, value_count, value_list
        )

    def _subkey_offsets(self, list_offset: int, count: int, what: str) -> list[int]:
        if count == 0:
            return []
        if count > MAX_ENTRIES:
            raise BadHive(f"{self.name}: {what} claims {count} subkeys")
        offsets = self._list_offsets(list_offset, what, allow_index=True)
        if len(offsets) != count:
            raise BadHive(f"{self.name}: {what} lists {len(offsets)} subkeys, its key says {count}")
        return offsets

    def _list_offsets(self, offset: int, what: str, allow_index: bool) -> list[int]:
        cell = self._cell(offset, f"the subkey list of {what}")
        kind = bytes(cell[:2])
        if len(cell) < 4:
            raise BadHive(f"{self.name}: the subkey list of {what} is cut short")
        (count,) = struct.unpack_from("<H", cell, 2)
        if kind in (b"lf", b"lh"):
            stride = 8
        elif kind in (b"li", b"ri"):
            stride = 4
        else:
            raise BadHive(f"{self.name}: unknown subkey list {kind!r} for {what}")
        if 4 + count * stride > len(cell):
            raise BadHive(f"{self.name}: the subkey list of {what} runs past its cell")
        entries = [struct.unpack_from("<I", cell, 4 + i * stride)[0] for i in range(count)]
        if kind != b"ri":
            return entries
        if not allow_index:
            # An index of indexes is not something Windows writes; following it could loop.
            raise BadHive(f"{self.name}: nested subkey index for {what}")
        found: list[int] = []
        for entry in entries:
            found.extend(self._list_offsets(entry, what, allow_index=False))
            if len(found) > MAX_ENTRIES:
                raise BadHive(f"{self.name}: {what} lists more than {MAX_ENTRIES} subkeys")
        return found

    def _values(self, key: RegistryKey) -> Iterator[RegistryValue]:
        if key.value_count == 0:
            return
        what = f"the values of {key.path or '(root)'}"
        if key.value_count > MAX_ENTRIES:
            raise BadHive(f"{self.name}: {what} claims {key.value_count} values")
        cell = self._cell(key.value_list, what)
        if key.value_count * 4 > len(cell):
            raise BadHive(f"{self.name}: {what}: the value list runs past its cell")
        for index in range(key.value_count):
            (offset,) = struct.unpack_from("<I", cell, index * 4)
            yield self._value_at(offset, what)

    def _value_at(self, offset: int, what: str) -> RegistryValue:
        cell = self._cell(offset, what)
        if len(cell) < _VK_FIXED or bytes(cell[:2]) != b"vk":
            raise BadHive(f"{self.name}: {what}: no value record at 0x{offset:x}")
        name_length, size, data_offset, value_type, flags = struct.unpack_from("<HIIIH", cell, 2)
        raw_name = bytes(cell[_VK_FIXED : _VK_FIXED + name_length])
        if len(raw_name) != name_length:
            raise BadHive(f"{self.name}: {what}: a value name runs past its cell")
        name = _name(raw_name, compressed=bool(flags & _VALUE_COMP_NAME))

        def read() -> bytes:
            cached = self._value_data_cache.get(offset)
            if cached is None:
                cached = self._value_data(size, data_offset, what, name)
                self._value_data_cache[offset] = cached
            return cached

        return RegistryValue(name, value_type, read)

    def _value_data(self, size: int, data_offset: int, what: str, name: str) -> bytes:
        if size & _INLINE_DATA:
            # Up to four bytes live in the data-offset field itself.
            length = size & ~_INLINE_DATA
            return struct.pack("<I", data_offset)[: min(length, 4)]
        if size == 0:
            return b""
        where = f"{what}: the data of {name or '(default)'}"
        if size > self._end:
            raise BadHive(f"{self.name}: {where} claims {size} bytes, more than the hive")
        cell = self._cell(data_offset, where)
        if (
            size > _BIG_DATA_THRESHOLD
            and (self._header.major, self._header.minor) >= (1, 4)
            and bytes(cell[:2]) == b"db"
        ):
            return self._big_data(cell, size, where)
        if size > len(cell):
            raise BadHive(f"{self.name}: {where} runs past its cell")
        return bytes(cell[:size])

    def _big_data(self, cell: memoryview, size: int, where: str) -> bytes:
        if len(cell) < 8:
            raise BadHive(f"{self.name}: {where}: the big-data record is cut short")
        count, segments_offset = struct.unpack_from("<HI", cell, 2)
        segments = self._cell(segments_offset, where)
        if count * 4 > len(segments):
            raise BadHive(f"{self.name}: {where}: the segment list runs past its cell")
        parts: list[memoryview] = []
        remaining = size
        for index in range(count):
            if remaining <= 0:
                break
            (offset,) = struct.unpack_from("<I", segments, index * 4)
            piece = self._cell(offset, where)[: min(_BIG_DATA_THRESHOLD, remaining)]
            parts.append(piece)
            remaining -= len(piece)
        if remaining > 0:
            raise BadHive(f"{self.name}: {where}: its segments hold less than {size} bytes")
        return b"".join(parts)


@dataclass(frozen=True)
class RegistryKey:
    """A key of a hive; subkeys and values are read when asked for."""

    hive: Hive = field(repr=False)
    offset: int
    name: str
    path: str
    subkey_count: int
    subkey_list: int
    value_count: int
    value_list: int

    def subkeys(self) -> Iterator[RegistryKey]:
        what = self.path or "(root)"
        for offset in self.hive._subkey_offsets(self.subkey_list, self.subkey_count, what):
            yield self.hive._key_at(offset, self.path)

    def subkey(self, name: str) -> RegistryKey | None:
        """The direct subkey called `name`, compared without case as Windows does."""
        wanted = windows_upper(name)
        return next((k for k in self.subkeys() if windows_upper(k.name) == wanted), None)

    def key(self, path: str) -> RegistryKey | None:
        """A key below this one, by backslash-separated path."""
        current = self
        for part in (p for p in path.split("\\") if p):
            found = current.subkey(part)
            if found is None:
                return None
            current = found
        return current

    def values(self) -> Iterator[RegistryValue]:
        return self.hive._values(self)

    def value(self, name: str) -> RegistryValue | None:
        """The value called `name` ("" for the default value), case-insensitively."""
        wanted = windows_upper(name)
        return next((v for v in self.values() if windows_upper(v.name) == wanted), None)

    def int_value(self, name: str) -> int | None:
        found = self.value(name)
        return found.as_int() if found is not None else None

    def text_value(self, name: str) -> str | None:
        found = self.value(name)
        return found.as_text() if found is not None else None


def windows_upper(name: str) -> str:
    """A name as Windows compares registry names: each character upper-cased on its own.

    str.casefold and str.upper map one character to several ("ß" to "ss"/"SS"), which would
    make "Größe" and "GRÖSSE" one name; Windows keeps them apart.
    """
    return "".join(upper if len(upper := ch.upper()) == 1 else ch for ch in name)


def _name(raw: bytes, compressed: bool) -> str:
    # A "compressed" name is one byte per character (Latin-1); otherwise UTF-16LE.
    return raw.decode("latin-1") if compressed else _utf16(raw)


def _parse_header(data: bytes, name: str) -> _Header:
    if len(data) < BASE_BLOCK:
        raise BadHive(f"{name} is not a registry hive: {len(data)} bytes, shorter than its header")
    if data[:4] != _SIGNATURE:
        raise BadHive(f"{name} is not a registry hive (no 'regf' signature)")
    primary, secondary = struct.unpack_from("<II", data, 4)
    major, minor, _file_type, _file_format, root, bins_size = struct.unpack_from("<6I", data, 20)
    (stored,) = struct.unpack_from("<I", data, 508)
    computed = 0
    for (word,) in struct.iter_unpack("<I", data[:508]):
        computed ^= word
    computed = {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(computed, computed)
    if stored != computed:
        raise BadHive(f"{name}: the header checksum does not match (damaged hive)")
    if major != 1:
        raise BadHive(f"{name}: unsupported hive format {major}.{minor}")
    if bins_size % BASE_BLOCK:
        raise BadHive(f"{name}: hive bins size {bins_size} is not a multiple of 4096")
    return _Header(primary, secondary, major, minor, root, bins_size)


def control_set(system: Hive) -> RegistryKey:
    """The SYSTEM hive's current control set: `Select\\Current` names it (ControlSet00N)."""
    select = system.key("Select")
    current = select.int_value("Current") if select is not None else None
    if current is None:
        raise BadHive(f"{system.name} has no Select\\Current value naming its control set")
    found = system.key(f"ControlSet{current:03d}")
    if found is None:
        raise BadHive(
            f"{system.name}: Select\\Current is {current}, but ControlSet{current:03d} is missing"
        )
    return found
