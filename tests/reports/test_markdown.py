"""Markdown for CI summaries and PR comments: readable, and inert whatever the guest printed."""

from __future__ import annotations

import re
from collections.abc import Callable

from reports.markdown import render_markdown
from scanner.model import Evidence, Policy, Report, Result, Status, Verdict

_FENCE = re.compile(r"^(?P<fence>`{3,})text\n(?P<body>.*?)\n(?P=fence)$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_EMOJI = re.compile("[\u2600-\u27bf\U0001f000-\U0001faff]")
# The only raw HTML the renderer itself writes.
_OWN_TAGS = {"details", "details open", "/details", "summary", "/summary", "br", "sub", "/sub"}


def _outside_code(markdown: str) -> str:
    """The text a renderer would interpret: fenced blocks and code spans removed."""
    return _CODE_SPAN.sub("", _FENCE.sub("", markdown))


def _table(markdown: str, heading: str) -> list[list[str]]:
    """Rows of the table under `heading`, split on unescaped pipes as GFM does."""
    section = markdown.split(heading, 1)[1].strip().split("\n\n", 1)[0]
    return [re.split(r"(?<!\\)\|", line)[1:-1] for line in section.splitlines()]


def test_verdict_line_uses_words_not_emoji(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report)

    assert markdown.startswith("## amiscan: FAIL\n")
    assert "1 unwaived failure(s)" in markdown
    assert not _EMOJI.search(markdown)


def test_counts_table_totals_match_the_summary(mixed_report: Report) -> None:
    rows = _table(render_markdown(mixed_report), "### Results by severity and status")
    header = [cell.strip() for cell in rows[0]]
    totals = [cell.strip().strip("*") for cell in rows[-1]]

    assert header == ["Severity", "fail", "error", "warn", "skip", "pass", "total"]
    assert dict(zip(header[1:-1], map(int, totals[1:-1]), strict=True)) == mixed_report.summary
    assert totals[-1] == "6"
    assert [row[0].strip() for row in rows[2:-1]] == ["critical", "high", "medium", "low", "info"]


def test_findings_table_lists_failures_errors_warnings_and_waivers_first(
    mixed_report: Report,
) -> None:
    rows = _table(render_markdown(mixed_report), "### Failures, errors and warnings")

    assert [row[0].strip() for row in rows[2:]] == ["FAIL", "ERROR", "WARN", "WAIVED"]
    assert all(len(row) == 5 for row in rows)  # the `|` in a summary did not add a column
    assert "a \\| b" in rows[2][3]


def test_passes_and_skips_are_collapsed(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report)

    passed = markdown.split("<summary>1 passed</summary>", 1)[1].split("</details>", 1)[0]
    assert "`image.architecture`" in passed
    assert "<summary>1 skipped</summary>" in markdown
    assert "image.architecture" not in markdown.split("<summary>1 skipped</summary>", 1)[0]


def test_evidence_is_fenced_longer_than_any_backtick_run_inside(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report, max_evidence_chars=100_000)

    blocks = {m["body"]: m["fence"] for m in _FENCE.finditer(markdown)}
    hostile = next(body for body in blocks if "<script>" in body)
    assert len(blocks[hostile]) == 5  # the evidence holds a run of four
    assert "```` four ` one `` two" in hostile
    assert '"><img src=x onerror=alert(1)>' in hostile


def test_no_guest_html_renders_outside_code(mixed_report: Report) -> None:
    visible = _outside_code(render_markdown(mixed_report))

    tags = set(re.findall(r"<([^<>]*)>", visible))
    assert tags <= _OWN_TAGS
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in visible
    assert "&lt;img src=x onerror=alert(1)&gt;" in visible


def test_summary_html_is_escaped_inside_details(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    result = make_result(
        "x.y", Status.FAIL, title="</summary><img src=x>", evidence=(Evidence("s", "t"),)
    )

    markdown = render_markdown(make_report((result,)))

    assert "<summary>FAIL x.y: &lt;/summary&gt;&lt;img src=x&gt;</summary>" in markdown


def test_markdown_punctuation_in_guest_text_is_literal(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    summary = "[click](javascript:alert(1)) **bold** $x$ ~~gone~~"
    result = make_result("x.y", Status.FAIL, summary=summary)

    markdown = render_markdown(make_report((result,)))

    assert r"\[click\](javascript:alert(1)) \*\*bold\*\* \$x\$ \~\~gone\~\~" in markdown


def test_a_newline_in_guest_text_cannot_start_a_new_block(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    result = make_result("x.y", Status.FAIL, summary="one\n# heading\r\n| a | b |")

    rows = _table(render_markdown(make_report((result,))), "### Failures, errors and warnings")

    assert len(rows) == 3
    assert "one<br># heading<br>\\| a \\| b \\|" in rows[2][3]


def test_control_characters_are_replaced(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report)

    assert "\x00" not in markdown
    assert "\x1b" not in markdown
    assert "nul\ufffd esc\ufffd[31mred" in markdown


def test_long_evidence_is_cut_for_comment_size_limits(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report, max_evidence_chars=500)

    assert "x" * 20_000 not in markdown
    assert "more characters in the full report" in markdown


def test_only_http_policy_urls_become_links(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    safe = make_result("a.b", Status.FAIL, policy=Policy("S1", "https://example.com/p"))
    unsafe = make_result("c.d", Status.FAIL, policy=Policy("S2", "javascript:alert(1)"))

    markdown = render_markdown(make_report((safe, unsafe)))

    assert "([reference](https://example.com/p))" in markdown
    assert "(`javascript:alert(1)`)" in markdown
    assert "](javascript:" not in markdown


def test_a_scan_that_could_not_complete_says_why_before_the_results(
    make_report: Callable[..., Report],
) -> None:
    report = make_report((), verdict=Verdict.ERROR, errors=("launch failed: <quota>",))

    markdown = render_markdown(report)

    assert markdown.startswith("## amiscan: ERROR\n")
    assert "> **The scan did not complete:**\n> - launch failed: &lt;quota&gt;" in markdown
    assert markdown.index("did not complete") < markdown.index("Results by severity")


def test_waivers_show_reason_expiry_and_approver(mixed_report: Report) -> None:
    markdown = render_markdown(mixed_report)

    assert "**Waived:** copied at release (expires 2099\\-01\\-01" not in markdown
    assert "**Waived:** copied at release (expires 2099-01-01, approved by alice)" in markdown


def test_an_error_verdict_names_what_could_not_be_judged(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    results = (make_result("linux.accounts.passwords", Status.ERROR, summary="no /etc/shadow"),)
    text = render_markdown(make_report(results, verdict=Verdict.ERROR))
    header = text.split("###", 1)[0]

    assert "could not judge checks that apply" in header
    assert "> - `linux.accounts.passwords`: no /etc/shadow" in header
