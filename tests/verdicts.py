"""Assertions on reports that every target's fault tests share."""

from __future__ import annotations

from scanner.model import Report, Verdict


def assert_one_line_error(report: Report, *fragments: str) -> None:
    """Exit 3: the scan could not complete, and its one error is one line naming why."""
    assert report.verdict is Verdict.ERROR
    (error,) = report.errors
    assert "\n" not in error and "Traceback" not in error, error
    for fragment in fragments:
        assert fragment in error, error
