"""A Windows Server system volume described declaratively, and rendered without Windows.

`WindowsSystem` says what matters to Marketplace vetting about one Windows Server image (release,
local accounts and groups, Remote Desktop, services, WinRM, Windows Firewall, the EC2 launch
agent, leftover answer files, BitLocker). One description is rendered four ways, so an offline
reader and the live probes can be held to the same truth:

- `render_hives`: the SYSTEM, SOFTWARE and SAM registry hives, laid out as Windows lays them out
  (hivex writes the hive storage; the SAM's binary values are built here from their documented
  layout, independently of amiscan's readers);
- `render_tree`: the volume's files, cased as Windows cases them;
- `render_disk`: a GPT disk image holding that tree on an NTFS partition;
- `probe_outputs`: what each live PowerShell probe would print on a booted instance of the image.

`compliant()` passes every Windows check; each `KNOWN_BAD` factory changes one thing and names
the checks that must then fail.
"""

from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.diskimages import MiB, tool
from tests.fakes.windows_hosts import (
    EC2CONFIG_XML,
    LEAKY_UNATTEND,
    SCRUBBED_UNATTEND,
    SID,
    V2_CONFIG,
    powershell_json,
)
from tests.hives import Binary, Dword, ExpandSz, Keys, Raw, RegValue, Sz, write_hive
from tests.ntfsimage import make_ntfs

# --- the description -------------------------------------------------------------------------------

# Service Start values (HKLM\SYSTEM\CurrentControlSet\Services\<name>\Start).
START_BOOT, START_SYSTEM, START_AUTO, START_MANUAL, START_DISABLED = 0, 1, 2, 3, 4
# Service Type: a process of its own, or a share of svchost.exe.
OWN_PROCESS, SHARE_PROCESS = 0x10, 0x20

TERM_SERVICE = "TermService"
WINRM_SERVICE = "WinRM"
SSM_SERVICE = "AmazonSSMAgent"
SMB_SERVICE = "LanmanServer"
EC2LAUNCH_SERVICE = "EC2Launch"
EC2CONFIG_SERVICE = "Ec2Config"

# What the running instance's interfaces are (the WinRM probe lists them).
PRIVATE_IP = "10.0.1.23"


@dataclass(frozen=True)
class OsRelease:
    """HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion, and the edition's product type."""

    product_name: str
    current_build: str
    ubr: int
    edition_id: str = "ServerDatacenter"
    installation_type: str = "Server"
    # 21H2 and the like; Windows Server 2012 R2 has no DisplayVersion.
    display_version: str | None = None
    # CurrentMajor/MinorVersionNumber, written from Windows 10 / Server 2016 on; before that the
    # version is only CurrentVersion ("6.3"), which 2016+ still carry for old readers.
    major_minor: tuple[int, int] | None = (10, 0)
    current_version: str = "6.3"
    # ProductOptions\ProductType: WinNT (workstation), LanmanNt (domain controller), ServerNT.
    product_type: str = "ServerNT"
    architecture: str = "AMD64"


@dataclass(frozen=True)
class Account:
    """A local user in the SAM's account domain."""

    name: str
    rid: int
    enabled: bool
    full_name: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Service:
    """A service key under ControlSet00N\\Services."""

    name: str
    start: int
    display_name: str
    image_path: str
    type: int = OWN_PROCESS
    object_name: str = "LocalSystem"


@dataclass(frozen=True)
class RdpSettings:
    """Terminal Server's switch, the RDP-Tcp listener, and the Group Policy override."""

    deny_ts_connections: int = 0
    port: int = 3389
    user_authentication: int = 1
    # HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services fDenyTSConnections.
    policy_deny_ts_connections: int | None = None

    @property
    def effective_deny(self) -> int:
        if self.policy_deny_ts_connections is not None:
            return self.policy_deny_ts_connections
        return self.deny_ts_connections


@dataclass(frozen=True)
class WinRMListener:
    """A WinRM listener: SOFTWARE\\...\\WSMAN\\Listener\\<address>+<transport>."""

    address: str = "*"
    transport: str = "HTTP"
    port: int = 5985

    @property
    def key(self) -> str:
        return f"{self.address}+{self.transport}"


@dataclass(frozen=True)
class FirewallProfile:
    """One FirewallPolicy profile key (DomainProfile, StandardProfile or PublicProfile)."""

    key: str
    enabled: bool = True
    # DefaultInboundAction: 1 block, 0 allow, None not configured (Windows then blocks).
    default_inbound_action: int | None = 1

    @property
    def name(self) -> str:
        """The name Get-NetFirewallProfile gives it: the standard profile is "Private"."""
        return {"DomainProfile": "Domain", "StandardProfile": "Private"}.get(self.key, "Public")


@dataclass(frozen=True)
class FirewallRule:
    """A FirewallRules value: "v2.30|Action=…|…|" named by the rule's id."""

    id: str
    local_ports: tuple[str, ...]
    embed_ctxt: str
    name: str
    desc: str
    active: bool = True
    action: str = "Allow"
    direction: str = "In"
    protocol: int | None = 6
    # No Profile= field: every profile.
    profiles: tuple[str, ...] = ()
    # No RA4= field: any IPv4 address.
    remote_v4: tuple[str, ...] = ()
    app: str | None = None
    svc: str | None = None

    def registry_text(self) -> str:
        """The value as Windows stores it (repeated keys for multi-valued fields)."""
        fields = [
            ("Action", self.action),
            ("Active", "TRUE" if self.active else "FALSE"),
            ("Dir", self.direction),
        ]
        if self.protocol is not None:
            fields.append(("Protocol", str(self.protocol)))
        fields += [("Profile", p) for p in self.profiles]
        fields += [("LPort", p) for p in self.local_ports]
        fields += [("RA4", a) for a in self.remote_v4]
        if self.app is not None:
            fields.append(("App", self.app))
        if self.svc is not None:
            fields.append(("Svc", self.svc))
        fields += [("Name", self.name), ("Desc", self.desc), ("EmbedCtxt", self.embed_ctxt)]
        return "v2.30|" + "".join(f"{k}={v}|" for k, v in fields)


