"""rpm's version order, EVR strings, header blobs and the Berkeley DB walk, against rpm's own."""

from __future__ import annotations

import random
import sqlite3
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.parsers.rpm import (
    BadDatabase,
    BadHeader,
    Evr,
    bdb_hash_items,
    compare_evr,
    header_package,
    parse_evr,
    rpmvercmp,
)
from tests.rpmimage import Pkg, build_rpm, install_rpmdb, require_tools, to_berkeley_db

# rpm's own test table (tests/rpmvercmp.at).
RPM_CASES = [
    ("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0", "1.0", 1), ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1), ("2.0.1", "2.0", 1), ("2.0.1a", "2.0.1a", 0), ("2.0.1a", "2.0.1", 1),
    ("2.0.1", "2.0.1a", -1), ("5.5p1", "5.5p1", 0), ("5.5p1", "5.5p2", -1), ("5.5p2", "5.5p1", 1),
    ("5.5p10", "5.5p10", 0), ("5.5p1", "5.5p10", -1), ("5.5p10", "5.5p1", 1),
    ("10xyz", "10.1xyz", -1), ("10.1xyz", "10xyz", 1), ("xyz10", "xyz10", 0),
    ("xyz10", "xyz10.1", -1), ("xyz10.1", "xyz10", 1), ("xyz.4", "xyz.4", 0), ("xyz.4", "8", -1),
    ("8", "xyz.4", 1), ("xyz.4", "2", -1), ("2", "xyz.4", 1), ("5.5p2", "5.6p1", -1),
    ("5.6p1", "5.5p2", 1), ("5.6p1", "6.5p1", -1), ("6.5p1", "5.6p1", 1), ("6.0.rc1", "6.0", 1),
    ("6.0", "6.0.rc1", -1), ("10b2", "10a1", 1), ("10a2", "10b2", -1), ("1.0aa", "1.0aa", 0),
    ("1.0a", "1.0aa", -1), ("1.0aa", "1.0a", 1), ("10.0001", "10.0001", 0), ("10.0001", "10.1", 0),
    ("10.1", "10.0001", 0), ("10.0001", "10.0039", -1), ("10.0039", "10.0001", 1),
    ("4.999.9", "5.0", -1), ("5.0", "4.999.9", 1), ("20101121", "20101121", 0),
    ("20101121", "20101122", -1), ("20101122", "20101121", 1), ("2_0", "2_0", 0), ("2.0", "2_0", 0),
    ("2_0", "2.0", 0), ("a", "a", 0), ("a+", "a+", 0), ("a+", "a_", 0), ("a_", "a+", 0),
    ("+a", "+a", 0), ("+a", "_a", 0), ("_a", "+a", 0), ("+_", "+_", 0), ("_+", "+_", 0),
    ("_+", "_", 0), ("+", "_", 0), ("_", "+", 0), ("1.0~rc1", "1.0~rc1", 0), ("1.0~rc1", "1.0", -1),
    ("1.0", "1.0~rc1", 1), ("1.0~rc1", "1.0~rc2", -1), ("1.0~rc2", "1.0~rc1", 1),
    ("1.0~rc1~git123", "1.0~rc1~git123", 0), ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0~rc1", "1.0~rc1~git123", 1), ("1.0^", "1.0^", 0), ("1.0^", "1.0", 1), ("1.0", "1.0^", -1),
    ("1.0^git1", "1.0^git1", 0), ("1.0^git1", "1.0", 1), ("1.0", "1.0^git1", -1),
    ("1.0^git1", "1.0^git2", -1), ("1.0^git2", "1.0^git1", 1), ("1.0^git1", "1.01", -1),
    ("1.01", "1.0^git1", 1), ("1.0^20160101", "1.0^20160101", 0), ("1.0^20160101", "1.0.1", -1),
    ("1.0.1", "1.0^20160101", 1), ("1.0^20160101^git1", "1.0^20160101^git1", 0),
    ("1.0^20160102", "1.0^20160101^git1", 1), ("1.0^20160101^git1", "1.0^20160102", -1),
    ("1.0~rc1^git1", "1.0~rc1^git1", 0), ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0~rc1", "1.0~rc1^git1", -1), ("1.0^git1~pre", "1.0^git1~pre", 0),
    ("1.0^git1", "1.0^git1~pre", 1), ("1.0^git1~pre", "1.0^git1", -1),
    # And a few more shapes seen in distributions' versions.
    ("1.0", "1.0a", -1), ("2.0.1a", "2.0.1", 1), ("1.2.13~rc1", "1.2.13", -1),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "expected"), RPM_CASES)
