"""RPM metadata: rpm's version ordering (rpmvercmp), EVR strings, header blobs of the rpm database.

`rpmvercmp` is rpm's own algorithm (rpmio/rpmvercmp.c): a version is split into runs of ASCII
letters and of ASCII digits, everything else separating them; digit runs compare numerically and
sort after letter runs; `~` sorts before everything, even the end of the string ("1.0~rc1" <
"1.0"); `^` sorts after the end of the string but before any other run ("1.0" < "1.0^git1" <
"1.0.1").

A header blob is what rpm stores for each installed package (the `blob` column of rpmdb.sqlite,
the values of a Berkeley DB or ndb `Packages` database): big-endian int32 index count and data
size, that many 16-byte index entries (tag, type, offset, count), then the data. The image is
untrusted: every count and offset is checked against the blob before anything is read.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from dataclasses import dataclass


class BadHeader(ValueError):
    """Not a well-formed rpm header blob."""


def _is_alpha(char: str) -> bool:
    # rpm's risalpha/risdigit are ASCII only: any other character separates runs.
    return "a" <= char <= "z" or "A" <= char <= "Z"


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _is_separator(char: str) -> bool:
    return not (_is_alpha(char) or _is_digit(char) or char in "~^")


def _run_end(text: str, start: int, digits: bool) -> int:
    wanted = _is_digit if digits else _is_alpha
    end = start
    while end < len(text) and wanted(text[end]):
        end += 1
    return end


def _compare_runs(one: str, two: str, digits: bool) -> int:
    if digits:
        one, two = one.lstrip("0"), two.lstrip("0")
        if len(one) != len(two):
            return 1 if len(one) > len(two) else -1
    if one == two:
        return 0
    return 1 if one > two else -1


def rpmvercmp(a: str, b: str) -> int:
    """-1, 0 or 1 as version (or release) `a` sorts before, equal to or after `b`, as rpm does."""
    if a == b:
        return 0
    i = j = 0
    while i < len(a) or j < len(b):
        while i < len(a) and _is_separator(a[i]):
            i += 1
        while j < len(b) and _is_separator(b[j]):
            j += 1
        one = a[i] if i < len(a) else ""
        two = b[j] if j < len(b) else ""
        if one == "~" or two == "~":
            if one != "~":
                return 1
            if two != "~":
                return -1
            i, j = i + 1, j + 1
            continue
        if one == "^" or two == "^":
            if not one:
                return -1
            if not two:
                return 1
            if one != "^":
                return 1
            if two != "^":
                return -1
            i, j = i + 1, j + 1
            continue
        if not (one and two):
            break
        digits = _is_digit(one)
        end_a, end_b = _run_end(a, i, digits), _run_end(b, j, digits)
        # Runs of different kinds: a digit run is newer than a letter run.
        if end_b == j:
            return 1 if digits else -1
        order = _compare_runs(a[i:end_a], b[j:end_b], digits)
        if order:
            return order
        i, j = end_a, end_b
    if i >= len(a) and j >= len(b):
        return 0
    return -1 if i >= len(a) else 1


@dataclass(frozen=True)
class Evr:
    """epoch:version-release; an absent epoch is 0, as dnf and rpm ≥ 4.x compare it."""

    epoch: int
    version: str
    release: str

    def __str__(self) -> str:
        # As dnf prints it: the epoch only when it is not 0.
        head = f"{self.epoch}:" if self.epoch else ""
        return f"{head}{self.version}-{self.release}" if self.release else f"{head}{self.version}"


def parse_evr(text: str) -> Evr:
    """An Evr from "[epoch:]version[-release]" (the release is after the last `-`)."""
    epoch = 0
    head, sep, rest = text.partition(":")
    if sep and head.isdigit():
        epoch, text = int(head), rest
    version, _, release = text.rpartition("-") if "-" in text else (text, "", "")
    return Evr(epoch, version, release)


def evr_from_parts(epoch: str | int | None, version: str, release: str) -> Evr:
    """An Evr from separate fields (repodata attributes); a missing or empty epoch is 0."""
    if epoch is None or epoch == "":
        return Evr(0, version, release)
    number = int(epoch)
    if number < 0:
        raise ValueError(f"negative epoch {epoch!r}")
    return Evr(number, version, release)


def compare_evr(a: Evr, b: Evr) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to or after `b` (rpmVersionCompare's order)."""
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    return rpmvercmp(a.version, b.version) or rpmvercmp(a.release, b.release)


evr_key = functools.cmp_to_key(compare_evr)


