"""Windows registry hive files for tests, made without Windows.

hivex can change a hive but not create one, so `empty_hive` writes the smallest valid regf file
by hand (a base block, one hbin with the root key and its security cell); `write_hive` then fills
it by merging a generated .reg file with `hivexregedit --merge`, so every byte of key and value
storage is laid out by hivex itself, the way its readers (and Windows) expect.
"""

from __future__ import annotations

import struct
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.diskimages import tool

# --- value types (REG_* constants) --------------------------------------------------------------

REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_MULTI_SZ = 7
REG_QWORD = 11


def _utf16z(text: str) -> bytes:
    return (text + "\0").encode("utf-16-le")


@dataclass(frozen=True)
class Dword:
    """REG_DWORD: an unsigned 32-bit integer."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value <= 0xFFFFFFFF:
            raise ValueError(f"a DWORD holds 0..0xFFFFFFFF, not {self.value}")

    @property
    def type(self) -> int:
        return REG_DWORD

    @property
    def data(self) -> bytes:
        return struct.pack("<I", self.value)


@dataclass(frozen=True)
class Qword:
    """REG_QWORD: an unsigned 64-bit integer."""

    value: int

    def __post_init__(self) -> None:
        if not 0 <= self.value < 1 << 64:
            raise ValueError(f"a QWORD holds 0..2**64-1, not {self.value}")

    @property
    def type(self) -> int:
        return REG_QWORD

    @property
    def data(self) -> bytes:
        return struct.pack("<Q", self.value)


@dataclass(frozen=True)
class Sz:
    """REG_SZ: text, stored UTF-16LE with a terminating NUL."""

    text: str

    @property
    def type(self) -> int:
        return REG_SZ

    @property
    def data(self) -> bytes:
        return _utf16z(self.text)


@dataclass(frozen=True)
class ExpandSz:
    """REG_EXPAND_SZ: text with %VARIABLES% that readers expand."""

    text: str

    @property
    def type(self) -> int:
        return REG_EXPAND_SZ

    @property
    def data(self) -> bytes:
        return _utf16z(self.text)


@dataclass(frozen=True)
class MultiSz:
    """REG_MULTI_SZ: NUL-terminated strings followed by one more NUL."""

    strings: tuple[str, ...]

    @property
    def type(self) -> int:
        return REG_MULTI_SZ

    @property
    def data(self) -> bytes:
        return b"".join(_utf16z(s) for s in self.strings) + "\0".encode("utf-16-le")


@dataclass(frozen=True)
class Binary:
    """REG_BINARY: bytes as they are."""

    bytes_: bytes

    @property
    def type(self) -> int:
        return REG_BINARY

    @property
    def data(self) -> bytes:
        return self.bytes_


@dataclass(frozen=True)
class Raw:
    """Any value type with any data: the SAM's Names keys, for one, keep a RID as the type of an
    empty default value."""

    value_type: int
    bytes_: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.value_type <= 0xFFFFFFFF:
            raise ValueError(f"a value type is a DWORD, not {self.value_type}")

    @property
    def type(self) -> int:
        return self.value_type

    @property
    def data(self) -> bytes:
        return self.bytes_


RegValue = Dword | Qword | Sz | ExpandSz | MultiSz | Binary | Raw
# Key path ("ControlSet001\\Control\\Terminal Server", "" for the root) -> value name ("" for the
# default value) -> value.
Keys = Mapping[str, Mapping[str, RegValue]]


# --- an empty hive --------------------------------------------------------------------------------

_BLOCK = 4096
_HBIN_HEADER = 0x20
# The root key's cell offset, relative to the first hbin (file offset 0x1000).
_ROOT_OFFSET = _HBIN_HEADER
# nk flags: KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME (the root of a hive, ASCII name).
_ROOT_FLAGS = 0x2C
_NONE = 0xFFFFFFFF
# The fixed part of an nk cell (signature to class-name length), before the name.
_NK_FIXED = struct.Struct("<2sHQIIIIIIIIIIIIIIIHH")
# SECURITY_DESCRIPTOR_RELATIVE: revision 1, control SE_SELF_RELATIVE, no owner, group, SACL or DACL.
_EMPTY_DESCRIPTOR = struct.pack("<BBHIIII", 1, 0, 0x8000, 0, 0, 0, 0)


def _cell(payload: bytes) -> bytes:
    """An allocated cell: negative size (size field included), 8-byte aligned."""
    size = (len(payload) + 4 + 7) // 8 * 8
    return struct.pack("<i", -size) + payload.ljust(size - 4, b"\0")


def _checksum(base_block: bytes) -> int:
    """The base block's checksum: XOR of its first 127 dwords, never 0 or 0xFFFFFFFF."""
    value = 0
    for (dword,) in struct.iter_unpack("<I", base_block[:508]):
        value ^= dword
    return {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)


