"""The EC2 launch agent (EC2Launch v2, EC2Launch v1 or EC2Config) and how it sets the admin password.

The agent's configuration decides whether a buyer's instance gets a fresh random Administrator
password (retrievable with GetPasswordData) or one the seller knows. Each agent keeps it
differently: v2 a `setAdminAccount` task in agent-config.yml, v1 `adminPasswordType` in
LaunchConfig.json, EC2Config the `Ec2SetPassword` plug-in in config.xml.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from scanner.facts.base import Gathered
from scanner.facts.windows.common import (
    as_dict,
    as_text,
    probe_json,
    require_fields,
    windows_fact,
)
from scanner.facts.windows.volume import expand, find_file, read_text, software_key

_CONFIG_LIMIT = 262144

_PROBE = rf"""
function Read-AmiscanText([string]$Path) {{
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) {{ return $null }}
    $reader = New-Object System.IO.StreamReader $Path
    try {{
        $buffer = New-Object char[] {_CONFIG_LIMIT}
        $count = $reader.ReadBlock($buffer, 0, $buffer.Length)
        return (New-Object string ($buffer, 0, $count))
    }} finally {{ $reader.Close() }}
}}
function Get-AmiscanVersion([string]$Path) {{
    if (Test-Path -LiteralPath $Path -PathType Leaf) {{ [string](Get-Item -LiteralPath $Path).VersionInfo.ProductVersion }} else {{ $null }}
}}
$v2exe = Join-Path $env:ProgramFiles 'Amazon\EC2Launch\EC2Launch.exe'
$v2config = Join-Path $env:ProgramData 'Amazon\EC2Launch\config\agent-config.yml'
$v1module = Join-Path $env:ProgramData 'Amazon\EC2-Windows\Launch\Module\Ec2Launch.psd1'
$v1config = Join-Path $env:ProgramData 'Amazon\EC2-Windows\Launch\Config\LaunchConfig.json'
$ec2exe = Join-Path $env:ProgramFiles 'Amazon\Ec2ConfigService\Ec2Config.exe'
$ec2config = Join-Path $env:ProgramFiles 'Amazon\Ec2ConfigService\Settings\config.xml'
# EC2Launch v1 is a PowerShell module; its version is in the manifest, read as text so that
# nothing from the image is executed.
$v1version = $null
$manifest = Read-AmiscanText $v1module
if ($manifest -ne $null -and $manifest -match "ModuleVersion\s*=\s*['""]([^'""]+)") {{ $v1version = $Matches[1] }}
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{{
    ec2launch_v2 = [ordered]@{{ installed = (Test-Path -LiteralPath $v2exe -PathType Leaf); version = (Get-AmiscanVersion $v2exe); config_path = $v2config; config = (Read-AmiscanText $v2config) }}
    ec2launch_v1 = [ordered]@{{ installed = (Test-Path -LiteralPath $v1module -PathType Leaf); version = $v1version; config_path = $v1config; config = (Read-AmiscanText $v1config) }}
    ec2config = [ordered]@{{ installed = (Test-Path -LiteralPath $ec2exe -PathType Leaf); version = (Get-AmiscanVersion $ec2exe); config_path = $ec2config; config = (Read-AmiscanText $ec2config) }}
}})
"""


class PasswordData(StrEnum):
    """What GetPasswordData gave for a launched instance.

    The EC2 launcher records it in `ScanContext.extra["password_data"]`; a scan of a host that
    amiscan did not launch has no such entry.
    """

    RETRIEVED = "retrieved"
    EMPTY = "empty"


EC2LAUNCH_V2 = "EC2Launch v2"
EC2LAUNCH_V1 = "EC2Launch v1"
EC2CONFIG = "EC2Config"


@dataclass(frozen=True)
class AgentInstall:
    """One launch agent found on the guest, with its configuration file's text."""

    agent: str
    version: str
    config_path: str
    config: str | None

    def describe(self) -> str:
        return f"{self.agent} {self.version or '(version unknown)'}"


