"""The one round trip of a live scan, as Linux and Windows scans both make it."""

from __future__ import annotations

from scanner.run import ScanRun
from scanner.transports.base import MAX_SCRIPT_OUTPUT, CommandResult, Transport


def run_collection(
    run: ScanRun, transport: Transport, script: str, probes: int, timeout_s: float
) -> CommandResult:
    """Run the whole collection script once (a timed phase) and record what it cost."""
    with run.phase("collected", "Collecting facts (one round trip)"):
        result = transport.run_script(script, timeout_s)
    run.collection.update(
        {
            "round_trips": transport.exec_count,
            "probes": probes,
            "script_bytes": len(script),
            "output_bytes": len(result.stdout),
            "seconds": round(result.duration_s, 3),
        }
    )
    return result


def incomplete_reason(
    result: CommandResult, complete: bool, timeout_s: float, last_error: str
) -> str | None:
    """Why the collection did not finish, or None when it did.

    Whatever was gathered is still judged, but an unfinished collection makes the scan
    incomplete (exit 3), and the report says why.
    """
    if result.timed_out:
        return f"the collection script did not finish within {timeout_s:g}s"
    if result.truncated:
        # The rest of the stream, END included, was never read: nothing after the cut counts.
        return (
            f"the collection output passed the {MAX_SCRIPT_OUTPUT // 2**20} MiB limit and was "
            "cut off"
        )
    if not complete:
        return "the collection script stopped early" + (f": {last_error}" if last_error else "")
    return None
