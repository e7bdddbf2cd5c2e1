"""`amiscan report RESULT.json`: every format re-rendered from the JSON, with the same verdict
and results, and the scan's exit code; nothing is scanned or judged again."""

from __future__ import annotations

import dataclasses
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from reports.json_report import dumps, loads
from scanner.model import Verdict
from scanner.targets.directory import DirectoryTarget
from tests.cli import amiscan, password_image


@pytest.fixture
def scanned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The JSON report of a real failing scan of an image root; cwd is its folder."""
    tree = password_image(tmp_path / "img")
    # A waived failure too, so that waivers survive the round trip.
    tree.write("/root/.bash_history", "sudo passwd root\n")
    (tmp_path / "amiscan.toml").write_text(
        "[[waivers]]\n"
        'id = "linux.secrets.shell-history"\n'
        'reason = "cleared by the first-boot script"\n'
        "expires = 2099-12-31\n"
        'approver = "alice"\n'
    )
    monkeypatch.chdir(tmp_path)
    result = amiscan(f"dir:{tmp_path / 'img'}", "--no-html", "--json", "scan.json")
    assert result.exit_code == 1
    return tmp_path / "scan.json"


def _no_scanning(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise AssertionError("amiscan report must not scan")

    monkeypatch.setattr(DirectoryTarget, "scan", boom)


def test_report_reproduces_verdict_and_results(
    scanned: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_scanning(monkeypatch)

    result = amiscan("report", scanned, "--no-html", "--json", "again.json")

    original, again = loads(scanned.read_text()), loads(Path("again.json").read_text())
    assert result.exit_code == 1
    assert again == original
    assert again.verdict is Verdict.FAIL
    assert [r.waived for r in again.results if r.status.value == "fail"].count(True) == 1


def test_report_writes_every_format_and_their_counts_match_the_json(scanned: Path) -> None:
    result = amiscan(
        "report", scanned, "--html", "r.html", "--junit", "junit.xml", "--sarif", "r.sarif",
        "--markdown", "r.md",
    )  # fmt: skip

    data = json.loads(scanned.read_text())
    summary = data["summary"]
    waived = sum(1 for r in data["results"] if r["status"] == "fail" and r["waived"])
    assert result.exit_code == 1

    suite = ET.parse("junit.xml").getroot().find("testsuite")  # noqa: S314 - our own output
    assert suite is not None
    assert int(suite.get("tests", "-1")) == len(data["results"])
    assert int(suite.get("failures", "-1")) == summary["fail"] - waived
    assert int(suite.get("errors", "-1")) == summary["error"]
    assert int(suite.get("skipped", "-1")) == summary["skip"] + waived
    assert len(suite.findall("testcase")) == len(data["results"])

    sarif = json.loads(Path("r.sarif").read_text())
    (run,) = sarif["runs"]
    assert sarif["version"] == "2.1.0"
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} == {
        r["id"] for r in data["results"]
    }
    emitted = [r for r in data["results"] if r["status"] in ("fail", "warn", "error")]
    assert len(run["results"]) == len(emitted)
    assert sum(1 for r in run["results"] if "suppressions" in r) == waived
    assert run["properties"]["verdict"] == data["verdict"]

    html = Path("r.html").read_text()
    assert '<header class="verdict verdict-fail">' in html
    assert Path("r.md").read_text().startswith("## amiscan: FAIL")


@pytest.mark.parametrize(
    ("verdict", "code"), [(Verdict.PASS, 0), (Verdict.FAIL, 1), (Verdict.ERROR, 3)]
)
def test_report_exit_code_is_the_recorded_verdict(
    scanned: Path, verdict: Verdict, code: int
) -> None:
    # The verdict as recorded wins, even where the results alone would say otherwise:
    # re-rendering must never re-judge (waivers and --fail-on were applied at scan time).
    report = dataclasses.replace(loads(scanned.read_text()), verdict=verdict)
    Path("other.json").write_text(dumps(report))

    assert amiscan("report", "other.json", "--no-html").exit_code == code


def test_report_writes_the_html_by_default(scanned: Path) -> None:
    amiscan("report", scanned)

    assert Path("amiscan-report.html").read_text().startswith("<!DOCTYPE html>")


def test_report_json_to_standard_output_keeps_the_summary_off_it(scanned: Path) -> None:
    result = amiscan("report", scanned, "--no-html", "--json", "-")

    assert loads(result.stdout) == loads(scanned.read_text())
    assert "FAIL" in result.stderr


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"{", "not valid JSON"),
        (b'{"schema_version": 1}', "missing field 'amiscan_version'"),
        (b'{"schema_version": 9}', "unsupported schema_version 9"),
        (b"\xff", "not UTF-8"),
    ],
)
def test_report_of_a_bad_file_is_exit_2_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, expected: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path("bad.json").write_bytes(content)

    result = amiscan("report", "bad.json")

    assert result.exit_code == 2
    assert result.stderr.startswith("amiscan: error: bad.json: ")
    assert expected in result.stderr
    assert result.stderr.count("\n") == 1
    assert not Path("amiscan-report.html").exists()


def test_a_target_still_means_scan(scanned: Path) -> None:
    # `amiscan TARGET` is `amiscan scan TARGET`: the new subcommand must not shadow targets.
    result = amiscan(f"dir:{scanned.parent / 'img'}", "--no-html")

    assert result.exit_code == 1