def test_rpmvercmp_matches_rpms_own_table(a: str, b: str, expected: int) -> None:
    assert rpmvercmp(a, b) == expected


def test_rpmvercmp_agrees_with_rpm_on_random_versions() -> None:
    """Random versions built from the characters that matter, compared by rpm's Lua rpm.vercmp
    in one call."""
    require_tools("rpm")
    rng = random.Random(20261201)
    alphabet = ["1", "2", "10", "0", "01", "a", "b", "rc", ".", "_", "+", "~", "^"]

    def version() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))

    pairs = [(version(), version()) for _ in range(800)]
    lua = "".join(f'print(rpm.vercmp("{a}","{b}") .. "\\n") ' for a, b in pairs)
    done = subprocess.run(
        ["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True
    )
    theirs = [int(x) for x in done.stdout.split()]
    assert len(theirs) == len(pairs)
    mismatches = [
        (a, b, t) for (a, b), t in zip(pairs, theirs, strict=True) if rpmvercmp(a, b) != t
    ]
    assert mismatches == []


def test_evr_order_agrees_with_rpm_on_random_evrs() -> None:
    require_tools("rpm")
    rng = random.Random(7)

    def part() -> str:
        return "".join(rng.choice(["1", "2", "10", "a", ".", "~", "^"]) for _ in range(3))

    def evr() -> str:
        epoch = rng.choice(["", "0:", "1:", "2:"])
        return f"{epoch}1{part()}-1{part()}"

    pairs = [(evr(), evr()) for _ in range(300)]
    lua = "".join(f'print(rpm.vercmp("{a}","{b}") .. "\\n") ' for a, b in pairs)
    done = subprocess.run(
        ["rpm", "--eval", f"%{{lua: {lua}}}"], capture_output=True, text=True, check=True
    )
    theirs = [int(x) for x in done.stdout.split()]
    ours = [compare_evr(parse_evr(a), parse_evr(b)) for a, b in pairs]
    assert ours == theirs


@pytest.mark.parametrize(
    ("text", "evr"),
    [
        ("1:3.0.8-1.amzn2023", Evr(1, "3.0.8", "1.amzn2023")),
        ("3.0.8-1.el9", Evr(0, "3.0.8", "1.el9")),
        ("2.0", Evr(0, "2.0", "")),
        ("1:2-3-4", Evr(1, "2-3", "4")),
    ],
)
def test_parse_evr(text: str, evr: Evr) -> None:
    assert parse_evr(text) == evr


def test_evr_order_is_epoch_then_version_then_release() -> None:
    assert compare_evr(parse_evr("1:1.0-1"), parse_evr("2.0-1")) == 1
    assert compare_evr(parse_evr("1.0-2"), parse_evr("1.0-10")) == -1
    assert compare_evr(parse_evr("0:1.0-1"), parse_evr("1.0-1")) == 0
    assert str(parse_evr("0:1.0-1")) == "1.0-1"
    assert str(parse_evr("2:1.0-1")) == "2:1.0-1"


# --- header blobs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rpmdb.sqlite written by rpm for two packages (one with an epoch, one noarch)."""
    require_tools("rpmbuild", "rpm")
    work = tmp_path_factory.mktemp("rpmdb")
    rpms = [
        build_rpm(work, Pkg("openssl", 1, "3.0.8", "1.amzn2023", "x86_64")),
        build_rpm(work, Pkg("tzdata", 0, "2024a", "1.el9", "noarch")),
    ]
    return install_rpmdb(work / "root", rpms)


def _blobs(database: Path) -> list[bytes]:
    with sqlite3.connect(database) as connection:
        return [bytes(b) for (b,) in connection.execute("SELECT blob FROM Packages ORDER BY hnum")]


def test_header_blobs_rpm_wrote_are_read(real_db: Path) -> None:
    packages = sorted((p.name, p.arch, str(p.evr)) for p in map(header_package, _blobs(real_db)))
    assert packages == [
        ("openssl", "x86_64", "1:3.0.8-1.amzn2023"),
        ("tzdata", "noarch", "2024a-1.el9"),
    ]


def _entry(blob: bytes, tag: int) -> int:
    count = struct.unpack_from(">I", blob, 0)[0]
    for index in range(count):
        if struct.unpack_from(">i", blob, 8 + 16 * index)[0] == tag:
            return 8 + 16 * index
    raise AssertionError(f"no tag {tag}")


def _hostile(blob: bytes, at: int, value: bytes) -> bytes:
    return blob[:at] + value + blob[at + len(value) :]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b[:7], "shorter than"),
        (lambda b: _hostile(b, 0, b"\x00\x01\x00\x00"), "outside 1"),
        (lambda b: _hostile(b, 0, b"\x00\x00\x0f\xff"), "run past"),
        (lambda b: _hostile(b, 4, b"\x7f\xff\xff\xff"), "over"),
        (lambda b: b[:-10], "run past"),
        # NAME's offset past the data.
        (lambda b: _hostile(b, _entry(b, 1000) + 8, b"\x0f\xff\xff\xff"), "outside"),
        # NAME's type changed to INT32.
        (lambda b: _hostile(b, _entry(b, 1000) + 4, b"\x00\x00\x00\x04"), "not a string"),
        # EPOCH's offset unaligned.
        (lambda b: _hostile(b, _entry(b, 1003) + 8, b"\x00\x00\x00\x03"), "int32 at offset 3"),
    ],
)
def test_hostile_header_blobs_are_refused(
    real_db: Path, change: Callable[[bytes], bytes], message: str
) -> None:
    (blob,) = [b for b in _blobs(real_db) if b"openssl" in b]
    with pytest.raises(BadHeader, match=message):
        header_package(change(blob))


