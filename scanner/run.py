"""One scan in progress: phases, target facts, results and errors, turned into a Report at the end.

Targets write into a ScanRun as they go, so that when a scan breaks half-way the report still
holds everything gathered so far and says why it stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanner import __version__
from scanner.cancel import NEVER, Cancel
from scanner.errors import ScanAborted
from scanner.facts.base import Facts
from scanner.model import (
    Evidence,
    Outcome,
    Phase,
    Report,
    Result,
    Severity,
    Status,
    TargetInfo,
    Verdict,
)
from scanner.redact import redact
from scanner.registry import Check

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]

# How results of checks that never ran begin (the terminal summary folds them into one line).
NOT_JUDGED = "not judged:"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ScanRun:
    """The mutable record of one scan."""

    kind: str
    target_id: str
    platform: str
    checks: list[Check]
    progress: ProgressCallback = field(default=lambda message: None)
    cancel: Cancel = NEVER
    details: dict[str, Any] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    results: dict[str, Result] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    collection: dict[str, Any] = field(default_factory=dict)
    started: datetime = field(default_factory=_now)
    _clock: float = field(default_factory=time.monotonic)

    @contextmanager
    def phase(self, name: str, message: str | None = None) -> Iterator[None]:
        """Time a step of the scan; it is recorded even when it fails."""
        self.progress(message or name)
        started = time.monotonic()
        try:
            yield
        finally:
            self.phases.append(Phase(name, round(time.monotonic() - started, 3)))

    def settle_platform(self, platform: str) -> None:
        """The platform became known during the scan (an AMI's, or the OS an image holds): the
        other platform's checks do not apply."""
        self.platform = platform
        self.checks = [c for c in self.checks if c.platform.value in ("image", platform)]

    def judge(self, checks: list[Check], facts: Facts) -> None:
        """Run checks against gathered facts; each is isolated from the others' failures."""
        for item in checks:
            started = time.monotonic()
            try:
                outcome = item.run(facts)
            except ScanAborted:
                # Cancellation (or a scan-wide failure) met inside a check: the scan stops here,
                # and the checks not yet judged say why, rather than each "raising" it.
                raise
            except Exception as exc:  # a buggy (plug-in) check must not sink the scan
                log.debug("check %s raised", item.id, exc_info=True)
                outcome = Outcome(Status.ERROR, f"the check raised {type(exc).__name__}: {exc}")
            self.record(item, outcome, time.monotonic() - started)

    def record(self, item: Check, outcome: Outcome, duration_s: float = 0.0) -> None:
        self.results[item.id] = Result(
            id=item.id,
            title=item.title,
            severity=item.severity,
            status=outcome.status,
            summary=redact(outcome.summary),
            # Every check's evidence is redacted here too, so that a plug-in which builds
            # Evidence by hand cannot put a secret into any report format.
            evidence=tuple(Evidence(e.source, redact(e.text)) for e in outcome.evidence),
            remediation=item.remediation,
            policy=item.policy,
            rationale=item.rationale,
            duration_s=round(duration_s, 4),
        )

    def fail_scan(self, reason: str) -> None:
        """The scan cannot complete; the report says why."""
        self.errors.append(reason)

    def finish(self, fail_on: Severity | None = None) -> Report:
        """The report: checks that never ran are `error` with the reason the scan stopped."""
        why = self.errors[-1] if self.errors else "the scan stopped before this check ran"
        for item in self.checks:
            if item.id not in self.results:
                self.record(item, Outcome(Status.ERROR, f"{NOT_JUDGED} {why}"))
        finished = _now()
        results = tuple(self.results[c.id] for c in self.checks)
        return Report(
            amiscan_version=__version__,
            target=TargetInfo(self.kind, self.target_id, self.platform, dict(self.details)),
            started_at=_iso(self.started),
            finished_at=_iso(finished),
            duration_s=round(time.monotonic() - self._clock, 3),
            verdict=verdict_of(results, bool(self.errors), fail_on),
            results=results,
            phases=tuple(self.phases),
            errors=tuple(self.errors),
            notes=tuple(self.notes),
            collection=dict(self.collection),
            catalog_version=__version__,
        )


def verdict_of(
    results: tuple[Result, ...], incomplete: bool, fail_on: Severity | None = None
) -> Verdict:
    """The verdict a gate acts on; nothing unjudged is ever called a pass.

    fail: an unwaived `fail` at or above `fail_on` (the image would be rejected, whatever else
    could not be judged); else error: an unwaived `error` at or above `fail_on`, or the scan could
    not complete; else pass.
    """
    threshold = fail_on.rank if fail_on is not None else Severity.INFO.rank

    def counted(status: Status) -> bool:
        return any(
            r.status is status and not r.waived and r.severity.rank >= threshold for r in results
        )

    if counted(Status.FAIL):
        return Verdict.FAIL
    if incomplete or counted(Status.ERROR):
        return Verdict.ERROR
    return Verdict.PASS