@dataclass(frozen=True)
class Ec2LaunchV2:
    version: str
    config: str


@dataclass(frozen=True)
class Ec2LaunchV1:
    # The module manifest's ModuleVersion.
    version: str
    config: str


@dataclass(frozen=True)
class Ec2Config:
    version: str
    config: str


@dataclass(frozen=True)
class SsmAgent:
    version: str


@dataclass(frozen=True)
class Winlogon:
    """HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\\Winlogon."""

    auto_admin_logon: str = "0"
    default_user_name: str = "Administrator"
    default_password: str | None = None


@dataclass(frozen=True)
class AnswerFile:
    """An unattend answer file on the volume (`path` relative to its root, as cased on disk)."""

    path: str
    content: str


@dataclass(frozen=True)
class WindowsSystem:
    """One Windows Server image, as far as vetting is concerned."""

    release: OsRelease
    accounts: tuple[Account, ...]
    # Members (local account RIDs) of the built-in aliases.
    administrators: tuple[int, ...]
    guests: tuple[int, ...]
    remote_desktop_users: tuple[int, ...]
    rdp: RdpSettings
    services: tuple[Service, ...]
    winrm_listeners: tuple[WinRMListener, ...]
    firewall_profiles: tuple[FirewallProfile, ...]
    firewall_rules: tuple[FirewallRule, ...]
    ec2launch_v2: Ec2LaunchV2 | None
    ssm_agent: SsmAgent | None
    winlogon: Winlogon
    answer_files: tuple[AnswerFile, ...]
    ec2launch_v1: Ec2LaunchV1 | None = None
    ec2config: Ec2Config | None = None
    bitlocker: bool = False
    # SYSTEM\Select\Current: which ControlSet00N is CurrentControlSet.
    control_set: int = 1
    computer_name: str = "EC2AMAZ-FAKE"
    machine_sid: str = SID

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name.lower() == name.lower()), None)

    def account(self, rid: int) -> Account:
        return next(a for a in self.accounts if a.rid == rid)

    def user_sid(self, rid: int) -> str:
        return f"{self.machine_sid}-{rid}"


# --- the compliant image and its known-bad variants ---------------------------------------------

WINDOWS_SERVER_2022 = OsRelease(
    product_name="Windows Server 2022 Datacenter",
    current_build="20348",
    ubr=2849,
    display_version="21H2",
)
WINDOWS_SERVER_2012_R2 = OsRelease(
    product_name="Windows Server 2012 R2 Datacenter",
    current_build="9600",
    ubr=20778,
    major_minor=None,
)

BUILTIN_ACCOUNTS = (
    Account(
        "Administrator", 500, True, comment="Built-in account for administering the computer/domain"
    ),
    Account(
        "Guest", 501, False, comment="Built-in account for guest access to the computer/domain"
    ),
    Account("DefaultAccount", 503, False, comment="A user account managed by the system."),
    Account(
        "WDAGUtilityAccount",
        504,
        False,
        comment="A user account managed and used by the system for Windows Defender Application Guard scenarios.",
    ),
)

_SVCHOST = r"%SystemRoot%\System32\svchost.exe"
COMPLIANT_SERVICES = (
    Service(
        TERM_SERVICE,
        START_MANUAL,
        "Remote Desktop Services",
        _SVCHOST + " -k NetworkService",
        SHARE_PROCESS,
        r"NT Authority\NetworkService",
    ),
    Service(
        WINRM_SERVICE,
        START_AUTO,
        "Windows Remote Management (WS-Management)",
        _SVCHOST + " -k NetworkService -p",
        SHARE_PROCESS,
        r"NT AUTHORITY\NetworkService",
    ),
    Service(
        SSM_SERVICE,
        START_AUTO,
        "Amazon SSM Agent",
        '"C:\\Program Files\\Amazon\\SSM\\amazon-ssm-agent.exe"',
    ),
    Service(SMB_SERVICE, START_AUTO, "Server", _SVCHOST + " -k netsvcs -p", SHARE_PROCESS),
    Service(
        EC2LAUNCH_SERVICE,
        START_AUTO,
        "Amazon EC2Launch",
        '"C:\\Program Files\\Amazon\\EC2Launch\\service\\EC2LaunchService.exe"',
    ),
)
EC2CONFIG_SERVICE_ENTRY = Service(
    EC2CONFIG_SERVICE,
    START_AUTO,
    "Ec2Config",
    '"C:\\Program Files\\Amazon\\Ec2ConfigService\\Ec2Config.exe"',
)

FIREWALL_PROFILES = tuple(
    FirewallProfile(key) for key in ("DomainProfile", "StandardProfile", "PublicProfile")
)

# The firewall groups' resource strings (Get-NetFirewallRule's Group; not localised).
REMOTE_DESKTOP_GROUP = "@FirewallAPI.dll,-28752"
WINRM_GROUP = "@FirewallAPI.dll,-30267"
FILE_AND_PRINTER_SHARING_GROUP = "@FirewallAPI.dll,-28502"

RDP_RULE = FirewallRule(
    "RemoteDesktop-UserMode-In-TCP",
    ("3389",),
    REMOTE_DESKTOP_GROUP,
    "@FirewallAPI.dll,-28775",
    "@FirewallAPI.dll,-28756",
    app=r"%SystemRoot%\system32\svchost.exe",
    svc="termservice",
)
WINRM_RULE = FirewallRule(
    "WINRM-HTTP-In-TCP",
    ("5985",),
    WINRM_GROUP,
    "@FirewallAPI.dll,-30253",
    "@FirewallAPI.dll,-30256",
    profiles=("Domain", "Private"),
    app="System",
)
# Windows' own default: on the Public profile (the one an EC2 instance's network is in) WinRM
# is admitted from the local subnet only, which Marketplace's scanner (10.0.0.0/16, 10.2.0.0/16)
# is not in. See `winrm_local_subnet`.
WINRM_PUBLIC_DEFAULT_RULE = FirewallRule(
    "WINRM-HTTP-In-TCP-PUBLIC",
    ("5985",),
    WINRM_GROUP,
    "@FirewallAPI.dll,-30253",
    "@FirewallAPI.dll,-30256",
    profiles=("Public",),
    remote_v4=("LocalSubnet",),
    app="System",
)
# The rule as a seller widens it for vetting: the vetting ranges, in the mask and range forms
# Windows stores.
WINRM_PUBLIC_RULE = dataclasses.replace(
    WINRM_PUBLIC_DEFAULT_RULE, remote_v4=("10.0.0.0/255.254.0.0", "10.2.0.0-10.2.255.255")
)
SMB_RULE = FirewallRule(
    "FPS-SMB-In-TCP",
    ("445",),
    FILE_AND_PRINTER_SHARING_GROUP,
    "@FirewallAPI.dll,-28519",
    "@FirewallAPI.dll,-28522",
    active=False,
    app="System",
)

