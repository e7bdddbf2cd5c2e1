"""Running scans: each in a worker thread, several AMIs at once, SIGINT/SIGTERM cancelling cleanly."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from scanner.cancel import Cancel, wait_cancelling
from scanner.errors import ScanAborted, TargetError
from scanner.model import Report
from scanner.registry import Check
from scanner.run import ProgressCallback, ScanRun
from scanner.targets.base import ScanOptions, Target

log = logging.getLogger(__name__)

MAX_CONCURRENT_SCANS = 4


@dataclass(frozen=True)
class Outcome:
    """One target's report, and whether its failure was the user's input (exit 2)."""

    report: Report
    usage_error: bool = False


def scan_one(
    target: Target,
    checks: list[Check],
    options: ScanOptions,
    cancel: Cancel,
    progress: ProgressCallback,
) -> Outcome:
    """Scan a target; every way of failing to complete is recorded in the report."""
    run = ScanRun(target.kind, target.id, target.platform, checks, progress, cancel)
    usage = False
    try:
        target.scan(run, options)
    except TargetError as exc:
        usage = True
        run.fail_scan(str(exc))
    except ScanAborted as exc:
        run.fail_scan(str(exc))
    except Exception as exc:  # a bug must still produce a report (and cleanup ran in finally)
        log.debug("scan of %s crashed", target.id, exc_info=True)
        run.fail_scan(f"internal error: {type(exc).__name__}: {exc}")
    if cancel.is_set and not run.errors:
        run.fail_scan(f"interrupted ({cancel.reason})")
    return Outcome(run.finish(options.fail_on), usage)


def scan_all(
    targets: Sequence[Target],
    checks_for: Callable[[Target], list[Check]],
    options: ScanOptions,
    progress: ProgressCallback,
    on_signal: Callable[[], None] | None = None,
) -> list[Outcome]:
    """Scan every target (concurrently when several); a signal cancels all and waits for cleanup."""
    cancel = Cancel()
    done = threading.Event()
    outcomes: list[Outcome | None] = [None] * len(targets)

    def work() -> None:
        try:
            with ThreadPoolExecutor(max_workers=min(MAX_CONCURRENT_SCANS, len(targets))) as pool:
                futures = [
                    pool.submit(scan_one, t, checks_for(t), options, cancel, progress)
                    for t in targets
                ]
                for index, future in enumerate(futures):
                    outcomes[index] = future.result()
        finally:
            done.set()

    worker = threading.Thread(target=work, name="amiscan-scans", daemon=True)
    worker.start()
    wait_cancelling(done, cancel, on_signal)
    worker.join()
    return [o for o in outcomes if o is not None]