def test_an_unterminated_string_is_refused() -> None:
    data = b"abc"
    entry = struct.pack(">iIiI", 1000, 6, 0, 1)
    with pytest.raises(BadHeader, match="not terminated"):
        header_package(struct.pack(">II", 1, len(data)) + entry + data)


# --- Berkeley DB --------------------------------------------------------------------------------


def test_berkeley_db_written_by_db_load_is_walked(real_db: Path, tmp_path: Path) -> None:
    require_tools("db_load")
    target = tmp_path / "Packages"
    to_berkeley_db(real_db, target)
    items = dict(bdb_hash_items(target.read_bytes()))
    assert items[struct.pack("<I", 0)] == struct.pack("<I", 2)
    assert sorted(items.values()) == sorted([struct.pack("<I", 2), *_blobs(real_db)])


def test_a_large_berkeley_db_with_overflow_items_is_walked_whole(tmp_path: Path) -> None:
    """Many buckets, and values larger than a page (stored on overflow page chains)."""
    require_tools("db_load")
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=512", "HEADER=END"]
    values = {n: bytes([n % 251]) * (50 + 37 * n) for n in range(1, 300)}
    for key, value in values.items():
        lines += [" " + struct.pack("<I", key).hex(), " " + value.hex()]
    lines.append("DATA=END")
    (tmp_path / "dump").write_text("\n".join(lines) + "\n")
    subprocess.run(["db_load", "-f", tmp_path / "dump", tmp_path / "db"], check=True)
    found = {
        struct.unpack("<I", k)[0]: v for k, v in bdb_hash_items((tmp_path / "db").read_bytes())
    }
    assert found == values


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\0" * 100, "shorter than"),
        (b"\0" * 4096, "no Berkeley DB hash magic"),
        (b"\0" * 12 + struct.pack("<III", 0x061561, 9, 1000) + b"\0" * 4072, "page size"),
        (b"\0" * 12 + struct.pack("<III", 0x061561, 3, 4096) + b"\0" * 4072, "hash version"),
    ],
)
def test_corrupt_berkeley_db_files_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(BadDatabase, match=message):
        list(bdb_hash_items(data))


def test_a_looping_bucket_chain_is_refused(real_db: Path, tmp_path: Path) -> None:
    require_tools("db_load")
    target = tmp_path / "Packages"
    to_berkeley_db(real_db, target)
    data = bytearray(target.read_bytes())
    # Every hash page's next-page pointer back to itself.
    for start in range(4096, len(data), 4096):
        if data[start + 25] in (2, 13):
            data[start + 16 : start + 20] = data[start + 8 : start + 12]
    with pytest.raises(BadDatabase, match="loops"):
        list(bdb_hash_items(bytes(data)))
