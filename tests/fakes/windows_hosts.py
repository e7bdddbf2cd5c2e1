"""Recorded probe outputs of two Windows Server hosts: one Marketplace would accept, one it would not.

Each value is what the probe of that fact prints: one line of `ConvertTo-Json -Compress` as
Windows PowerShell 5.1 writes it (JavaScriptSerializer escapes <, >, & and ' as \\uXXXX).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scanner.facts.base import Facts, ProbeOutput
from tests.factbuilders import build_live_facts, probe_output
from tests.fakes.wsman import RecordedProbe


def powershell_json(value: Any) -> str:
    """`ConvertTo-Json -Compress` of Windows PowerShell 5.1."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char in "<>&'":
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


# What Get-NetTCPConnection prints for a socket bound to every IPv4 address.
ALL_V4 = "0.0.0.0"  # noqa: S104 - a recorded value, nothing binds

SID = "S-1-5-21-3160443391-1523450325-2780114546"

V2_CONFIG = """version: 1.0
config:
- stage: boot
  tasks:
  - task: extendRootPartition
- stage: preReady
  tasks:
  - task: activateWindows
    inputs:
      activation:
        type: amazon
  - task: setDnsSuffix
    inputs:
      suffixes:
      - $REGION.ec2-utilities.amazonaws.com
  - task: setAdminAccount
    inputs:
      password:
        type: random
  - task: setWallpaper
    inputs:
      path: C:\\ProgramData\\Amazon\\EC2Launch\\wallpaper\\Ec2Wallpaper.jpg
- stage: postReady
  tasks:
  - task: startSsm
"""

EC2CONFIG_XML = """<?xml version="1.0" standalone="yes"?>
<Ec2ConfigurationSettings>
  <Plugins>
    <Plugin><Name>Ec2SetPassword</Name><State>Disabled</State></Plugin>
    <Plugin><Name>Ec2SetComputerName</Name><State>Disabled</State></Plugin>
    <Plugin><Name>Ec2HandleUserData</Name><State>Enabled</State></Plugin>
  </Plugins>
</Ec2ConfigurationSettings>
"""

SCRUBBED_UNATTEND = """<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64">
      <UserAccounts>
        <AdministratorPassword>
          <Value>*SENSITIVE*DATA*DELETED*</Value>
          <PlainText>true</PlainText>
        </AdministratorPassword>
      </UserAccounts>
    </component>
  </settings>
</unattend>
"""

LEAKY_UNATTEND = """<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64">
      <UserAccounts>
        <AdministratorPassword>
          <Value>Build-Time-P@ssw0rd!</Value>
          <PlainText>true</PlainText>
        </AdministratorPassword>
      </UserAccounts>
      <AutoLogon>
        <Password>
          <Value>QgB1AGkAbABkAC0AVABpAG0AZQA=</Value>
          <PlainText>false</PlainText>
        </Password>
        <Enabled>true</Enabled>
        <Username>Administrator</Username>
      </AutoLogon>
    </component>
  </settings>
</unattend>
"""

_PROFILES = [
    {"name": name, "enabled": "True", "default_inbound": "NotConfigured"}
    for name in ("Domain", "Private", "Public")
]


def _rule(
    name: str,
    display: str,
    group: str,
    port: str,
    profile: str,
    remote: list[str],
    enabled: str = "True",
    program: str = "System",
    service: str = "Any",
) -> dict[str, Any]:
    return {
        "name": name,
        "display_name": display,
        "group": group,
        "enabled": enabled,
        "action": "Allow",
        "profile": profile,
        "protocol": "TCP",
        "local_port": [port],
        "remote_address": remote,
        "program": program,
        "service": service,
    }


_RDP_RULE = _rule(
    "RemoteDesktop-UserMode-In-TCP",
    "Remote Desktop - User Mode (TCP-In)",
    "Remote Desktop",
    "3389",
    "Any",
    ["Any"],
    program=r"%SystemRoot%\system32\svchost.exe",
    service="termservice",
)
_WINRM_PRIVATE = _rule(
    "WINRM-HTTP-In-TCP",
    "Windows Remote Management (HTTP-In)",
    "Windows Remote Management",
    "5985",
    "Domain, Private",
    ["Any"],
)

