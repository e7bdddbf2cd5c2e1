"""SIGINT/SIGTERM cancel the scans; a second signal ends the process at once."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from scanner.cancel import Cancel, ScanInterrupted, signals_cancel, wait_cancelling


def test_a_signal_sets_cancel_and_a_second_one_forces_the_exit() -> None:
    cancel = Cancel()
    announced: list[str] = []
    forced: list[str] = []
    with signals_cancel(cancel, lambda: announced.append("cleaning up"), forced.append):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler runs in this (the main) thread
        assert cancel.is_set and cancel.reason == "SIGTERM"
        assert announced == ["cleaning up"] and forced == []
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
    assert forced == ["SIGINT"]
    with pytest.raises(ScanInterrupted, match="SIGTERM"):
        cancel.check()


def test_the_previous_handlers_are_restored() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with signals_cancel(Cancel()):
        assert signal.getsignal(signal.SIGTERM) is not before[0]
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_wait_cancelling_waits_for_the_scans_to_finish_after_a_signal() -> None:
    cancel = Cancel()
    done = threading.Event()

    def scan() -> None:
        while not cancel.is_set:
            time.sleep(0.01)
        time.sleep(0.2)  # cleanup
        done.set()

    worker = threading.Thread(target=scan)
    worker.start()
    threading.Timer(0.1, os.kill, args=(os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    wait_cancelling(done, cancel, on_second=lambda name: pytest.fail("one signal only"))
    worker.join()
    assert done.is_set() and cancel.reason == "SIGINT"
    assert time.monotonic() - started < 2.0
