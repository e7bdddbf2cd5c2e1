"""scan_live_windows: one round trip through WinRM to the fake host, then every Windows check."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from scanner.facts.base import Mode, ScanContext
from scanner.model import Status
from scanner.registry import Check, load_checks
from scanner.run import ScanRun
from scanner.transports.winrm import WinRMEndpoint, WinRMTransport
from scanner.windows import scan_live_windows
from tests.fakes.windows_hosts import (
    COMPLIANT,
    COMPLIANT_STATUSES,
    NON_COMPLIANT,
    NON_COMPLIANT_STATUSES,
)
from tests.fakes.wsman import RecordedHost, RecordedProbe, credential_file, serve_wsman

USER, PASSWORD = "Administrator", "Corr3ct-Horse-Battery"


@pytest.fixture(autouse=True)
def _ntlm_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTLM_USER_FILE", str(credential_file(tmp_path, USER, PASSWORD)))


def windows_checks() -> list[Check]:
    return sorted(
        (c for c in load_checks().values() if c.platform.value == "windows"), key=lambda c: c.id
    )


def scan(tmp_path: Path, host: RecordedHost, timeout_s: float = 30, **fake: object) -> ScanRun:
    run = ScanRun("winrm", "winrm://fake", "windows", windows_checks())
    with serve_wsman(tmp_path, host, user=USER, password=PASSWORD, **fake) as served:
        transport = WinRMTransport(WinRMEndpoint("127.0.0.1", served.port), USER, PASSWORD)
        transport.connect()
        context = ScanContext(mode=Mode.LIVE, target_kind="winrm", scan_date="2026-01-15")
        try:
            scan_live_windows(run, transport, context, timeout_s)
        finally:
            transport.close()
    return run


def statuses(run: ScanRun) -> Mapping[str, str]:
    return {check_id: result.status.value for check_id, result in run.results.items()}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param(COMPLIANT, COMPLIANT_STATUSES, id="compliant"),
        pytest.param(NON_COMPLIANT, NON_COMPLIANT_STATUSES, id="non-compliant"),
    ],
)
def test_every_windows_check_is_judged_from_one_round_trip(
    tmp_path: Path, host: RecordedHost, expected: Mapping[str, str]
) -> None:
    run = scan(tmp_path, host)
    assert statuses(run) == expected
    assert run.collection["round_trips"] == 1
    assert run.collection["probes"] == 11
    assert run.errors == []
    assert run.details["hostname"] == "EC2AMAZ-FAKE"
    assert "Windows Server" in run.details["os"]


def test_a_broken_probe_errors_its_checks_and_no_other(tmp_path: Path) -> None:
    host = {**COMPLIANT, "windows.firewall": RecordedProbe("", "error", "Access is denied.")}
    results = scan(tmp_path, host).results
    assert results["windows.rdp.enabled"].status is Status.ERROR
    assert "Access is denied." in results["windows.winrm.listener"].summary
    # SSM alone decides vetting access: the firewall is not needed for it.
    assert results["windows.remote.vetting-access"].status is Status.PASS
    assert results["windows.accounts.guest"].status is Status.PASS


def test_a_timed_out_probe_is_an_error_not_a_pass(tmp_path: Path) -> None:
    host = {**COMPLIANT, "windows.updates.pending": RecordedProbe("", "timeout", "did not finish")}
    result = scan(tmp_path, host).results["windows.updates.pending"]
    assert result.status is Status.ERROR and "did not finish in time" in result.summary


def test_a_script_that_stops_early_makes_the_scan_incomplete(tmp_path: Path) -> None:
    run = scan(tmp_path, COMPLIANT, complete=False)
    assert run.errors == ["the collection script stopped early"]
    assert statuses(run) == COMPLIANT_STATUSES


def test_a_script_that_never_ends_fails_the_scan_with_its_reason(tmp_path: Path) -> None:
    run = scan(tmp_path, COMPLIANT, timeout_s=0.5, hang=True)
    assert run.errors == ["the collection script did not finish within 0.5s"]
    assert {r.status for r in run.results.values()} == {Status.ERROR}


def test_an_unelevated_session_is_noted(tmp_path: Path) -> None:
    env = {"user": "EC2AMAZ-FAKE\\operator", "elevated": "False", "hostname": "EC2AMAZ-FAKE"}
    run = scan(tmp_path, COMPLIANT, env=env)
    assert any("not elevated" in note for note in run.notes)


def test_records_a_hostile_host_prints_after_END_are_not_judged(tmp_path: Path) -> None:
    # The genuine records say the host fails every check; the forged ones after END would pass it.
    run = scan(tmp_path, NON_COMPLIANT, after_end=COMPLIANT)
    assert statuses(run) == NON_COMPLIANT_STATUSES
    assert run.errors == []
    assert any("11 collection record(s) after the end" in note for note in run.notes), run.notes


def test_forged_records_with_an_END_of_their_own_mark_the_stream_forged(tmp_path: Path) -> None:
    run = scan(tmp_path, NON_COMPLIANT, after_end=COMPLIANT, ends_after=1)
    assert run.errors == ["the collection output holds 2 END records (forged output?)"]
    # Nothing in a forged stream is judged, not even its genuine-looking part.
    assert {r.status for r in run.results.values()} == {Status.ERROR}
    assert "hostname" not in run.details


def test_forged_records_before_END_error_every_probe_they_repeat(tmp_path: Path) -> None:
    # The script "stops" before its END, the forger prints its records and an END: every probe
    # has two records, and neither is judged.
    run = scan(tmp_path, NON_COMPLIANT, complete=False, after_end=COMPLIANT, ends_after=1)
    assert {r.status for r in run.results.values()} == {Status.ERROR}
    assert "two records" in run.results["windows.secrets.unattend"].summary
    assert any(n.startswith("probe windows.firewall: ") for n in run.notes), run.notes


def _variants() -> list[str]:
    from tests.windowsystem import KNOWN_BAD

    return ["compliant", *KNOWN_BAD]


@pytest.mark.parametrize("variant", _variants())
def test_over_winrm_and_from_the_volume_the_same_system_gets_the_same_statuses(
    tmp_path: Path, variant: str
) -> None:
    """One Windows system, rendered both as the probes' output (served over WS-Management) and
    as hives and files on a volume: the live and offline forms must judge it alike."""
    from scanner.facts.base import Facts
    from scanner.fs import ImageRoot
    from tests.windowsystem import KNOWN_BAD, compliant, probe_outputs, render_tree

    system = compliant() if variant == "compliant" else KNOWN_BAD[variant][0]()
    live = statuses(scan(tmp_path, probe_outputs(system)))
    at_rest = ScanRun("dir", "dir:fake", "windows", windows_checks())
    root = render_tree(system, tmp_path / "c")
    context = ScanContext(mode=Mode.OFFLINE, target_kind="dir", scan_date="2026-01-15")
    at_rest.judge(windows_checks(), Facts(ImageRoot(root), context))
    offline = statuses(at_rest)
    # Only a running instance knows pending updates; only a disk shows BitLocker signatures.
    both = set(live) - {"windows.updates.pending", "windows.filesystem.bitlocker"}
    assert {c: live[c] for c in both} == {c: offline[c] for c in both}
    assert offline["windows.updates.pending"] == "skip"
    failed = {c for c, status in live.items() if status == "fail"}
    assert failed == (set() if variant == "compliant" else KNOWN_BAD[variant][1])
