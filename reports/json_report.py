"""The JSON report: the machine contract of DESIGN.md (`schema_version` 1), writer and reader.

The document is a lossless view of `scanner.model.Report`: `from_dict(to_dict(r)) == r` for any
report whose target details and collection hold JSON values. The reader is what
`amiscan report FILE.json` trusts, so it validates every field and fails with one readable line.
Fields added later are additive: the reader ignores keys it does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

from reports.printable import encodable
from scanner.model import (
    Evidence,
    Phase,
    Policy,
    Report,
    Result,
    Severity,
    Status,
    TargetInfo,
    Verdict,
)

SCHEMA_VERSION = 1

# The target's own fields; target details are merged beside them and may not shadow them.
_TARGET_FIELDS = ("kind", "id", "platform")
# How deep target details and collection may nest: amiscan writes a few levels; a document nested
# deeper is refused here rather than exhausting the stack of every renderer that walks it.
MAX_NESTING = 32
# Durations are seconds: a number outside this range is not one amiscan wrote, and a huge integer
# cannot even be converted to a float.
MAX_SECONDS = 10**9
# A report of the largest real scan is a few MiB; a file far larger is not one to load whole.
MAX_REPORT_BYTES = 256 * 1024 * 1024

_T = TypeVar("_T")
_E = TypeVar("_E", Severity, Status, Verdict)


class ReportFormatError(ValueError):
    """The document is not an amiscan report this version can read; the message is one line."""


# --- writing ----------------------------------------------------------------------------------


def to_dict(report: Report) -> dict[str, Any]:
    """The report as the JSON-ready dictionary of schema_version 1."""
    return {
        "schema_version": report.schema_version,
        "amiscan_version": report.amiscan_version,
        "catalog_version": report.catalog_version,
        "target": _target_to_dict(report.target),
        "started_at": report.started_at,
        "finished_at": report.finished_at,
        "duration_s": report.duration_s,
        "verdict": report.verdict.value,
        "summary": report.summary,
        # Derived from `results` (unwaived errors), for gates that only read the top level.
        "unjudged": [
            {"id": r.id, "severity": r.severity.value, "reason": r.summary} for r in report.unjudged
        ],
        "results": [_result_to_dict(result) for result in report.results],
        "phases": [{"name": p.name, "duration_s": p.duration_s} for p in report.phases],
        "errors": list(report.errors),
        "notes": list(report.notes),
        "collection": dict(report.collection),
    }


def dumps(report: Report) -> str:
    """The report as JSON text (indent 2, ASCII-only, ending in a newline).

    ASCII-only so the text can be written to any stream whatever its encoding (a Windows
    console, `--json -` under a C locale) and still round-trips every character exactly.
    A non-JSON value in target details or collection is written as its `str()`: the report of
    a long scan must not be lost at the last step over one odd value. A lone surrogate (a
    non-UTF-8 guest name) is written as U+FFFD, as every other format shows it.
    """
    return json.dumps(to_dict(encodable(report)), indent=2, ensure_ascii=True, default=str) + "\n"


def _target_to_dict(target: TargetInfo) -> dict[str, Any]:
    details = {k: v for k, v in target.details.items() if k not in _TARGET_FIELDS}
    return {"kind": target.kind, "id": target.id, "platform": target.platform, **details}


def _result_to_dict(result: Result) -> dict[str, Any]:
    return {
        "id": result.id,
        "title": result.title,
        "severity": result.severity.value,
        "status": result.status.value,
        "summary": result.summary,
        "evidence": [{"source": e.source, "text": e.text} for e in result.evidence],
        "remediation": result.remediation,
        "policy": {"id": result.policy.id, "url": result.policy.url, "text": result.policy.text},
        "rationale": result.rationale,
        "waived": result.waived,
        "waiver": dict(result.waiver) if result.waiver is not None else None,
        "duration_s": result.duration_s,
    }


# --- reading ----------------------------------------------------------------------------------


def read_text(path: Path) -> str:
    """A report file's text, read with a bound; OSError and UnicodeDecodeError as `open` raises
    them, ReportFormatError when the file is too large to be a report."""
    with path.open("rb") as handle:
        data = handle.read(MAX_REPORT_BYTES + 1)
    if len(data) > MAX_REPORT_BYTES:
        raise ReportFormatError(
            f"not an amiscan report: larger than {MAX_REPORT_BYTES // (1024 * 1024)} MiB"
        )
    return data.decode("utf-8")


def loads(text: str) -> Report:
    """Parse JSON text written by `dumps`; raise ReportFormatError if it is not such a report."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFormatError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ReportFormatError("not valid JSON: nested too deeply") from None
    except ValueError as exc:  # an integer too long to convert (Python's digit limit)
        raise ReportFormatError(f"not valid JSON: a number is out of range ({exc})") from None
    return from_dict(data)


