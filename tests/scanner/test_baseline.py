"""Baselines: new failures versus the previous version are called out, and the login user must
stay the one the previous version had."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from reports.html import render_html
from reports.json_report import dumps, loads
from scanner.baseline import (
    BASELINE_SOURCE,
    Baseline,
    BaselineError,
    compare_with_baseline,
    load_baseline,
    new_failure_ids,
)
from scanner.model import Evidence, Policy, Report, Result, Severity, Status, TargetInfo, Verdict
from tests.cli import PASSWORD_AUTH, amiscan, password_image

ROOT_LOGIN = "linux.ssh.root-login"
HISTORY = "linux.secrets.shell-history"
DEFAULT_USER = "linux.accounts.default-user"


def _result(check_id: str, status: Status) -> Result:
    return Result(
        id=check_id,
        title=check_id,
        severity=Severity.HIGH,
        status=status,
        summary=f"{check_id} {status.value}",
        evidence=(Evidence("/etc/ssh/sshd_config:1", "x"),),
        remediation="fix it",
        policy=Policy("S1", "https://example.com"),
    )


def _report(*results: Result, target_id: str = "ami-0new", **details: Any) -> Report:
    return Report(
        amiscan_version="0.1.0",
        target=TargetInfo("ami", target_id, "linux", details),
        started_at="2025-06-01T00:00:00Z",
        finished_at="2025-06-01T00:01:00Z",
        duration_s=60.0,
        verdict=Verdict.FAIL,
        results=results,
    )


def _baseline(*results: Result, **details: Any) -> Baseline:
    return Baseline(Path("v1.json"), _report(*results, target_id="ami-0old", **details))


def test_a_failure_that_passed_in_the_baseline_is_new() -> None:
    baseline = _baseline(_result(ROOT_LOGIN, Status.PASS), _result(HISTORY, Status.FAIL))
    current = _report(_result(ROOT_LOGIN, Status.FAIL), _result(HISTORY, Status.FAIL))

    compared = compare_with_baseline(current, baseline)

    root_login, history = compared.results
    assert root_login.evidence[-1] == Evidence(
        BASELINE_SOURCE,
        "new since the baseline: pass in ami-0old (scanned 2025-06-01T00:00:00Z)",
    )
    assert history == current.results[1]  # failed before too: not new
    assert new_failure_ids(compared) == {ROOT_LOGIN}
    assert any(n.startswith("1 new failure since the baseline ami-0old") for n in compared.notes)
    assert compared.verdict is current.verdict  # called out, not judged


def test_a_failure_of_a_check_the_baseline_did_not_run_is_new() -> None:
    compared = compare_with_baseline(
        _report(_result(ROOT_LOGIN, Status.FAIL)), _baseline(_result(HISTORY, Status.PASS))
    )

    assert "not checked in ami-0old" in compared.results[0].evidence[-1].text


def test_fixed_failures_are_noted() -> None:
    compared = compare_with_baseline(
        _report(_result(HISTORY, Status.PASS)), _baseline(_result(HISTORY, Status.FAIL))
    )

    assert compared.results == (_result(HISTORY, Status.PASS),)
    assert any(n.startswith("fixed since the baseline") and HISTORY in n for n in compared.notes)
    assert compared.collection["baseline"]["resolved"] == [HISTORY]


def test_the_comparison_survives_the_json_round_trip() -> None:
    compared = compare_with_baseline(
        _report(_result(ROOT_LOGIN, Status.FAIL)),
        _baseline(_result(ROOT_LOGIN, Status.PASS), login_user="ec2-user"),
    )

    again = loads(dumps(compared))

    assert again == compared
    assert again.collection["baseline"] == {
        "report": "v1.json",
        "target": "ami-0old",
        "started_at": "2025-06-01T00:00:00Z",
        "login_user": "ec2-user",
        "new_failures": [ROOT_LOGIN],
        "resolved": [],
    }


def test_the_html_report_marks_new_failures_only() -> None:
    compared = compare_with_baseline(
        _report(_result(ROOT_LOGIN, Status.FAIL), _result(HISTORY, Status.FAIL)),
        _baseline(_result(ROOT_LOGIN, Status.PASS), _result(HISTORY, Status.FAIL)),
    )

    html = render_html(compared)

    assert html.count("new since baseline</span>") == 1
    marked = html.index("new since baseline</span>")
    # The badge sits in the heading of root-login's result, just before its id.
    assert html.index("<code>", marked) == html.index(f"<code>{ROOT_LOGIN}</code>")


@pytest.mark.parametrize(
    "collection",
    [
        {},
        {"baseline": "x"},
        {"baseline": {"new_failures": "a"}},
        {"baseline": {"new_failures": [1]}},
    ],
)
def test_new_failure_ids_tolerate_any_collection(collection: dict[str, Any]) -> None:
    report = dataclasses.replace(_report(), collection=collection)

    assert new_failure_ids(report) == frozenset()


def test_the_login_user_comes_from_the_baseline_target() -> None:
    assert _baseline(login_user="ubuntu").login_user == "ubuntu"
    assert _baseline().login_user is None
    assert _baseline(login_user=7).login_user is None


def test_a_baseline_without_login_user_is_noted_when_the_check_ran() -> None:
    compared = compare_with_baseline(
        _report(_result(DEFAULT_USER, Status.PASS)), _baseline(_result(DEFAULT_USER, Status.PASS))
    )

    assert any("records no login user" in note for note in compared.notes)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"{not json", "not valid JSON"),
        (b'{"schema_version": 2}', "unsupported schema_version 2"),
        (b"[]", "expected a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_an_unusable_baseline_is_one_line_naming_the_file(
    tmp_path: Path, content: bytes | None, expected: str
) -> None:
    path = tmp_path / "v1.json"
    if content is not None:
        path.write_bytes(content)

    with pytest.raises(BaselineError) as caught:
        load_baseline(path)

    message = str(caught.value)
    assert message.startswith(f"baseline {path}: ")
    assert expected in message
    assert "\n" not in message


# --- end to end, through the command line, on an image root ----------------------------------


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    password_image(tmp_path / "img")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "img"


def _previous_version(path: Path, login_user: str, *failing: str) -> Path:
    """A baseline JSON: a compliant earlier version logged in as `login_user`."""
    results = tuple(
        _result(check_id, Status.FAIL if check_id in failing else Status.PASS)
        for check_id in (PASSWORD_AUTH, DEFAULT_USER)
    )
    path.write_text(dumps(_report(*results, target_id="ami-0old", login_user=login_user)))
    return path


def test_cli_a_changed_login_user_fails_the_default_user_check(image: Path) -> None:
    baseline = _previous_version(Path("v1.json"), "ubuntu")

    result = amiscan(
        f"dir:{image}", "--checks", DEFAULT_USER, "--baseline", baseline, "--no-html",
        "--json", "out.json",
    )  # fmt: skip

    report = json.loads(Path("out.json").read_text())
    (check,) = report["results"]
    assert result.exit_code == 1
    assert check["status"] == "fail"
    assert "changed from ubuntu (baseline) to ec2-user" in check["summary"]


def test_cli_the_same_login_user_passes(image: Path) -> None:
    baseline = _previous_version(Path("v1.json"), "ec2-user")

    result = amiscan(f"dir:{image}", "--checks", DEFAULT_USER, "--baseline", baseline, "--no-html")

    assert result.exit_code == 0


def test_cli_new_failures_are_called_out(image: Path) -> None:
    baseline = _previous_version(Path("v1.json"), "ec2-user")

    result = amiscan(f"dir:{image}", "--baseline", baseline, "--no-html", "--json", "out.json")

    report = json.loads(Path("out.json").read_text())
    assert result.exit_code == 1
    assert report["collection"]["baseline"]["new_failures"] == [PASSWORD_AUTH]
    assert "1 new failure since the baseline ami-0old" in result.stderr


def test_cli_a_baseline_from_the_config_file_is_relative_to_it(image: Path) -> None:
    (image.parent / "reports").mkdir()
    _previous_version(image.parent / "reports/v1.json", "ec2-user", PASSWORD_AUTH)
    config = image.parent / "amiscan.toml"
    config.write_text('baseline = "reports/v1.json"\n')

    result = amiscan(f"dir:{image}", "--no-html", "--json", "out.json")

    report = json.loads(Path("out.json").read_text())
    assert result.exit_code == 1
    assert report["collection"]["baseline"]["new_failures"] == []


def test_cli_a_bad_baseline_is_exit_2_before_scanning(image: Path) -> None:
    Path("v1.json").write_text("{")

    result = amiscan(f"dir:{image}", "--baseline", "v1.json", "--json", "out.json")

    assert result.exit_code == 2
    assert result.stderr.startswith("amiscan: error: baseline v1.json: not valid JSON")
    assert result.stderr.count("\n") == 1
    assert not Path("out.json").exists()
