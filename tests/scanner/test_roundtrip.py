"""Why a collection did not finish: each cause named, and a finished one named as such."""

from __future__ import annotations

import pytest

from scanner.roundtrip import incomplete_reason
from scanner.transports.base import CommandResult


def _result(**fields: bool) -> CommandResult:
    return CommandResult(exit_status=0, stdout=b"", stderr=b"", **fields)


@pytest.mark.parametrize(
    ("result", "complete", "reason"),
    [
        (_result(), True, None),
        (_result(timed_out=True), False, "did not finish within 10s"),
        (_result(truncated=True), True, "passed the 64 MiB limit and was cut off"),
        (_result(), False, "stopped early: connection reset"),
    ],
    ids=["finished", "timed-out", "cut-at-the-output-limit", "stopped-early"],
)
def test_incomplete_reason(result: CommandResult, complete: bool, reason: str | None) -> None:
    said = incomplete_reason(result, complete, 10, "connection reset")
    if reason is None:
        assert said is None
    else:
        assert said is not None and reason in said
