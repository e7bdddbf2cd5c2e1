"""Launch agent checks: a random administrator password, EC2Launch v2 installed."""

from __future__ import annotations

from typing import Any

import pytest

from checks.windows.launch_agent import admin_password, agent_version
from scanner.facts.windows.launch_agent import PasswordData
from scanner.model import Status
from tests.factbuilders import run
from tests.fakes.windows_hosts import EC2CONFIG_XML, V2_CONFIG, windows_facts

ABSENT = {"installed": False, "version": None, "config_path": "", "config": None}


def agents(
    v2: str | None = None, v1: str | None = None, ec2config: str | None = None
) -> dict[str, Any]:
    def install(config: str | None, path: str) -> dict[str, Any]:
        if config is None:
            return ABSENT
        return {"installed": True, "version": "1.0", "config_path": path, "config": config}

    return {
        "ec2launch_v2": install(v2, "agent-config.yml"),
        "ec2launch_v1": install(v1, "LaunchConfig.json"),
        "ec2config": install(ec2config, "config.xml"),
    }


ENABLED_EC2CONFIG = EC2CONFIG_XML.replace(
    "<Name>Ec2SetPassword</Name><State>Disabled", "<Name>Ec2SetPassword</Name><State>Enabled"
)

PASSWORD_CASES = [
    pytest.param(agents(v2=V2_CONFIG), None, Status.PASS, id="v2-random-passes"),
    pytest.param(
        agents(v2=V2_CONFIG), PasswordData.RETRIEVED, Status.PASS, id="v2-random-retrieved-passes"
    ),
    pytest.param(
        agents(v2=V2_CONFIG), PasswordData.EMPTY, Status.FAIL, id="v2-random-but-no-password-fails"
    ),
    pytest.param(
        agents(v2=V2_CONFIG.replace("random", "static")), None, Status.FAIL, id="v2-static-fails"
    ),
    pytest.param(
        agents(v1='{"adminPasswordType": "Random"}'), None, Status.PASS, id="v1-random-passes"
    ),
    pytest.param(
        agents(v1='{"adminPasswordType": "Specify"}'), None, Status.FAIL, id="v1-specify-fails"
    ),
    pytest.param(
        agents(ec2config=ENABLED_EC2CONFIG), None, Status.PASS, id="ec2config-enabled-passes"
    ),
    pytest.param(agents(ec2config=EC2CONFIG_XML), None, Status.FAIL, id="ec2config-disabled-fails"),
    pytest.param(
        agents(v2=V2_CONFIG.replace("random", "doNotSet"), ec2config=ENABLED_EC2CONFIG),
        None,
        Status.FAIL,
        id="v2-wins-over-a-leftover-ec2config",
    ),
    pytest.param(agents(), None, Status.FAIL, id="no-agent-fails"),
]


@pytest.mark.parametrize(("document", "password_data", "status"), PASSWORD_CASES)
def test_admin_password_status(
    document: dict[str, Any], password_data: str | None, status: Status
) -> None:
    extra = {} if password_data is None else {"password_data": password_data}
    facts = windows_facts(changes={"windows.launch-agent": document}, extra=extra)
    outcome = run(admin_password, facts)
    assert outcome.status is status, outcome.summary


def test_without_get_password_data_the_summary_says_only_the_config_was_judged() -> None:
    outcome = run(
        admin_password, windows_facts(changes={"windows.launch-agent": agents(v2=V2_CONFIG)})
    )
    assert "GetPasswordData not checked" in outcome.summary


VERSION_CASES = [
    pytest.param(agents(v2=V2_CONFIG), Status.PASS, id="v2-passes"),
    pytest.param(
        agents(v2=V2_CONFIG, ec2config=EC2CONFIG_XML), Status.PASS, id="v2-beside-ec2config-passes"
    ),
    pytest.param(agents(v1="{}"), Status.WARN, id="v1-warns"),
    pytest.param(agents(ec2config=EC2CONFIG_XML), Status.FAIL, id="ec2config-fails"),
    pytest.param(agents(), Status.FAIL, id="none-fails"),
]


@pytest.mark.parametrize(("document", "status"), VERSION_CASES)
def test_agent_version_status(document: dict[str, Any], status: Status) -> None:
    outcome = run(agent_version, windows_facts(changes={"windows.launch-agent": document}))
    assert outcome.status is status, outcome.summary
