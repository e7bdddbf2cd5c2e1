"""Waivers: an active one accepts a failure, an expired one no longer does and says so, and a
bad one stops amiscan before it scans anything."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from scanner.config import Waiver
from scanner.model import (
    Evidence,
    Policy,
    Report,
    Result,
    Severity,
    Status,
    TargetInfo,
    Verdict,
)
from scanner.targets.directory import DirectoryTarget
from scanner.waivers import WAIVER_SOURCE, apply_waivers
from tests.cli import PASSWORD_AUTH, amiscan, password_image

TODAY = date(2025, 6, 1)
ROOT_LOGIN = "linux.ssh.root-login"


def _result(check_id: str, status: Status, severity: Severity = Severity.CRITICAL) -> Result:
    return Result(
        id=check_id,
        title=check_id,
        severity=severity,
        status=status,
        summary=f"{check_id} {status.value}",
        evidence=(Evidence("/etc/ssh/sshd_config:3", "PermitRootLogin yes"),),
        remediation="fix it",
        policy=Policy("S2", "https://example.com"),
    )


def _report(*results: Result, errors: tuple[str, ...] = ()) -> Report:
    return Report(
        amiscan_version="0.1.0",
        target=TargetInfo("dir", "dir:/img", "linux"),
        started_at="2025-06-01T00:00:00Z",
        finished_at="2025-06-01T00:00:01Z",
        duration_s=1.0,
        verdict=Verdict.FAIL,
        results=results,
        errors=errors,
    )


def _waiver(check_id: str = ROOT_LOGIN, expires: date = date(2099, 1, 1)) -> Waiver:
    return Waiver(check_id, "rescue image", expires, "alice")


def test_an_active_waiver_accepts_the_failure() -> None:
    report = apply_waivers(_report(_result(ROOT_LOGIN, Status.FAIL)), [_waiver()], today=TODAY)

    (result,) = report.results
    assert result.status is Status.FAIL  # still shown as found
    assert result.waived
    assert result.waiver == {"reason": "rescue image", "expires": "2099-01-01", "approver": "alice"}
    assert report.verdict is Verdict.PASS


def test_a_waiver_still_holds_on_its_expiry_date() -> None:
    waiver = _waiver(expires=TODAY)

    report = apply_waivers(_report(_result(ROOT_LOGIN, Status.FAIL)), [waiver], today=TODAY)

    assert report.results[0].waived
    assert report.verdict is Verdict.PASS
    assert any("holds until 2025-06-01 (its last day)" in note for note in report.notes)


def test_an_expired_waiver_no_longer_waives_and_says_so() -> None:
    waiver = _waiver(expires=date(2025, 5, 31))

    report = apply_waivers(_report(_result(ROOT_LOGIN, Status.FAIL)), [waiver], today=TODAY)

    (result,) = report.results
    assert not result.waived
    assert result.waiver is None
    assert result.evidence[-1] == Evidence(
        WAIVER_SOURCE, "waiver expired on 2025-05-31: rescue image (approved by alice)"
    )
    assert report.verdict is Verdict.FAIL
    assert any(f"waiver for {ROOT_LOGIN} expired on 2025-05-31" in n for n in report.notes)


def test_a_waiver_accepts_an_error_like_a_failure_and_the_verdict_passes() -> None:
    unjudged = _result(ROOT_LOGIN, Status.ERROR)
    assert apply_waivers(_report(unjudged), [], today=TODAY).verdict is Verdict.ERROR

    report = apply_waivers(_report(unjudged), [_waiver()], today=TODAY)

    (result,) = report.results
    assert (result.status, result.waived, result.accepted) == (Status.ERROR, True, True)
    assert result.waiver is not None and result.waiver["reason"] == "rescue image"
    assert report.verdict is Verdict.PASS
    assert report.unjudged == ()


def test_an_expired_waiver_no_longer_accepts_an_error() -> None:
    report = apply_waivers(
        _report(_result(ROOT_LOGIN, Status.ERROR)),
        [_waiver(expires=date(2025, 5, 31))],
        today=TODAY,
    )

    assert report.verdict is Verdict.ERROR
    assert report.results[0].evidence[-1].source == WAIVER_SOURCE


def test_a_waiver_never_changes_a_result_that_did_not_fail() -> None:
    for status in (Status.PASS, Status.WARN, Status.SKIP):
        original = _result(ROOT_LOGIN, status)

        report = apply_waivers(_report(original), [_waiver()], today=TODAY)

        assert report.results == (original,)
        assert any("was not needed" in note for note in report.notes)


def test_a_waiver_for_a_check_that_did_not_run_is_silent() -> None:
    report = apply_waivers(_report(_result(PASSWORD_AUTH, Status.PASS)), [_waiver()], today=TODAY)

    assert report.notes == ()


def test_only_the_named_check_is_waived() -> None:
    report = apply_waivers(
        _report(_result(ROOT_LOGIN, Status.FAIL), _result(PASSWORD_AUTH, Status.FAIL)),
        [_waiver()],
        today=TODAY,
    )

    assert [r.waived for r in report.results] == [True, False]
    assert report.verdict is Verdict.FAIL


def test_the_verdict_follows_fail_on_after_waivers() -> None:
    results = (
        _result(ROOT_LOGIN, Status.FAIL, Severity.CRITICAL),
        _result(PASSWORD_AUTH, Status.FAIL, Severity.MEDIUM),
    )

    waived_critical = apply_waivers(
        _report(*results), [_waiver()], today=TODAY, fail_on=Severity.HIGH
    )
    nothing_waived = apply_waivers(_report(*results), [], today=TODAY, fail_on=Severity.HIGH)

    assert waived_critical.verdict is Verdict.PASS  # the medium fail is below the threshold
    assert nothing_waived.verdict is Verdict.FAIL


def test_an_incomplete_scan_stays_an_error() -> None:
    report = apply_waivers(
        _report(_result(ROOT_LOGIN, Status.FAIL), errors=("connection refused",)),
        [_waiver()],
        today=TODAY,
    )

    assert report.verdict is Verdict.ERROR


# --- end to end, through the command line, on an image root ----------------------------------


@pytest.fixture
def image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An image root failing only linux.ssh.password-authentication; cwd is its parent."""
    password_image(tmp_path / "img")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "img"


