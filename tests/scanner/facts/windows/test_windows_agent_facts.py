"""Launch agent, unattend, update and OS facts, read from what their probes print."""

from __future__ import annotations

import pytest

from scanner.facts.base import FactFailed
from scanner.facts.windows.launch_agent import (
    EC2CONFIG,
    EC2LAUNCH_V1,
    EC2LAUNCH_V2,
    AgentInstall,
    parse_launch_agents,
    password_setting,
)
from scanner.facts.windows.secrets import find_passwords, parse_setup_secrets
from scanner.facts.windows.system import parse_bitlocker, parse_release
from scanner.facts.windows.updates import parse_updates
from tests.fakes.windows_hosts import EC2CONFIG_XML, LEAKY_UNATTEND, SCRUBBED_UNATTEND, V2_CONFIG


def v2(config: str | None) -> AgentInstall:
    return AgentInstall(EC2LAUNCH_V2, "2.0.1981.0", "agent-config.yml", config)


@pytest.mark.parametrize(
    ("config", "random"),
    [
        pytest.param(V2_CONFIG, True, id="default-config"),
        pytest.param(V2_CONFIG.replace("type: random", "type: static"), False, id="static"),
        pytest.param(V2_CONFIG.replace("type: random", "type: doNotSet"), False, id="do-not-set"),
        pytest.param(V2_CONFIG.replace("type: random", ""), False, id="no-type"),
        pytest.param(V2_CONFIG.replace("setAdminAccount", "setHostName"), False, id="no-task"),
        pytest.param("config: [unclosed", False, id="not-yaml"),
        pytest.param(None, False, id="missing-file"),
    ],
)
def test_ec2launch_v2_password_type(config: str | None, random: bool) -> None:
    assert password_setting(v2(config)).random is random


def test_ec2launch_v2_names_the_stage_and_setting() -> None:
    setting = password_setting(v2(V2_CONFIG))
    assert setting.setting == "setAdminAccount password type: random"
    assert "preReady" in setting.source


@pytest.mark.parametrize(
    ("config", "random"),
    [
        ('{"adminPasswordType": "Random", "adminPassword": ""}', True),
        ('{"adminPasswordType": "Specify", "adminPassword": "x"}', False),
        ('{"adminPasswordType": "DoNothing"}', False),
        ("{not json", False),
    ],
)
def test_ec2launch_v1_admin_password_type(config: str, random: bool) -> None:
    install = AgentInstall(EC2LAUNCH_V1, "1.3.2004", "LaunchConfig.json", config)
    assert password_setting(install).random is random


@pytest.mark.parametrize(
    ("config", "random"),
    [
        (
            EC2CONFIG_XML.replace(
                "<State>Disabled</State></Plugin>\n    <Plugin><Name>Ec2SetComputerName",
                "<State>Enabled</State></Plugin>\n    <Plugin><Name>Ec2SetComputerName",
            ),
            True,
        ),
        (EC2CONFIG_XML, False),
        ("<Ec2ConfigurationSettings><Plugins/></Ec2ConfigurationSettings>", False),
        ("<broken", False),
    ],
)
def test_ec2config_set_password_plugin(config: str, random: bool) -> None:
    install = AgentInstall(EC2CONFIG, "4.9.4500", "config.xml", config)
    assert password_setting(install).random is random


def test_the_newest_installed_agent_is_the_active_one() -> None:
    agents = parse_launch_agents(
        {
            "ec2launch_v2": {"installed": True, "version": "2.0", "config_path": "a", "config": ""},
            "ec2config": {"installed": True, "version": "4.9", "config_path": "b", "config": ""},
        }
    )
    assert agents.active is not None and agents.active.agent == EC2LAUNCH_V2
    assert parse_launch_agents({}).active is None


def test_unattend_passwords_are_found_with_their_form_but_not_their_value() -> None:
    found = find_passwords("C:\\Windows\\Panther\\Unattend.xml", LEAKY_UNATTEND)
    assert [(p.element, p.plaintext, p.line_number) for p in found] == [
        ("AdministratorPassword", True, 6),
        ("Password", False, 12),
    ]
    assert all("P@ss" not in p.describe() for p in found)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SCRUBBED_UNATTEND, id="scrubbed-by-setup"),
        pytest.param("<AdministratorPassword><Value></Value></AdministratorPassword>", id="empty"),
        pytest.param("<unattend/>", id="no-password"),
    ],
)
def test_answer_files_without_a_password_value(text: str) -> None:
    assert find_passwords("u.xml", text) == ()


def test_a_password_without_plaintext_element_counts_as_plaintext() -> None:
    (found,) = find_passwords("u.xml", "<Password><Value>secret</Value></Password>")
    assert found.plaintext


def test_a_file_cut_mid_document_is_still_inspected() -> None:
    cut = LEAKY_UNATTEND[: LEAKY_UNATTEND.index("<AutoLogon>")]
    assert len(find_passwords("u.xml", cut)) == 1


def test_winlogon_default_password_length_only_when_present() -> None:
    secrets = parse_setup_secrets(
        {"files": [], "winlogon": {"default_password_present": False, "default_password_length": 0}}
    )
    assert secrets.winlogon.default_password_length is None


@pytest.mark.parametrize(
    ("document", "named"),
    [
        pytest.param({}, "files, winlogon", id="empty-object"),
        pytest.param({"files": []}, "winlogon", id="no-winlogon"),
        pytest.param({"files": [], "winlogon": {}}, "default_password_present", id="bare-winlogon"),
        pytest.param(
            {"files": [], "winlogon": {"default_password_present": True}},
            "default_password_length",
            id="a-password-of-no-length",
        ),
    ],
)
def test_setup_secrets_missing_a_field_the_probe_always_prints_are_not_judged(
    document: dict[str, object], named: str
) -> None:
    with pytest.raises(FactFailed, match=f"printed no {named}$"):
        parse_setup_secrets(document)


@pytest.mark.parametrize(
    "document",
    [{}, {"volumes": []}, {"installed": False}, {"installed": "False", "volumes": []}],
)
def test_bitlocker_without_a_clear_installed_flag_and_volumes_is_not_judged(
    document: dict[str, object],
) -> None:
    with pytest.raises(FactFailed, match="the BitLocker probe"):
        parse_bitlocker(document)


@pytest.mark.parametrize(
    ("hresult", "error"),
    [("0x8024402C", FactFailed), ("0x80072EFD", FactFailed), ("0x80070005", FactFailed)],
)
def test_update_search_failures(hresult: str, error: type[Exception]) -> None:
    with pytest.raises(error, match=hresult):
        parse_updates({"error": "Exception from HRESULT", "hresult": hresult})


def test_updates_are_rated_by_msrc_severity() -> None:
    updates = parse_updates(
        {
            "updates": [
                {"title": "A", "kb": "5037422", "severity": "Important", "categories": []},
                {"title": "B", "kb": [], "severity": "Moderate", "categories": []},
            ]
        }
    )
    assert [u.blocking for u in updates] == [True, False]
    assert updates[0].kbs == ("5037422",)


def test_os_release_needs_a_build_number() -> None:
    with pytest.raises(FactFailed, match="build number"):
        parse_release({"caption": "Windows", "build": ""})
    release = parse_release(
        {
            "caption": "Microsoft Windows Server 2019",
            "build": "17763",
            "ubr": 5936,
            "product_type": 3,
            "architecture": "64-bit",
        }
    )
    assert release.build == 17763 and release.is_server
    assert "17763.5936" in release.describe()
