"""While an AMI's instance boots, its snapshots are judged offline in the background.

When the instance never becomes reachable (no route from the scanner, a broken boot, sshd not
starting), the report still carries every result the snapshot could judge, each marked as judged
from the snapshot, instead of a wall of "not judged". When the live scan succeeds, its results
stand and the background reading is stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

from scanner.cancel import ScanInterrupted
from scanner.errors import ScanAborted
from scanner.facts.base import Mode, ScanContext
from scanner.model import Status
from scanner.run import ScanRun

log = logging.getLogger(__name__)

FROM_SNAPSHOT = "judged from the AMI's snapshot (the instance could not be scanned)"
# How long a finished live scan waits for the background reading to notice it is not needed.
_STOP_WAIT_S = 5.0


class SnapshotJudgement:
    """The offline checks judged from the AMI's snapshots in a background thread."""

    def __init__(
        self,
        run: ScanRun,
        session: Any,
        snapshots: list[tuple[str, str]],
        context: ScanContext,
    ) -> None:
        self._cancel = run.cancel.child()
        self._shadow = ScanRun(
            run.kind,
            run.target_id,
            run.platform,
            # The AMI's platform (DescribeImages) names the checks its snapshot can speak for.
            [c for c in run.checks if c.platform.value == run.platform],
            cancel=self._cancel,
        )
        self._session = session
        self._snapshots = snapshots
        self._context = dataclasses.replace(context, mode=Mode.OFFLINE)
        self.problem = ""
        self._thread = threading.Thread(target=self._work, name="amiscan-snapshot", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        # Imported here: a scan that never reads a snapshot does not load the disk readers.
        from scanner.targets.snapshot import judge_snapshots

        try:
            judge_snapshots(self._shadow, self._session, self._snapshots, self._context)
        except ScanAborted as exc:
            self.problem = str(exc)
        except Exception as exc:  # a reader bug must not sink the live scan
            log.debug("judging the snapshot crashed", exc_info=True)
            self.problem = f"internal error: {type(exc).__name__}: {exc}"

    def stop(self) -> None:
        """The live scan is over: stop reading (its results are not needed)."""
        self._cancel.set("the live scan finished")
        self._thread.join(_STOP_WAIT_S)

    def fill_unjudged(self, run: ScanRun, why: ScanAborted) -> None:
        """The live scan could not complete: give every check it did not judge the snapshot's
        result, where the snapshot could judge it."""
        if isinstance(why, ScanInterrupted):
            return
        # Bounded by the readers' own limits; a SIGINT/SIGTERM reaches it through the child.
        self._thread.join()
        filled = 0
        for check_id, result in self._shadow.results.items():
            if check_id in run.results or result.status is Status.SKIP:
                continue
            run.results[check_id] = dataclasses.replace(
                result, summary=f"{FROM_SNAPSHOT}: {result.summary}"
            )
            filled += 1
        if filled:
            run.notes.append(
                f"the instance could not be scanned: {filled} checks were judged from the "
                "AMI's snapshot instead (each says so)"
            )
        if self.problem:
            run.notes.append(f"the AMI's snapshot could not be judged either: {self.problem}")
        run.notes.extend(f"snapshot: {note}" for note in self._shadow.notes)
        if self._shadow.details.get("read"):
            run.details["snapshot_read"] = self._shadow.details["read"]
