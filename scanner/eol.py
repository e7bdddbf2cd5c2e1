"""Whether an operating system release is still supported on a given day.

The dates come from a table bundled with amiscan (scanner/data/os_eol.json) and dated by its
`updated` field. It is data we ship rather than something fetched at scan time so that a scan gives
the same answer offline, in CI and on the seller's laptop; a release newer than the table is
"unknown", which the checks report as a warning, never as a pass.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Literal

from scanner.parsers.os_release import OsRelease

# "extended": past `eol` but inside an extension the distribution itself delivers for free (Debian
# LTS through bookworm-security): still patched, so a warning; a paid extension is "end-of-life".
SupportStatus = Literal["supported", "ending-soon", "extended", "end-of-life", "unknown"]

# Distributions whose dotted VERSION_ID ("9.4", "8.10", "7.9.2009") is a minor release that shares
# its major release's lifecycle. Ubuntu, SLES and Leap are deliberately absent: "22.10" or "15.5"
# are releases of their own, with their own end dates.
_MAJOR_LIFECYCLE_IDS = frozenset({"rhel", "centos", "rocky", "almalinux", "ol", "debian"})
# An ID_LIKE naming one of these marks a RHEL rebuild, which numbers its releases the same way.
_RHEL_LIKE = frozenset({"rhel", "centos"})
# The original Amazon Linux AMI was one rolling line: 2017.09 and older point releases were
# superseded by 2018.03 and ended with it.
_AMAZON_LINUX_1_POINT_RELEASE = re.compile(r"201[0-8]\.\d\d")
_AMAZON_LINUX_1 = "2018.03"


@dataclass(frozen=True)
class Lifecycle:
    """One release's row of the table. `eol` is the last day of the support phase the table's
    `terms` name for that distribution; `extended_eol` ends a paid or best-effort extension, which
    is evidence for the report, not support."""

    os: str
    version: str
    name: str
    released: date | None
    eol: date
    extended_eol: date | None
    projected: bool


@dataclass(frozen=True)
class Support:
    status: SupportStatus
    lifecycle: Lifecycle | None
    # Days from the judgement day to `eol`: 0 on the last supported day, negative after it.
    days_left: int | None
    summary: str


@dataclass(frozen=True)
class _Terms:
    """What a vendor calls the support that `eol` ends, and the extension after it.

    `free_extension` is true when the distribution itself delivers the extension's updates to
    every user (Debian LTS); false when they need a paid subscription (ESM, ELS, LTSS, ESU), which
    an image's buyers cannot be assumed to have.
    """

    eol: str = "support"
    extended: str = "extended support"
    free_extension: bool = False


@dataclass(frozen=True)
class _Entry:
    lifecycle: Lifecycle
    # Non-empty when the row applies only to releases whose NAME contains it: CentOS Linux 8 and
    # CentOS Stream 8 share ID "centos" and VERSION_ID "8".
    name_contains: str


class EolTable:
    def __init__(
        self, updated: date, entries: Sequence[_Entry], terms: Mapping[str, _Terms]
    ) -> None:
        self.updated = updated
        self._terms = dict(terms)
        self._entries: dict[tuple[str, str], list[_Entry]] = {}
        for entry in entries:
            key = (entry.lifecycle.os, entry.lifecycle.version)
            self._entries.setdefault(key, []).append(entry)

    @classmethod
    def from_json(cls, document: Any) -> EolTable:
        """The table from the parsed JSON document; ValueError names the first bad field."""
        if not isinstance(document, dict):
            raise ValueError("the end-of-life table is not a JSON object")
        raw_releases = document.get("releases")
        if not isinstance(raw_releases, list):
            raise ValueError("the end-of-life table has no releases list")
        entries = [_parse_entry(raw, index) for index, raw in enumerate(raw_releases)]
        _reject_duplicates(entries)
        return cls(
            updated=_required_date(document, "updated", "the table"),
            entries=entries,
            terms=_parse_terms(document.get("terms", {})),
        )

    @property
    def releases(self) -> tuple[Lifecycle, ...]:
        return tuple(entry.lifecycle for group in self._entries.values() for entry in group)

    def terms(self, os_id: str) -> _Terms:
        return self._terms.get(os_id, _Terms())

    def lookup(
        self, os_id: str, version_id: str, name: str = "", id_like: tuple[str, ...] = ()
    ) -> Lifecycle | None:
        """The lifecycle of the release an os-release names, or None when the table lacks it.
        `name` is NAME (and PRETTY_NAME) and only tells CentOS Stream from CentOS Linux."""
        os_key = os_id.strip().lower()
        for version in _candidate_versions(os_key, version_id.strip(), id_like):
            entry = self._pick(os_key, version, name)
            if entry is not None:
                return entry.lifecycle
        return None

    def _pick(self, os_key: str, version: str, name: str) -> _Entry | None:
        candidates = self._entries.get((os_key, version), [])
        folded = name.casefold()
        named = [e for e in candidates if e.name_contains and e.name_contains.casefold() in folded]
        plain = [e for e in candidates if not e.name_contains]
        # Without a matching name, a row that needs none; failing that, the only kind there is
        # (CentOS 9 can only be CentOS Stream 9, whatever NAME says).
        for group in (named, plain, candidates):
            if group:
                return group[0]
        return None


def _candidate_versions(os_key: str, version: str, id_like: tuple[str, ...]) -> Iterator[str]:
    """VERSION_IDs to try, most specific first."""
    if not version:
        return
    yield version
    if os_key == "amzn" and _AMAZON_LINUX_1_POINT_RELEASE.fullmatch(version):
        yield _AMAZON_LINUX_1
    if os_key in _MAJOR_LIFECYCLE_IDS or _RHEL_LIKE.intersection(id_like):
        major = version.split(".", 1)[0]
        if major != version:
            yield major


@cache
def load_table() -> EolTable:
    """The table bundled with amiscan, read once."""
    resource = resources.files("scanner").joinpath("data/os_eol.json")
    return EolTable.from_json(json.loads(resource.read_text(encoding="utf-8")))


def support_on(
    release: OsRelease, on: date, table: EolTable | None = None, warn_days: int = 90
) -> Support:
    """Judge a Linux release (from its os-release) on the day `on`."""
    table = table if table is not None else load_table()
    if not release.version_id:
        return _unknown(
            f"{release.pretty_name} has no VERSION_ID (a testing, unstable or rolling release?), "
            "so its end of life cannot be looked up"
        )
    lifecycle = table.lookup(
        release.id, release.version_id, f"{release.name} {release.pretty_name}", release.id_like
    )
    if lifecycle is None:
        described = f"{release.pretty_name} (ID={release.id}, VERSION_ID={release.version_id})"
        summary = _not_in_table(described, table)
        if release.support_end:
            # Evidence for the seller only: the image's own claim is not an independent source.
            summary += f" (its os-release declares SUPPORT_END={release.support_end})"
        return _unknown(summary)
    return _judge(lifecycle, on, warn_days, table.terms(lifecycle.os))


def windows_support_on(
    build: int, on: date, table: EolTable | None = None, warn_days: int = 90
) -> Support:
    """Judge a Windows Server release by its OS build number (CurrentBuildNumber)."""
    table = table if table is not None else load_table()
    lifecycle = table.lookup("windows", str(build))
    if lifecycle is None:
        return _unknown(_not_in_table(f"Windows build {build}", table))
    return _judge(lifecycle, on, warn_days, table.terms(lifecycle.os))


def _judge(lifecycle: Lifecycle, on: date, warn_days: int, terms: _Terms) -> Support:
    if warn_days < 0:
        raise ValueError(f"warn_days must not be negative, got {warn_days}")
    days_left = (lifecycle.eol - on).days
    extended = lifecycle.extended_eol
    if days_left < 0 and terms.free_extension and extended is not None and on <= extended:
        return Support("extended", lifecycle, days_left, _in_free_extension(lifecycle, on, terms))
    if days_left < 0:
        return Support("end-of-life", lifecycle, days_left, _ended(lifecycle, on, terms))
    if days_left < warn_days:
        return Support("ending-soon", lifecycle, days_left, _ending(lifecycle, days_left, terms))
    return Support("supported", lifecycle, days_left, _supported(lifecycle, days_left, terms))


def _supported(lifecycle: Lifecycle, days_left: int, terms: _Terms) -> str:
    details = [f"end of {terms.eol}", *_projected(lifecycle), f"{_days(days_left)} left"]
    return f"{lifecycle.name} is supported until {lifecycle.eol} ({'; '.join(details)})"


def _ending(lifecycle: Lifecycle, days_left: int, terms: _Terms) -> str:
    when = "today" if days_left == 0 else f"on {lifecycle.eol}"
    details = [*_projected(lifecycle)]
    if days_left:
        details.append(f"{_days(days_left)} left")
    return f"{lifecycle.name} {terms.eol} ends {when}{_parenthesised(details)}"


def _ended(lifecycle: Lifecycle, on: date, terms: _Terms) -> str:
    details = [*_projected(lifecycle)]
    extended = lifecycle.extended_eol
    entitled = False
    if extended is not None:
        # Reported so the seller sees what a paid extension would buy, not as a pass.
        entitled = on <= extended
        verb = "until" if entitled else "also ended on"
        paid = "" if terms.free_extension else "paid "
        details.append(f"{paid}{terms.extended} {verb} {extended}")
    ended = f"{lifecycle.name} reached end of {terms.eol} on {lifecycle.eol}" + _parenthesised(
        details
    )
    if entitled and not terms.free_extension:
        return (
            f"{ended}; an image entitled to {terms.extended} may waive this result, with that "
            "entitlement as the reason"
        )
    return ended


def _in_free_extension(lifecycle: Lifecycle, on: date, terms: _Terms) -> str:
    left = (lifecycle.extended_eol - on).days if lifecycle.extended_eol else 0
    details = [*_projected(lifecycle), f"{_days(left)} left"]
    return (
        f"{lifecycle.name} left {terms.eol} on {lifecycle.eol} and is in {terms.extended}, "
        f"which the distribution itself delivers free until {lifecycle.extended_eol}"
        f"{_parenthesised(details)}; move to a release in {terms.eol} before then"
    )


def _projected(lifecycle: Lifecycle) -> list[str]:
    return ["projected date"] if lifecycle.projected else []


def _parenthesised(details: list[str]) -> str:
    return f" ({'; '.join(details)})" if details else ""


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count} days"


def _unknown(summary: str) -> Support:
    return Support("unknown", None, None, summary)


def _not_in_table(described: str, table: EolTable) -> str:
    return (
        f"{described} is not in the bundled end-of-life table (updated {table.updated}); "
        "its support status is unknown"
    )


def _parse_entry(raw: Any, index: int) -> _Entry:
    if not isinstance(raw, dict):
        raise ValueError(f"releases[{index}] is not an object")
    where = f"releases[{index}]"
    lifecycle = Lifecycle(
        os=_required_str(raw, "os", where),
        version=_required_str(raw, "version", where),
        name=_required_str(raw, "name", where),
        released=_optional_date(raw, "released", where),
        eol=_required_date(raw, "eol", where),
        extended_eol=_optional_date(raw, "extended_eol", where),
        projected=_optional_bool(raw, "projected", where),
    )
    name_contains = raw.get("name_contains", "")
    if not isinstance(name_contains, str):
        raise ValueError(f"{where}.name_contains is not a string")
    return _Entry(lifecycle, name_contains)


def _reject_duplicates(entries: list[_Entry]) -> None:
    # Two rows for one release would make the answer depend on the order of the file.
    seen: set[tuple[str, str, str]] = set()
    for entry in entries:
        key = (entry.lifecycle.os, entry.lifecycle.version, entry.name_contains)
        if key in seen:
            raise ValueError(f"the end-of-life table lists {key} twice")
        seen.add(key)


def _parse_terms(raw: Any) -> dict[str, _Terms]:
    if not isinstance(raw, dict):
        raise ValueError("terms is not an object")
    terms: dict[str, _Terms] = {}
    for os_id, names in raw.items():
        where = f"terms.{os_id}"
        if not isinstance(names, dict):
            raise ValueError(f"{where} is not an object")
        defaults = _Terms()
        terms[os_id] = _Terms(
            eol=_optional_str(names, "eol", where) or defaults.eol,
            extended=_optional_str(names, "extended", where) or defaults.extended,
            free_extension=_optional_bool(names, "free_extension", where),
        )
    return terms


def _required_str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}.{key} must be a non-empty string")
    return value


def _optional_str(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be a string")
    return value


def _optional_bool(raw: Mapping[str, Any], key: str, where: str) -> bool:
    value = raw.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key} must be true or false")
    return value


def _required_date(raw: Mapping[str, Any], key: str, where: str) -> date:
    parsed = _optional_date(raw, key, where)
    if parsed is None:
        raise ValueError(f"{where}.{key} is required")
    return parsed


def _optional_date(raw: Mapping[str, Any], key: str, where: str) -> date | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key} must be an ISO date string")
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise ValueError(f"{where}.{key}: {error}") from None