def empty_hive_bytes(root_name: str = "ROOT") -> bytes:
    """A valid regf hive with one key, the root, and nothing in it."""
    name = root_name.encode("ascii")
    nk_size = len(_cell(b"\0" * (_NK_FIXED.size + len(name))))
    sk_offset = _ROOT_OFFSET + nk_size
    nk = _NK_FIXED.pack(
        b"nk",
        _ROOT_FLAGS,
        0,  # last written
        0,  # access bits
        _NONE,  # parent: none for the root
        0,  # subkeys
        0,  # volatile subkeys
        _NONE,  # subkey list
        _NONE,  # volatile subkey list
        0,  # values
        _NONE,  # value list
        sk_offset,  # security
        _NONE,  # class name
        0,  # longest subkey name
        0,  # longest class name
        0,  # longest value name
        0,  # longest value data
        0,  # work var
        len(name),
        0,  # class name length
    )
    # The one security cell is its own list (flink and blink point at itself), used once.
    sk_header = struct.pack("<2sHIIII", b"sk", 0, sk_offset, sk_offset, 1, len(_EMPTY_DESCRIPTOR))
    sk = sk_header + _EMPTY_DESCRIPTOR
    cells = _cell(nk + name) + _cell(sk)
    free = _BLOCK - _HBIN_HEADER - len(cells)
    hbin = (
        struct.pack("<4sII8sQI", b"hbin", 0, _BLOCK, b"\0" * 8, 0, 0)
        + cells
        # A free cell (positive size) takes the rest of the bin.
        + struct.pack("<i", free).ljust(free, b"\0")
    )
    base = bytearray(_BLOCK)
    # Sequence numbers equal: the hive was written out completely (no pending log replay).
    struct.pack_into(
        "<4sIIQIIIIIII", base, 0, b"regf", 1, 1, 0, 1, 5, 0, 1, _ROOT_OFFSET, _BLOCK, 1
    )
    struct.pack_into("<I", base, 508, _checksum(bytes(base)))
    return bytes(base) + hbin


def empty_hive(path: Path, root_name: str = "ROOT") -> Path:
    """Write an empty hive (hivex ships none and cannot create one)."""
    path.write_bytes(empty_hive_bytes(root_name))
    return path


# --- .reg files ------------------------------------------------------------------------------------


def _quoted(text: str) -> str:
    if not text.isascii() or not text.isprintable():
        # hivexregedit reads .reg files as bytes: only printable ASCII survives a quoted string.
        raise ValueError(f"a key or value name must be printable ASCII: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hex(data: bytes) -> str:
    return ",".join(f"{b:02x}" for b in data)


def _reg_value(value: RegValue) -> str:
    """A value as the right-hand side of a .reg line."""
    if isinstance(value, Dword):
        return f"dword:{value.value:08x}"
    if isinstance(value, Sz) and value.text.isascii() and value.text.isprintable():
        return _quoted(value.text)
    if isinstance(value, Binary):
        return f"hex:{_hex(value.data)}"
    # Everything else (and REG_SZ text a quoted string cannot carry) as typed hex bytes.
    return f"hex({value.type:x}):{_hex(value.data)}"


def _ancestors_first(paths: Iterable[str]) -> list[str]:
    """Every key path with its ancestors before it, once each (case-insensitively, as hivex
    looks keys up)."""
    ordered: list[str] = []
    seen: set[str] = set()
    for path in paths:
        parts = [p for p in path.split("\\") if p]
        for depth in range(1, len(parts) + 1):
            prefix = "\\".join(parts[:depth])
            if prefix.lower() not in seen:
                seen.add(prefix.lower())
                ordered.append(prefix)
    return ordered


def reg_text(keys: Keys) -> str:
    """The .reg file that `hivexregedit --merge` turns into these keys (paths below the root)."""
    values_of: dict[str, list[tuple[str, RegValue]]] = {}
    for path, values in keys.items():
        key = "\\".join(p for p in path.split("\\") if p).lower()
        values_of.setdefault(key, []).extend(values.items())
    lines = ["Windows Registry Editor Version 5.00", ""]
    root_values = values_of.get("", [])
    sections = ([""] if root_values else []) + _ancestors_first(keys)
    for path in sections:
        if any(ch in path for ch in "[]") or not path.isascii():
            raise ValueError(f"a key path must be ASCII without brackets: {path!r}")
        lines.append(f"[\\{path}]")
        for name, value in values_of.get(path.lower(), []):
            left = "@" if name == "" else _quoted(name)
            lines.append(f"{left}={_reg_value(value)}")
        # A blank line ends a key's section.
        lines.append("")
    return "\n".join(lines) + "\n"


def write_hive(path: Path, keys: Keys, root_name: str = "ROOT") -> Path:
    """A hive holding `keys`: an empty hive merged with their .reg file by hivexregedit."""
    empty_hive(path, root_name)
    reg = path.with_name(path.name + ".reg")
    reg.write_text(reg_text(keys), encoding="ascii")
    try:
        subprocess.run(
            [tool("hivexregedit"), "--merge", str(path), str(reg)],
            check=True,
            capture_output=True,
        )
    finally:
        reg.unlink()
    return path