# --- header blobs ---------------------------------------------------------------------------------

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
_TYPE_INT32 = 4
_TYPE_STRING = 6
_TYPE_I18NSTRING = 9
_STRING_TYPES = frozenset({_TYPE_STRING, _TYPE_I18NSTRING})
# rpm's own limits (lib/header_internal.h): no real header comes near them.
HEADER_TAGS_MAX = 0xFFFF
HEADER_DATA_MAX = 0x0FFFFFFF
_ENTRY = struct.Struct(">iIiI")


@dataclass(frozen=True)
class HeaderPackage:
    """What amiscan needs of an installed package: name, arch and EVR (arch None: gpg-pubkey)."""

    name: str
    arch: str | None
    evr: Evr


def _string_at(data: bytes, offset: int) -> str:
    if not 0 <= offset < len(data):
        raise BadHeader(f"string offset {offset} outside the {len(data)}-byte data")
    end = data.find(b"\0", offset)
    if end < 0:
        raise BadHeader(f"string at offset {offset} is not terminated")
    return data[offset:end].decode("utf-8", errors="replace")


def _int32_at(data: bytes, offset: int, count: int) -> int:
    if count < 1 or offset % 4 or not 0 <= offset <= len(data) - 4:
        raise BadHeader(f"int32 at offset {offset} (count {count}) outside the data")
    return int(struct.unpack_from(">I", data, offset)[0])


def header_tags(blob: bytes) -> dict[int, str | int]:
    """The NAME, VERSION, RELEASE, EPOCH and ARCH tags of a header blob; BadHeader when malformed.

    Only those tags are decoded; every other entry is checked only as far as its index entry.
    """
    if len(blob) < 8:
        raise BadHeader(f"{len(blob)} bytes, shorter than a header's 8-byte preamble")
    count, size = struct.unpack_from(">II", blob, 0)
    if count < 1 or count > HEADER_TAGS_MAX:
        raise BadHeader(f"index count {count} outside 1..{HEADER_TAGS_MAX}")
    if size > HEADER_DATA_MAX:
        raise BadHeader(f"data size {size} over {HEADER_DATA_MAX}")
    data_start = 8 + count * _ENTRY.size
    if data_start + size > len(blob):
        raise BadHeader(
            f"index of {count} entries and {size} bytes of data run past the {len(blob)}-byte blob"
        )
    data = blob[data_start : data_start + size]
    wanted = {TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH}
    tags: dict[int, str | int] = {}
    for index in range(count):
        tag, kind, offset, items = _ENTRY.unpack_from(blob, 8 + index * _ENTRY.size)
        if tag not in wanted or tag in tags:
            continue
        if tag == TAG_EPOCH:
            if kind != _TYPE_INT32:
                raise BadHeader(f"EPOCH has type {kind}, not INT32")
            tags[tag] = _int32_at(data, offset, items)
        elif kind in _STRING_TYPES:
            tags[tag] = _string_at(data, offset)
        else:
            raise BadHeader(f"tag {tag} has type {kind}, not a string")
    return tags


def header_package(blob: bytes) -> HeaderPackage:
    """The installed package a header blob describes; BadHeader when malformed or nameless."""
    tags = header_tags(blob)
    name, version, release = (tags.get(t) for t in (TAG_NAME, TAG_VERSION, TAG_RELEASE))
    if not isinstance(name, str) or not name:
        raise BadHeader("no NAME tag")
    if not isinstance(version, str) or not isinstance(release, str):
        raise BadHeader(f"{name}: no VERSION or RELEASE tag")
    arch = tags.get(TAG_ARCH)
    epoch = tags.get(TAG_EPOCH, 0)
    return HeaderPackage(
        name,
        arch if isinstance(arch, str) else None,
        Evr(epoch if isinstance(epoch, int) else 0, version, release),
    )


# --- Berkeley DB hash databases (the rpm database of RHEL 7/8, Amazon Linux 2) ---------------------

_BDB_HASH_MAGIC = 0x00061561
# Page types (db_page.h): hash pages (sorted, unsorted, and hash v8's), overflow pages.
_P_HASH_PAGES = frozenset({2, 8, 13})
_P_OVERFLOW = 7
_H_KEYDATA = 1
_H_OFFPAGE = 3
_PAGE_HEADER = 26


class BadDatabase(ValueError):
    """Not a Berkeley DB hash database that amiscan can walk."""


