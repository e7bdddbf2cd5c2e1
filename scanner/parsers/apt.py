"""apt and dpkg metadata: dpkg's version ordering, control-file stanzas, Release headers.

`compare_versions` is Debian policy's algorithm (deb-version(7), dpkg's verrevcmp): versions are
`[epoch:]upstream[-revision]`; each part compares as alternating non-digit and digit runs, where
in non-digit runs `~` sorts before everything (even the end of the string), then the end, then
letters, then every other character; digit runs compare numerically.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime


class BadVersion(ValueError):
    """Not a Debian version string."""


def _order(char: str) -> int:
    if char == "":
        return 0
    if char == "~":
        return -1
    if "a" <= char <= "z" or "A" <= char <= "Z":
        return ord(char)
    return ord(char) + 256


_DIGITS = frozenset("0123456789")


def _compare_part(a: str, b: str) -> int:
    """dpkg's verrevcmp for one part (upstream version or revision)."""
    i = j = 0
    while i < len(a) or j < len(b):
        # The non-digit run, character by character (a digit or the end orders as 0).
        while (i < len(a) and a[i] not in _DIGITS) or (j < len(b) and b[j] not in _DIGITS):
            ac = _order(a[i]) if i < len(a) and a[i] not in _DIGITS else 0
            bc = _order(b[j]) if j < len(b) and b[j] not in _DIGITS else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        # The digit run, numerically.
        si = i
        while i < len(a) and a[i] in _DIGITS:
            i += 1
        sj = j
        while j < len(b) and b[j] in _DIGITS:
            j += 1
        na = int(a[si:i]) if i > si else 0
        nb = int(b[sj:j]) if j > sj else 0
        if na != nb:
            return -1 if na < nb else 1
    return 0


_EPOCH = re.compile(r"^\d+$")


def split_version(version: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision) of a Debian version; BadVersion when it is not one."""
    text = version.strip()
    if not text or any(c.isspace() for c in text):
        raise BadVersion(f"not a Debian version: {version!r}")
    epoch = 0
    if ":" in text:
        head, text = text.split(":", 1)
        if not _EPOCH.match(head):
            raise BadVersion(f"not a Debian version (epoch {head!r}): {version!r}")
        epoch = int(head)
    upstream, revision = text, ""
    if "-" in text:
        upstream, revision = text.rsplit("-", 1)
    if not upstream or upstream[0] not in _DIGITS:
        raise BadVersion(f"not a Debian version (upstream must start with a digit): {version!r}")
    return epoch, upstream, revision


def compare_versions(a: str, b: str) -> int:
    """<0, 0 or >0 as Debian version `a` sorts before, equal to or after `b`."""
    ea, ua, ra = split_version(a)
    eb, ub, rb = split_version(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


version_key = functools.cmp_to_key(compare_versions)


def stanzas(lines: Iterable[bytes], wanted: frozenset[str]) -> Iterator[dict[str, str]]:
    """The paragraphs of a deb822 control file (dpkg status, Packages), keeping only `wanted`
    fields (names compared case-insensitively, keys given as in `wanted`); a folded field's
    continuation lines are joined with spaces."""
    canonical = {name.lower(): name for name in wanted}
    current: dict[str, str] = {}
    field: str | None = None
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line.strip():
            if current:
                yield current
            current, field = {}, None
            continue
        if line[0] in " \t":
            if field is not None:
                current[field] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        key = canonical.get(name.strip().lower()) if sep else None
        field = key
        if key is not None:
            current[key] = value.strip()
    if current:
        yield current


@dataclass(frozen=True)
class ReleaseInfo:
    """The header of a Release or InRelease file: which suite a list belongs to, and when."""

    origin: str = ""
    label: str = ""
    suite: str = ""
    codename: str = ""
    date: datetime | None = None
    not_automatic: bool = False

    @property
    def name(self) -> str:
        return self.codename or self.suite or self.label or "unknown suite"

    @property
    def security(self) -> bool:
        """Whether the suite is a security suite (bookworm-security, jammy-security, …)."""
        suites = (self.suite.lower(), self.codename.lower())
        return any(s.endswith("-security") for s in suites) or self.label.lower() in {
            "debian-security"
        }


_RELEASE_FIELDS = {"origin", "label", "suite", "codename", "date", "notautomatic"}


def parse_release(text: str) -> ReleaseInfo:
    """The fields of a (clear-signed) Release file's header that say which suite it is."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("-----BEGIN PGP SIGNATURE"):
            break
        if not line or line[0] in " \t" or line.startswith("-----") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key in _RELEASE_FIELDS and key not in fields:
            fields[key] = value.strip()
    date = None
    if fields.get("date"):
        try:
            date = parsedate_to_datetime(fields["date"])
        except (TypeError, ValueError):
            date = None
    return ReleaseInfo(
        origin=fields.get("origin", ""),
        label=fields.get("label", ""),
        suite=fields.get("suite", ""),
        codename=fields.get("codename", ""),
        date=date,
        not_automatic=fields.get("notautomatic", "").lower() == "yes",
    )


def dependency_groups(field: str) -> list[list[str]]:
    """Package names of a Depends-style field, one list of alternatives per dependency
    (versions, architecture qualifiers and build profiles dropped)."""
    groups = []
    for clause in field.split(","):
        names = []
        for alternative in clause.split("|"):
            name = re.split(r"[\s(\[<]", alternative.strip(), maxsplit=1)[0]
            name = name.split(":", 1)[0]
            if name:
                names.append(name)
        if names:
            groups.append(names)
    return groups
