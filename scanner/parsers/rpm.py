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