@dataclass(frozen=True)
class PasswordSetting:
    """How an agent's configuration says the administrator password is set."""

    agent: str
    source: str
    setting: str
    random: bool
    problem: str = ""


@dataclass(frozen=True)
class LaunchAgents:
    """The launch agents installed on the guest."""

    installed: tuple[AgentInstall, ...]

    def get(self, agent: str) -> AgentInstall | None:
        return next((a for a in self.installed if a.agent == agent), None)

    @property
    def active(self) -> AgentInstall | None:
        """The agent that runs at launch: v2 replaces v1, which replaced EC2Config."""
        for name in (EC2LAUNCH_V2, EC2LAUNCH_V1, EC2CONFIG):
            found = self.get(name)
            if found is not None:
                return found
        return None


def parse_launch_agents(document: Any) -> LaunchAgents:
    """The launch-agent probe's JSON as LaunchAgents (agents not installed are left out)."""
    document = require_fields(document, "the launch-agent probe")
    found = []
    for key, agent in (
        ("ec2launch_v2", EC2LAUNCH_V2),
        ("ec2launch_v1", EC2LAUNCH_V1),
        ("ec2config", EC2CONFIG),
    ):
        raw = document.get(key)
        if not isinstance(raw, dict) or not raw.get("installed"):
            continue
        config = raw.get("config")
        found.append(
            AgentInstall(
                agent=agent,
                version=as_text(raw.get("version")),
                config_path=as_text(raw.get("config_path")),
                config=config if isinstance(config, str) else None,
            )
        )
    return LaunchAgents(tuple(found))


def password_setting(install: AgentInstall) -> PasswordSetting:
    """What the agent's configuration says about the administrator password."""
    if install.config is None:
        return PasswordSetting(
            install.agent, install.config_path, "", False, "the configuration file is missing"
        )
    reader = {EC2LAUNCH_V2: _v2_setting, EC2LAUNCH_V1: _v1_setting, EC2CONFIG: _ec2config_setting}
    return reader[install.agent](install)


def _v2_setting(install: AgentInstall) -> PasswordSetting:
    try:
        document = yaml.safe_load(install.config or "")
    except yaml.YAMLError as exc:
        return PasswordSetting(
            install.agent, install.config_path, "", False, f"agent-config.yml is not YAML: {exc}"
        )
    stages = document.get("config") if isinstance(document, dict) else None
    for stage in stages if isinstance(stages, list) else []:
        tasks = stage.get("tasks") if isinstance(stage, dict) else None
        for task in tasks if isinstance(tasks, list) else []:
            if isinstance(task, dict) and task.get("task") == "setAdminAccount":
                kind = as_text(as_dict(as_dict(task.get("inputs")).get("password")).get("type"))
                where = f"{install.config_path} (stage {as_text(stage.get('stage'))})"
                return PasswordSetting(
                    install.agent,
                    where,
                    f"setAdminAccount password type: {kind or '(unset)'}",
                    kind.lower() == "random",
                )
    return PasswordSetting(
        install.agent,
        install.config_path,
        "",
        False,
        "agent-config.yml has no setAdminAccount task, so no password is generated",
    )


def _v1_setting(install: AgentInstall) -> PasswordSetting:
    try:
        document = json.loads(install.config or "")
    except json.JSONDecodeError as exc:
        return PasswordSetting(
            install.agent, install.config_path, "", False, f"LaunchConfig.json is not JSON: {exc}"
        )
    kind = as_text(document.get("adminPasswordType")) if isinstance(document, dict) else ""
    return PasswordSetting(
        install.agent,
        install.config_path,
        f"adminPasswordType: {kind or '(unset)'}",
        kind.lower() == "random",
    )