class _BdbFile:
    """A Berkeley DB hash file held in memory, every read bounds-checked (the file is untrusted)."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 512:
            raise BadDatabase(f"{len(data)} bytes, shorter than a Berkeley DB meta page")
        for order in ("<", ">"):
            if struct.unpack_from(f"{order}I", data, 12)[0] == _BDB_HASH_MAGIC:
                self.order = order
                break
        else:
            raise BadDatabase("no Berkeley DB hash magic (not a hash database)")
        self.data = memoryview(data)
        version, pagesize = self.u32(16), self.u32(20)
        if not 8 <= version <= 10:
            raise BadDatabase(f"unsupported hash version {version}")
        if pagesize < 512 or pagesize > 65536 or pagesize & (pagesize - 1):
            raise BadDatabase(f"page size {pagesize} is not a power of two in 512..65536")
        if data[24] != 0:
            raise BadDatabase("the database is encrypted")
        self.pagesize = pagesize
        self.pages = len(data) // pagesize
        self.max_bucket = self.u32(72)
        self.spares = struct.unpack_from(f"{self.order}32I", data, 96)
        if self.max_bucket >= self.pages:
            raise BadDatabase(f"{self.max_bucket + 1} buckets in a file of {self.pages} pages")

    def u32(self, offset: int) -> int:
        return int(struct.unpack_from(f"{self.order}I", self.data, offset)[0])

    def u16(self, offset: int) -> int:
        return int(struct.unpack_from(f"{self.order}H", self.data, offset)[0])

    def page(self, number: int, types: frozenset[int]) -> int:
        """The file offset of page `number`, checked to be of one of `types` and to say its own
        number (as rpm's bdb_ro checks)."""
        if not 0 < number < self.pages:
            raise BadDatabase(f"page {number} outside the file's {self.pages} pages")
        start = number * self.pagesize
        if self.u32(start + 8) != number:
            raise BadDatabase(f"page {number} says it is page {self.u32(start + 8)}")
        if self.data[start + 25] not in types:
            raise BadDatabase(f"page {number} has type {self.data[start + 25]}, not {set(types)}")
        return start

    def overflow(self, number: int, length: int) -> bytes:
        """An item stored on a chain of overflow pages."""
        chunks: list[bytes] = []
        remaining = length
        seen: set[int] = set()
        while remaining > 0:
            if number in seen:
                raise BadDatabase(f"overflow chain loops at page {number}")
            seen.add(number)
            start = self.page(number, frozenset({_P_OVERFLOW}))
            size = self.u16(start + 22)
            if size > remaining or _PAGE_HEADER + size > self.pagesize:
                raise BadDatabase(f"overflow page {number} holds {size} bytes, past the item")
            chunks.append(bytes(self.data[start + _PAGE_HEADER : start + _PAGE_HEADER + size]))
            remaining -= size
            number = self.u32(start + 16)
        return b"".join(chunks)

    def item(self, page: int, offset: int, length: int) -> bytes:
        if length < 1 or offset < _PAGE_HEADER or offset + length > self.pagesize:
            raise BadDatabase(f"item of {length} bytes at {offset} outside its page")
        at = page + offset
        kind = self.data[at]
        if kind == _H_KEYDATA:
            return bytes(self.data[at + 1 : at + length])
        if kind == _H_OFFPAGE and length == 12:
            return self.overflow(self.u32(at + 4), self.u32(at + 8))
        raise BadDatabase(f"item of type {kind} (duplicates are not used by rpm)")

    def pairs(self, page: int) -> Iterator[tuple[bytes, bytes]]:
        entries = self.u16(page + 20)
        if _PAGE_HEADER + 2 * entries > self.pagesize:
            raise BadDatabase(f"{entries} entries do not fit a {self.pagesize}-byte page")
        offsets = struct.unpack_from(f"{self.order}{entries}H", self.data, page + _PAGE_HEADER)
        for index in range(0, entries - 1, 2):
            key_at, value_at = offsets[index], offsets[index + 1]
            # Items fill the page from its end: an item ends where the previous one starts.
            key_end = self.pagesize if index == 0 else offsets[index - 1]
            yield (
                self.item(page, key_at, key_end - key_at),
                self.item(page, value_at, key_at - value_at),
            )

    def bucket_page(self, bucket: int) -> int:
        # db's BS_TO_PAGE: the bucket's split point (its bit length) indexes the spares.
        return bucket + int(self.spares[bucket.bit_length()])


def bdb_hash_items(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of a Berkeley DB hash database, bucket by bucket (rpm's bdb_ro walk).

    BadDatabase when the file is not one, or any page, item or chain is out of bounds or loops.
    """
    db = _BdbFile(data)
    seen: set[int] = set()
    for bucket in range(db.max_bucket + 1):
        number = db.bucket_page(bucket)
        while number:
            if number in seen:
                raise BadDatabase(f"bucket chain loops at page {number}")
            seen.add(number)
            page = db.page(number, _P_HASH_PAGES)
            yield from db.pairs(page)
            number = db.u32(page + 16)
