"""The terminal summary: the verdict, and each check that could not be judged, with why."""

from __future__ import annotations

import io

from rich.console import Console

from scanner.model import Evidence, Policy, Report, Result, Severity, Status, TargetInfo, Verdict
from scanner.run import NOT_JUDGED
from scanner.terminal import print_summary


def _result(id: str, status: Status, summary: str) -> Result:
    return Result(
        id=id,
        title=id,
        severity=Severity.HIGH,
        status=status,
        summary=summary,
        evidence=(Evidence("e"),),
        remediation="r",
        policy=Policy("P", "https://example.com"),
    )


def _printed(*results: Result, errors: tuple[str, ...] = ()) -> str:
    report = Report(
        amiscan_version="0.1.0",
        target=TargetInfo("dir", "dir:/img", "linux"),
        started_at="2026-12-01T00:00:00Z",
        finished_at="2026-12-01T00:00:01Z",
        duration_s=1.0,
        verdict=Verdict.ERROR,
        results=results,
        errors=errors,
    )
    out = io.StringIO()
    print_summary(Console(file=out, width=200, color_system=None), report)
    return out.getvalue()


def test_each_unjudged_check_is_named_with_its_reason() -> None:
    text = _printed(
        _result("linux.accounts.passwords", Status.ERROR, "/etc/shadow is unreadable"),
        _result("linux.accounts.root-password", Status.ERROR, "/etc/shadow is unreadable"),
        _result("linux.os.supported", Status.PASS, "Debian 13 is supported"),
    )

    assert (
        "could not judge linux.accounts.passwords, linux.accounts.root-password: "
        "/etc/shadow is unreadable"
    ) in text
    assert text.rstrip().splitlines()[-1].startswith("ERROR")


def test_checks_a_stopped_scan_never_reached_are_folded_into_one_line() -> None:
    text = _printed(
        _result("linux.a", Status.ERROR, f"{NOT_JUDGED} connection refused"),
        _result("linux.b", Status.ERROR, f"{NOT_JUDGED} connection refused"),
        errors=("connection refused",),
    )

    assert "2 check(s) not judged: the scan stopped early" in text
    assert "could not judge linux.a" not in text


def test_inert_removes_escape_sequences_and_shows_other_controls_as_replacements() -> None:
    from scanner.terminal import inert

    assert inert("a\x1b]0;title\x07b\x1b[2J\x1b[Hc") == "abc"
    assert inert("x\udcffy\x9b31m\u202e") == "x\ufffdy\ufffd31m\ufffd"
    assert inert("one\r\ntwo\tthree") == "one  two three"
    assert inert("one\r\ntwo", multiline=True) == "one\ntwo"
    assert inert("x" * 1000, 10) == "x" * 9 + "…"


def test_guest_strings_reach_the_summary_inert_and_markup_free() -> None:
    text = _printed(
        _result("linux.x\x1b[31m", Status.FAIL, "user [bold]adm\x1b]0;pwned\x07in[/] \udcff"),
    )
    assert "\x1b" not in text and "\udcff" not in text
    assert "[bold]admin[/]" in text


def test_a_huge_summary_is_cut_and_printed_fast() -> None:
    import time

    started = time.monotonic()
    text = _printed(_result("linux.x", Status.FAIL, "word " * (3 * 1024 * 1024)))
    assert time.monotonic() - started < 5
    assert len(text) < 5000
    assert "the reports hold the full text" in text