def from_dict(data: object) -> Report:
    """Rebuild the Report from `to_dict` output; raise ReportFormatError on anything else."""
    if not isinstance(data, dict):
        raise ReportFormatError(
            f"not an amiscan report: expected a JSON object, got {_json_type(data)}"
        )
    _check_schema_version(data)
    where = "report"
    return Report(
        schema_version=SCHEMA_VERSION,
        amiscan_version=_get(data, "amiscan_version", str, where),
        catalog_version=_get(data, "catalog_version", str, where, default=""),
        target=_target_from(_get(data, "target", dict, where), f"{where}.target"),
        started_at=_get(data, "started_at", str, where),
        finished_at=_get(data, "finished_at", str, where),
        duration_s=_number(data, "duration_s", where),
        verdict=_enum(data, "verdict", Verdict, where),
        results=_list_of(data, "results", _result_from, where),
        phases=_list_of(data, "phases", _phase_from, where, required=False),
        errors=_list_of(data, "errors", _string_from, where, required=False),
        notes=_list_of(data, "notes", _string_from, where, required=False),
        collection=_check_nesting(
            _get(data, "collection", dict, where, default={}), f"{where}.collection"
        ),
    )


def _check_schema_version(data: Mapping[str, Any]) -> None:
    if "schema_version" not in data:
        raise ReportFormatError("not an amiscan report: no 'schema_version' field")
    version = data["schema_version"]
    # bool is an int in Python, and `true == 1`; a document saying `true` is not version 1.
    if type(version) is not int or version != SCHEMA_VERSION:
        raise ReportFormatError(
            f"unsupported schema_version {_show(version)}: this amiscan reads "
            f"schema_version {SCHEMA_VERSION}"
        )


def _target_from(data: Mapping[str, Any], where: str) -> TargetInfo:
    _check_nesting(data, where)
    return TargetInfo(
        kind=_get(data, "kind", str, where),
        id=_get(data, "id", str, where),
        platform=_get(data, "platform", str, where),
        details={k: v for k, v in data.items() if k not in _TARGET_FIELDS},
    )


def _result_from(data: object, where: str) -> Result:
    item = _as_object(data, where)
    return Result(
        id=_get(item, "id", str, where),
        title=_get(item, "title", str, where),
        severity=_enum(item, "severity", Severity, where),
        status=_enum(item, "status", Status, where),
        summary=_get(item, "summary", str, where),
        evidence=_list_of(item, "evidence", _evidence_from, where),
        remediation=_get(item, "remediation", str, where),
        policy=_policy_from(_get(item, "policy", dict, where), f"{where}.policy"),
        rationale=_get(item, "rationale", str, where, default=""),
        waived=_get(item, "waived", bool, where),
        waiver=_waiver_from(item.get("waiver"), f"{where}.waiver"),
        duration_s=_number(item, "duration_s", where, default=0.0),
    )


def _evidence_from(data: object, where: str) -> Evidence:
    item = _as_object(data, where)
    return Evidence(source=_get(item, "source", str, where), text=_get(item, "text", str, where))


