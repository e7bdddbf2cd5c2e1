"""Windows system checks: pending updates, supported release, BitLocker."""

from __future__ import annotations

from typing import Any

import pytest

from checks.windows.system import bitlocker, os_supported, updates_pending
from scanner.model import Status
from tests.factbuilders import evidence_text, run
from tests.fakes.windows_hosts import windows_facts

UPDATES = "windows.updates.pending"
OS = "windows.os.release"
BITLOCKER = "windows.filesystem.bitlocker"


def update(severity: str, title: str = "2024-05 Cumulative Update (KB5037422)") -> dict[str, Any]:
    return {"title": title, "kb": ["5037422"], "severity": severity, "categories": ["Updates"]}


UPDATE_CASES = [
    pytest.param({"updates": []}, Status.PASS, id="none-pending-passes"),
    pytest.param({"updates": [update("Critical")]}, Status.FAIL, id="critical-fails"),
    pytest.param({"updates": [update("Important")]}, Status.FAIL, id="important-fails"),
    pytest.param({"updates": [update("Moderate")]}, Status.WARN, id="moderate-warns"),
    pytest.param(
        {"updates": [update("", "Defender definitions")]}, Status.WARN, id="unrated-warns"
    ),
    pytest.param({"error": "offline", "hresult": "0x8024402C"}, Status.ERROR, id="offline-errs"),
    pytest.param({"error": "denied", "hresult": "0x80070005"}, Status.ERROR, id="failure-errors"),
]


@pytest.mark.parametrize(("document", "status"), UPDATE_CASES)
def test_updates_pending_status(document: dict[str, Any], status: Status) -> None:
    outcome = run(updates_pending, windows_facts(changes={UPDATES: document}))
    assert outcome.status is status, outcome.summary


def test_pending_critical_updates_are_listed_with_their_kb() -> None:
    outcome = run(
        updates_pending,
        windows_facts(changes={UPDATES: {"updates": [update("Critical", "Servicing stack")]}}),
    )
    assert "KB5037422" in evidence_text(outcome)


def release(
    build: str, caption: str = "Microsoft Windows Server", product_type: int = 3
) -> dict[str, Any]:
    return {
        "caption": caption,
        "build": build,
        "ubr": 1,
        "product_type": product_type,
        "architecture": "64-bit",
    }


OS_CASES = [
    pytest.param(release("20348"), "2026-01-01", Status.PASS, id="server-2022-passes"),
    pytest.param(release("26100"), "2026-01-01", Status.PASS, id="server-2025-passes"),
    pytest.param(release("9600"), "2026-01-01", Status.FAIL, id="server-2012-r2-fails"),
    pytest.param(release("14393"), "2026-12-01", Status.WARN, id="server-2016-ending-soon-warns"),
    pytest.param(release("14393"), "2027-02-01", Status.FAIL, id="server-2016-after-eol-fails"),
    pytest.param(release("99999"), "2026-01-01", Status.WARN, id="unknown-build-warns"),
    pytest.param(
        release("19045", "Microsoft Windows 10 Pro", 1),
        "2026-01-01",
        Status.WARN,
        id="client-warns",
    ),
]


@pytest.mark.parametrize(("document", "day", "status"), OS_CASES)
def test_os_supported_status(document: dict[str, Any], day: str, status: Status) -> None:
    outcome = run(os_supported, windows_facts(changes={OS: document}, scan_date=day))
    assert outcome.status is status, outcome.summary


def volume(protection: int, conversion: int) -> dict[str, Any]:
    return {
        "drive": "C:",
        "device": "\\\\?\\Volume{1}\\",
        "protection_status": protection,
        "conversion_status": conversion,
    }


BITLOCKER_CASES = [
    pytest.param({"installed": False, "volumes": []}, Status.PASS, id="not-installed-passes"),
    pytest.param(
        {"installed": True, "volumes": [volume(0, 0)]}, Status.PASS, id="decrypted-passes"
    ),
    pytest.param({"installed": True, "volumes": [volume(1, 1)]}, Status.FAIL, id="encrypted-fails"),
    pytest.param(
        {"installed": True, "volumes": [volume(0, 2)]}, Status.FAIL, id="encrypting-fails"
    ),
    pytest.param({"installed": True, "volumes": [volume(0, 4)]}, Status.FAIL, id="paused-fails"),
    pytest.param(
        {"installed": True, "volumes": [volume(0, 1)]}, Status.FAIL, id="suspended-protection-fails"
    ),
]


@pytest.mark.parametrize(("document", "status"), BITLOCKER_CASES)
def test_bitlocker_status(document: dict[str, Any], status: Status) -> None:
    outcome = run(bitlocker, windows_facts(changes={BITLOCKER: document}))
    assert outcome.status is status, outcome.summary