COMPLIANT: dict[str, RecordedProbe | str] = {
    "windows.accounts": powershell_json(
        {
            "users": [
                {"name": "Administrator", "sid": f"{SID}-500", "disabled": False},
                {"name": "DefaultAccount", "sid": f"{SID}-503", "disabled": True},
                {"name": "Guest", "sid": f"{SID}-501", "disabled": True},
                {"name": "WDAGUtilityAccount", "sid": f"{SID}-504", "disabled": True},
            ],
            "guests": [{"name": "EC2AMAZ-FAKE\\Guest", "sid": f"{SID}-501", "class": "User"}],
            "remote_desktop_users": [],
        }
    ),
    "windows.launch-agent": powershell_json(
        {
            "ec2launch_v2": {
                "installed": True,
                "version": "2.0.1981.0",
                "config_path": "C:\\ProgramData\\Amazon\\EC2Launch\\config\\agent-config.yml",
                "config": V2_CONFIG,
            },
            "ec2launch_v1": {
                "installed": False,
                "version": None,
                "config_path": "C:\\ProgramData\\Amazon\\EC2-Windows\\Launch\\Config\\LaunchConfig.json",
                "config": None,
            },
            "ec2config": {
                "installed": False,
                "version": None,
                "config_path": "C:\\Program Files\\Amazon\\Ec2ConfigService\\Settings\\config.xml",
                "config": None,
            },
        }
    ),
    "windows.services": powershell_json(
        [
            {"name": "AmazonSSMAgent", "state": "Running", "start_mode": "Auto"},
            {"name": "EC2Launch", "state": "Running", "start_mode": "Auto"},
            {"name": "LanmanServer", "state": "Running", "start_mode": "Auto"},
            {"name": "TermService", "state": "Running", "start_mode": "Manual"},
            {"name": "WinRM", "state": "Running", "start_mode": "Auto"},
        ]
    ),
    "windows.net.listening": powershell_json(
        [
            {"address": "::", "port": 5985, "pid": 4},
            {"address": "::", "port": 3389, "pid": 1092},
            {"address": ALL_V4, "port": 5985, "pid": 4},
            {"address": ALL_V4, "port": 3389, "pid": 1092},
            {"address": ALL_V4, "port": 445, "pid": 4},
            {"address": ALL_V4, "port": 135, "pid": 908},
            {"address": "10.0.1.23", "port": 139, "pid": 4},
        ]
    ),
    "windows.firewall": powershell_json(
        {
            "profiles": _PROFILES,
            "active_profiles": ["Public"],
            "rules": [
                _RDP_RULE,
                _WINRM_PRIVATE,
                _rule(
                    "WINRM-HTTP-In-TCP-PUBLIC",
                    "Windows Remote Management (HTTP-In)",
                    "Windows Remote Management",
                    "5985",
                    "Public",
                    ["10.0.0.0/255.254.0.0", "10.2.0.0-10.2.255.255"],
                ),
                _rule(
                    "FPS-SMB-In-TCP",
                    "File and Printer Sharing (SMB-In)",
                    "File and Printer Sharing",
                    "445",
                    "Any",
                    ["LocalSubnet"],
                    enabled="False",
                ),
            ],
        }
    ),
    "windows.rdp.settings": powershell_json(
        {
            "deny_ts_connections": 0,
            "policy_deny_ts_connections": None,
            "port": 3389,
            "user_authentication": 1,
        }
    ),
    "windows.winrm.listeners": powershell_json(
        [
            {
                "transport": "HTTP",
                "address": "*",
                "port": "5985",
                "enabled": "true",
                "listening_on": ["10.0.1.23", "127.0.0.1", "::1"],
            },
        ]
    ),
    "windows.updates.pending": powershell_json({"result_code": 2, "updates": []}),
    "windows.os.release": powershell_json(
        {
            "caption": "Microsoft Windows Server 2022 Datacenter",
            "version": "10.0.20348",
            "build": "20348",
            "ubr": 2849,
            "product_type": 3,
            "architecture": "64-bit",
            "installation_type": "Server",
        }
    ),
    "windows.secrets.unattend": powershell_json(
        {
            "files": [
                {
                    "path": "C:\\Windows\\Panther\\Unattend.xml",
                    "size": 512,
                    "content": SCRUBBED_UNATTEND,
                }
            ],
            "winlogon": {
                "auto_admin_logon": "0",
                "default_user_name": "Administrator",
                "default_password_present": False,
                "default_password_length": 0,
            },
        }
    ),
    "windows.filesystem.bitlocker": powershell_json({"installed": False, "volumes": []}),
}

