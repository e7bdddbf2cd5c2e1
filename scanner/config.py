"""amiscan's configuration: `amiscan.toml`, or the `[tool.amiscan]` table of `pyproject.toml`.

The file is validated completely and strictly before a scan starts: a typo in a key, a check id
that does not exist or a waiver without a reason would otherwise surface only after a scan that
launched an instance for nothing, or, worse, silently waive nothing. Every problem is a
`ConfigError` whose message is one line naming the file and the key (exit code 2 at the CLI).

Waivers name one check by its exact id. Prefixes (`linux.ssh`) are refused on purpose: a waiver
is an exception someone approved for one finding, and a prefix would also waive checks added to
the catalog later that nobody looked at.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from scanner.model import Severity

CONFIG_FILE = "amiscan.toml"
PYPROJECT_FILE = "pyproject.toml"

# TOML dates are native (`expires = 2025-06-30`); quoted ones must still be exactly YYYY-MM-DD,
# because date.fromisoformat also takes forms (20250630, 2025-W26-1) people do not mean.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

_WAIVER_KEYS = ("id", "reason", "expires", "approver")


class ConfigError(Exception):
    """The configuration is unusable; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class Waiver:
    """An approved exception: one check's `fail` does not count until `expires` has passed."""

    id: str
    reason: str
    expires: date
    approver: str

    def expired(self, today: date) -> bool:
        """A waiver holds through its expiry date and lapses the day after."""
        return today > self.expires

    def as_result_waiver(self) -> dict[str, str]:
        """The `waiver` object a waived result carries in every report."""
        return {
            "reason": self.reason,
            "expires": self.expires.isoformat(),
            "approver": self.approver,
        }


@dataclass(frozen=True)
class Config:
    """What the configuration file says; every field is optional, command-line options win."""

    source: Path | None = None
    region: str | None = None
    profile: str | None = None
    instance_type: str | None = None
    subnet_id: str | None = None
    user: str | None = None
    checks: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    fail_on: Severity | None = None
    baseline: Path | None = None
    waivers: tuple[Waiver, ...] = ()


def find_config(explicit: Path | None = None, cwd: Path | None = None) -> Path | None:
    """The file to read: `explicit`, else ./amiscan.toml, else ./pyproject.toml with a
    `[tool.amiscan]` table, else none."""
    if explicit is not None:
        return explicit
    here = cwd if cwd is not None else Path.cwd()
    if (here / CONFIG_FILE).is_file():
        return here / CONFIG_FILE
    pyproject = here / PYPROJECT_FILE
    if pyproject.is_file():
        try:
            data = _read_toml(pyproject)
        except ConfigError:
            # A broken pyproject.toml that may not even be meant for amiscan is not our error to
            # report, unless it has our table, which we cannot tell; treat it as no config.
            return None
        tool = data.get("tool")
        if isinstance(tool, dict) and "amiscan" in tool:
            return pyproject
    return None


def load_config(
    explicit: Path | None = None, *, known_ids: Collection[str], cwd: Path | None = None
) -> Config:
    """Find, read and validate the configuration; `Config()` when there is none."""
    path = find_config(explicit, cwd)
    if path is None:
        return Config()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    data = _read_toml(path)
    prefix = ""
    if path.name == PYPROJECT_FILE:
        tool = data.get("tool")
        table = tool.get("amiscan") if isinstance(tool, dict) else None
        if table is None:
            raise ConfigError(f"{path}: no [tool.amiscan] table")
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: tool.amiscan: expected a table")
        data, prefix = table, "tool.amiscan."
    return parse_config(data, path=path, known_ids=known_ids, key_prefix=prefix)


def parse_config(
    data: Mapping[str, Any],
    *,
    path: Path,
    known_ids: Collection[str],
    key_prefix: str = "",
) -> Config:
    """Validate one configuration table (already parsed from `path`) into a Config."""
    reader = _Reader(path, key_prefix)
    reader.refuse_unknown(data, _TOP_LEVEL_KEYS, "")
    checks = reader.ids(data, "checks", known_ids)
    skip = reader.ids(data, "skip", known_ids)
    fail_on = reader.string(data, "fail_on")
    if fail_on is not None and fail_on not in {s.value for s in Severity}:
        allowed = ", ".join(s.value for s in Severity)
        raise reader.error("fail_on", f"{fail_on!r} is not one of {allowed}")
    baseline = reader.string(data, "baseline")
    return Config(
        source=path,
        region=reader.string(data, "region"),
        profile=reader.string(data, "profile"),
        instance_type=reader.string(data, "instance_type"),
        subnet_id=reader.string(data, "subnet_id"),
        user=reader.string(data, "user"),
        checks=checks,
        skip=skip,
        fail_on=Severity(fail_on) if fail_on is not None else None,
        # Relative to the file, not to wherever amiscan happens to be started from.
        baseline=(path.parent / baseline) if baseline is not None else None,
        waivers=reader.waivers(data, known_ids),
    )


