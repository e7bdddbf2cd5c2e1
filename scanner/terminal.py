"""The terminal summary and progress display (rich), failures first.

Every string amiscan prints that it did not write itself (from the guest, a report or
configuration file, AWS, a plug-in) goes through `inert` first (DESIGN.md principle 7): a file
name or a login user holding an escape sequence must not retitle, clear or rewrite the reader's
terminal or CI log.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.model import Report, Status, Verdict
from scanner.run import NOT_JUDGED, ProgressCallback

# Escape sequences whole (CSI, OSC up to its terminator or the end, the other two-byte ESC
# forms), so that no parameter bytes are left behind as text; then any lone control character.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"  # CSI … final byte
    # OSC, DCS, SOS, PM, APC with their terminator; unterminated, only the introducer goes
    # (below) and the payload stays visible as text.
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[ -/]*[0-~]?"  # ESC c, ESC 7, ESC ( B, a lone ESC, …
)
# C0 and C1 controls (an 8-bit CSI or OSC is a C1 character), DEL, the bidirectional overrides
# and isolates (they reorder what the reader sees), and lone surrogates (a non-UTF-8 name decoded
# with surrogateescape: unencodable).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\t\n\r]")
REPLACEMENT = "\ufffd"
# How much of one check's summary the table shows; the reports keep the whole text.
SUMMARY_CHARS = 300
# How much of any other single string (a target id, a reason) a line shows.
FIELD_CHARS = 500


def inert(text: object, limit: int | None = None, *, multiline: bool = False) -> str:
    """`text` safe to print: escape sequences removed, other control characters and lone
    surrogates shown as U+FFFD, line breaks and tabs as spaces (unless `multiline`: then only
    carriage returns go, since they let a line overwrite the one before), cut to `limit`
    characters (with "…"). Linear in the length of the text (and bounded by `limit`)."""
    text = str(text)
    cut = limit is not None and len(text) > limit * 2
    if limit is not None:
        # Escapes are removed after the cut, so cut generously first; a sequence cut in two
        # leaves a lone ESC or a partial sequence, both of which are removed below.
        text = text[: limit * 2]
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub(" ", text) if not multiline else text.replace("\r", "")
    text = _CONTROL.sub(REPLACEMENT, text)
    if limit is not None and (cut or len(text) > limit):
        text = text[: max(limit - 1, 0)] + "…"
    return text


def markup(text: object, limit: int | None = FIELD_CHARS) -> str:
    """`inert(text)` with rich markup escaped, for strings interpolated into rich markup."""
    return escape(inert(text, limit))


_STATUS_STYLE = {
    Status.FAIL: "bold red",
    Status.ERROR: "bold magenta",
    Status.WARN: "yellow",
    Status.SKIP: "dim",
    Status.PASS: "green",
}
_VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.ERROR: "bold magenta",
}


def print_summary(console: Console, report: Report, verbose: bool = False) -> None:
    """Verdict, counts, and a table of results with failures first (passes only with -v)."""
    target = report.target
    console.print(
        f"[bold]amiscan[/] {markup(target.id)} ({markup(target.kind)}, {markup(target.platform)})"
    )
    table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
    table.add_column("status")
    table.add_column("severity")
    table.add_column("check")
    table.add_column("summary", overflow="fold")
    shown = 0
    not_judged = 0
    cut = 0
    for result in report.ordered_results():
        if result.status is Status.PASS and not verbose:
            continue
        if result.summary.startswith(NOT_JUDGED):
            not_judged += 1
            continue
        status = "waived" if result.waived else result.status.value
        style = "dim" if result.waived else _STATUS_STYLE[result.status]
        cut += len(result.summary) > SUMMARY_CHARS
        table.add_row(
            f"[{style}]{status}[/]",
            result.severity.value,
            markup(result.id, 200),
            markup(result.summary, SUMMARY_CHARS),
        )
        shown += 1
    if shown:
        console.print(table)
    if cut:
        console.print(f"[dim]{cut} summary(ies) shortened here; the reports hold the full text[/]")
    if not_judged:
        console.print(f"[magenta]{not_judged} check(s) not judged: the scan stopped early[/]")
    for why, ids in report.unjudged_by_reason():
        if why.startswith(NOT_JUDGED):
            continue  # folded into the line above; the reason is in the scan's errors
        console.print(
            f"[magenta]could not judge[/] {markup(', '.join(ids), FIELD_CHARS)}: "
            f"{markup(why, SUMMARY_CHARS)}"
        )
    counts = ", ".join(f"{count} {status}" for status, count in report.summary.items() if count)
    verdict = report.verdict
    console.print(
        f"[{_VERDICT_STYLE[verdict]}]{verdict.value.upper()}[/]  {counts or 'no checks ran'}"
        f"  ({report.duration_s:.1f}s)"
    )


@contextmanager
def progress_display(console: Console) -> Iterator[ProgressCallback]:
    """A spinner naming the current phase on an interactive terminal; silent otherwise."""
    if not console.is_terminal:
        yield lambda message: None
        return
    with console.status("Starting") as status:
        yield lambda message: status.update(markup(message, 200) + "…")