NON_COMPLIANT: dict[str, RecordedProbe | str] = {
    "windows.accounts": powershell_json(
        {
            "users": [
                {"name": "Administrator", "sid": f"{SID}-500", "disabled": False},
                {"name": "Guest", "sid": f"{SID}-501", "disabled": False},
                {"name": "support", "sid": f"{SID}-1001", "disabled": False},
            ],
            "guests": [{"name": "EC2AMAZ-FAKE\\Guest", "sid": f"{SID}-501", "class": "User"}],
            "remote_desktop_users": [
                {"name": "EC2AMAZ-FAKE\\support", "sid": f"{SID}-1001", "class": "User"}
            ],
        }
    ),
    "windows.launch-agent": powershell_json(
        {
            "ec2launch_v2": {
                "installed": False,
                "version": None,
                "config_path": "",
                "config": None,
            },
            "ec2launch_v1": {
                "installed": False,
                "version": None,
                "config_path": "",
                "config": None,
            },
            "ec2config": {
                "installed": True,
                "version": "4.9.4500",
                "config_path": "C:\\Program Files\\Amazon\\Ec2ConfigService\\Settings\\config.xml",
                "config": EC2CONFIG_XML,
            },
        }
    ),
    "windows.services": powershell_json(
        [
            {"name": "AmazonSSMAgent", "state": "Stopped", "start_mode": "Disabled"},
            {"name": "Ec2Config", "state": "Running", "start_mode": "Auto"},
            {"name": "LanmanServer", "state": "Running", "start_mode": "Auto"},
            {"name": "TermService", "state": "Stopped", "start_mode": "Manual"},
            {"name": "WinRM", "state": "Running", "start_mode": "Auto"},
        ]
    ),
    "windows.net.listening": powershell_json(
        [
            {"address": ALL_V4, "port": 5985, "pid": 4},
            {"address": ALL_V4, "port": 445, "pid": 4},
            {"address": "127.0.0.1", "port": 3389, "pid": 1092},
        ]
    ),
    "windows.firewall": powershell_json(
        {
            "profiles": _PROFILES,
            "active_profiles": ["Public"],
            "rules": [
                {**_RDP_RULE, "enabled": "False"},
                _WINRM_PRIVATE,
                _rule(
                    "WINRM-HTTP-In-TCP-PUBLIC",
                    "Windows Remote Management (HTTP-In)",
                    "Windows Remote Management",
                    "5985",
                    "Public",
                    ["LocalSubnet"],
                ),
                _rule(
                    "FPS-SMB-In-TCP",
                    "File and Printer Sharing (SMB-In)",
                    "File and Printer Sharing",
                    "445",
                    "Any",
                    ["LocalSubnet"],
                    enabled="False",
                ),
            ],
        }
    ),
    "windows.rdp.settings": powershell_json(
        {
            "deny_ts_connections": 1,
            "policy_deny_ts_connections": None,
            "port": 3389,
            "user_authentication": 1,
        }
    ),
    "windows.winrm.listeners": powershell_json([]),
    "windows.updates.pending": powershell_json(
        {
            "result_code": 2,
            "updates": [
                {
                    "title": "2024-05 Cumulative Update for Microsoft server operating system version 21H2 for x64-based Systems (KB5037422)",
                    "kb": ["5037422"],
                    "severity": "Critical",
                    "categories": ["Security Updates"],
                },
                {
                    "title": "Security Intelligence Update for Microsoft Defender Antivirus - KB2267602 (Version 1.411.2)",
                    "kb": ["2267602"],
                    "severity": "",
                    "categories": ["Definition Updates"],
                },
            ],
        }
    ),
    "windows.os.release": powershell_json(
        {
            "caption": "Microsoft Windows Server 2012 R2 Standard",
            "version": "6.3.9600",
            "build": "9600",
            "ubr": 20778,
            "product_type": 3,
            "architecture": "64-bit",
            "installation_type": "Server",
        }
    ),
    "windows.secrets.unattend": powershell_json(
        {
            "files": [
                {
                    "path": "C:\\Windows\\Panther\\Unattend.xml",
                    "size": 1024,
                    "content": LEAKY_UNATTEND,
                }
            ],
            "winlogon": {
                "auto_admin_logon": "1",
                "default_user_name": "Administrator",
                "default_password_present": True,
                "default_password_length": 20,
            },
        }
    ),
    "windows.filesystem.bitlocker": powershell_json(
        {
            "installed": True,
            "volumes": [
                {
                    "drive": "C:",
                    "device": "\\\\?\\Volume{4c1b0b2e}\\",
                    "protection_status": 1,
                    "conversion_status": 1,
                }
            ],
        }
    ),
}

# Every Windows check's expected status on each host (reachability aside).
COMPLIANT_STATUSES = {
    "windows.remote.vetting-access": "pass",
    "windows.rdp.enabled": "pass",
    "windows.winrm.listener": "pass",
    "windows.accounts.guest": "pass",
    "windows.accounts.rdp-users": "pass",
    "windows.launch-agent.password": "pass",
    "windows.launch-agent.version": "pass",
    "windows.updates.pending": "pass",
    "windows.os.supported": "pass",
    "windows.secrets.unattend": "pass",
    "windows.filesystem.bitlocker": "pass",
}
NON_COMPLIANT_STATUSES = dict.fromkeys(COMPLIANT_STATUSES, "fail")


def recorded(host: Mapping[str, RecordedProbe | str], fact: str) -> Any:
    """A recorded probe output, parsed (for tests that change one field of it)."""
    value = host[fact]
    return json.loads(value if isinstance(value, str) else value.stdout)


def windows_facts(
    host: Mapping[str, RecordedProbe | str] = COMPLIANT,
    changes: Mapping[str, Any] | None = None,
    **context: Any,
) -> Facts:
    """Facts of a live Windows host: the recording, with some probes' documents replaced."""
    outputs: dict[str, str | ProbeOutput] = {}
    for name, value in host.items():
        if isinstance(value, RecordedProbe):
            rc = {"ok": 0, "timeout": 124}.get(value.status, 1)
            outputs[name] = probe_output(value.stdout, rc, value.error, value.status == "timeout")
        else:
            outputs[name] = value
    for name, document in (changes or {}).items():
        outputs[name] = document if isinstance(document, ProbeOutput) else powershell_json(document)
    defaults = {"target_kind": "winrm", "login_user": "Administrator", "session": {}}
    return build_live_facts(outputs=outputs, **{**defaults, **context})