def _config(path: Path, expires: str = "2099-12-31", **overrides: str) -> Path:
    fields = {
        "id": f'"{PASSWORD_AUTH}"',
        "reason": '"appliance console needs passwords"',
        "expires": expires,
        "approver": '"alice@example.com"',
        **overrides,
    }
    body = "".join(f"{key} = {value}\n" for key, value in fields.items() if value != "-")
    path.write_text("[[waivers]]\n" + body, encoding="utf-8")
    return path


def _scan(image: Path, *extra: str) -> tuple[int, str, Any]:
    result = amiscan(f"dir:{image}", "--no-html", "--json", "out.json", *extra)
    out = Path("out.json")
    report = json.loads(out.read_text()) if out.exists() else None
    return result.exit_code, result.stderr, report


def test_cli_an_active_waiver_passes_the_image(image: Path) -> None:
    _config(Path("amiscan.toml"))

    code, _, report = _scan(image)

    assert code == 0
    assert report is not None
    (waived,) = [r for r in report["results"] if r["waived"]]
    assert waived["id"] == PASSWORD_AUTH
    assert waived["waiver"]["approver"] == "alice@example.com"


def test_cli_an_expired_waiver_fails_the_image_and_says_so(image: Path) -> None:
    _config(Path("amiscan.toml"), expires="2020-01-31")

    code, stderr, report = _scan(image)

    assert code == 1
    assert report is not None and report["verdict"] == "fail"
    assert f"waiver for {PASSWORD_AUTH} expired on 2020-01-31" in stderr
    (failed,) = [r for r in report["results"] if r["status"] == "fail"]
    assert not failed["waived"]
    assert "waiver expired on 2020-01-31" in failed["evidence"][-1]["text"]


def test_cli_an_explicit_config_file_is_used(image: Path) -> None:
    config = _config(image.parent / "elsewhere.toml")

    code, _, _ = _scan(image, "--config", str(config))

    assert code == 0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"id": '"linux.ssh.no-such-check"'}, "waivers[0].id: unknown check id"),
        ({"reason": "-"}, "waivers[0].reason: required"),
        ({"expires": '"2025-13-01"'}, "waivers[0].expires: '2025-13-01' is not a date"),
        ({"approver": '""'}, "waivers[0].approver: must not be empty"),
    ],
)
def test_cli_a_bad_waiver_stops_before_scanning(
    image: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, str], expected: str
) -> None:
    _config(Path("amiscan.toml"), **overrides)

    def no_scan(*args: object) -> None:
        raise AssertionError("the scan started despite a bad configuration")

    monkeypatch.setattr(DirectoryTarget, "scan", no_scan)
    code, stderr, report = _scan(image)

    assert code == 2
    assert report is None
    assert stderr.count("\n") == 1
    assert stderr.startswith("amiscan: error: ")
    assert expected in stderr
    assert "Traceback" not in stderr


def test_cli_fail_on_from_config_and_command_line(image: Path) -> None:
    # A high-severity failure: below a `critical` threshold, at a `high` one.
    (image / "root/.bash_history").write_text("aws configure\n")
    only = ("--checks", "linux.secrets.shell-history")
    Path("amiscan.toml").write_text('fail_on = "critical"\n')

    assert _scan(image, *only)[0] == 0
    assert _scan(image, *only, "--fail-on", "high")[0] == 1


def test_cli_config_check_selection_applies_unless_overridden(image: Path) -> None:
    Path("amiscan.toml").write_text('checks = ["linux.accounts"]\n')

    code, _, report = _scan(image)
    assert code == 0
    assert report is not None
    assert {r["id"].split(".")[1] for r in report["results"]} == {"accounts"}

    assert _scan(image, "--checks", PASSWORD_AUTH)[0] == 1


def test_cli_pyproject_tool_table_is_found(image: Path) -> None:
    Path("pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [tool.amiscan]
            skip = ["{PASSWORD_AUTH}"]
            """
        )
    )

    assert _scan(image)[0] == 0
