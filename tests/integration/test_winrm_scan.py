"""`amiscan winrm://…` in-process against the fake WS-Management endpoint on 127.0.0.1.

`responses` patches requests inside this process, so the CLI runs through click's CliRunner.
The WinRM port is a real listening socket (the scanner's TCP checks reach it); its HTTP is the
fake's. Nothing listens on 127.0.0.1:3389 or :5985, so the outside-in view says those are closed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from scanner.cli import main
from tests.fakes.windows_hosts import COMPLIANT, COMPLIANT_STATUSES, NON_COMPLIANT
from tests.fakes.wsman import RecordedHost, WSManEndpoint, credential_file, serve_wsman

WINDOWS_IDS = sorted(COMPLIANT_STATUSES)
USER, PASSWORD = "Administrator", "Corr3ct-Horse-Battery"


@pytest.fixture(autouse=True)
def _ntlm_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTLM_USER_FILE", str(credential_file(tmp_path, USER, PASSWORD)))
    monkeypatch.chdir(tmp_path)


def amiscan(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def served(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WSManEndpoint]:
    host: RecordedHost = getattr(request, "param", COMPLIANT)
    with serve_wsman(tmp_path, host, user=USER, password=PASSWORD) as endpoint:
        yield endpoint


def scan_json(
    endpoint: WSManEndpoint, *extra: str, password: str = PASSWORD
) -> tuple[Result, dict[str, Any]]:
    result = amiscan(
        f"winrm://{USER}@127.0.0.1:{endpoint.port}",
        "--json",
        "-",
        "--no-html",
        *extra,
        env={"AMISCAN_WINRM_PASSWORD": password},
    )
    return result, json.loads(result.stdout)


def test_the_catalog_lists_every_windows_check() -> None:
    result = amiscan("checks", "--json")
    catalog = {item["id"]: item for item in json.loads(result.stdout)}
    assert sorted(i for i in catalog if i.startswith("windows.")) == WINDOWS_IDS
    for check_id in WINDOWS_IDS:
        assert catalog[check_id]["platform"] == "windows"
        assert catalog[check_id]["policy"]["url"].startswith("https://docs.aws.amazon.com/")


def test_a_compliant_host_reports_every_windows_check(served: WSManEndpoint) -> None:
    result, report = scan_json(served)
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert sorted(statuses) == WINDOWS_IDS
    expected = {
        **COMPLIANT_STATUSES,
        # Loopback has nothing on 3389 and 5985: the outside-in view warns, the guest passes.
        "windows.rdp.enabled": "warn",
        "windows.winrm.listener": "warn",
    }
    assert statuses == expected
    target = report["target"]
    assert target["kind"] == "winrm" and target["platform"] == "windows"
    assert target["reachable_ports"] == {"3389": False, "5985": False, str(served.port): True}
    assert report["verdict"] == "pass" and result.exit_code == 0
    assert served.fake.plaintext_requests == 0 and len(served.fake.commands) == 1


@pytest.mark.parametrize("served", [NON_COMPLIANT], indirect=True)
def test_a_non_compliant_host_fails_every_windows_check(served: WSManEndpoint) -> None:
    result, report = scan_json(served)
    assert {r["status"] for r in report["results"]} == {"fail"}
    assert len(report["results"]) == len(WINDOWS_IDS)
    assert result.exit_code == 1


def test_a_rejected_password_is_an_incomplete_scan_not_a_traceback(served: WSManEndpoint) -> None:
    result, report = scan_json(served, password="wrong")
    assert result.exit_code == 3
    assert "rejected the credentials" in result.stderr
    assert report["verdict"] == "error"


def test_the_password_comes_from_the_named_variable(served: WSManEndpoint) -> None:
    result = amiscan(
        f"winrm://127.0.0.1:{served.port}",
        "--password-env",
        "WIN_PASS",
        "--json",
        "-",
        "--no-html",
        env={"WIN_PASS": PASSWORD, "AMISCAN_WINRM_PASSWORD": ""},
    )
    assert json.loads(result.stdout)["target"]["login_user"] == "Administrator"


@pytest.mark.parametrize(
    ("target", "env", "message"),
    [
        (
            "winrm://127.0.0.1",
            {"AMISCAN_WINRM_PASSWORD": ""},
            "set the environment variable AMISCAN_WINRM_PASSWORD",
        ),
        (
            "winrm://admin:secret@127.0.0.1",
            {"AMISCAN_WINRM_PASSWORD": "x"},
            "passwords in winrm:// URLs are not accepted",
        ),
        ("winrm://127.0.0.1:99999", {"AMISCAN_WINRM_PASSWORD": "x"}, "port must be a number"),
    ],
)
def test_bad_winrm_targets_are_usage_errors(target: str, env: dict[str, str], message: str) -> None:
    result = amiscan(target, "--no-html", env=env)
    assert result.exit_code == 2
    assert message in result.stderr
