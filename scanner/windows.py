"""Judging a Windows guest live, from one round trip of the PowerShell collection script."""

from __future__ import annotations

import dataclasses
import logging

from scanner.collect_windows import build_script, parse_output
from scanner.facts.base import FactFailed, Facts, FactUnavailable, Mode, ScanContext
from scanner.facts.windows.system import WINDOWS_RELEASE
from scanner.fs import MemoryTree
from scanner.linux import needed_facts
from scanner.model import Platform
from scanner.records import stream_notes
from scanner.registry import Check
from scanner.roundtrip import incomplete_reason, run_collection
from scanner.run import ScanRun
from scanner.transports.base import Transport

log = logging.getLogger(__name__)

DEFAULT_COLLECT_TIMEOUT_S = 600.0


def windows_checks(checks: list[Check]) -> list[Check]:
    """The Windows checks among the selected ones."""
    return [c for c in checks if c.platform is Platform.WINDOWS]


def scan_live_windows(
    run: ScanRun,
    transport: Transport,
    context: ScanContext,
    timeout_s: float = DEFAULT_COLLECT_TIMEOUT_S,
) -> None:
    """Gather every Windows fact in one execution of the PowerShell script, then judge."""
    checks = windows_checks(run.checks)
    script = build_script(needed_facts(checks, Mode.LIVE))
    result = run_collection(run, transport, script.text, len(script.probe_names), timeout_s)
    # The parser never raises: a malformed or repeated record errors its own probe, and a
    # forged stream (a second END, a repeated session record) errors the whole collection.
    collected = parse_output(result.stdout, script.marker)
    last = _last_error_line(result.stderr)
    collection_error = collected.forged or incomplete_reason(
        result, collected.complete, timeout_s, last
    )
    run.notes.extend(stream_notes(collected.ignored_after_end, collected.probe_errors))
    if collection_error:
        run.fail_scan(collection_error)
    if collected.forged:
        # Nothing a forged stream says is judged, not even what looks genuine.
        collected = dataclasses.replace(collected, outputs={}, env={})
    elevated = collected.env.get("elevated")
    context = dataclasses.replace(
        context,
        session=dict(collected.env),
        privileged=None if elevated is None else elevated.lower() == "true",
    )
    run.details.update({k: v for k, v in collected.env.items() if k in ("hostname", "user")})
    if context.privileged is False:
        run.notes.append(
            "the WinRM session is not elevated: probes that need an administrator may fail"
        )
    files = MemoryTree()
    files.description = transport.description
    facts = Facts(
        files, context, collected.outputs, collection_error, probe_errors=collected.probe_errors
    )
    with run.phase("judged", "Judging"):
        run.judge(checks, facts)
    record_os(run, facts)


def _last_error_line(stderr: bytes) -> str:
    """The last readable line of stderr; PowerShell wraps errors in CLIXML when redirected."""
    text = stderr.decode("utf-8", errors="replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#<")]
    return lines[-1][:300] if lines else ""


def record_os(run: ScanRun, facts: Facts) -> None:
    """Name the Windows release among the target's facts, for reviewers."""
    try:
        release = facts.get(WINDOWS_RELEASE)
    except (FactUnavailable, FactFailed):
        return
    run.details.setdefault("os", release.describe())
