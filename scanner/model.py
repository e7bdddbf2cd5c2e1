"""The scan's data model: what a check returns and what every report format renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is more severe; used to sort results and apply --fail-on."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """Order in which results are shown: failures first, passes last."""
        return _STATUS_RANK[self]


_STATUS_RANK = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.SKIP: 3, Status.PASS: 4}


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


class Platform(StrEnum):
    IMAGE = "image"
    LINUX = "linux"
    WINDOWS = "windows"


@dataclass(frozen=True)
class Policy:
    """The Marketplace (or EC2) requirement a check enforces."""

    id: str
    url: str
    text: str = ""


@dataclass(frozen=True)
class Evidence:
    """One thing a human can verify: where it came from, and what it said."""

    source: str
    text: str = ""


@dataclass(frozen=True)
class Outcome:
    """What a check function returns: a status, a one-line summary and the evidence."""

    status: Status
    summary: str
    evidence: tuple[Evidence, ...] = ()


@dataclass(frozen=True)
class Result:
    """One check's outcome, joined with the check's metadata, as reports show it."""

    id: str
    title: str
    severity: Severity
    status: Status
    summary: str
    evidence: tuple[Evidence, ...]
    remediation: str
    policy: Policy
    rationale: str = ""
    waived: bool = False
    waiver: dict[str, str] | None = None
    duration_s: float = 0.0

    @property
    def accepted(self) -> bool:
        """A waived fail or error: shown as found, no longer counted towards the verdict."""
        return self.waived and self.status in (Status.FAIL, Status.ERROR)


@dataclass(frozen=True)
class Phase:
    """A named step of the scan and how long it took."""

    name: str
    duration_s: float


@dataclass(frozen=True)
class TargetInfo:
    kind: str
    id: str
    platform: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    """Everything a scan produced; every report format is a view of this."""

    amiscan_version: str
    target: TargetInfo
    started_at: str
    finished_at: str
    duration_s: float
    verdict: Verdict
    results: tuple[Result, ...]
    phases: tuple[Phase, ...] = ()
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    collection: dict[str, Any] = field(default_factory=dict)
    catalog_version: str = ""
    schema_version: int = 1

    @property
    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in Status}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    @property
    def unwaived_failures(self) -> tuple[Result, ...]:
        return tuple(r for r in self.results if r.status is Status.FAIL and not r.waived)

    @property
    def unjudged(self) -> tuple[Result, ...]:
        """Checks that applied but could not be judged (unwaived `error`), most severe first."""
        return tuple(r for r in self.ordered_results() if r.status is Status.ERROR and not r.waived)

    def unjudged_by_reason(self) -> list[tuple[str, tuple[str, ...]]]:
        """(why, check ids) for the unjudged checks, one entry per distinct reason.

        A scan that stopped early leaves many checks with the same reason; grouping keeps the
        banner and the terminal summary to one line per cause while still naming every check.
        """
        groups: dict[str, list[str]] = {}
        for result in self.unjudged:
            groups.setdefault(result.summary, []).append(result.id)
        return [(why, tuple(ids)) for why, ids in groups.items()]

    def ordered_results(self) -> list[Result]:
        """Failures first, then by severity, then by id: the order people read."""
        return sorted(
            self.results,
            key=lambda r: (r.waived, r.status.rank, -r.severity.rank, r.id),
        )
