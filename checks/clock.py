"""When a scan judges: the scan's own date (fixed in the context for reproducible reports)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from scanner.facts.base import Facts


def scan_time(facts: Facts) -> datetime:
    """The moment the scan judges against, in UTC (a naive stamp is taken as UTC)."""
    stamp = facts.context.scan_date
    if stamp:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime.now(UTC)


def scan_date(facts: Facts) -> date:
    """The UTC day the scan judges against."""
    return scan_time(facts).date()
