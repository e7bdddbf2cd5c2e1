"""Judging a Linux guest: offline from its files, or live from one collection round trip."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from scanner.collect import CollectionError, LiveSettings, build_script, parse_output
from scanner.facts.base import Fact, FactFailed, Facts, FactUnavailable, Mode, ScanContext, closure
from scanner.facts.linux.system import OS_RELEASE
from scanner.fs import MemoryTree
from scanner.model import Platform
from scanner.records import stream_notes
from scanner.registry import Check
from scanner.roundtrip import incomplete_reason, run_collection
from scanner.run import ScanRun
from scanner.transports.base import Transport

log = logging.getLogger(__name__)

DEFAULT_COLLECT_TIMEOUT_S = 600.0


def linux_checks(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.platform is Platform.LINUX]


def needed_facts(checks: list[Check], mode: Mode) -> list[Fact[Any]]:
    """Every fact the checks need (dependencies included) that this mode can gather."""
    wanted = closure([fact for c in checks for fact in c.needs])
    return [f for f in wanted if mode in f.modes]


def scan_live(
    run: ScanRun,
    transport: Transport,
    context: ScanContext,
    settings: LiveSettings,
    timeout_s: float = DEFAULT_COLLECT_TIMEOUT_S,
) -> None:
    """Gather every live fact in one execution of the collection script, then judge."""
    checks = linux_checks(run.checks)
    facts_needed = needed_facts(checks, Mode.LIVE)
    script = build_script(facts_needed, settings)
    result = run_collection(run, transport, script.text, len(script.probe_names), timeout_s)
    collection_error: str | None = None
    try:
        collected = parse_output(result.stdout, script.marker)
    except CollectionError as exc:
        collected = None
        collection_error = str(exc)
    if collected is not None:
        last = result.stderr.decode("utf-8", errors="replace").strip().splitlines()[-1:]
        collection_error = collected.forged or incomplete_reason(
            result, collected.complete, timeout_s, "".join(last)
        )
        run.notes.extend(
            stream_notes(collected.ignored_after_end, collected.probe_errors, collected.files_error)
        )
        if collected.timings:
            # Where a slow collection went: each probe's own time on the guest (the slow ones
            # ran beside the others, so these overlap and do not add up to the whole).
            run.collection["probe_ms"] = dict(
                sorted(collected.timings.items(), key=lambda item: -item[1])
            )
    if collection_error:
        run.fail_scan(collection_error)
    if collected is not None and collected.forged:
        # Nothing a forged stream says is judged, not even what looks genuine.
        collected = dataclasses.replace(
            collected, outputs={}, files=MemoryTree(), env={}, root_uid=None, sudo_error=None
        )
    files = collected.files if collected is not None else MemoryTree()
    files.description = transport.description
    if collected is not None:
        context = dataclasses.replace(
            context,
            session=dict(collected.env),
            privileged=collected.privileged if collected.root_uid is not None else None,
            sudo_error=collected.sudo_error,
        )
        run.details.update({k: v for k, v in collected.env.items() if k in ("hostname", "kernel")})
        if collected.sudo_error:
            run.notes.append(f"privileged probes ran without root: {collected.sudo_error}")
    outputs = collected.outputs if collected is not None else {}
    facts = Facts(
        files,
        context,
        outputs,
        collection_error,
        cancel=run.cancel,
        probe_errors=collected.probe_errors if collected is not None else None,
        files_error=collected.files_error if collected is not None else None,
    )
    with run.phase("judged", "Judging"):
        run.judge(checks, facts)
    record_os(run, facts)


def record_os(run: ScanRun, facts: Facts) -> None:
    """Name the OS among the target's facts, for reviewers, when the checks gathered it."""
    try:
        release = facts.get(OS_RELEASE).release
    except (FactUnavailable, FactFailed):
        return
    run.details.setdefault("os", release.pretty_name)
