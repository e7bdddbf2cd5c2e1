"""The harness itself: an overrun is killed, and the assertions catch what they are for."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hostile.harness import Run, assert_failed_cleanly, assert_inert, run_amiscan


def _run(stdout: bytes = b"", stderr: bytes = b"", returncode: int = 0) -> Run:
    return Run(("x",), returncode, stdout, stderr, 0.1, False, 0, Path("."))


def test_a_run_that_overruns_is_killed_and_says_so(tmp_path: Path) -> None:
    # A child that hangs before amiscan even starts: Python imports sitecustomize first.
    hang = tmp_path / "hang"
    hang.mkdir()
    (hang / "sitecustomize.py").write_text("import time\ntime.sleep(600)\n")
    env = {**os.environ, "PYTHONPATH": str(hang)}
    run = run_amiscan(["checks"], tmp_path / "work", timeout_s=1, env=env, reports=())
    assert run.killed
    assert run.seconds < 30
    with pytest.raises(AssertionError, match="overran"):
        assert_failed_cleanly(run, 0)


@pytest.mark.parametrize(
    "stream",
    [b"\x1b]0;owned\x07title", b"clear \x1b[2J", b"\xc2\x9b31m C1 CSI", b"bell\x07"],
)
def test_raw_escapes_on_either_stream_are_caught(stream: bytes) -> None:
    with pytest.raises(AssertionError, match="raw control byte"):
        assert_inert(_run(stdout=stream))
    with pytest.raises(AssertionError, match="raw control byte"):
        assert_inert(_run(stderr=stream))


def test_a_traceback_is_caught() -> None:
    with pytest.raises(AssertionError):
        assert_inert(_run(stderr=b"Traceback (most recent call last):\n"))


def test_tabs_newlines_and_replacement_characters_are_fine() -> None:
    assert_inert(_run(stdout="a\tb\nc \ufffd é\n".encode()))


def test_a_missing_report_is_caught(tmp_path: Path) -> None:
    run = Run(("x",), 3, b"", b"", 0.1, False, 0, tmp_path, {"json": tmp_path / "r.json"})
    with pytest.raises(AssertionError, match="json report was not written"):
        assert_failed_cleanly(run, 3)


def test_peak_memory_is_the_childs_own_not_the_largest_child_so_far(tmp_path: Path) -> None:
    hog = tmp_path / "hog"
    hog.mkdir()
    # Written, not just allocated: untouched pages are not resident.
    # Written, not merely allocated: pages never touched are not resident.
    (hog / "sitecustomize.py").write_text('block = b"x" * (300 * 1024 * 1024)\n')
    big = run_amiscan(["checks"], tmp_path / "big", env={**os.environ, "PYTHONPATH": str(hog)})
    small = run_amiscan(["checks"], tmp_path / "small", reports=())
    assert big.peak_rss_kib > 300 * 1024
    assert small.peak_rss_kib < 200 * 1024
