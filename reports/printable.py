"""Reports carry only text that can be encoded: lone surrogates become U+FFFD.

A guest file name that is not UTF-8 reaches the model as a `surrogateescape`-decoded str (and a
JSON report may spell one as `"\\udcff"`). No UTF-8 writer can encode it, so every renderer starts
from `encodable(report)`: each format shows a replacement character where the bad byte was,
instead of one format (or all the later ones) being lost to a UnicodeEncodeError.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from scanner.model import Evidence, Policy, Report, Result, TargetInfo

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
# Target details and collection hold small JSON values; deeper than this is cut, not recursed
# into (the JSON reader refuses such documents before they get here).
MAX_DEPTH = 64
_TOO_DEEP = "…"


def text(value: str) -> str:
    """`value` with each lone surrogate replaced by U+FFFD."""
    return _SURROGATE.sub(REPLACEMENT, value) if _SURROGATE.search(value) else value


def encodable(report: Report) -> Report:
    """The same report with every string (and every key of its details) encodable as UTF-8."""
    return dataclasses.replace(
        report,
        amiscan_version=text(report.amiscan_version),
        catalog_version=text(report.catalog_version),
        target=TargetInfo(
            kind=text(report.target.kind),
            id=text(report.target.id),
            platform=text(report.target.platform),
            details=_mapping(report.target.details, 0),
        ),
        started_at=text(report.started_at),
        finished_at=text(report.finished_at),
        results=tuple(_result(result) for result in report.results),
        phases=tuple(dataclasses.replace(p, name=text(p.name)) for p in report.phases),
        errors=tuple(text(error) for error in report.errors),
        notes=tuple(text(note) for note in report.notes),
        collection=_mapping(report.collection, 0),
    )


def _result(result: Result) -> Result:
    return dataclasses.replace(
        result,
        id=text(result.id),
        title=text(result.title),
        summary=text(result.summary),
        evidence=tuple(Evidence(text(e.source), text(e.text)) for e in result.evidence),
        remediation=text(result.remediation),
        policy=Policy(text(result.policy.id), text(result.policy.url), text(result.policy.text)),
        rationale=text(result.rationale),
        waiver=(
            {text(k): text(v) for k, v in result.waiver.items()}
            if result.waiver is not None
            else None
        ),
    )


def _mapping(value: dict[str, Any], depth: int) -> dict[str, Any]:
    return {_value(key, depth + 1): _value(item, depth + 1) for key, item in value.items()}


def _value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return text(value)
    if depth > MAX_DEPTH and isinstance(value, dict | list | tuple):
        return _TOO_DEEP
    if isinstance(value, dict):
        return _mapping(value, depth)
    if isinstance(value, list | tuple):
        return [_value(item, depth + 1) for item in value]
    return value