EC2LAUNCH_V2_VERSION = "2.0.2107.0"
EC2LAUNCH_V1_VERSION = "1.3.2003961"
EC2CONFIG_VERSION = "4.9.4500"
SSM_AGENT_VERSION = "3.3.1142.0"
PANTHER_UNATTEND = "Windows/Panther/Unattend.xml"


def compliant() -> WindowsSystem:
    """Windows Server 2022 Datacenter as Marketplace accepts it."""
    return WindowsSystem(
        release=WINDOWS_SERVER_2022,
        accounts=BUILTIN_ACCOUNTS,
        administrators=(500,),
        guests=(501,),
        remote_desktop_users=(),
        rdp=RdpSettings(),
        services=COMPLIANT_SERVICES,
        winrm_listeners=(WinRMListener(),),
        firewall_profiles=FIREWALL_PROFILES,
        firewall_rules=(RDP_RULE, WINRM_RULE, WINRM_PUBLIC_RULE, SMB_RULE),
        ec2launch_v2=Ec2LaunchV2(EC2LAUNCH_V2_VERSION, V2_CONFIG),
        ssm_agent=SsmAgent(SSM_AGENT_VERSION),
        winlogon=Winlogon(),
        answer_files=(AnswerFile(PANTHER_UNATTEND, SCRUBBED_UNATTEND),),
    )


def with_service(system: WindowsSystem, name: str, start: int) -> WindowsSystem:
    """`system` with one service's Start changed."""
    if system.service(name) is None:
        raise KeyError(name)
    services = tuple(
        dataclasses.replace(s, start=start) if s.name.lower() == name.lower() else s
        for s in system.services
    )
    return dataclasses.replace(system, services=services)