def _policy_from(data: Mapping[str, Any], where: str) -> Policy:
    return Policy(
        id=_get(data, "id", str, where),
        url=_get(data, "url", str, where),
        text=_get(data, "text", str, where, default=""),
    )


def _waiver_from(data: object, where: str) -> dict[str, str] | None:
    if data is None:
        return None
    waiver = _as_object(data, where)
    for key, value in waiver.items():
        if not isinstance(value, str):
            raise ReportFormatError(
                f"invalid report: {where}.{key}: expected a string, got {_json_type(value)}"
            )
    return dict(waiver)


def _phase_from(data: object, where: str) -> Phase:
    item = _as_object(data, where)
    return Phase(name=_get(item, "name", str, where), duration_s=_number(item, "duration_s", where))


def _string_from(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise ReportFormatError(
            f"invalid report: {where}: expected a string, got {_json_type(data)}"
        )
    return data


# --- field readers: each failure names the field's path, e.g. report.results[3].status ------------

_MISSING: Any = object()


def _get(
    data: Mapping[str, Any], key: str, kind: type[_T], where: str, default: _T = _MISSING
) -> _T:
    if key not in data:
        if default is _MISSING:
            raise ReportFormatError(f"invalid report: {where}: missing field '{key}'")
        return default
    value = data[key]
    # `type() is` for bool so that 0/1 are not taken for false/true, and vice versa for int.
    valid = type(value) is bool if kind is bool else isinstance(value, kind)
    if not valid:
        raise ReportFormatError(
            f"invalid report: {where}.{key}: expected {_KIND_NAMES.get(kind, kind.__name__)}, "
            f"got {_json_type(value)}"
        )
    return cast(_T, value)


def _number(data: Mapping[str, Any], key: str, where: str, default: float | None = None) -> float:
    if key not in data:
        if default is None:
            raise ReportFormatError(f"invalid report: {where}: missing field '{key}'")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReportFormatError(
            f"invalid report: {where}.{key}: expected a number, got {_json_type(value)}"
        )
    # Compared before any conversion: float() of a 400-digit integer raises OverflowError.
    if not (isinstance(value, int) or math.isfinite(value)) or not 0 <= value <= MAX_SECONDS:
        raise ReportFormatError(
            f"invalid report: {where}.{key}: number out of range "
            f"(expected 0 to {MAX_SECONDS} seconds)"
        )
    return float(value)


def _enum(data: Mapping[str, Any], key: str, enum: type[_E], where: str) -> _E:
    value = _get(data, key, str, where)
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ReportFormatError(
            f"invalid report: {where}.{key}: {_show(value)} is not one of {allowed}"
        ) from None


def _list_of(
    data: Mapping[str, Any],
    key: str,
    read: Callable[[object, str], _T],
    where: str,
    *,
    required: bool = True,
) -> tuple[_T, ...]:
    items: list[Any] = _get(data, key, list, where) if required or key in data else []
    return tuple(read(item, f"{where}.{key}[{index}]") for index, item in enumerate(items))


def _check_nesting(value: _T, where: str) -> _T:
    """`value` unchanged, or ReportFormatError if its arrays and objects nest too deeply.

    Iterative, so the check itself cannot exhaust the stack it protects."""
    pending: list[tuple[object, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth > MAX_NESTING:
                raise ReportFormatError(
                    f"invalid report: {where}: nested too deeply (more than {MAX_NESTING} levels)"
                )
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return value


def _as_object(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ReportFormatError(
            f"invalid report: {where}: expected an object, got {_json_type(data)}"
        )
    return data


_KIND_NAMES: dict[type[Any], str] = {
    str: "a string",
    bool: "true or false",
    dict: "an object",
    list: "an array",
}


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _show(value: object, limit: int = 40) -> str:
    """A value quoted for a one-line message, cut short: the file may be hostile or huge."""
    text = json.dumps(value, ensure_ascii=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