_TOP_LEVEL_KEYS = (
    "region",
    "profile",
    "instance_type",
    "subnet_id",
    "user",
    "checks",
    "skip",
    "fail_on",
    "baseline",
    "waivers",
)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 text") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None
    except ValueError as exc:  # an integer too long to convert (Python's digit limit)
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


class _Reader:
    """Typed field access whose every failure names the file and the key's full path."""

    def __init__(self, path: Path, key_prefix: str) -> None:
        self.path = path
        self.key_prefix = key_prefix

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.key_prefix}{key}: {problem}")

    def refuse_unknown(self, table: Mapping[str, Any], known: Collection[str], where: str) -> None:
        for key in table:
            if key not in known:
                close = difflib.get_close_matches(key, list(known), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise self.error(f"{where}{key}", f"unknown key{hint}")

    def string(self, table: Mapping[str, Any], key: str, where: str = "") -> str | None:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, str):
            raise self.error(f"{where}{key}", f"expected a string, got {_toml_type(value)}")
        if not value.strip():
            raise self.error(f"{where}{key}", "must not be empty")
        return value

    def ids(
        self, table: Mapping[str, Any], key: str, known_ids: Collection[str]
    ) -> tuple[str, ...]:
        """A list of check ids or group prefixes (`linux.ssh`), as `--checks`/`--skip` take."""
        if key not in table:
            return ()
        value = table[key]
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of check ids, got {_toml_type(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise self.error(f"{key}[{index}]", f"expected a check id, got {_toml_type(item)}")
        for index, item in enumerate(value):
            if not any(cid == item or cid.startswith(item + ".") for cid in known_ids):
                raise self.error(
                    f"{key}[{index}]", f"unknown check id {item!r} (see `amiscan checks`)"
                )
        return tuple(value)

    def waivers(self, table: Mapping[str, Any], known_ids: Collection[str]) -> tuple[Waiver, ...]:
        if "waivers" not in table:
            return ()
        entries = table["waivers"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise self.error("waivers", "expected an array of tables ([[waivers]])")
        waivers: list[Waiver] = []
        for index, entry in enumerate(entries):
            waiver = self._waiver(entry, f"waivers[{index}].", known_ids)
            for earlier_index, earlier in enumerate(waivers):
                if earlier.id == waiver.id:
                    raise self.error(
                        f"waivers[{index}].id",
                        f"{waiver.id!r} is already waived by waivers[{earlier_index}]",
                    )
            waivers.append(waiver)
        return tuple(waivers)

    def _waiver(self, entry: Mapping[str, Any], where: str, known_ids: Collection[str]) -> Waiver:
        self.refuse_unknown(entry, _WAIVER_KEYS, where)
        required: dict[str, str] = {}
        for key in ("id", "reason", "approver"):
            value = self.string(entry, key, where)
            if value is None:
                raise self.error(f"{where}{key}", "required")
            required[key] = value.strip()
        check_id = required["id"]
        if check_id not in known_ids:
            is_prefix = any(cid.startswith(check_id + ".") for cid in known_ids)
            why = (
                "a waiver names one check exactly; prefixes are not allowed"
                if is_prefix
                else "see `amiscan checks`"
            )
            raise self.error(f"{where}id", f"unknown check id {check_id!r} ({why})")
        return Waiver(
            id=check_id,
            reason=required["reason"],
            expires=self._date(entry, "expires", where),
            approver=required["approver"],
        )

    def _date(self, entry: Mapping[str, Any], key: str, where: str) -> date:
        if key not in entry:
            raise self.error(f"{where}{key}", "required (a date, YYYY-MM-DD)")
        value = entry[key]
        # datetime is a subclass of date: a time of day (and its time zone) is refused rather
        # than silently dropped.
        if isinstance(value, datetime):
            raise self.error(f"{where}{key}", "expected a date without a time, e.g. 2025-06-30")
        if isinstance(value, date):
            return value
        parsed = _parse_date(value) if isinstance(value, str) else None
        if parsed is not None:
            return parsed
        if isinstance(value, str):
            raise self.error(f"{where}{key}", f"{value!r} is not a date (YYYY-MM-DD)")
        raise self.error(f"{where}{key}", f"expected a date (YYYY-MM-DD), got {_toml_type(value)}")


def _parse_date(text: str) -> date | None:
    if not _ISO_DATE.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:  # 2025-02-30, 2025-13-01
        return None


def _toml_type(value: object) -> str:
    """The TOML name of a value's type, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, datetime):
        return "a date-time"
    if isinstance(value, date):
        return "a date"
    return type(value).__name__
