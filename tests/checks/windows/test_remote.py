"""Remote access checks: vetting access (SSM, WinRM, SMB), RDP, and the WinRM listener."""

from __future__ import annotations

from typing import Any

import pytest

from checks.windows.remote import rdp_enabled, vetting_access, winrm_listener
from scanner.model import Status
from tests.factbuilders import evidence_text, run
from tests.fakes.windows_hosts import ALL_V4, COMPLIANT, NON_COMPLIANT, recorded, windows_facts

SERVICES = "windows.services"
FIREWALL = "windows.firewall"
LISTENING = "windows.net.listening"
LISTENERS = "windows.winrm.listeners"
RDP = "windows.rdp.settings"


def services(**states: tuple[str, str]) -> list[dict[str, str]]:
    """The compliant host's services with some (state, start mode) changed."""
    rows = recorded(COMPLIANT, SERVICES)
    for row in rows:
        if row["name"] in states:
            row["state"], row["start_mode"] = states[row["name"]]
    return rows


def firewall_with(rule_name: str, **fields: Any) -> dict[str, Any]:
    document = recorded(COMPLIANT, FIREWALL)
    for rule in document["rules"]:
        if rule["name"] == rule_name:
            rule.update(fields)
    return document


NO_SSM = services(AmazonSSMAgent=("Stopped", "Disabled"))
WINRM_PUBLIC = "WINRM-HTTP-In-TCP-PUBLIC"
SMB = "FPS-SMB-In-TCP"

VETTING_CASES = [
    pytest.param({}, Status.PASS, "SSM agent", id="ssm-running-passes"),
    pytest.param({SERVICES: NO_SSM}, Status.PASS, "WinRM listens", id="winrm-admitted-passes"),
    pytest.param(
        {
            SERVICES: NO_SSM,
            FIREWALL: firewall_with(WINRM_PUBLIC, remote_address=["LocalSubnet"]),
            LISTENERS: [],
        },
        Status.FAIL,
        "neither",
        id="winrm-local-subnet-only-fails",
    ),
    pytest.param(
        {
            SERVICES: NO_SSM,
            LISTENERS: [],
            FIREWALL: firewall_with(SMB, enabled="True", remote_address=["Any"]),
        },
        Status.PASS,
        "SMB listens on 445",
        id="smb-admitted-passes",
    ),
    pytest.param(
        {
            SERVICES: services(AmazonSSMAgent=("Running", "Manual")),
            LISTENERS: [],
            FIREWALL: firewall_with(WINRM_PUBLIC, enabled="False"),
        },
        Status.FAIL,
        "neither",
        id="ssm-not-at-boot-and-nothing-else-fails",
    ),
]


@pytest.mark.parametrize(("changes", "status", "summary"), VETTING_CASES)
def test_vetting_access_status(changes: dict[str, Any], status: Status, summary: str) -> None:
    outcome = run(vetting_access, windows_facts(changes=changes))
    assert outcome.status is status, outcome.summary
    assert summary in outcome.summary


def test_vetting_access_fails_on_the_non_compliant_host_with_firewall_evidence() -> None:
    outcome = run(vetting_access, windows_facts(NON_COMPLIANT))
    assert outcome.status is Status.FAIL
    assert "LocalSubnet" in evidence_text(outcome)


RDP_CASES = [
    pytest.param({}, {}, Status.PASS, id="enabled-passes"),
    pytest.param({}, {3389: True}, Status.PASS, id="reachable-passes"),
    pytest.param({}, {3389: False}, Status.WARN, id="closed-to-the-scanner-warns"),
    pytest.param(
        {RDP: {"deny_ts_connections": 1, "port": 3389}}, {}, Status.FAIL, id="denied-fails"
    ),
    pytest.param(
        {RDP: {"deny_ts_connections": 0, "policy_deny_ts_connections": 1, "port": 3389}},
        {},
        Status.FAIL,
        id="denied-by-policy-fails",
    ),
    pytest.param(
        {RDP: {"deny_ts_connections": 0, "port": 3390}}, {}, Status.FAIL, id="other-port-fails"
    ),
    pytest.param(
        {SERVICES: services(TermService=("Stopped", "Manual"))},
        {},
        Status.FAIL,
        id="service-stopped-fails",
    ),
    pytest.param(
        {FIREWALL: firewall_with("RemoteDesktop-UserMode-In-TCP", enabled="False")},
        {},
        Status.FAIL,
        id="firewall-rule-disabled-fails",
    ),
    pytest.param(
        {LISTENING: [{"address": "127.0.0.1", "port": 3389, "pid": 1}]},
        {},
        Status.FAIL,
        id="loopback-only-fails",
    ),
]


@pytest.mark.parametrize(("changes", "reachable", "status"), RDP_CASES)
def test_rdp_enabled_status(
    changes: dict[str, Any], reachable: dict[int, bool], status: Status
) -> None:
    facts = windows_facts(changes=changes, extra={"reachable_ports": reachable})
    outcome = run(rdp_enabled, facts)
    assert outcome.status is status, outcome.summary


def test_rdp_evidence_names_the_registry_value_and_the_rule() -> None:
    outcome = run(rdp_enabled, windows_facts(NON_COMPLIANT))
    text = evidence_text(outcome)
    assert "fDenyTSConnections = 1" in text
    assert "RemoteDesktop-UserMode-In-TCP" in text


WINRM_CASES = [
    pytest.param({}, {}, Status.PASS, id="http-listener-admitted-passes"),
    pytest.param({}, {5985: False}, Status.WARN, id="closed-to-the-scanner-warns"),
    pytest.param({LISTENERS: []}, {}, Status.FAIL, id="no-listener-fails"),
    pytest.param(
        {LISTENERS: [{"transport": "HTTPS", "address": "*", "port": "5986", "enabled": "true"}]},
        {},
        Status.FAIL,
        id="https-only-fails",
    ),
    pytest.param(
        {LISTENERS: [{"transport": "HTTP", "address": "*", "port": "5985", "enabled": "false"}]},
        {},
        Status.FAIL,
        id="disabled-listener-fails",
    ),
    pytest.param(
        {FIREWALL: firewall_with(WINRM_PUBLIC, remote_address=["LocalSubnet"])},
        {},
        Status.FAIL,
        id="local-subnet-fails",
    ),
    pytest.param(
        {SERVICES: services(WinRM=("Running", "Manual"))}, {}, Status.FAIL, id="not-at-boot-fails"
    ),
    pytest.param(
        {LISTENING: [{"address": ALL_V4, "port": 3389, "pid": 1}]},
        {},
        Status.FAIL,
        id="not-listening-fails",
    ),
]


@pytest.mark.parametrize(("changes", "reachable", "status"), WINRM_CASES)
def test_winrm_listener_status(
    changes: dict[str, Any], reachable: dict[int, bool], status: Status
) -> None:
    facts = windows_facts(changes=changes, extra={"reachable_ports": reachable})
    outcome = run(winrm_listener, facts)
    assert outcome.status is status, outcome.summary
