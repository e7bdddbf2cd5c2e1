"""Cancellation: SIGINT/SIGTERM stop a scan at its next wait, and cleanup still runs to the end.

Scans run in worker threads; only the main thread receives signals. It sets a shared Event that
every wait loop of a scan polls (instead of sleeping), so an interrupted scan raises
`ScanInterrupted` where it stands, unwinds through its `finally` (terminate, delete), and the
report is still written. A second signal during that cleanup ends the process at once (exit 3),
for the user who cannot wait; `amiscan cleanup` then deletes what an AMI scan left behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import FrameType
from typing import NoReturn

from scanner.errors import ScanAborted


class ScanInterrupted(ScanAborted):
    """The user (or CI) stopped the scan; resources are still cleaned up."""


class Cancel:
    """A cancellation flag with the reason, shared by the main thread and the scans."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._children: list[Cancel] = []
        self.reason = ""

    def set(self, reason: str) -> None:
        with self._lock:
            if not self._event.is_set():
                self.reason = reason
                self._event.set()
            children = list(self._children)
        for child in children:
            child.set(reason)

    def child(self) -> Cancel:
        """A cancellation set with this one, that can also be set on its own (to stop work
        whose result is no longer needed, without stopping the scan)."""
        child = Cancel()
        with self._lock:
            self._children.append(child)
            reason = self.reason if self._event.is_set() else ""
        if reason:
            child.set(reason)
        return child

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise ScanInterrupted once cancellation was requested."""
        if self._event.is_set():
            raise ScanInterrupted(f"interrupted ({self.reason}); the scan stopped early")

    def sleep(self, seconds: float) -> None:
        """Sleep, waking at once (with ScanInterrupted) on cancellation."""
        if self._event.wait(seconds):
            self.check()


NEVER = Cancel()


# Exit code of a process ended by a second signal: the scan could not complete (DESIGN.md).
FORCED_EXIT_CODE = 3
_CANCELLING = (signal.SIGINT, signal.SIGTERM)


def force_exit(signal_name: str) -> NoReturn:
    """End the process now, without waiting for cleanup: the user asked twice."""
    sys.stderr.write(
        f"amiscan: second signal ({signal_name}): exiting now without waiting for cleanup "
        "(`amiscan cleanup` deletes what an AMI scan left in AWS)\n"
    )
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    # Not sys.exit: the scan threads are still running, and interpreter shutdown would wait
    # for them.
    os._exit(FORCED_EXIT_CODE)


@contextmanager
def signals_cancel(
    cancel: Cancel,
    on_signal: Callable[[], object] | None = None,
    on_second: Callable[[str], object] = force_exit,
) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM set `cancel` (the scans stop and clean up); a
    second signal calls `on_second` (by default: exit at once with FORCED_EXIT_CODE).

    The handlers raise nothing, so a signal can never cut the main thread's own bookkeeping
    short; they only work in the main thread, where Python runs signal handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if cancel.is_set:
            on_second(name)
            return
        cancel.set(name)
        if on_signal is not None:
            on_signal()

    previous = {number: signal.signal(number, handler) for number in _CANCELLING}
    try:
        yield
    finally:
        for number, action in previous.items():
            signal.signal(number, action)


def wait_cancelling(
    done: threading.Event,
    cancel: Cancel,
    on_signal: Callable[[], object] | None = None,
    on_second: Callable[[str], object] = force_exit,
) -> None:
    """Wait for `done`; a SIGINT/SIGTERM sets `cancel` and waits on until the scans cleaned up,
    and a second one ends the process at once."""
    with signals_cancel(cancel, on_signal, on_second):
        # Short waits: Python runs a signal handler between them at the latest.
        while not done.wait(0.2):
            pass
