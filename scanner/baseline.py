"""Comparing a scan with the report of the product's previous version (`--baseline FILE.json`).

Two things come from the baseline:

- its login user (`target.login_user`), passed to the checks before the scan so that
  `linux.accounts.default-user` fails when it changed: Marketplace asks for the same OS user
  name across the versions of a product, because buyers' automation depends on it;
- its results, compared after the scan: a check that fails now and did not fail in the baseline
  (or was not checked in it) is a *new failure*. Each new failure gets an evidence line (source
  `baseline`), so every report format shows it; the report gets a note listing them, and
  `collection.baseline` holds the comparison for machines (`new_failures`, `resolved`). Both are
  additive to JSON schema_version 1.

New failures are called out, not judged: the verdict stays that of the scan's own results, since
an old failure still fails Marketplace vetting.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reports.json_report import ReportFormatError, loads, read_text
from scanner.model import Evidence, Report, Result, Status

# Evidence source of the line that marks a new failure, and the `collection` key of the comparison.
BASELINE_SOURCE = "baseline"
COLLECTION_KEY = "baseline"
DEFAULT_USER_CHECK = "linux.accounts.default-user"


class BaselineError(Exception):
    """The baseline report cannot be used; the message is one line naming the file."""


@dataclass(frozen=True)
class Baseline:
    """A previous version's report, read from its JSON."""

    path: Path
    report: Report

    @property
    def login_user(self) -> str | None:
        """The OS user the previous version was logged in with, when the report recorded one."""
        user = self.report.target.details.get("login_user")
        return user if isinstance(user, str) and user else None

    @property
    def label(self) -> str:
        """How notes name the baseline: its target and when it was scanned."""
        return f"{self.report.target.id} (scanned {self.report.started_at})"


def load_baseline(path: Path) -> Baseline:
    """Read a JSON report written by amiscan; BaselineError (exit 2) for anything else."""
    try:
        text = read_text(path)
    except ReportFormatError as exc:
        raise BaselineError(f"baseline {path}: {exc}") from None
    except FileNotFoundError:
        raise BaselineError(f"baseline {path}: no such file") from None
    except UnicodeDecodeError:
        raise BaselineError(f"baseline {path}: not an amiscan JSON report (not UTF-8)") from None
    except OSError as exc:
        raise BaselineError(f"baseline {path}: cannot read: {exc.strerror}") from None
    try:
        return Baseline(path, loads(text))
    except ReportFormatError as exc:
        raise BaselineError(f"baseline {path}: {exc}") from None


def compare_with_baseline(report: Report, baseline: Baseline) -> Report:
    """A new report whose new failures (versus `baseline`) are marked and noted."""
    before = {result.id: result.status for result in baseline.report.results}
    new_failures: list[str] = []
    resolved = sorted(
        rid
        for rid, status in before.items()
        if status is Status.FAIL and rid not in _failing(report.results)
    )
    results: list[Result] = []
    for result in report.results:
        if result.status is Status.FAIL and before.get(result.id) is not Status.FAIL:
            new_failures.append(result.id)
            result = _mark_new(result, before.get(result.id), baseline)
        results.append(result)
    notes = list(report.notes)
    if new_failures:
        count = len(new_failures)
        notes.append(
            f"{count} new failure{'s' * (count > 1)} since the baseline {baseline.label}: "
            + ", ".join(new_failures)
        )
    if resolved:
        notes.append(f"fixed since the baseline {baseline.label}: " + ", ".join(resolved))
    if baseline.login_user is None and any(r.id == DEFAULT_USER_CHECK for r in report.results):
        notes.append(
            f"the baseline {baseline.label} records no login user, so {DEFAULT_USER_CHECK} "
            "could not compare it"
        )
    comparison: dict[str, Any] = {
        "report": str(baseline.path),
        "target": baseline.report.target.id,
        "started_at": baseline.report.started_at,
        "login_user": baseline.login_user,
        "new_failures": new_failures,
        "resolved": resolved,
    }
    return dataclasses.replace(
        report,
        results=tuple(results),
        notes=tuple(notes),
        collection={**report.collection, COLLECTION_KEY: comparison},
    )


def new_failure_ids(report: Report) -> frozenset[str]:
    """The ids `compare_with_baseline` marked as new in `report` (empty without a baseline).

    Read defensively: a report re-rendered from JSON may carry anything in `collection`.
    """
    comparison = report.collection.get(COLLECTION_KEY)
    if not isinstance(comparison, dict):
        return frozenset()
    ids = comparison.get("new_failures")
    if not isinstance(ids, list):
        return frozenset()
    return frozenset(item for item in ids if isinstance(item, str))


def _failing(results: tuple[Result, ...]) -> set[str]:
    return {result.id for result in results if result.status is Status.FAIL}


def _mark_new(result: Result, before: Status | None, baseline: Baseline) -> Result:
    was = "not checked" if before is None else before.value
    text = f"new since the baseline: {was} in {baseline.label}"
    return dataclasses.replace(result, evidence=(*result.evidence, Evidence(BASELINE_SOURCE, text)))
