"""Hostile strings on the way out: what the guest or a report file says never drives the terminal.

Escape sequences in a file name, the cloud-init default user or a report's target id reach the
terminal inert (DESIGN.md principle 7); a non-UTF-8 file name is shown with replacement
characters in every report format; a huge summary does not make the terminal table crawl.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import assert_failed_cleanly, assert_inert, run_amiscan
from tests.imagetree import PRIVATE_KEY, build_compliant

ALL_FORMATS = ("json", "html", "junit", "sarif", "markdown")
# Sets the window title, clears the screen, homes the cursor; then C1 CSI and a bidi override.
ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x9b31m\u202e"
REPLACEMENT = "\ufffd"


def _report_file(tmp_path: Path, **changes: Any) -> Path:
    """The JSON report of a compliant root, with `changes` applied to its document."""
    root = tmp_path / "root"
    build_compliant(root)
    run = run_amiscan([f"dir:{root}"], tmp_path / "scan")
    document = run.json_report()
    for key, value in changes.items():
        document[key] = value(document) if callable(value) else value
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_escapes_in_a_file_name_and_the_default_user_reach_the_terminal_inert(
    tmp_path: Path,
) -> None:
    tree = build_compliant(tmp_path / "root")
    tree.set_default_user(f"admin{ESCAPES}x")
    tree.write(f"/home/ec2-user/.ssh/id{ESCAPES}key", PRIVATE_KEY, mode=0o600)

    run = run_amiscan([f"dir:{tree.root}", "-v"], tmp_path / "work", reports=ALL_FORMATS)

    assert_failed_cleanly(run, 1)
    statuses = run.statuses()
    assert statuses["linux.secrets.private-keys"] == "fail"
    # Judged or not (a control character in a user name may make the file unreadable), never
    # a pass, and whatever it says reaches the terminal inert.
    assert statuses["linux.accounts.default-user"] in ("warn", "error")
    # Shown, not obeyed: the file is named, its name's sequences are gone.
    assert ".ssh/id" in run.out


def test_a_non_utf8_file_name_holding_a_key_is_shown_with_replacement_characters(
    tmp_path: Path,
) -> None:
    tree = build_compliant(tmp_path / "root")
    name = os.fsencode(str(tree.host_path("/home/ec2-user/.ssh"))) + b"/id_\xff\xfe"
    os.makedirs(os.path.dirname(name), exist_ok=True)
    with open(name, "wb") as handle:
        handle.write(PRIVATE_KEY.encode())

    run = run_amiscan([f"dir:{tree.root}"], tmp_path / "work", reports=ALL_FORMATS)

    assert_failed_cleanly(run, 1)
    assert run.statuses()["linux.secrets.private-keys"] == "fail"
    for kind in ("html", "junit", "markdown"):
        assert REPLACEMENT in run.reports[kind].read_text(encoding="utf-8"), kind
    for kind in ("json", "sarif"):
        text = json.loads(run.reports[kind].read_text(encoding="utf-8"))
        assert REPLACEMENT in json.dumps(text, ensure_ascii=False), kind
    assert REPLACEMENT in run.out


def test_escapes_in_a_reports_target_id_and_summary_reach_the_terminal_inert(
    tmp_path: Path,
) -> None:
    def hostile_results(document: dict[str, Any]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = document["results"]
        results[0].update(status="fail", summary=f"bad{ESCAPES}summary\r\nPASS", id=f"x{ESCAPES}")
        results[0]["evidence"][0]["source"] = f"/etc/{ESCAPES}"
        return results

    target = {"kind": "dir", "id": f"dir:{ESCAPES}", "platform": "linux"}
    source = _report_file(tmp_path, target=target, results=hostile_results, verdict="fail")

    run = run_amiscan(["report", str(source)], tmp_path / "out", reports=ALL_FORMATS)

    assert_failed_cleanly(run, 1)
    assert "bad" in run.out and "dir:" in run.out


def test_a_huge_summary_is_cut_in_the_terminal_and_kept_in_the_reports(tmp_path: Path) -> None:
    summary = "word " * (3 * 1024 * 1024)  # 15 MiB

    def long_summary(document: dict[str, Any]) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = document["results"]
        results[0].update(status="fail", summary=summary)
        return results

    source = _report_file(tmp_path, results=long_summary, verdict="fail")

    run = run_amiscan(["report", str(source)], tmp_path / "out", timeout_s=60)

    assert_failed_cleanly(run, 1)
    assert run.seconds < 30, run.seconds
    assert len(run.stdout) < 20_000
    assert "the reports hold the full text" in run.out
    assert run.json_report()["results"][0]["summary"] == summary


@pytest.mark.parametrize("command", [["checks"], ["report", "missing\x1b]0;x\x07.json"]])
def test_other_commands_print_nothing_a_terminal_acts_on(
    tmp_path: Path, command: list[str]
) -> None:
    run = run_amiscan(command, tmp_path, reports=())
    assert not run.killed
    assert_inert(run)
