"""Hostile image roots: giant files, deep trees, FIFOs. Every read is bounded; nothing passes
that was not judged."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.harness import assert_failed_cleanly, error_lines, run_amiscan
from tests.imagetree import PRIVATE_KEY, build_compliant

GIB = 1024**3
# A scan of a small tree stays far below this; loading a giant file whole would not.
PEAK_RSS_KIB = 400 * 1024


def _nest(top: Path, levels: int) -> None:
    """`levels` nested directories under top, built iteratively (paths longer than PATH_MAX)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)


def _unnest(top: Path) -> None:
    """Remove what `_nest` built, iteratively (pytest's recursive cleanup would overflow)."""
    if not top.is_dir():
        return
    fds = [os.open(top, os.O_RDONLY)]
    try:
        while True:
            try:
                fds.append(os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fds[-1]))
            except (FileNotFoundError, NotADirectoryError):
                break
        while len(fds) > 1:
            os.close(fds.pop())
            os.rmdir("d", dir_fd=fds[-1])
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    image = tmp_path / "image"
    build_compliant(image)
    yield image
    for top in (image / "home" / "ec2-user", image / "opt" / "app"):
        _unnest(top)


def test_a_5_gib_history_fails_fast_in_little_memory(root: Path, tmp_path: Path) -> None:
    history = root / "root" / ".bash_history"
    history.write_text("aws configure\n")
    os.truncate(history, 5 * GIB)
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60, reports=("json", "html"))
    assert_failed_cleanly(run, 1)
    results = {r["id"]: r for r in run.json_report()["results"]}
    history_result = results["linux.secrets.shell-history"]
    assert history_result["status"] == "fail"
    assert f"{5 * GIB} bytes" in history_result["evidence"][0]["text"]
    assert run.seconds < 30 and run.peak_rss_kib < PEAK_RSS_KIB


def test_a_giant_configuration_file_is_could_not_judge_not_a_crash(
    root: Path, tmp_path: Path
) -> None:
    # /etc/passwd over the read limit: the facts that need it error, with the reason.
    os.truncate(root / "etc" / "passwd", 3 * GIB)
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60)
    assert_failed_cleanly(run, 3)
    report = run.json_report()
    assert report["verdict"] == "error"
    errored = [r for r in report["results"] if r["status"] == "error"]
    assert errored and any("read limit" in r["summary"] for r in errored), errored
    assert "pass" not in {r["status"] for r in errored}
    assert run.peak_rss_kib < PEAK_RSS_KIB


def test_a_key_beside_a_3000_level_tree_fails_and_the_unsearched_part_errors(
    root: Path, tmp_path: Path
) -> None:
    (root / "root" / "id_rsa").write_text(PRIVATE_KEY)
    _nest(root / "home" / "ec2-user", 3000)
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60)
    assert_failed_cleanly(run, 1)
    results = {r["id"]: r for r in run.json_report()["results"]}
    assert results["linux.secrets.private-keys"]["status"] == "fail"
    credentials = results["linux.secrets.aws-credentials"]
    assert credentials["status"] == "error"
    assert "deeper than" in credentials["summary"]
    assert "RecursionError" not in run.err


def test_a_3000_level_tree_alone_is_could_not_judge_never_pass(root: Path, tmp_path: Path) -> None:
    _nest(root / "opt" / "app", 3000)
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60)
    assert_failed_cleanly(run, 3)
    statuses = run.statuses()
    assert statuses["linux.secrets.private-keys"] == "error"
    assert statuses["linux.secrets.aws-credentials"] == "error"
    assert run.json_report()["verdict"] == "error"
    assert all("\x1b" not in line for line in error_lines(run))


def test_fifos_where_files_are_expected_never_block(root: Path, tmp_path: Path) -> None:
    (root / "root" / ".bash_history").unlink(missing_ok=True)
    os.mkfifo(root / "root" / ".bash_history")
    (root / "opt").mkdir(exist_ok=True)
    os.mkfifo(root / "opt" / "pipe.conf")
    (root / "etc" / "fifo.d").mkdir()
    os.mkfifo(root / "etc" / "fifo.d" / "secret")
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60)
    assert_failed_cleanly(run, 0)
    assert run.statuses()["linux.secrets.shell-history"] == "pass"


def test_symlinks_out_of_the_image_and_loops_are_not_walked(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text(PRIVATE_KEY)
    os.symlink(outside, root / "etc" / "escape")
    os.symlink("/", root / "etc" / "to-root")
    os.symlink("loop", root / "etc" / "loop")
    run = run_amiscan([f"dir:{root}"], tmp_path / "work", timeout_s=60)
    assert_failed_cleanly(run, 0)
    assert run.statuses()["linux.secrets.private-keys"] == "pass"
