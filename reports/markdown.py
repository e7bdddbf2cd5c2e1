"""The Markdown report: a CI job summary or pull-request comment (GitHub-flavoured Markdown).

Guest strings are untrusted: inline text has HTML and Markdown punctuation escaped and newlines
turned into `<br>`, so it cannot open a block, a link or a tag; evidence goes in fenced code
blocks whose fence is longer than any backtick run inside. Evidence is cut at
`max_evidence_chars` per item because a PR comment is limited to 65,536 characters; the HTML and
JSON reports keep it whole.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from reports.printable import encodable
from scanner.model import Evidence, Report, Result, Severity, Status, Verdict

DEFAULT_MAX_EVIDENCE_CHARS = 2000

# Controls, lone surrogates and non-characters render as nothing or break renderers; show U+FFFD.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
# Punctuation that GitHub Markdown would turn into formatting, links, tables or math.
_MARKDOWN_PUNCTUATION = re.compile(r"([\\`*_\[\]|~$])")
_NEWLINES = re.compile(r"\r\n|\r|\n")

_VERDICT_LINES = {
    Verdict.PASS: "PASS: every check that applies was judged, and no unwaived failure.",
    Verdict.FAIL: "FAIL: the image does not meet AWS Marketplace requirements.",
    Verdict.ERROR: "ERROR: could not judge checks that apply to this image; this is not a pass.",
}
_FINDING_STATUSES = (Status.FAIL, Status.ERROR, Status.WARN)
# Columns in reading order (fail first), as the model ranks statuses.
_STATUS_ORDER = sorted(Status, key=lambda status: status.rank)


def render_markdown(report: Report, *, max_evidence_chars: int = DEFAULT_MAX_EVIDENCE_CHARS) -> str:
    """The report as GitHub-flavoured Markdown."""
    report = encodable(report)
    ordered = report.ordered_results()
    findings = [r for r in ordered if r.status in _FINDING_STATUSES]
    sections = [
        _header(report),
        _scan_problems(report),
        _counts_table(report),
        _findings_table(findings),
        _finding_details(findings, max_evidence_chars),
        _collapsed_list("skipped", [r for r in ordered if r.status is Status.SKIP]),
        _collapsed_list("passed", [r for r in ordered if r.status is Status.PASS]),
        _footer(report),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


# --- sections -----------------------------------------------------------------------------------


def _header(report: Report) -> str:
    target = report.target
    waived = sum(1 for r in report.results if r.accepted)
    facts = [
        f"{_inline(target.kind)} {_code(target.id)}",
        _inline(target.platform),
        f"{len(report.unwaived_failures)} unwaived failure(s)",
    ]
    if waived:
        facts.append(f"{waived} waived")
    facts.append(f"{report.duration_s:.1f} s")
    header = (
        f"## amiscan: {report.verdict.value.upper()}\n\n"
        f"**{_VERDICT_LINES[report.verdict]}**\n\n" + " · ".join(facts)
    )
    unjudged = [
        f"{', '.join(_code(i) for i in ids)}: {_inline(why)}"
        for why, ids in report.unjudged_by_reason()
    ]
    if unjudged:
        header += "\n\n" + "\n".join(
            ["> **Could not judge:**", *(f"> - {line}" for line in unjudged)]
        )
    return header


def _scan_problems(report: Report) -> str:
    parts = []
    if report.errors:
        parts.append(_quote_list("**The scan did not complete:**", report.errors))
    if report.notes:
        parts.append(_quote_list("**Notes:**", report.notes))
    return "\n\n".join(parts)


def _quote_list(heading: str, items: Iterable[str]) -> str:
    return "\n".join([f"> {heading}", *(f"> - {_inline(item)}" for item in items)])


def _counts_table(report: Report) -> str:
    """Results by severity (rows) and status (columns), totals last."""
    statuses = _STATUS_ORDER
    header = ["Severity", *(s.value for s in statuses), "total"]
    rows = [_row(header), _row(["---"] * len(header))]
    for severity in Severity:
        counts = [_count(report.results, severity, s) for s in statuses]
        rows.append(_row([severity.value, *map(str, counts), str(sum(counts))]))
    totals = [report.summary[s.value] for s in statuses]
    rows.append(_row(["**total**", *(f"**{n}**" for n in totals), f"**{sum(totals)}**"]))
    return "### Results by severity and status\n\n" + "\n".join(rows)


def _findings_table(findings: list[Result]) -> str:
    if not findings:
        return ""
    header = ["Status", "Check", "Severity", "Summary", "Remediation"]
    rows = [_row(header), _row(["---"] * len(header))]
    for result in findings:
        rows.append(
            _row(
                [
                    _status_word(result),
                    _code(result.id, in_table=True),
                    result.severity.value,
                    _inline(result.summary),
                    _inline(result.remediation),
                ]
            )
        )
    return "### Failures, errors and warnings\n\n" + "\n".join(rows)


def _finding_details(findings: list[Result], max_chars: int) -> str:
    blocks = [_finding_block(r, max_chars) for r in findings]
    return "### Evidence and policy\n\n" + "\n\n".join(blocks) if blocks else ""


def _finding_block(result: Result, max_chars: int) -> str:
    # <summary> is HTML, not Markdown: only HTML escaping applies there.
    summary = html.escape(_printable(f"{_status_word(result)} {result.id}: {result.title}"))
    parts = [f"<details open>\n<summary>{summary}</summary>", ""]
    if result.waived:
        parts += [_waiver_line(result), ""]
    for evidence in result.evidence:
        parts += [_evidence_block(evidence, max_chars), ""]
    if result.policy.id:
        parts += [_policy_line(result), ""]
    parts.append("</details>")
    return "\n".join(parts)


def _evidence_block(evidence: Evidence, max_chars: int) -> str:
    text = _printable(evidence.text)
    if len(text) > max_chars:
        text = f"{text[:max_chars]}\n… ({len(text) - max_chars} more characters in the full report)"
    return f"{_code(evidence.source)}\n\n{_fenced(text)}"


def _waiver_line(result: Result) -> str:
    waiver = result.waiver or {}
    reason = _inline(waiver.get("reason") or "no reason given")
    expires = _inline(waiver.get("expires") or "never")
    approver = _inline(waiver.get("approver") or "unknown")
    return f"**Waived:** {reason} (expires {expires}, approved by {approver})"


def _policy_line(result: Result) -> str:
    policy = f"**Policy {_inline(result.policy.id)}**"
    if result.policy.text:
        policy += f": {_inline(result.policy.text)}"
    url = result.policy.url
    # Only a plain http(s) URL becomes a link; anything else is shown as text.
    if re.fullmatch(r"https?://[^\s()<>\[\]`]+", url):
        policy += f" ([reference]({url}))"
    elif url:
        policy += f" ({_code(url)})"
    return policy


def _collapsed_list(word: str, results: list[Result]) -> str:
    if not results:
        return ""
    items = [f"- {_code(r.id)} {_inline(r.title)}: {_inline(r.summary)}" for r in results]
    return "\n".join(
        [f"<details>\n<summary>{len(results)} {word}</summary>", "", *items, "", "</details>"]
    )


def _footer(report: Report) -> str:
    facts = [f"amiscan {_inline(report.amiscan_version)}"]
    if report.catalog_version:
        facts.append(f"catalog {_inline(report.catalog_version)}")
    facts += [
        f"schema {report.schema_version}",
        f"{_inline(report.started_at)} to {_inline(report.finished_at)}",
    ]
    return "<sub>" + " · ".join(facts) + "</sub>"


# --- escaping -----------------------------------------------------------------------------------


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub("\ufffd", text)


def _inline(text: str) -> str:
    """Untrusted text as literal inline Markdown: no tags, no formatting, no line breaks.

    `|` is always escaped, so the result is safe in a table cell too.
    """
    escaped = html.escape(_printable(text), quote=False)
    escaped = _MARKDOWN_PUNCTUATION.sub(r"\\\1", escaped)
    return _NEWLINES.sub("<br>", escaped)


def _code(text: str, *, in_table: bool = False) -> str:
    """Untrusted text as an inline code span (delimited by more backticks than it contains)."""
    content = _NEWLINES.sub(" ", _printable(text))
    ticks = "`" * (_longest_backtick_run(content) + 1)
    # A span that starts or ends with a backtick needs a space so the delimiter stays distinct.
    if content.startswith("`") or content.endswith("`"):
        content = f" {content} "
    if in_table:
        # GFM splits table cells on `|` even inside code spans; `\|` is its documented escape.
        content = content.replace("|", "\\|")
    return f"{ticks}{content}{ticks}"


def _fenced(text: str) -> str:
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    return f"{fence}text\n{text}\n{fence}"


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _count(results: Iterable[Result], severity: Severity, status: Status) -> int:
    return sum(1 for r in results if r.severity is severity and r.status is status)


def _status_word(result: Result) -> str:
    if result.accepted:
        return "WAIVED"
    return result.status.value.upper()
