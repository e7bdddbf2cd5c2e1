"""The regf reader against hives hivex wrote, and against those hives damaged on purpose.

Every hive here is laid out by hivex (`tests.hives.write_hive`); what hivex cannot write (big data
in `db` segments, `ri` indexes, UTF-16 names, cycles, damage) is made by patching or appending
cells to such a hive, with offsets found by walking its bins here, independently of the reader.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanner.parsers.regf import (
    MAX_ENTRIES,
    BadHive,
    Hive,
    RegistryKey,
    RegistryValue,
    control_set,
    windows_upper,
)
from tests.hives import (
    Binary,
    Dword,
    ExpandSz,
    Keys,
    MultiSz,
    Qword,
    Raw,
    RegValue,
    Sz,
    write_hive,
)

BASE = 4096
# Base block fields.
H_PRIMARY = 4
H_SECONDARY = 8
H_MAJOR = 20
H_ROOT = 36
H_BINS_SIZE = 40
H_CHECKSUM = 508
# nk fields (offsets into the cell's data, after its size).
NK_SUBKEY_COUNT = 20
NK_SUBKEY_LIST = 28
NK_VALUE_COUNT = 36
NK_VALUE_LIST = 40
NK_NAME_LENGTH = 72
NK_NAME = 76
# vk fields.
VK_NAME_LENGTH = 2
VK_SIZE = 4
VK_DATA = 8
VK_NAME = 20
INLINE = 0x80000000
SEGMENT = 16344

# --- building and patching hives ------------------------------------------------------------------


def hive_bytes(tmp_path: Path, keys: Keys, name: str = "hive") -> bytearray:
    return bytearray(write_hive(tmp_path / name, keys).read_bytes())


def header_checksum(data: bytes | bytearray) -> int:
    value = 0
    for (word,) in struct.iter_unpack("<I", bytes(data[:508])):
        value ^= word
    return {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)


def reseal(data: bytearray) -> bytearray:
    """Make the header checksum match a changed header again."""
    struct.pack_into("<I", data, H_CHECKSUM, header_checksum(data))
    return data


def cells(data: bytes | bytearray) -> Iterator[tuple[int, int]]:
    """(offset from the first bin, size field) of every cell, walking the hbins."""
    end = BASE + struct.unpack_from("<I", data, H_BINS_SIZE)[0]
    position = BASE
    while position < end:
        signature, _, bin_size = struct.unpack_from("<4sII", data, position)
        assert signature == b"hbin"
        cell = position + 32
        while cell < position + bin_size:
            (size,) = struct.unpack_from("<i", data, cell)
            assert size != 0
            yield cell - BASE, size
            cell += abs(size)
        position += bin_size


def at(offset: int, field: int) -> int:
    """The file position of byte `field` of the data of the cell at `offset`."""
    return BASE + offset + 4 + field


def get(data: bytes | bytearray, offset: int, field: int, fmt: str = "<I") -> int:
    return int(struct.unpack_from(fmt, data, at(offset, field))[0])


def put(data: bytearray, offset: int, field: int, fmt: str, *values: int | bytes) -> None:
    struct.pack_into(fmt, data, at(offset, field), *values)


def payload(data: bytes | bytearray, offset: int) -> bytes:
    (size,) = struct.unpack_from("<i", data, BASE + offset)
    return bytes(data[BASE + offset + 4 : BASE + offset + abs(size)])


def find_cell(data: bytes | bytearray, signature: bytes, name: str | None = None) -> int:
    """The one allocated cell with this signature (and, for nk and vk, this ASCII name)."""
    found = []
    for offset, size in cells(data):
        cell = payload(data, offset)
        if size >= 0 or cell[:2] != signature:
            continue
        if name is not None:
            if signature == b"nk":
                length = struct.unpack_from("<H", cell, NK_NAME_LENGTH)[0]
                raw = cell[NK_NAME : NK_NAME + length]
            else:
                length = struct.unpack_from("<H", cell, VK_NAME_LENGTH)[0]
                raw = cell[VK_NAME : VK_NAME + length]
            if raw != name.encode("ascii"):
                continue
        found.append(offset)
    assert len(found) == 1, (signature, name, found)
    return found[0]


def append_bin(data: bytearray, payloads: list[bytes]) -> list[int]:
    """Append an hbin holding these cells (allocated) and return their offsets."""
    bins_size = struct.unpack_from("<I", data, H_BINS_SIZE)[0]
    assert len(data) == BASE + bins_size
    body = b""
    offsets = []
    for item in payloads:
        offsets.append(bins_size + 32 + len(body))
        size = (len(item) + 4 + 7) // 8 * 8
        body += struct.pack("<i", -size) + item.ljust(size - 4, b"\0")
    bin_size = (32 + len(body) + 4095) // 4096 * 4096
    free = bin_size - 32 - len(body)
    hbin = struct.pack("<4sII", b"hbin", bins_size, bin_size).ljust(32, b"\0") + body
    if free:
        hbin += struct.pack("<i", free).ljust(free, b"\0")
    data += hbin
    struct.pack_into("<I", data, H_BINS_SIZE, bins_size + bin_size)
    reseal(data)
    return offsets


def nk_record(name: str, *, utf16: bool, parent: int = 0xFFFFFFFF) -> bytes:
    raw = name.encode("utf-16-le") if utf16 else name.encode("latin-1")
    none = 0xFFFFFFFF
    flags = 0 if utf16 else 0x20
    fixed = struct.pack(
        "<2sHQIIIIIIIIIIIIIIIHH",
        b"nk",
        flags,
        0,
        0,
        parent,
        0,
        0,
        none,
        none,
        0,
        none,
        none,
        none,
        0,
        0,
        0,
        0,
        0,
        len(raw),
        0,
    )
    return fixed + raw


def vk_inline_dword(name: str, value: int, *, utf16: bool) -> bytes:
    raw = name.encode("utf-16-le") if utf16 else name.encode("latin-1")
    flags = 0 if utf16 else 1
    return struct.pack("<2sHIIIHH", b"vk", len(raw), INLINE | 4, value, 4, flags, 0) + raw


def subkey_list_entries(data: bytes | bytearray, list_offset: int) -> list[int]:
    cell = payload(data, list_offset)
    kind, count = cell[:2], struct.unpack_from("<H", cell, 2)[0]
    stride = 8 if kind in (b"lf", b"lh") else 4
    return [struct.unpack_from("<I", cell, 4 + i * stride)[0] for i in range(count)]


def walk(hive: Hive, max_depth: int = 32, budget: int = 5000) -> int:
    """Read every key and value (bounded depth and steps); the number of steps taken."""
    steps = 0
    stack: list[tuple[RegistryKey, int]] = [(hive.root, 0)]
    while stack and steps < budget:
        key, depth = stack.pop()
        assert isinstance(key.name, str)
        assert isinstance(key.path, str)
        for value in key.values():
            steps += 1
            assert isinstance(value.name, str)
            assert isinstance(value.data, bytes)
            assert isinstance(value.type_name, str)
            value.as_int()
            value.as_text()
            value.as_strings()
            if steps >= budget:
                return steps
        if depth < max_depth:
            for subkey in key.subkeys():
                steps += 1
                stack.append((subkey, depth + 1))
                if steps >= budget:
                    return steps
    return steps


def must_key(parent: Hive | RegistryKey, path: str) -> RegistryKey:
    found = parent.key(path)
    assert found is not None, path
    return found


def must_value(key: RegistryKey, name: str) -> RegistryValue:
    found = key.value(name)
    assert found is not None, name
    return found


def load_and_walk(data: bytes | bytearray) -> int:
    hive = Hive(bytes(data), "test hive")
    hive.key("Alpha\\Beta")
    hive.key("no\\such\\key")
    return walk(hive)


# --- round trips ----------------------------------------------------------------------------------

BIG = random.Random(7).randbytes(100 * 1024)
TEXT = "Grüße, naïve café — 日本語 ✓ 𝄞"
VALUES: dict[str, RegValue] = {
    "Dword": Dword(0xDEADBEEF),
    "DwordZero": Dword(0),
    "DwordMax": Dword(0xFFFFFFFF),
    "Qword": Qword(0x0123456789ABCDEF),
    "QwordMax": Qword(2**64 - 1),
    "Ascii": Sz("C:\\Program Files\\Amazon"),
    "Text": Sz(TEXT),
    "Empty": Sz(""),
    "Expand": ExpandSz("%SystemRoot%\\System32\\ü.dll"),
    "Multi": MultiSz(("one", "zwei ü", "三")),
    "MultiEmpty": MultiSz(()),
    "Bin0": Binary(b""),
    "Bin1": Binary(b"\xa5"),
    "Bin3": Binary(b"\x01\x00\xff"),
    "Bin4": Binary(b"\xff\xfe\x00\x80"),
    "Bin5": Binary(b"\x00\x11\x22\x33\x44"),
    "BinBig": Binary(BIG),
    "Rid": Raw(0x1F4, b""),
    "Odd": Raw(0x12345678, b"\x01\x02\x03\x04\x05\x06\x07"),
    "": Sz("the default value"),
}


@pytest.fixture(scope="module")
def typed_data(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    directory = tmp_path_factory.mktemp("typed")
    data = hive_bytes(
        directory,
        {
            "Types": VALUES,
            "": {"RootValue": Dword(42)},
            "Alpha\\Beta\\Gamma\\Delta\\Epsilon": {"Deep": Sz("bottom")},
            "Alpha\\Other": {},
            "Names": {"": Raw(0x1F4, b"")},
        },
    )
    return bytes(data)


@pytest.fixture(scope="module")
def typed(typed_data: bytes) -> Hive:
    return Hive(typed_data, "typed")


def test_header_of_a_clean_hive(typed: Hive, typed_data: bytes) -> None:
    assert typed.dirty is False
    primary, secondary = typed.sequence_numbers
    # hivex bumps both when it commits a change.
    assert primary == secondary >= 1
    assert typed.sequence_numbers == struct.unpack_from("<II", typed_data, H_PRIMARY)
    assert typed.root.name == "ROOT"
    assert typed.root.path == ""
    assert typed.key("") == typed.root
    assert typed.root.int_value("RootValue") == 42


@pytest.mark.parametrize("name", sorted(VALUES))
def test_value_round_trip(typed: Hive, name: str) -> None:
    expected = VALUES[name]
    key = must_key(typed, "Types")
    value = must_value(key, name)
    assert value.name == name
    assert value.type == expected.type
    assert value.data == expected.data


def test_every_value_listed_once(typed: Hive) -> None:
    key = must_key(typed, "Types")
    names = [v.name for v in key.values()]
    assert sorted(names) == sorted(VALUES)
    assert key.value_count == len(VALUES)


def test_inline_binary_is_what_hivex_wrote(typed: Hive) -> None:
    # Up to four bytes live in the vk record's data-offset field: where libregf went wrong.
    key = must_key(typed, "Types")
    for name, data in [
        ("Bin0", b""),
        ("Bin1", b"\xa5"),
        ("Bin3", b"\x01\x00\xff"),
        ("Bin4", b"\xff\xfe\x00\x80"),
    ]:
        value = must_value(key, name)
        assert (value.data, value.type_name) == (data, "REG_BINARY")
        assert value.as_int() is None
        assert value.as_text() is None
        assert value.as_strings() == ()


def test_inline_storage_is_really_used(typed_data: bytes) -> None:
    # Guard for the test above: hivex did store the short values inline.
    data = typed_data
    for name, length in [("Bin0", 0), ("Bin1", 1), ("Bin3", 3), ("Bin4", 4), ("Rid", 0)]:
        vk = find_cell(data, b"vk", name)
        assert get(data, vk, VK_SIZE) == INLINE | length
    assert get(data, find_cell(data, b"vk", "Bin5"), VK_SIZE) == 5


def test_100k_binary_exact(typed: Hive) -> None:
    # hivex (1.3.23) writes this as one 100 KiB data cell, not as `db` segments: those are
    # tested with hand-made segments in test_big_data_segments.
    key = must_key(typed, "Types")
    value = must_value(key, "BinBig")
    assert len(value.data) == len(BIG)
    assert value.data == BIG


def test_integers(typed: Hive) -> None:
    key = must_key(typed, "Types")
    assert key.int_value("Dword") == 0xDEADBEEF
    assert key.int_value("DwordZero") == 0
    assert key.int_value("DwordMax") == 0xFFFFFFFF
    assert key.int_value("Qword") == 0x0123456789ABCDEF
    assert key.int_value("QwordMax") == 2**64 - 1
    assert key.int_value("Ascii") is None
    assert key.int_value("Bin4") is None
    assert key.int_value("Missing") is None
    dword = must_value(key, "Dword")
    assert dword.type_name == "REG_DWORD"
    assert dword.as_text() is None
    qword = must_value(key, "Qword")
    assert qword.type_name == "REG_QWORD"


def test_text(typed: Hive) -> None:
    key = must_key(typed, "Types")
    assert key.text_value("Text") == TEXT
    assert key.text_value("Ascii") == "C:\\Program Files\\Amazon"
    assert key.text_value("Empty") == ""
    assert key.text_value("Expand") == "%SystemRoot%\\System32\\ü.dll"
    assert key.text_value("Dword") is None
    assert key.text_value("Missing") is None
    text = must_value(key, "Text")
    assert text.type_name == "REG_SZ"
    assert text.as_strings() == (TEXT,)
    expand = must_value(key, "Expand")
    assert expand.type_name == "REG_EXPAND_SZ"
    assert expand.as_int() is None


def test_multi_sz(typed: Hive) -> None:
    key = must_key(typed, "Types")
    multi = must_value(key, "Multi")
    assert multi.type_name == "REG_MULTI_SZ"
    assert multi.as_strings() == ("one", "zwei ü", "三")
    assert multi.as_text() is None
    empty = must_value(key, "MultiEmpty")
    assert empty.as_strings() == ()


def test_default_value(typed: Hive) -> None:
    key = must_key(typed, "Types")
    default = must_value(key, "")
    assert default.name == ""
    assert default.as_text() == "the default value"
    assert key.text_value("") == "the default value"


def test_raw_type_with_empty_data_reads_empty(typed: Hive) -> None:
    # The SAM's Names\<user> keys keep the RID as the type of an empty default value; regipy
    # returned bytes of the hive there.
    names = must_key(typed, "Names")
    rid = must_value(names, "")
    assert (rid.type, rid.data, rid.type_name) == (0x1F4, b"", "type 0x1f4")
    assert rid.as_int() is None
    assert rid.as_text() is None
    assert rid.as_strings() == ()
    key = must_key(typed, "Types")
    odd = must_value(key, "odd")
    assert odd.type_name == "type 0x12345678"


@pytest.mark.parametrize("data_offset", [0xFFFFFFFF, 0, 0x20])
def test_empty_data_not_stored_inline_reads_empty(typed_data: bytes, data_offset: int) -> None:
    # hivex marks empty data inline (size 0x80000000); Windows may write size 0 with no data cell
    # or any offset at all. Nothing is read from that offset: not a cell, not the hive's bytes.
    data = bytearray(typed_data)
    put(data, find_cell(data, b"vk", "Rid"), VK_SIZE, "<II", 0, data_offset)
    rid = must_value(must_key(Hive(bytes(data)), "Types"), "Rid")
    assert (rid.type, rid.data) == (0x1F4, b"")


def test_lookups_are_case_insensitive(typed: Hive) -> None:
    key = must_key(typed, "TYPES")
    assert key.path == "Types"
    assert key.name == "Types"
    assert key.int_value("dWoRd") == 0xDEADBEEF
    value = must_value(key, "TEXT")
    assert value.name == "Text"
    deep = must_key(typed, "alpha\\BETA\\gamma\\DeLtA\\epsilon")
    assert deep.path == "Alpha\\Beta\\Gamma\\Delta\\Epsilon"
    assert deep.text_value("DEEP") == "bottom"


def test_nested_paths(typed: Hive) -> None:
    alpha = must_key(typed, "Alpha")
    assert sorted(k.name for k in alpha.subkeys()) == ["Beta", "Other"]
    gamma = must_key(alpha, "Beta\\Gamma")
    assert gamma.path == "Alpha\\Beta\\Gamma"
    assert gamma.key("") == gamma
    delta = gamma.subkey("delta")
    assert delta is not None
    assert delta.path == "Alpha\\Beta\\Gamma\\Delta"
    # Empty components (leading, trailing, doubled backslashes) are skipped.
    same = must_key(typed, "\\Alpha\\\\Beta\\Gamma\\")
    assert same.offset == gamma.offset
    assert typed.key("Alpha\\Beta\\Missing") is None
    assert typed.key("Alpha\\Beta\\Missing\\Gamma") is None
    assert alpha.key("Missing\\Gamma") is None
    assert alpha.subkey("Beta\\Gamma") is None
    epsilon = must_key(typed, "Alpha\\Beta\\Gamma\\Delta\\Epsilon")
    assert list(epsilon.subkeys()) == []
    assert sorted(k.name for k in typed.root.subkeys()) == ["Alpha", "Names", "Types"]


def test_many_subkeys_each_listed_once(tmp_path: Path) -> None:
    names = [f"Sub{i:04d}" for i in range(600)]
    data = hive_bytes(
        tmp_path, {f"Many\\{name}": {"Index": Dword(i)} for i, name in enumerate(names)}
    )
    hive = Hive(bytes(data))
    many = must_key(hive, "Many")
    listed = [k.name for k in many.subkeys()]
    assert len(listed) == 600
    assert sorted(listed) == names
    for i in (0, 1, 299, 598, 599):
        sub = many.subkey(names[i].lower())
        assert sub is not None
        assert sub.int_value("index") == i
        assert sub.path == f"Many\\{names[i]}"
    assert many.subkey("Sub0600") is None


def test_ri_index_of_li_and_lf_lists(tmp_path: Path) -> None:
    # hivex writes one lh list however many subkeys; Windows splits big lists under an ri index.
    names = [f"K{i:02d}" for i in range(30)]
    data = hive_bytes(tmp_path, {f"Many\\{name}": {"I": Dword(i)} for i, name in enumerate(names)})
    many = find_cell(data, b"nk", "Many")
    entries = subkey_list_entries(data, get(data, many, NK_SUBKEY_LIST))
    assert len(entries) == 30
    first, second = entries[:12], entries[12:]
    li = b"li" + struct.pack("<H", len(first)) + b"".join(struct.pack("<I", e) for e in first)
    lf = (
        b"lf"
        + struct.pack("<H", len(second))
        + b"".join(struct.pack("<I4s", e, b"Kxx\0") for e in second)
    )
    li_offset, lf_offset = append_bin(data, [li, lf])
    (ri_offset,) = append_bin(data, [b"ri" + struct.pack("<HII", 2, li_offset, lf_offset)])
    put(data, many, NK_SUBKEY_LIST, "<I", ri_offset)
    hive = Hive(bytes(data))
    key = must_key(hive, "Many")
    listed = [k.name for k in key.subkeys()]
    assert sorted(listed) == names
    assert len(listed) == len(set(listed))
    assert [k.offset for k in key.subkeys()] == entries
    found = must_key(hive, "many\\k29")
    assert found.int_value("I") == 29


def test_names_stored_as_utf16_and_latin1(tmp_path: Path) -> None:
    # hivexregedit takes only ASCII names, so these keys and values are added by hand: Windows
    # stores a name that is not all Latin-1 as UTF-16LE (no "compressed name" flag).
    data = hive_bytes(tmp_path, {"Alpha": {"dw": Dword(1)}})
    root = root_of(data)
    alpha = find_cell(data, b"nk", "Alpha")
    wide_value = vk_inline_dword("Ключ ✓", 7, utf16=True)
    latin_value = vk_inline_dword("Größe", 8, utf16=False)
    vk_wide, vk_latin = append_bin(data, [wide_value, latin_value])
    (value_list,) = append_bin(data, [struct.pack("<II", vk_wide, vk_latin)])
    wide_nk = nk_record("Дом 𝄞", utf16=True, parent=root)
    latin_nk = nk_record("Café", utf16=False, parent=root)
    wide_key, latin_key = append_bin(data, [wide_nk, latin_nk])
    put(data, wide_key, NK_VALUE_COUNT, "<II", 2, value_list)
    (subkeys,) = append_bin(data, [b"li" + struct.pack("<HIII", 3, alpha, wide_key, latin_key)])
    put(data, root, NK_SUBKEY_COUNT, "<I", 3)
    put(data, root, NK_SUBKEY_LIST, "<I", subkeys)
    hive = Hive(bytes(reseal(data)))
    assert sorted(k.name for k in hive.root.subkeys()) == ["Alpha", "Café", "Дом 𝄞"]
    wide = must_key(hive, "дом 𝄞")
    assert wide.path == "Дом 𝄞"
    assert sorted(v.name for v in wide.values()) == ["Größe", "Ключ ✓"]
    assert wide.int_value("КЛЮЧ ✓") == 7
    assert wide.int_value("gRÖße") == 8
    latin = must_key(hive, "CAFÉ")
    assert latin.name == "Café"


def test_big_data_segments(tmp_path: Path) -> None:
    # Windows splits data over 16344 bytes into `db` segments (hivex 1.3.23 writes one cell, so
    # the segments are made by hand here).
    data = hive_bytes(tmp_path, {"Alpha": {"Big": Binary(b"\x00" * 8)}})
    blob = random.Random(99).randbytes(2 * SEGMENT + 7312)
    pieces = [blob[i : i + SEGMENT] for i in range(0, len(blob), SEGMENT)]
    segments = append_bin(data, pieces)
    (segment_list,) = append_bin(data, [b"".join(struct.pack("<I", s) for s in segments)])
    (db,) = append_bin(data, [b"db" + struct.pack("<HII", len(segments), segment_list, 0)])
    vk = find_cell(data, b"vk", "Big")
    put(data, vk, VK_SIZE, "<II", len(blob), db)
    hive = Hive(bytes(data))
    value = must_value(must_key(hive, "Alpha"), "Big")
    assert value is not None
    assert len(value.data) == len(blob)
    assert value.data == blob
    # A size that stops inside a segment takes only that much.
    put(data, vk, VK_SIZE, "<I", SEGMENT + 100)
    value = must_value(must_key(Hive(bytes(data)), "Alpha"), "Big")
    assert value is not None
    assert value.data == blob[: SEGMENT + 100]
    # Segments that hold less than the size (the last cell's padding included): refused, not
    # padded or cut.
    put(data, vk, VK_SIZE, "<I", len(blob) + 16)
    with pytest.raises(BadHive, match="segments hold less"):
        load_and_walk(data)
    put(data, vk, VK_SIZE, "<I", len(blob))
    put(data, db, 2, "<H", 2)
    with pytest.raises(BadHive, match="segments hold less"):
        load_and_walk(data)
    # A segment count past the end of the segment list's cell.
    put(data, db, 2, "<H", 100)
    with pytest.raises(BadHive, match="segment list runs past"):
        load_and_walk(data)
    # A segment pointing outside the hive.
    put(data, db, 2, "<H", 3)
    put(data, segment_list, 4, "<I", 0x7FFFFFF0)
    with pytest.raises(BadHive, match="outside the hive"):
        load_and_walk(data)


def system_hive(tmp_path: Path, keys: Keys) -> Hive:
    return Hive(bytes(hive_bytes(tmp_path, keys, "SYSTEM")), "SYSTEM")


def test_control_set_follows_select_current(tmp_path: Path) -> None:
    hive = system_hive(
        tmp_path,
        {
            "Select": {"Current": Dword(2), "Default": Dword(2), "LastKnownGood": Dword(1)},
            "ControlSet001\\Control": {"Which": Sz("one")},
            "ControlSet002\\Control": {"Which": Sz("two")},
        },
    )
    current = control_set(hive)
    assert current.name == "ControlSet002"
    assert must_key(current, "control").text_value("Which") == "two"


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param({"ControlSet001\\Control": {}}, id="no-select"),
        pytest.param({"Select": {"Default": Dword(1)}, "ControlSet001": {}}, id="no-current"),
        pytest.param({"Select": {"Current": Sz("1")}, "ControlSet001": {}}, id="current-not-dword"),
        pytest.param({"Select": {"Current": Dword(3)}, "ControlSet001": {}}, id="missing-set"),
    ],
)
def test_control_set_refuses(tmp_path: Path, keys: Keys) -> None:
    with pytest.raises(BadHive):
        control_set(system_hive(tmp_path, keys))


def test_dirty_after_the_secondary_sequence_number_moves(tmp_path: Path) -> None:
    data = hive_bytes(tmp_path, {"Alpha": {"dw": Dword(1)}})
    assert Hive(bytes(data)).dirty is False
    primary = struct.unpack_from("<I", data, H_PRIMARY)[0]
    struct.pack_into("<I", data, H_SECONDARY, primary + 1)
    # Not resealed: the checksum covers the sequence numbers.
    with pytest.raises(BadHive):
        Hive(bytes(data))
    hive = Hive(bytes(reseal(data)))
    assert hive.dirty is True
    assert hive.sequence_numbers == (primary, primary + 1)
    assert must_key(hive, "Alpha").int_value("dw") == 1


@pytest.mark.parametrize(("xor", "stored"), [(0, 1), (0xFFFFFFFF, 0xFFFFFFFE)])
def test_checksum_never_zero_or_all_ones(tmp_path: Path, xor: int, stored: int) -> None:
    data = hive_bytes(tmp_path, {"Alpha": {}})
    # Make the XOR of the first 127 dwords come out as `xor` by setting a reserved dword.
    struct.pack_into("<I", data, 504, 0)
    value = 0
    for (word,) in struct.iter_unpack("<I", bytes(data[:508])):
        value ^= word
    struct.pack_into("<I", data, 504, value ^ xor)
    struct.pack_into("<I", data, H_CHECKSUM, xor)
    with pytest.raises(BadHive):
        Hive(bytes(data))
    struct.pack_into("<I", data, H_CHECKSUM, stored)
    assert Hive(bytes(data)).key("Alpha") is not None


# --- hostile hives --------------------------------------------------------------------------------

SMALL: Keys = {
    "Alpha": {
        "dw": Dword(7),
        "text": Sz("some text long enough for a cell"),
        "bin": Binary(b"\x01" * 40),
    },
    "Alpha\\Beta": {"x": Dword(1)},
    "Gamma": {},
}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return bytes(hive_bytes(tmp_path_factory.mktemp("small"), SMALL))


def test_small_hive_walks(small: bytes) -> None:
    # The base of every damaged hive below is sound.
    assert load_and_walk(small) == 3 + 4
    hive = Hive(small)
    assert must_key(hive, "alpha").text_value("TEXT") == "some text long enough for a cell"


def root_of(data: bytes | bytearray) -> int:
    return int(struct.unpack_from("<I", data, H_ROOT)[0])


def header(field: int, value: int) -> Callable[[bytearray], object]:
    def patch(data: bytearray) -> object:
        struct.pack_into("<I", data, field, value)
        return reseal(data)

    return patch


def cell_size(name: str, size: int) -> Callable[[bytearray], object]:
    def patch(data: bytearray) -> object:
        struct.pack_into("<i", data, BASE + find_cell(data, b"nk", name), size)
        return None

    return patch


def nk_field(
    name: str | None, field: int, fmt: str, value: int | bytes
) -> Callable[[bytearray], object]:
    def patch(data: bytearray) -> object:
        offset = root_of(data) if name is None else find_cell(data, b"nk", name)
        put(data, offset, field, fmt, value)
        return None

    return patch


def subkey_list_field(
    name: str | None, field: int, fmt: str, value: int | bytes
) -> Callable[[bytearray], object]:
    def patch(data: bytearray) -> object:
        offset = root_of(data) if name is None else find_cell(data, b"nk", name)
        put(data, get(data, offset, NK_SUBKEY_LIST), field, fmt, value)
        return None

    return patch


def vk_field(name: str, field: int, fmt: str, value: int) -> Callable[[bytearray], object]:
    def patch(data: bytearray) -> object:
        put(data, find_cell(data, b"vk", name), field, fmt, value)
        return None

    return patch


def value_count_past_list(data: bytearray) -> None:
    alpha = find_cell(data, b"nk", "Alpha")
    capacity = len(payload(data, get(data, alpha, NK_VALUE_LIST))) // 4
    put(data, alpha, NK_VALUE_COUNT, "<I", capacity + 1)


def value_list_past_hive(data: bytearray) -> None:
    alpha = find_cell(data, b"nk", "Alpha")
    put(data, alpha, NK_VALUE_LIST, "<I", len(data))


def value_entry_at_key(data: bytearray) -> None:
    alpha = find_cell(data, b"nk", "Alpha")
    put(data, get(data, alpha, NK_VALUE_LIST), 0, "<I", alpha)


def subkey_entry_at_value(data: bytearray) -> None:
    root = root_of(data)
    put(data, get(data, root, NK_SUBKEY_LIST), 4, "<I", find_cell(data, b"vk", "dw"))


def nested_ri(data: bytearray) -> None:
    root = root_of(data)
    real = get(data, root, NK_SUBKEY_LIST)
    (inner,) = append_bin(data, [b"ri" + struct.pack("<HI", 1, real)])
    (outer,) = append_bin(data, [b"ri" + struct.pack("<HI", 1, inner)])
    put(data, root, NK_SUBKEY_LIST, "<I", outer)


def ri_pointing_at_itself(data: bytearray) -> None:
    root = root_of(data)
    (ri,) = append_bin(data, [b"ri" + struct.pack("<HI", 1, 0)])
    put(data, ri, 4, "<I", ri)
    put(data, root, NK_SUBKEY_LIST, "<I", ri)


def ri_past_its_cell(data: bytearray) -> None:
    root = root_of(data)
    (ri,) = append_bin(data, [b"ri" + struct.pack("<HI", 500, get(data, root, NK_SUBKEY_LIST))])
    put(data, root, NK_SUBKEY_LIST, "<I", ri)


def truncate_tail(data: bytearray) -> None:
    del data[-4096:]


def header_too_short(data: bytearray) -> None:
    del data[4095:]


def wrong_signature(data: bytearray) -> None:
    data[0:4] = b"regX"
    reseal(data)


def bad_checksum(data: bytearray) -> None:
    struct.pack_into("<I", data, H_CHECKSUM, header_checksum(data) ^ 1)


def bins_size_off_by_8(data: bytearray) -> None:
    header(H_BINS_SIZE, struct.unpack_from("<I", data, H_BINS_SIZE)[0] - 8)(data)


def root_at(where: Callable[[bytearray], int]) -> Callable[[bytearray], object]:
    return lambda data: header(H_ROOT, where(data))(data)


def nk_name_one_past_cell(data: bytearray) -> None:
    alpha = find_cell(data, b"nk", "Alpha")
    room = len(payload(data, alpha)) - NK_NAME
    put(data, alpha, NK_NAME_LENGTH, "<H", room + 1)


HOSTILE: list[tuple[str, Callable[[bytearray], object], str]] = [
    ("empty", lambda data: data.clear(), "shorter than its header"),
    ("4095-bytes", header_too_short, "shorter than its header"),
    ("wrong-signature", wrong_signature, "signature"),
    ("bad-checksum", bad_checksum, "checksum"),
    ("major-version-2", header(H_MAJOR, 2), "format 2"),
    ("bins-size-not-4096-multiple", bins_size_off_by_8, "multiple of 4096"),
    ("bins-size-zero", header(H_BINS_SIZE, 0), "outside the hive"),
    ("file-shorter-than-bins", truncate_tail, "truncated"),
    ("root-past-end", root_at(len), "outside the hive"),
    ("root-straddles-end", root_at(lambda data: len(data) - BASE - 2), "outside the hive"),
    ("root-none", header(H_ROOT, 0xFFFFFFFF), "outside the hive"),
    ("root-at-sk", root_at(lambda data: find_cell(data, b"sk")), "no key record"),
    ("root-at-vk", root_at(lambda data: find_cell(data, b"vk", "dw")), "no key record"),
    ("root-at-hbin-header", header(H_ROOT, 0), "bad cell size"),
    ("cell-size-zero", cell_size("Alpha", 0), "bad cell size"),
    ("cell-size-huge", cell_size("Alpha", 0x7FFFFFF0), "bad cell size"),
    ("cell-size-most-negative", cell_size("Alpha", -0x80000000), "bad cell size"),
    ("cell-size-too-small-for-nk", cell_size("Alpha", -16), "no key record"),
    ("nk-name-past-cell", nk_field("Alpha", NK_NAME_LENGTH, "<H", 0xFFFF), "runs past its cell"),
    ("nk-name-one-past-cell", nk_name_one_past_cell, "runs past its cell"),
    ("subkey-count-above-list", nk_field(None, NK_SUBKEY_COUNT, "<I", 3), "its key says 3"),
    ("subkey-count-huge", nk_field(None, NK_SUBKEY_COUNT, "<I", 0xFFFFFFFF), "claims"),
    ("subkey-count-over-max", nk_field(None, NK_SUBKEY_COUNT, "<I", MAX_ENTRIES + 1), "claims"),
    ("subkey-list-none", nk_field(None, NK_SUBKEY_LIST, "<I", 0xFFFFFFFF), "outside the hive"),
    ("subkey-list-count-past-cell", subkey_list_field(None, 2, "<H", 0xFFFF), "runs past"),
    ("subkey-list-unknown-signature", subkey_list_field(None, 0, "<2s", b"zz"), "unknown"),
    ("subkey-entry-past-end", subkey_list_field(None, 4, "<I", 0x7FFFFFF0), "outside the hive"),
    ("subkey-entry-at-value", subkey_entry_at_value, "no key record"),
    ("ri-nested", nested_ri, "nested subkey index"),
    ("ri-itself", ri_pointing_at_itself, "nested subkey index"),
    ("ri-past-its-cell", ri_past_its_cell, "runs past its cell"),
    ("value-count-huge", nk_field("Alpha", NK_VALUE_COUNT, "<I", 0xFFFFFFFF), "claims"),
    ("value-count-over-max", nk_field("Alpha", NK_VALUE_COUNT, "<I", MAX_ENTRIES + 1), "claims"),
    ("value-count-past-list", value_count_past_list, "runs past its cell"),
    ("value-list-past-hive", value_list_past_hive, "outside the hive"),
    ("value-entry-at-key", value_entry_at_key, "no value record"),
    ("vk-name-past-cell", vk_field("dw", VK_NAME_LENGTH, "<H", 0xFFFF), "runs past its cell"),
    ("vk-data-past-hive", vk_field("text", VK_DATA, "<I", 0x7FFFFFF0), "outside the hive"),
    ("vk-data-none", vk_field("text", VK_DATA, "<I", 0xFFFFFFFF), "outside the hive"),
    ("vk-size-past-cell", vk_field("bin", VK_SIZE, "<I", 1000), "runs past its cell"),
    ("vk-size-past-hive", vk_field("bin", VK_SIZE, "<I", 0x7FFFFFFF), "more than the hive"),
]


@pytest.mark.parametrize(
    ("damage", "message"),
    [pytest.param(damage, message, id=name) for name, damage, message in HOSTILE],
)
def test_hostile_hive_raises_bad_hive(
    small: bytes, damage: Callable[[bytearray], object], message: str
) -> None:
    data = bytearray(small)
    damage(data)
    assert bytes(data) != small
    # The message names the check that caught the damage (so the test cannot pass by tripping
    # over some other check its own patching broke).
    with pytest.raises(BadHive, match=message):
        load_and_walk(data)


def test_big_data_too_short_for_its_size(small: bytes) -> None:
    data = bytearray(small)
    segments = append_bin(data, [b"\x11" * SEGMENT, b"\x22" * SEGMENT])
    (segment_list,) = append_bin(data, [struct.pack("<II", *segments)])
    (db,) = append_bin(data, [b"db" + struct.pack("<HII", 2, segment_list, 0)])
    put(data, find_cell(data, b"vk", "bin"), VK_SIZE, "<II", 3 * SEGMENT, db)
    with pytest.raises(BadHive, match="segments hold less"):
        load_and_walk(data)


def test_subkey_cycle_walk_by_path_terminates_because_paths_are_finite(small: bytes) -> None:
    # Alpha's subkey list names Alpha itself instead of Beta. The reader keeps no visited set:
    # `key()` follows one component per step, so any path, however long, ends; a caller walking
    # the whole tree must bound its depth (as `walk` does).
    data = bytearray(small)
    alpha = find_cell(data, b"nk", "Alpha")
    put(data, get(data, alpha, NK_SUBKEY_LIST), 4, "<I", alpha)
    hive = Hive(bytes(data))
    path = "\\".join(["Alpha"] * 200)
    looped = must_key(hive, path)
    assert looped.offset == alpha
    assert looped.path == path
    assert hive.key("Alpha\\Beta") is None
    start = must_key(hive, "Alpha")
    assert must_key(start, "alpha\\ALPHA\\Alpha").offset == alpha
    # A bounded walk ends too: the root, then Alpha down to the depth limit, and Gamma.
    assert walk(hive, max_depth=10, budget=10_000) < 10_000
    # The root named as its own subkey.
    put(data, get(data, root_of(data), NK_SUBKEY_LIST), 4, "<I", root_of(data))
    hive = Hive(bytes(data))
    root = must_key(hive, "\\".join(["ROOT"] * 50))
    assert root.offset == root_of(data)


# --- fuzzing --------------------------------------------------------------------------------------

INTERESTING = (0, 1, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0x80000004, 0xFFFFFFFF, 0xFFFFFFF8, 8, 0x1000)


def allocated_ranges(data: bytes) -> list[tuple[int, int]]:
    return [(BASE + o, BASE + o + abs(s)) for o, s in cells(data) if s < 0]


def outcome(data: bytes | bytearray, what: str) -> bool:
    """True when the hive read whole, False on BadHive; anything else fails the test."""
    try:
        load_and_walk(data)
    except BadHive:
        return False
    except Exception as error:
        pytest.fail(f"{what}: {type(error).__name__} escaped: {error}")
    return True


@pytest.fixture(scope="module")
def fuzz_bases(tmp_path_factory: pytest.TempPathFactory, small: bytes) -> dict[str, bytes]:
    """The small hive, and one with an ri index and big data added."""
    data = bytearray(small)
    root = root_of(data)
    (ri,) = append_bin(data, [b"ri" + struct.pack("<HI", 1, get(data, root, NK_SUBKEY_LIST))])
    put(data, root, NK_SUBKEY_LIST, "<I", ri)
    segments = append_bin(data, [b"\x33" * SEGMENT, b"\x44" * 100])
    (segment_list,) = append_bin(data, [struct.pack("<II", *segments)])
    (db,) = append_bin(data, [b"db" + struct.pack("<HII", 2, segment_list, 0)])
    put(data, find_cell(data, b"vk", "bin"), VK_SIZE, "<II", SEGMENT + 100, db)
    big = must_value(must_key(Hive(bytes(data)), "Alpha"), "bin")
    assert big.data == b"\x33" * SEGMENT + b"\x44" * 100
    return {"plain": small, "ri-and-db": bytes(data)}


@pytest.mark.parametrize("base", ["plain", "ri-and-db"])
def test_fuzz_random_damage_raises_only_bad_hive(fuzz_bases: dict[str, bytes], base: str) -> None:
    original = fuzz_bases[base]
    ranges = allocated_ranges(original)
    rng = random.Random(1234)
    results = []
    for iteration in range(500):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            if rng.random() < 0.8:
                start, end = rng.choice(ranges)
            else:
                start, end = BASE, len(data)
            position = rng.randrange(start, end)
            choice = rng.random()
            if choice < 0.4:
                data[position] = rng.randrange(256)
            elif choice < 0.6:
                data[position] ^= 1 << rng.randrange(8)
            else:
                position = min(position & ~3, len(data) - 4)
                word = rng.choice([*INTERESTING, rng.randrange(len(data)), rng.randrange(1 << 32)])
                struct.pack_into("<I", data, position, word)
        results.append(outcome(data, f"{base} iteration {iteration}"))
    # The damage reached both outcomes: some hives still read, some were refused.
    assert results.count(True) > 10
    assert results.count(False) > 10


@pytest.mark.parametrize("base", ["plain", "ri-and-db"])
def test_every_word_of_every_cell_overwritten(fuzz_bases: dict[str, bytes], base: str) -> None:
    """Each aligned dword of each allocated cell set to each awkward value, one at a time."""
    original = fuzz_bases[base]
    refused = 0
    for start, end in allocated_ranges(original):
        # The contents of big-data segments are data, not structure.
        if end - start > 1024:
            continue
        for position in range(start, end, 4):
            for word in INTERESTING:
                data = bytearray(original)
                struct.pack_into("<I", data, position, word)
                if not outcome(data, f"0x{word:x} at file offset 0x{position:x}"):
                    refused += 1
    assert refused > 0


# --- work bounded by the hive's size --------------------------------------------------------------


class CountingBytes(bytes):
    """Bytes that count how many bytes slicing them copied."""

    copied: int

    def __getitem__(self, index):  # type: ignore[no-untyped-def]
        item = super().__getitem__(index)
        if isinstance(index, slice):
            self.copied += len(item)
        return item


def test_repeated_huge_cell_costs_work_in_proportion_to_the_hive(small: bytes) -> None:
    # 2000 value-list entries all naming one vk whose cell is 1 MiB: a reader that copies each
    # cell it reads copies 2 GiB from a 1 MiB hive; work in proportion to the hive stays under a
    # few times its size.
    data = bytearray(small)
    vk = vk_inline_dword("v", 1, utf16=False)
    (huge,) = append_bin(data, [vk.ljust(1 << 20, b"\0")])
    (value_list,) = append_bin(data, [struct.pack("<I", huge) * 2000])
    put(data, find_cell(data, b"nk", "Gamma"), NK_VALUE_COUNT, "<II", 2000, value_list)
    counting = CountingBytes(bytes(data))
    counting.copied = 0
    hive = Hive(counting)
    gamma = must_key(hive, "Gamma")
    counting.copied = 0
    values = list(gamma.values())
    assert len(values) == 2000
    # Their data is read once for the one record they share, not once per entry.
    assert all(v.data is values[0].data for v in values)
    copied = counting.copied
    assert copied <= 4 * len(data), f"copied {copied} bytes reading a {len(data)}-byte hive"


@pytest.mark.parametrize(
    ("stored", "asked", "same"),
    [
        ("Größe", "GRÖßE", True),
        ("Größe", "GRÖSSE", False),
        ("CurrentControlSet", "currentcontrolset", True),
    ],
)
def test_names_compare_as_windows_upper_cases_them(stored: str, asked: str, same: bool) -> None:
    assert (windows_upper(stored) == windows_upper(asked)) is same
