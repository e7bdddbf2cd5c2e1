"""Cancellation: SIGINT/SIGTERM stop a scan at its next wait, and cleanup still runs to the end.

Scans run in worker threads; only the main thread receives signals. It sets a shared Event that
every wait loop of a scan polls (instead of sleeping), so an interrupted scan raises
`ScanInterrupted` where it stands, unwinds through its `finally` (terminate, delete), and the
report is still written. Further signals during that cleanup are refused, not obeyed.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from scanner.errors import ScanAborted


class ScanInterrupted(ScanAborted):
    """The user (or CI) stopped the scan; resources are still cleaned up."""


class Cancel:
    """A cancellation flag with the reason, shared by the main thread and the scans."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

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


class _Terminate(Exception):
    """Raised in the main thread by SIGTERM, the way SIGINT raises KeyboardInterrupt."""


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises in the main thread (as SIGINT does) so it can cancel."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise _Terminate

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def wait_cancelling(done: threading.Event, cancel: Cancel, on_signal: object = None) -> None:
    """Wait for `done`; a SIGINT/SIGTERM sets `cancel` and waits on until the scans cleaned up."""
    with sigterm_raises():
        while not done.is_set():
            try:
                done.wait(0.2)
            except KeyboardInterrupt:
                cancel.set("SIGINT")
                _announce(on_signal)
            except _Terminate:
                cancel.set("SIGTERM")
                _announce(on_signal)


def _announce(on_signal: object) -> None:
    if callable(on_signal):
        on_signal()