def _edited(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced; an error when the model file no longer holds `old`, so a
    variant never silently equals the compliant image."""
    if old not in text:
        raise ValueError(f"{old!r} is not in the model text")
    return text.replace(old, new)


def rdp_denied() -> WindowsSystem:
    return dataclasses.replace(compliant(), rdp=RdpSettings(deny_ts_connections=1))


def guest_enabled() -> WindowsSystem:
    system = compliant()
    accounts = tuple(
        dataclasses.replace(a, enabled=True) if a.rid == 501 else a for a in system.accounts
    )
    return dataclasses.replace(system, accounts=accounts)


def rdp_user() -> WindowsSystem:
    system = compliant()
    builder = Account("builder", 1001, True, full_name="Image builder")
    return dataclasses.replace(
        system, accounts=(*system.accounts, builder), remote_desktop_users=(1001,)
    )


def static_password() -> WindowsSystem:
    config = _edited(
        V2_CONFIG,
        "        type: random\n",
        "        type: static\n        data: Build-Time-P@ssw0rd!\n",
    )
    return dataclasses.replace(compliant(), ec2launch_v2=Ec2LaunchV2(EC2LAUNCH_V2_VERSION, config))


def ec2config_only() -> WindowsSystem:
    system = compliant()
    config = _edited(
        EC2CONFIG_XML,
        "<Name>Ec2SetPassword</Name><State>Disabled</State>",
        "<Name>Ec2SetPassword</Name><State>Enabled</State>",
    )
    services = tuple(s for s in system.services if s.name != EC2LAUNCH_SERVICE)
    return dataclasses.replace(
        system,
        ec2launch_v2=None,
        ec2config=Ec2Config(EC2CONFIG_VERSION, config),
        services=(*services, EC2CONFIG_SERVICE_ENTRY),
    )


def unattend_password() -> WindowsSystem:
    return dataclasses.replace(
        compliant(), answer_files=(AnswerFile(PANTHER_UNATTEND, LEAKY_UNATTEND),)
    )


def default_password() -> WindowsSystem:
    return dataclasses.replace(compliant(), winlogon=Winlogon("1", "Administrator", "Summer2026!"))


def end_of_life() -> WindowsSystem:
    return dataclasses.replace(compliant(), release=WINDOWS_SERVER_2012_R2)


def winrm_local_subnet() -> WindowsSystem:
    """Windows' default WinRM rule on the Public profile: the local subnet only."""
    system = compliant()
    rules = tuple(
        WINRM_PUBLIC_DEFAULT_RULE if r.id == WINRM_PUBLIC_RULE.id else r
        for r in system.firewall_rules
    )
    return dataclasses.replace(system, firewall_rules=rules)


def bitlocker_volume() -> WindowsSystem:
    return dataclasses.replace(compliant(), bitlocker=True)


KNOWN_BAD: dict[str, tuple[Callable[[], WindowsSystem], frozenset[str]]] = {
    "rdp_denied": (rdp_denied, frozenset({"windows.rdp.enabled"})),
    "guest_enabled": (guest_enabled, frozenset({"windows.accounts.guest"})),
    "rdp_user": (rdp_user, frozenset({"windows.accounts.rdp-users"})),
    "static_password": (static_password, frozenset({"windows.launch-agent.password"})),
    "ec2config_only": (ec2config_only, frozenset({"windows.launch-agent.version"})),
    "unattend_password": (unattend_password, frozenset({"windows.secrets.unattend"})),
    "default_password": (default_password, frozenset({"windows.secrets.unattend"})),
    "end_of_life": (end_of_life, frozenset({"windows.os.supported"})),
    "winrm_local_subnet": (winrm_local_subnet, frozenset({"windows.winrm.listener"})),
    "bitlocker_volume": (bitlocker_volume, frozenset({"windows.filesystem.bitlocker"})),
}


# --- SAM binary values ---------------------------------------------------------------------------

# User account control flags (F value, offset 0x38).
ACB_DISABLED = 0x0001
ACB_NORMAL = 0x0010
# Built-in aliases of the Builtin domain (S-1-5-32-<rid>): RID, name, comment.
ALIASES = (
    (
        544,
        "Administrators",
        "Administrators have complete and unrestricted access to the computer/domain",
    ),
    (
        546,
        "Guests",
        "Guests have the same access as members of the Users group by default, except for the "
        "Guest account which is further restricted",
    ),
    (555, "Remote Desktop Users", "Members in this group are granted the right to logon remotely"),
)
_USER_V_ENTRIES = 17
_USER_V_HEADER = _USER_V_ENTRIES * 12
_ALIAS_C_HEADER = 0x34
_NEVER = 0x7FFFFFFFFFFFFFFF
_DOMAIN_USERS_RID = 513


def binary_sid(sid: str) -> bytes:
    """A SID's binary form: revision, sub-authority count, 48-bit big-endian identifier
    authority, little-endian 32-bit sub-authorities."""
    parts = sid.split("-")
    if parts[:2] != ["S", "1"] or len(parts) < 3:
        raise ValueError(f"not a SID: {sid}")
    authority = int(parts[2])
    subs = [int(p) for p in parts[3:]]
    return (
        struct.pack("<BB", 1, len(subs))
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


def _aligned(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def domain_v(sid: str) -> bytes:
    """A domain key's V value: a header (not read by anyone here), then the domain SID."""
    return b"\0" * 0x30 + binary_sid(sid)


def user_f(account: Account) -> bytes:
    """A user's F value (0x50 bytes): RID at 0x30, account control flags at 0x38."""
    data = bytearray(0x50)
    struct.pack_into("<H", data, 0x00, 3)  # revision
    struct.pack_into("<Q", data, 0x20, _NEVER)  # the account never expires
    struct.pack_into("<II", data, 0x30, account.rid, _DOMAIN_USERS_RID)
    flags = ACB_NORMAL | (0 if account.enabled else ACB_DISABLED)
    struct.pack_into("<H", data, 0x38, flags)
    return bytes(data)


def user_v(account: Account) -> bytes:
    """A user's V value: 17 (offset, length, unknown) entries, then their data, each 4-byte
    aligned, offsets counted from the end of the header. Entry 1 is the user name, 2 the full
    name, 3 the comment; the rest (security descriptor, hashes, …) are left empty."""
    fields = {
        1: account.name.encode("utf-16-le"),
        2: account.full_name.encode("utf-16-le"),
        3: account.comment.encode("utf-16-le"),
    }
    header = bytearray(_USER_V_HEADER)
    body = b""
    for index in range(_USER_V_ENTRIES):
        value = fields.get(index, b"")
        struct.pack_into("<III", header, index * 12, len(body), len(value), 0)
        body += _aligned(value)
    return bytes(header) + body


def alias_c(rid: int, name: str, comment: str, members: tuple[str, ...]) -> bytes:
    """An alias's C value: a 0x34-byte header (RID; name, comment and member offsets and
    lengths; member count), then UTF-16LE name and comment and the members' binary SIDs back to
    back, offsets counted from the end of the header."""
    name_data = _aligned(name.encode("utf-16-le"))
    comment_data = _aligned(comment.encode("utf-16-le"))
    member_data = b"".join(binary_sid(sid) for sid in members)
    header = bytearray(_ALIAS_C_HEADER)
    struct.pack_into("<I", header, 0x00, rid)
    struct.pack_into("<II", header, 0x10, 0, len(name.encode("utf-16-le")))
    struct.pack_into("<II", header, 0x1C, len(name_data), len(comment.encode("utf-16-le")))
    struct.pack_into("<II", header, 0x28, len(name_data) + len(comment_data), len(member_data))
    struct.pack_into("<I", header, 0x30, len(members))
    return bytes(header) + name_data + comment_data + member_data


# --- hives -----------------------------------------------------------------------------------------

_TERMINAL_SERVER = r"Control\Terminal Server"
_FIREWALL_POLICY = r"Services\SharedAccess\Parameters\FirewallPolicy"
_PRODUCT_TYPES = {"winnt": 1, "lanmannt": 2, "servernt": 3}


def _contradiction(system: WindowsSystem) -> WindowsSystem:
    """`system` with every judged control-set value turned around: the decoy control set that a
    reader ignoring Select\\Current would read instead."""
    flip_start = {START_AUTO: START_DISABLED, START_MANUAL: START_DISABLED}
    return dataclasses.replace(
        system,
        release=dataclasses.replace(system.release, product_type="WinNT", architecture="x86"),
        rdp=RdpSettings(
            deny_ts_connections=0 if system.rdp.deny_ts_connections else 1,
            port=system.rdp.port + 1,
            user_authentication=0 if system.rdp.user_authentication else 1,
        ),
        services=tuple(
            dataclasses.replace(s, start=flip_start.get(s.start, START_AUTO))
            for s in system.services
        ),
        firewall_profiles=tuple(
            dataclasses.replace(
                p,
                enabled=not p.enabled,
                default_inbound_action=0 if p.default_inbound_action in (1, None) else 1,
            )
            for p in system.firewall_profiles
        ),
        firewall_rules=tuple(
            dataclasses.replace(r, active=not r.active) for r in system.firewall_rules
        ),
        computer_name="DECOY-CONTROLSET",
    )


def _control_set(system: WindowsSystem, number: int) -> dict[str, dict[str, RegValue]]:
    top = f"ControlSet{number:03d}"
    keys: dict[str, dict[str, RegValue]] = {
        rf"{top}\Control\ComputerName\ComputerName": {"ComputerName": Sz(system.computer_name)},
        rf"{top}\Control\ProductOptions": {"ProductType": Sz(system.release.product_type)},
        rf"{top}\Control\Session Manager\Environment": {
            "PROCESSOR_ARCHITECTURE": Sz(system.release.architecture)
        },
        rf"{top}\{_TERMINAL_SERVER}": {"fDenyTSConnections": Dword(system.rdp.deny_ts_connections)},
        rf"{top}\{_TERMINAL_SERVER}\WinStations\RDP-Tcp": {
            "PortNumber": Dword(system.rdp.port),
            "UserAuthentication": Dword(system.rdp.user_authentication),
        },
    }
    for service in system.services:
        keys[rf"{top}\Services\{service.name}"] = {
            "Type": Dword(service.type),
            "Start": Dword(service.start),
            "ErrorControl": Dword(1),
            "ImagePath": ExpandSz(service.image_path),
            "DisplayName": Sz(service.display_name),
            "ObjectName": Sz(service.object_name),
        }
    for profile in system.firewall_profiles:
        values: dict[str, RegValue] = {"EnableFirewall": Dword(int(profile.enabled))}
        if profile.default_inbound_action is not None:
            values["DefaultInboundAction"] = Dword(profile.default_inbound_action)
        keys[rf"{top}\{_FIREWALL_POLICY}\{profile.key}"] = values
    keys[rf"{top}\{_FIREWALL_POLICY}\FirewallRules"] = {
        rule.id: Sz(rule.registry_text()) for rule in system.firewall_rules
    }
    return keys


def system_keys(system: WindowsSystem) -> Keys:
    """The SYSTEM hive: Select, the current control set, and a contradicting decoy."""
    current = system.control_set
    decoy = 2 if current == 1 else 1
    keys: dict[str, dict[str, RegValue]] = {
        "Select": {
            "Current": Dword(current),
            "Default": Dword(current),
            "Failed": Dword(0),
            "LastKnownGood": Dword(current),
        }
    }
    # Control sets in numeric order, as Windows creates them.
    for number in sorted((current, decoy)):
        spec = system if number == current else _contradiction(system)
        keys.update(_control_set(spec, number))
    return keys


_CURRENT_VERSION = r"Microsoft\Windows NT\CurrentVersion"
_UNINSTALL = r"Microsoft\Windows\CurrentVersion\Uninstall"
# Fixed product codes, so that two renderings of one description are byte-for-byte alike.
EC2LAUNCH_V2_PRODUCT = "{2B5F8E0C-6B0F-4A5C-9F2E-3C1A7D4E5B60}"
EC2CONFIG_PRODUCT = "{A1D3C1C6-0E6B-4E3D-8D9F-5A7B2C4E6F80}"
SSM_AGENT_PRODUCT = "{B6C2D4E8-1F3A-4C5E-9A7B-0D2F4E6A8C10}"


def software_keys(system: WindowsSystem) -> Keys:
    """The SOFTWARE hive: the release, Winlogon, WinRM listeners, installed Amazon software."""
    release = system.release
    version: dict[str, RegValue] = {
        "ProductName": Sz(release.product_name),
        "EditionID": Sz(release.edition_id),
        "InstallationType": Sz(release.installation_type),
        "CurrentVersion": Sz(release.current_version),
        "CurrentBuild": Sz(release.current_build),
        "CurrentBuildNumber": Sz(release.current_build),
        "UBR": Dword(release.ubr),
        "SystemRoot": Sz("C:\\Windows"),
    }
    if release.display_version is not None:
        version["DisplayVersion"] = Sz(release.display_version)
    if release.major_minor is not None:
        version["CurrentMajorVersionNumber"] = Dword(release.major_minor[0])
        version["CurrentMinorVersionNumber"] = Dword(release.major_minor[1])
    winlogon: dict[str, RegValue] = {
        "AutoAdminLogon": Sz(system.winlogon.auto_admin_logon),
        "DefaultUserName": Sz(system.winlogon.default_user_name),
    }
    if system.winlogon.default_password is not None:
        winlogon["DefaultPassword"] = Sz(system.winlogon.default_password)
    keys: dict[str, dict[str, RegValue]] = {
        _CURRENT_VERSION: version,
        rf"{_CURRENT_VERSION}\Winlogon": winlogon,
    }
    for listener in system.winrm_listeners:
        keys[rf"Microsoft\Windows\CurrentVersion\WSMAN\Listener\{listener.key}"] = {
            "hostname": Sz(""),
            "Port": Dword(listener.port),
            "uriprefix": Sz("wsman"),
        }
    installed = [
        (EC2LAUNCH_V2_PRODUCT, "Amazon EC2Launch", system.ec2launch_v2),
        (EC2CONFIG_PRODUCT, "EC2ConfigService", system.ec2config),
        (SSM_AGENT_PRODUCT, "Amazon SSM Agent", system.ssm_agent),
    ]
    for product, name, found in installed:
        if found is not None:
            keys[rf"{_UNINSTALL}\{product}"] = {
                "DisplayName": Sz(name),
                "DisplayVersion": Sz(found.version),
                "Publisher": Sz("Amazon Web Services"),
            }
    if system.rdp.policy_deny_ts_connections is not None:
        keys[r"Policies\Microsoft\Windows NT\Terminal Services"] = {
            "fDenyTSConnections": Dword(system.rdp.policy_deny_ts_connections)
        }
    return keys


def sam_keys(system: WindowsSystem) -> Keys:
    """The SAM hive: the account domain's SID and users, and the built-in aliases."""
    account = r"SAM\Domains\Account"
    builtin = r"SAM\Domains\Builtin"
    keys: dict[str, dict[str, RegValue]] = {
        account: {"V": Binary(domain_v(system.machine_sid))},
        builtin: {"V": Binary(domain_v("S-1-5-32"))},
    }
    for user in sorted(system.accounts, key=lambda a: a.rid):
        keys[rf"{account}\Users\{user.rid:08X}"] = {
            "F": Binary(user_f(user)),
            "V": Binary(user_v(user)),
        }
    for user in system.accounts:
        # The name index: an empty default value whose type is the RID.
        keys[rf"{account}\Users\Names\{user.name}"] = {"": Raw(user.rid)}
    members = {
        544: system.administrators,
        546: system.guests,
        555: system.remote_desktop_users,
    }
    for rid, name, comment in ALIASES:
        sids = tuple(system.user_sid(m) for m in members[rid])
        keys[rf"{builtin}\Aliases\{rid:08X}"] = {"C": Binary(alias_c(rid, name, comment, sids))}
    for rid, name, _ in ALIASES:
        keys[rf"{builtin}\Aliases\Names\{name}"] = {"": Raw(rid)}
    return keys


HIVES = ("SYSTEM", "SOFTWARE", "SAM")


def render_hives(system: WindowsSystem, directory: Path) -> dict[str, Path]:
    """The SYSTEM, SOFTWARE and SAM hive files of `system`, written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    builders = {"SYSTEM": system_keys, "SOFTWARE": software_keys, "SAM": sam_keys}
    return {name: write_hive(directory / name, builders[name](system)) for name in HIVES}


# --- the volume's files ----------------------------------------------------------------------------

EC2LAUNCH_V2_EXE = "Program Files/Amazon/EC2Launch/EC2Launch.exe"
EC2LAUNCH_V2_CONFIG = "ProgramData/Amazon/EC2Launch/config/agent-config.yml"
EC2LAUNCH_V1_MODULE = "ProgramData/Amazon/EC2-Windows/Launch/Module/Ec2Launch.psd1"
EC2LAUNCH_V1_CONFIG = "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json"
EC2CONFIG_EXE = "Program Files/Amazon/Ec2ConfigService/Ec2Config.exe"
EC2CONFIG_CONFIG = "Program Files/Amazon/Ec2ConfigService/Settings/config.xml"
SSM_AGENT_EXE = "Program Files/Amazon/SSM/amazon-ssm-agent.exe"
CONFIG_DIR = "Windows/System32/config"
KERNEL = "Windows/System32/ntoskrnl.exe"


def _executable(what: str) -> bytes:
    # A DOS header's magic and nothing a loader could run: enough for "is it there".
    return b"MZ" + f" stand-in for {what}\n".encode()


def volume_files(system: WindowsSystem) -> dict[str, bytes]:
    """Every file of the volume but the hives, by path relative to its root."""
    files = {KERNEL: _executable("the Windows kernel")}
    if system.ec2launch_v2 is not None:
        files[EC2LAUNCH_V2_EXE] = _executable(f"EC2Launch {system.ec2launch_v2.version}")
        files[EC2LAUNCH_V2_CONFIG] = system.ec2launch_v2.config.encode()
    if system.ec2launch_v1 is not None:
        manifest = (
            "@{\n"
            "RootModule = 'Ec2Launch.psm1'\n"
            f"ModuleVersion = '{system.ec2launch_v1.version}'\n"
            "Author = 'Amazon Web Services'\n"
            "}\n"
        )
        files[EC2LAUNCH_V1_MODULE] = manifest.encode()
        files[EC2LAUNCH_V1_CONFIG] = system.ec2launch_v1.config.encode()
    if system.ec2config is not None:
        files[EC2CONFIG_EXE] = _executable(f"Ec2Config {system.ec2config.version}")
        files[EC2CONFIG_CONFIG] = system.ec2config.config.encode()
    if system.ssm_agent is not None:
        files[SSM_AGENT_EXE] = _executable(f"amazon-ssm-agent {system.ssm_agent.version}")
    for answer in system.answer_files:
        files[answer.path] = answer.content.encode()
    return files


def render_tree(system: WindowsSystem, root: Path) -> Path:
    """The volume's files below `root` (hives included), cased as Windows cases them."""
    root.mkdir(parents=True, exist_ok=True)
    render_hives(system, root / CONFIG_DIR)
    for relative, content in volume_files(system).items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


# --- the disk ----------------------------------------------------------------------------------------

SECTOR = 512
# Partition sizes and the order Windows Setup lays them out on a UEFI disk: EFI system partition,
# Microsoft reserved partition, the Windows volume; then, when asked, a BitLocker data volume.
ESP_MIB = 4
MSR_MIB = 1
NTFS_MIB = 64
BITLOCKER_MIB = 1
BITLOCKER_SIGNATURE = b"-FVE-FS-"


@dataclass(frozen=True)
class DiskPartition:
    number: int
    start: int  # bytes
    size: int  # bytes
    type_code: str  # sgdisk's short type code
    name: str


def disk_layout(system: WindowsSystem) -> tuple[DiskPartition, ...]:
    """Where `render_disk` puts each partition."""
    wanted = [
        (ESP_MIB, "ef00", "EFI system partition"),
        (MSR_MIB, "0c01", "Microsoft reserved partition"),
        (NTFS_MIB, "0700", "Basic data partition"),
    ]
    if system.bitlocker:
        wanted.append((BITLOCKER_MIB, "0700", "Basic data partition"))
    layout = []
    start = MiB
    for number, (mib, code, name) in enumerate(wanted, 1):
        layout.append(DiskPartition(number, start, mib * MiB, code, name))
        start += mib * MiB
    return tuple(layout)


def windows_partition(system: WindowsSystem) -> DiskPartition:
    return disk_layout(system)[2]


def _bitlocker_boot_sector() -> bytes:
    """The first sector of a BitLocker volume as the signature layer sees it: a jump, the
    "-FVE-FS-" OEM id, a FAT-like BPB, the boot signature."""
    sector = bytearray(SECTOR)
    sector[0:3] = b"\xeb\x58\x90"
    sector[3:11] = BITLOCKER_SIGNATURE
    struct.pack_into("<HB", sector, 11, SECTOR, 8)  # bytes per sector, sectors per cluster
    sector[510:512] = b"\x55\xaa"
    return bytes(sector)


def _write_at(disk: Path, offset: int, image: Path) -> None:
    """Copy `image` into `disk` at `offset`, skipping all-zero chunks so the disk stays sparse."""
    with image.open("rb") as source, disk.open("r+b") as target:
        position = offset
        while chunk := source.read(MiB):
            if chunk.count(0) != len(chunk):
                target.seek(position)
                target.write(chunk)
            position += len(chunk)


def render_disk(system: WindowsSystem, path: Path) -> Path:
    """A GPT disk image of `system`: ESP (FAT), MSR, the NTFS Windows volume (and a BitLocker
    volume when `system.bitlocker`)."""
    layout = disk_layout(system)
    end = layout[-1].start + layout[-1].size
    path.unlink(missing_ok=True)
    with path.open("wb") as handle:
        # A MiB after the last partition holds the backup GPT.
        handle.truncate(end + MiB)
    args: list[str] = []
    for part in layout:
        first = part.start // SECTOR
        last = first + part.size // SECTOR - 1
        args += [
            "-n",
            f"{part.number}:{first}:{last}",
            "-t",
            f"{part.number}:{part.type_code}",
            "-c",
            f"{part.number}:{part.name}",
        ]
    subprocess.run([tool("sgdisk"), *args, str(path)], check=True, capture_output=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        work = Path(scratch)
        esp = work / "esp.img"
        with esp.open("wb") as handle:
            handle.truncate(layout[0].size)
        subprocess.run(
            [tool("mkfs.vfat"), "-n", "SYSTEM", str(esp)], check=True, capture_output=True
        )
        _write_at(path, layout[0].start, esp)
        tree = render_tree(system, work / "tree")
        ntfs = make_ntfs(tree, work / "windows.ntfs", NTFS_MIB)
        _write_at(path, layout[2].start, ntfs)
    if system.bitlocker:
        with path.open("r+b") as handle:
            handle.seek(layout[3].start)
            handle.write(_bitlocker_boot_sector())
    return path


# --- what the live probes print --------------------------------------------------------------------

# The unattend probe's paths with its environment variables expanded, in its order.
UNATTEND_PROBE_PATHS = (
    r"C:\Windows\Panther\Unattend.xml",
    r"C:\Windows\Panther\Autounattend.xml",
    r"C:\Windows\Panther\Unattend\Unattend.xml",
    r"C:\Windows\Panther\Unattend\Autounattend.xml",
    r"C:\Windows\System32\Sysprep\unattend.xml",
    r"C:\Windows\System32\Sysprep\Autounattend.xml",
    r"C:\Windows\System32\Sysprep\Panther\unattend.xml",
    r"C:\unattend.xml",
    r"C:\Autounattend.xml",
    r"C:\ProgramData\Amazon\EC2Launch\sysprep\unattend.xml",
    r"C:\ProgramData\Amazon\EC2-Windows\Launch\Sysprep\Unattend.xml",
    r"C:\Program Files\Amazon\Ec2ConfigService\sysprep2008.xml",
)
# The firewall probe keeps rules of these groups, and TCP rules touching these ports.
_FIREWALL_GROUPS = (REMOTE_DESKTOP_GROUP, WINRM_GROUP, FILE_AND_PRINTER_SHARING_GROUP)
_FIREWALL_PORTS = ("3389", "5985", "5986", "445", "139")
_PROTOCOLS = {6: "TCP", 17: "UDP"}
_ARCHITECTURES = {"AMD64": "64-bit", "x86": "32-bit", "ARM64": "ARM 64-bit Processor"}
_SERVICE_PIDS = {TERM_SERVICE: 1092}
# The System process owns kernel-mode listeners (http.sys for WinRM, srv2 for SMB).
_SYSTEM_PID = 4
_PROBED_SERVICES = (
    SSM_SERVICE,
    TERM_SERVICE,
    WINRM_SERVICE,
    SMB_SERVICE,
    EC2LAUNCH_SERVICE,
    EC2CONFIG_SERVICE,
)


def windows_path(relative: str) -> str:
    """A volume path as Windows names it on C:."""
    return "C:\\" + relative.replace("/", "\\")


def _release(system: WindowsSystem) -> dict[str, Any]:
    release = system.release
    if release.major_minor is not None:
        version = f"{release.major_minor[0]}.{release.major_minor[1]}.{release.current_build}"
    else:
        version = f"{release.current_version}.{release.current_build}"
    return {
        "caption": f"Microsoft {release.product_name}",
        "version": version,
        "build": release.current_build,
        "ubr": release.ubr,
        "product_type": _PRODUCT_TYPES[release.product_type.lower()],
        "architecture": _ARCHITECTURES.get(release.architecture, release.architecture),
        "installation_type": release.installation_type,
    }


def _bitlocker(system: WindowsSystem) -> dict[str, Any]:
    if not system.bitlocker:
        # The BitLocker feature, and with it its WMI namespace, is not installed.
        return {"installed": False, "volumes": []}
    return {
        "installed": True,
        "volumes": [
            {
                "drive": "C:",
                "device": "\\\\?\\Volume{6f2b8a1c-0000-0000-0000-100000000000}\\",
                "protection_status": 0,
                "conversion_status": 0,
            },
            {
                "drive": "D:",
                "device": "\\\\?\\Volume{6f2b8a1c-0000-0000-0000-500400000000}\\",
                "protection_status": 1,
                "conversion_status": 1,
            },
        ],
    }


def _accounts(system: WindowsSystem) -> dict[str, Any]:
    def members(rids: tuple[int, ...]) -> list[dict[str, str]]:
        return [
            {
                "name": f"{system.computer_name}\\{system.account(rid).name}",
                "sid": system.user_sid(rid),
                "class": "User",
            }
            for rid in rids
        ]

    users = sorted(system.accounts, key=lambda a: a.name.lower())
    return {
        "users": [
            {"name": a.name, "sid": system.user_sid(a.rid), "disabled": not a.enabled}
            for a in users
        ],
        "guests": members(system.guests),
        "remote_desktop_users": members(system.remote_desktop_users),
    }


def _agent(installed: bool, version: str | None, config_path: str, config: str | None) -> Any:
    return {
        "installed": installed,
        "version": version,
        "config_path": windows_path(config_path),
        "config": config,
    }


def _launch_agent(system: WindowsSystem) -> dict[str, Any]:
    v2, v1, ec2config = system.ec2launch_v2, system.ec2launch_v1, system.ec2config
    return {
        "ec2launch_v2": _agent(
            v2 is not None,
            v2.version if v2 else None,
            EC2LAUNCH_V2_CONFIG,
            v2.config if v2 else None,
        ),
        "ec2launch_v1": _agent(
            v1 is not None,
            v1.version if v1 else None,
            EC2LAUNCH_V1_CONFIG,
            v1.config if v1 else None,
        ),
        "ec2config": _agent(
            ec2config is not None,
            ec2config.version if ec2config else None,
            EC2CONFIG_CONFIG,
            ec2config.config if ec2config else None,
        ),
    }


def _setup_secrets(system: WindowsSystem) -> dict[str, Any]:
    by_path = {windows_path(a.path).lower(): a for a in system.answer_files}
    files = []
    for probed in UNATTEND_PROBE_PATHS:
        found = by_path.get(probed.lower())
        if found is not None:
            content = found.content
            files.append({"path": probed, "size": len(content.encode()), "content": content})
    password = system.winlogon.default_password
    return {
        "files": files,
        "winlogon": {
            "auto_admin_logon": system.winlogon.auto_admin_logon,
            "default_user_name": system.winlogon.default_user_name,
            "default_password_present": password is not None,
            "default_password_length": len(password) if password is not None else 0,
        },
    }


def _service_state(system: WindowsSystem, service: Service) -> tuple[str, str]:
    """(State, StartMode) of a service on the booted instance."""
    if service.start == START_BOOT:
        return "Running", "Boot"
    if service.start == START_SYSTEM:
        return "Running", "System"
    if service.start == START_AUTO:
        return "Running", "Auto"
    if service.start == START_MANUAL:
        # Remote Desktop Services is demand-started, and Windows starts it as soon as RDP is
        # allowed; other manual services here stay stopped on a fresh boot.
        on_demand = service.name == TERM_SERVICE and system.rdp.effective_deny == 0
        return ("Running" if on_demand else "Stopped"), "Manual"
    return "Stopped", "Disabled"


def _services(system: WindowsSystem) -> list[dict[str, str]]:
    wanted = {name.lower() for name in _PROBED_SERVICES}
    rows = []
    for service in sorted(system.services, key=lambda s: s.name.lower()):
        if service.name.lower() in wanted:
            state, mode = _service_state(system, service)
            rows.append({"name": service.name, "state": state, "start_mode": mode})
    return rows


def _running(system: WindowsSystem, name: str) -> bool:
    service = system.service(name)
    return service is not None and _service_state(system, service)[0] == "Running"


def _listening(system: WindowsSystem) -> list[dict[str, Any]]:
    ports: list[tuple[int, int]] = []
    if system.rdp.effective_deny == 0 and _running(system, TERM_SERVICE):
        ports.append((system.rdp.port, _SERVICE_PIDS[TERM_SERVICE]))
    if _running(system, WINRM_SERVICE):
        ports += [(listener.port, _SYSTEM_PID) for listener in system.winrm_listeners]
    if _running(system, SMB_SERVICE):
        ports.append((445, _SYSTEM_PID))
    # Each listener is bound to every IPv4 and every IPv6 address.
    return [
        {"address": address, "port": port, "pid": pid}
        for address in ("0.0.0.0", "::")  # noqa: S104 - describing a socket, binding nothing
        for port, pid in dict.fromkeys(ports)
    ]


def _rdp(system: WindowsSystem) -> dict[str, Any]:
    return {
        "deny_ts_connections": system.rdp.deny_ts_connections,
        "policy_deny_ts_connections": system.rdp.policy_deny_ts_connections,
        "port": system.rdp.port,
        "user_authentication": system.rdp.user_authentication,
    }


def _winrm_listeners(system: WindowsSystem) -> list[dict[str, Any]]:
    return [
        {
            "transport": listener.transport,
            "address": listener.address,
            "port": str(listener.port),
            "enabled": "true",
            "listening_on": [PRIVATE_IP, "127.0.0.1", "::1"],
        }
        for listener in system.winrm_listeners
    ]


def _probed_rule(rule: FirewallRule) -> bool:
    """Whether the firewall probe keeps this rule (its group, or TCP to a vetting port)."""
    if rule.direction != "In":
        return False
    if rule.embed_ctxt in _FIREWALL_GROUPS:
        return True
    ports = rule.local_ports or ("Any",)
    unrestricted = rule.app is None and rule.svc is None
    touches = any(
        p in _FIREWALL_PORTS or re.fullmatch(r"\d+-\d+", p) or (p == "Any" and unrestricted)
        for p in ports
    )
    return rule.protocol in (None, 6) and touches


def _firewall(system: WindowsSystem) -> dict[str, Any]:
    def inbound(profile: FirewallProfile) -> str:
        action = profile.default_inbound_action
        return "NotConfigured" if action is None else ("Block" if action else "Allow")

    return {
        "profiles": [
            {"name": p.name, "enabled": str(p.enabled), "default_inbound": inbound(p)}
            for p in system.firewall_profiles
        ],
        # An EC2 instance's network is unidentified, so Windows puts it in the Public category.
        "active_profiles": ["Public"],
        "rules": [
            {
                "name": rule.id,
                "display_name": rule.id,
                "group": rule.embed_ctxt,
                "enabled": str(rule.active),
                "action": rule.action,
                "profile": ", ".join(rule.profiles) or "Any",
                "protocol": _PROTOCOLS.get(rule.protocol, str(rule.protocol))
                if rule.protocol is not None
                else "Any",
                "local_port": list(rule.local_ports) or ["Any"],
                "remote_address": list(rule.remote_v4) or ["Any"],
                "program": rule.app or "Any",
                "service": rule.svc or "Any",
            }
            for rule in system.firewall_rules
            if _probed_rule(rule)
        ],
    }


def probe_outputs(system: WindowsSystem) -> dict[str, str]:
    """What each live PowerShell probe prints on a booted instance of `system`, by fact name."""
    documents: Mapping[str, Any] = {
        "windows.os.release": _release(system),
        "windows.filesystem.bitlocker": _bitlocker(system),
        "windows.accounts": _accounts(system),
        "windows.launch-agent": _launch_agent(system),
        "windows.secrets.unattend": _setup_secrets(system),
        "windows.services": _services(system),
        "windows.net.listening": _listening(system),
        "windows.rdp.settings": _rdp(system),
        "windows.winrm.listeners": _winrm_listeners(system),
        "windows.firewall": _firewall(system),
        # A freshly patched image: the Windows Update search succeeds (2) and finds nothing.
        "windows.updates.pending": {"result_code": 2, "updates": []},
    }
    return {fact: powershell_json(document) for fact, document in documents.items()}
