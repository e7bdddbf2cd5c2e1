"""EC2 launch agent checks: a random administrator password, and EC2Launch v2 installed."""

from __future__ import annotations

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.windows.launch_agent import (
    EC2CONFIG,
    EC2LAUNCH_V1,
    EC2LAUNCH_V2,
    LAUNCH_AGENTS,
    PasswordData,
    password_setting,
)
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check


@check(
    id="windows.launch-agent.password",
    title="the launch agent sets a random administrator password",
    severity=Severity.CRITICAL,
    platform=Platform.WINDOWS,
    policy=policy("W3", "CL"),
    rationale="Each buyer must get an administrator password of their own, generated at first "
    "boot and retrievable only with their key pair (GetPasswordData); a password fixed in the "
    "image is known to the seller and to every other buyer.",
    remediation="EC2Launch v2: in agent-config.yml set the `setAdminAccount` task's "
    '`password: {type: random}`; EC2Launch v1: `"adminPasswordType": "Random"` in '
    "LaunchConfig.json; EC2Config: enable the Ec2SetPassword plug-in. Then shut down with the "
    "agent's sysprep (or `ec2launch reset`) before creating the AMI.",
    needs=[LAUNCH_AGENTS],
)
def admin_password(facts: Facts) -> Outcome:
    agent = facts.get(LAUNCH_AGENTS).active
    if agent is None:
        return Outcome(
            Status.FAIL,
            "no EC2 launch agent is installed, so no administrator password is generated",
            (),
        )
    setting = password_setting(agent)
    evidence: list[Evidence] = [line(setting.source, setting.setting or setting.problem)]
    password_data = facts.context.extra.get("password_data")
    if password_data == PasswordData.RETRIEVED:
        evidence.append(line("GetPasswordData", "returned an encrypted password"))
    elif password_data == PasswordData.EMPTY:
        evidence.append(line("GetPasswordData", "returned no password data"))
    if not setting.random:
        why = setting.problem or f"{setting.setting}, not random"
        return Outcome(Status.FAIL, f"{agent.agent}: {why}", tuple(evidence))
    if password_data == PasswordData.EMPTY:
        return Outcome(
            Status.FAIL,
            f"{agent.agent} is configured for a random password, but GetPasswordData "
            "returned none for the launched instance",
            tuple(evidence),
        )
    if password_data == PasswordData.RETRIEVED:
        summary = f"{agent.agent} generated a random password and GetPasswordData returned it"
    else:
        summary = (
            f"{agent.agent} is configured for a random password (GetPasswordData not checked: "
            "not an AMI launch)"
        )
    return Outcome(Status.PASS, summary, tuple(evidence))


@check(
    id="windows.launch-agent.version",
    title="EC2Launch v2 is the launch agent",
    severity=Severity.MEDIUM,
    platform=Platform.WINDOWS,
    policy=policy("CL"),
    rationale="The AMI product checklist asks for EC2Launch v2; EC2Config and EC2Launch v1 are "
    "legacy agents that no longer receive features.",
    remediation="Install EC2Launch v2 (it migrates EC2Config and EC2Launch v1 settings: "
    "https://docs.aws.amazon.com/AWSEC2/latest/WindowsGuide/ec2launch-v2-migrate.html).",
    needs=[LAUNCH_AGENTS],
)
def agent_version(facts: Facts) -> Outcome:
    agents = facts.get(LAUNCH_AGENTS)
    evidence = tuple(line(a.config_path or a.agent, a.describe()) for a in agents.installed)
    v2 = agents.get(EC2LAUNCH_V2)
    if v2 is not None:
        return Outcome(Status.PASS, f"{v2.describe()} is installed", evidence)
    if agents.get(EC2LAUNCH_V1) is not None:
        return Outcome(
            Status.WARN, "EC2Launch v1 is installed, not EC2Launch v2 (legacy agent)", evidence
        )
    if agents.get(EC2CONFIG) is not None:
        return Outcome(Status.FAIL, "only EC2Config is installed, not EC2Launch v2", evidence)
    return Outcome(Status.FAIL, "no EC2 launch agent is installed", evidence)
