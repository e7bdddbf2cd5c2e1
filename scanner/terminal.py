"""The terminal summary and progress display (rich), failures first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from scanner.model import Report, Status, Verdict
from scanner.run import NOT_JUDGED, ProgressCallback

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
        f"[bold]amiscan[/] {escape(target.id)} ({escape(target.kind)}, {escape(target.platform)})"
    )
    table = Table(show_header=True, header_style="bold", expand=False, pad_edge=False)
    table.add_column("status")
    table.add_column("severity")
    table.add_column("check")
    table.add_column("summary", overflow="fold")
    shown = 0
    not_judged = 0
    for result in report.ordered_results():
        if result.status is Status.PASS and not verbose:
            continue
        if result.summary.startswith(NOT_JUDGED):
            not_judged += 1
            continue
        status = "waived" if result.waived else result.status.value
        style = "dim" if result.waived else _STATUS_STYLE[result.status]
        table.add_row(
            f"[{style}]{status}[/]",
            result.severity.value,
            escape(result.id),
            escape(result.summary),
        )
        shown += 1
    if shown:
        console.print(table)
    if not_judged:
        console.print(f"[magenta]{not_judged} check(s) not judged: the scan stopped early[/]")
    for why, ids in report.unjudged_by_reason():
        if why.startswith(NOT_JUDGED):
            continue  # folded into the line above; the reason is in the scan's errors
        console.print(f"[magenta]could not judge[/] {escape(', '.join(ids))}: {escape(why)}")
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
        yield lambda message: status.update(escape(message) + "…")
