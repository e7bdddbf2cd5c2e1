"""Windows Firewall evaluation: rules, profiles and blocks decide admission of a port."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.facts.windows.firewall import parse_firewall


def rule(**fields: Any) -> dict[str, Any]:
    base = {
        "name": "WINRM-HTTP-In-TCP",
        "display_name": "Windows Remote Management (HTTP-In)",
        "group": "Windows Remote Management",
        "enabled": "True",
        "action": "Allow",
        "profile": "Any",
        "protocol": "TCP",
        "local_port": ["5985"],
        "remote_address": ["Any"],
        "program": "System",
        "service": "Any",
    }
    return {**base, **fields}


def firewall(*rules: dict[str, Any], active: tuple[str, ...] = ("Public",), **profile: Any):
    profiles = [
        {"name": n, "enabled": "True", "default_inbound": "NotConfigured", **profile.get(n, {})}
        for n in ("Domain", "Private", "Public")
    ]
    return parse_firewall(
        {"profiles": profiles, "active_profiles": list(active), "rules": list(rules)}
    )


def test_an_enabled_allow_rule_from_any_admits() -> None:
    assert firewall(rule()).admits(5985).admitted


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"enabled": "False"}, "no enabled allow rule", id="disabled"),
        pytest.param({"profile": "Domain, Private"}, "no enabled allow rule", id="other-profile"),
        pytest.param({"local_port": ["5986"]}, "no enabled allow rule", id="other-port"),
        pytest.param({"protocol": "UDP"}, "no enabled allow rule", id="udp"),
        pytest.param(
            {"remote_address": ["LocalSubnet"]}, "cannot judge LocalSubnet", id="local-subnet"
        ),
        pytest.param({"remote_address": ["10.0.0.0/16"]}, "10.2.0.0/16", id="one-range"),
        pytest.param(
            {"local_port": ["Any"], "program": r"C:\app.exe"},
            "no enabled allow rule",
            id="program-only",
        ),
    ],
)
def test_rules_that_do_not_admit(fields: dict[str, Any], reason: str) -> None:
    admission = firewall(rule(**fields)).admits(5985)
    assert not admission.admitted
    assert reason in admission.reason


def test_a_block_rule_wins_over_an_allow_rule() -> None:
    block = rule(
        name="block", display_name="Block vetting", action="Block", remote_address=["10.0.0.0/8"]
    )
    admission = firewall(rule(), block).admits(5985)
    assert not admission.admitted
    assert "Block vetting" in admission.reason


def test_a_block_rule_for_other_addresses_does_not_matter() -> None:
    block = rule(name="block", action="Block", remote_address=["192.0.2.0/24"])
    assert firewall(rule(), block).admits(5985).admitted


def test_a_port_range_and_an_unrestricted_any_port_rule_apply() -> None:
    assert firewall(rule(local_port=["5000-6000"])).admits(5985).admitted
    assert firewall(rule(local_port=["Any"], program="Any")).admits(5985).admitted


def test_a_disabled_profile_admits_everything() -> None:
    assert firewall(Public={"enabled": "False"}).admits(5985).admitted


def test_a_profile_that_allows_inbound_by_default_admits() -> None:
    assert firewall(Public={"default_inbound": "Allow"}).admits(5985).admitted


def test_every_active_profile_must_admit() -> None:
    private_only = rule(profile="Private")
    assert firewall(private_only, active=("Private",)).admits(5985).admitted
    assert not firewall(private_only, active=("Private", "Public")).admits(5985).admitted


def test_without_an_active_profile_all_three_must_admit() -> None:
    assert not firewall(rule(profile="Public"), active=()).admits(5985).admitted
    assert firewall(rule(), active=()).admits(5985).admitted


def test_domain_authenticated_category_maps_to_the_domain_profile() -> None:
    fw = firewall(rule(profile="Domain"), active=("DomainAuthenticated",))
    assert fw.active_profiles == ("Domain",)
    assert fw.admits(5985).admitted


def test_single_values_unwrapped_by_convertto_json_are_read_as_lists() -> None:
    fw = parse_firewall(
        {
            "profiles": {"name": "Public", "enabled": "True", "default_inbound": "Block"},
            "active_profiles": "Public",
            "rules": rule(local_port="5985", remote_address="Any"),
        }
    )
    assert fw.admits(5985).admitted
