"""Applying waivers to a finished report, and recomputing its verdict.

The rules, in the order a reviewer asks about them:

- A waiver names one check by its exact id (scanner.config refuses prefixes and unknown ids).
- An active waiver accepts that check's `fail` or `error` (a check that cannot be judged on this
  image, e.g. one that needs a paid extended-support entitlement to be read): `waived` is true
  and `waiver` holds the reason, expiry date and approver; the status stays as it was, so every
  report still shows what was found, and the result no longer counts towards the verdict.
- A waiver holds through its expiry date; from the day after, it no longer waives. The result
  then counts, its evidence says "waiver expired on …", and a report note says so too.
- A waiver never changes a result that is not `fail` or `error` (pass, warn, skip): a waiver is
  for a known finding, so a warning must not be hidden by it. Such a waiver is not attached to
  the result (so `waiver` always means "this fail or error was waived") but a note says it was
  not needed, so that stale waivers get removed before they hide the next regression.
- A waiver for a check that did not run in this scan (not selected, or another platform's) is
  ignored without a note: one configuration file commonly serves several kinds of scan.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import date

from scanner.config import Waiver
from scanner.model import Evidence, Report, Result, Severity, Status
from scanner.run import verdict_of

# Evidence source of the line added to a failure whose waiver has expired.
WAIVER_SOURCE = "waiver"
# What a waiver can accept: a known failure, or a check known not to be judgeable on this image.
WAIVABLE = frozenset({Status.FAIL, Status.ERROR})
# A note warns this many days ahead that an active waiver is about to lapse and fail the build.
EXPIRY_WARNING_DAYS = 14


def apply_waivers(
    report: Report,
    waivers: Sequence[Waiver],
    *,
    today: date,
    fail_on: Severity | None = None,
) -> Report:
    """A new report with `waivers` applied on `today` and the verdict recomputed."""
    by_id = {waiver.id: waiver for waiver in waivers}
    notes = list(report.notes)
    results: list[Result] = []
    for result in report.results:
        waiver = by_id.get(result.id)
        if waiver is None:
            results.append(result)
            continue
        result, note = _apply(result, waiver, today)
        results.append(result)
        if note:
            notes.append(note)
    new_results = tuple(results)
    return dataclasses.replace(
        report,
        results=new_results,
        notes=tuple(notes),
        verdict=verdict_of(new_results, bool(report.errors), fail_on),
    )


def _apply(result: Result, waiver: Waiver, today: date) -> tuple[Result, str | None]:
    """The result after `waiver`, and the note the report should carry about it, if any."""
    expires = waiver.expires.isoformat()
    who = f"{waiver.reason} (approved by {waiver.approver})"
    if waiver.expired(today):
        note = f"waiver for {result.id} expired on {expires} and no longer waives it: {who}"
        if result.status not in WAIVABLE:
            return result, note
        evidence = Evidence(WAIVER_SOURCE, f"waiver expired on {expires}: {who}")
        return dataclasses.replace(result, evidence=(*result.evidence, evidence)), note
    if result.status not in WAIVABLE:
        return result, (
            f"waiver for {result.id} (expires {expires}) was not needed: the check's status "
            f"is {result.status.value}; remove the waiver"
        )
    waived = dataclasses.replace(result, waived=True, waiver=waiver.as_result_waiver())
    days_left = (waiver.expires - today).days
    if days_left <= EXPIRY_WARNING_DAYS:
        left = "its last day" if days_left == 0 else f"{days_left} day{'s' * (days_left > 1)} left"
        return waived, f"waiver for {result.id} holds until {expires} ({left}): {who}"
    return waived, None
