"""The verdict rules: fail beats could-not-judge, and nothing unjudged is ever a pass."""

from __future__ import annotations

import pytest

from scanner.model import Evidence, Policy, Result, Severity, Status, Verdict
from scanner.run import verdict_of


def _result(
    status: Status, severity: Severity = Severity.CRITICAL, *, waived: bool = False, id: str = ""
) -> Result:
    return Result(
        id=id or f"x.{status.value}.{severity.value}",
        title="t",
        severity=severity,
        status=status,
        summary=f"{status.value} summary",
        evidence=(Evidence("e"),),
        remediation="r",
        policy=Policy("P", "https://example.com"),
        waived=waived,
    )


PASS = _result(Status.PASS)
WARN = _result(Status.WARN)
SKIP = _result(Status.SKIP)
FAIL = _result(Status.FAIL)
ERROR = _result(Status.ERROR)
LOW_FAIL = _result(Status.FAIL, Severity.LOW)
LOW_ERROR = _result(Status.ERROR, Severity.LOW)


@pytest.mark.parametrize(
    ("results", "incomplete", "fail_on", "verdict"),
    [
        pytest.param((PASS, WARN, SKIP), False, None, Verdict.PASS, id="judged-and-clean-passes"),
        pytest.param((PASS, ERROR), False, None, Verdict.ERROR, id="an-error-is-not-a-pass"),
        pytest.param((FAIL, ERROR), False, None, Verdict.FAIL, id="a-fail-beats-an-error"),
        pytest.param((FAIL,), True, None, Verdict.FAIL, id="a-fail-beats-an-incomplete-scan"),
        pytest.param((PASS,), True, None, Verdict.ERROR, id="an-incomplete-scan-is-an-error"),
        pytest.param(
            (PASS, LOW_ERROR), False, Severity.HIGH, Verdict.PASS, id="errors-below-fail-on-pass"
        ),
        pytest.param(
            (LOW_FAIL, ERROR), False, Severity.HIGH, Verdict.ERROR, id="fail-below-error-above"
        ),
        pytest.param(
            (_result(Status.ERROR, waived=True),), False, None, Verdict.PASS, id="waived-error"
        ),
        pytest.param(
            (_result(Status.FAIL, waived=True), ERROR),
            False,
            None,
            Verdict.ERROR,
            id="waived-fail-leaves-the-error",
        ),
        pytest.param((), False, None, Verdict.PASS, id="nothing-selected"),
    ],
)
def test_verdict_rules(
    results: tuple[Result, ...], incomplete: bool, fail_on: Severity | None, verdict: Verdict
) -> None:
    assert verdict_of(results, incomplete, fail_on) is verdict