def _ec2config_setting(install: AgentInstall) -> PasswordSetting:
    try:
        # The guest's own config file, parsed without entity expansion (ElementTree does none).
        root = ET.fromstring(install.config or "")  # noqa: S314
    except ET.ParseError as exc:
        return PasswordSetting(
            install.agent, install.config_path, "", False, f"config.xml is not XML: {exc}"
        )
    for plugin in root.iter():
        if _local(plugin.tag) != "Plugin":
            continue
        fields = {_local(child.tag): (child.text or "").strip() for child in plugin}
        if fields.get("Name") == "Ec2SetPassword":
            state = fields.get("State", "")
            return PasswordSetting(
                install.agent,
                install.config_path,
                f"Ec2SetPassword: {state or '(no state)'}",
                state.lower() == "enabled",
            )
    return PasswordSetting(
        install.agent, install.config_path, "", False, "config.xml has no Ec2SetPassword plug-in"
    )


def _local(tag: str) -> str:
    return re.sub(r"^\{[^}]*\}", "", tag)


@dataclass(frozen=True)
class _AgentFiles:
    """Where an agent lives on the volume (the paths the live probe tests, in the same order)."""

    agent: str
    marker: str
    config: str
    # The DisplayName its installer registers under Uninstall, for the version.
    display_name: str


_AGENT_FILES = (
    _AgentFiles(
        EC2LAUNCH_V2,
        r"$env:ProgramFiles\Amazon\EC2Launch\EC2Launch.exe",
        r"$env:ProgramData\Amazon\EC2Launch\config\agent-config.yml",
        "amazon ec2launch",
    ),
    _AgentFiles(
        EC2LAUNCH_V1,
        r"$env:ProgramData\Amazon\EC2-Windows\Launch\Module\Ec2Launch.psd1",
        r"$env:ProgramData\Amazon\EC2-Windows\Launch\Config\LaunchConfig.json",
        "",
    ),
    _AgentFiles(
        EC2CONFIG,
        r"$env:ProgramFiles\Amazon\Ec2ConfigService\Ec2Config.exe",
        r"$env:ProgramFiles\Amazon\Ec2ConfigService\Settings\config.xml",
        "ec2configservice",
    ),
)
_UNINSTALL_KEYS = (
    r"Microsoft\Windows\CurrentVersion\Uninstall",
    r"WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
)
# An Uninstall key holds one subkey per installed product: a few hundred on a busy server.
_MAX_PRODUCTS = 4096
_MODULE_VERSION = re.compile(r"ModuleVersion\s*=\s*['\"]([^'\"]+)")


def _installed_versions(g: Gathered) -> dict[str, str]:
    """DisplayName (lower case) → DisplayVersion of the products Windows lists as installed."""
    versions: dict[str, str] = {}
    for path in _UNINSTALL_KEYS:
        key = software_key(g, path)
        if key is None:
            continue
        for index, product in enumerate(key.subkeys()):
            if index >= _MAX_PRODUCTS:
                break
            name = (product.text_value("DisplayName") or "").strip().lower()
            if name and name not in versions:
                versions[name] = product.text_value("DisplayVersion") or ""
    return versions


def agents_at_rest(g: Gathered) -> LaunchAgents:
    """The offline form: the same files the probe tests, versions from the Uninstall keys."""
    found = []
    versions: dict[str, str] | None = None
    for agent in _AGENT_FILES:
        if agent.display_name:
            if find_file(g.files, agent.marker) is None:
                continue
            versions = _installed_versions(g) if versions is None else versions
            version = versions.get(agent.display_name, "")
        else:
            # EC2Launch v1 is a PowerShell module: its manifest marks it and names the version.
            manifest = read_text(g, agent.marker, _CONFIG_LIMIT)
            if manifest is None:
                continue
            match = _MODULE_VERSION.search(manifest.text)
            version = match.group(1) if match else ""
        config = read_text(g, agent.config, _CONFIG_LIMIT)
        found.append(
            AgentInstall(
                agent.agent, version, expand(agent.config), config.text if config else None
            )
        )
    return LaunchAgents(tuple(found))


LAUNCH_AGENTS = windows_fact(
    "windows.launch-agent",
    "the EC2 launch agent and its configuration",
    _PROBE,
    lambda g: parse_launch_agents(probe_json(g, "reading the launch agent configuration")),
    offline=agents_at_rest,
)
