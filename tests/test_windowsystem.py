"""The Windows test systems are what they claim: hives read back by hivex, SAM values decoded from
their documented layout, the volume's files cased as Windows cases them, a GPT disk with an NTFS
volume holding them, and probe outputs the live parsers accept and the live checks judge as the
description says (every check passes for the compliant image; each known-bad image fails exactly
its checks)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import struct
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from scanner.disk.device import FileDevice, SliceDevice
from scanner.disk.signatures import identify
from scanner.facts.windows.accounts import parse_accounts
from scanner.facts.windows.firewall import parse_firewall
from scanner.facts.windows.launch_agent import parse_launch_agents
from scanner.facts.windows.network import (
    parse_listening,
    parse_rdp,
    parse_services,
    parse_winrm_listeners,
)
from scanner.facts.windows.secrets import parse_setup_secrets
from scanner.facts.windows.system import parse_bitlocker, parse_release
from scanner.facts.windows.updates import parse_updates
from scanner.fs import ImageRoot
from scanner.model import Status
from scanner.osdetect import Contents, recognise
from scanner.registry import Check, load_checks
from tests.diskimages import tool
from tests.fakes.windows_hosts import ALL_V4, COMPLIANT, SID, windows_facts
from tests.hives import (
    Binary,
    Dword,
    ExpandSz,
    MultiSz,
    Qword,
    Raw,
    RegValue,
    Sz,
    empty_hive,
    write_hive,
)
from tests.windowsystem import (
    CONFIG_DIR,
    EC2LAUNCH_V1_VERSION,
    KNOWN_BAD,
    Ec2LaunchV1,
    WindowsSystem,
    compliant,
    default_password,
    disk_layout,
    ec2config_only,
    end_of_life,
    probe_outputs,
    rdp_user,
    render_disk,
    render_hives,
    render_tree,
)

# A fixed judging day, inside Windows Server 2022's support and past 2012 R2's.
SCAN_DATE = "2026-06-15"
CURRENT_VERSION = r"\Microsoft\Windows NT\CurrentVersion"


# --- hivex, and a decoder of its export --------------------------------------------------------


def hivexget(hive: Path, key: str, value: str) -> str:
    """One value as hivexget prints it (text for strings, decimal for DWORDs)."""
    done = subprocess.run(
        [tool("hivexget"), str(hive), key, value], capture_output=True, text=True, check=True
    )
    return done.stdout.rstrip("\n")


def has_value(hive: Path, key: str, value: str) -> bool:
    done = subprocess.run([tool("hivexget"), str(hive), key, value], capture_output=True)
    return done.returncode == 0


def subkeys(hive: Path, key: str) -> list[str]:
    done = subprocess.run(
        [tool("hivexsh"), str(hive)],
        input=f"cd {key}\nls\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


_EXPORT_LINE = re.compile(
    r'^(?P<name>@|"(?:[^"\\]|\\.)*")=(?:dword:(?P<dword>[0-9a-f]{8})|'
    r"hex(?:\((?P<type>[0-9a-f]+)\))?:(?P<hex>[0-9a-f,]*))$"
)


def exported(hive: Path, key: str) -> dict[str, dict[str, tuple[int, bytes]]]:
    """Every key below `key` with its values as (type, data), from `hivexregedit --export`
    (which writes every value as typed hex bytes, whatever its type)."""
    done = subprocess.run(
        [tool("hivexregedit"), "--export", str(hive), key],
        capture_output=True,
        text=True,
        check=True,
    )
    keys: dict[str, dict[str, tuple[int, bytes]]] = {}
    current: dict[str, tuple[int, bytes]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("["):
            current = keys.setdefault(line[1:-1], {})
            continue
        match = _EXPORT_LINE.match(line)
        if match is None:
            continue
        raw_name = match["name"]
        name = "" if raw_name == "@" else re.sub(r"\\(.)", r"\1", raw_name[1:-1])
        if match["dword"] is not None:
            current[name] = (4, struct.pack("<I", int(match["dword"], 16)))
        else:
            kind = int(match["type"], 16) if match["type"] is not None else 3
            current[name] = (kind, bytes.fromhex(match["hex"].replace(",", "")))
    return keys


# --- a SAM decoder written from the documented layout --------------------------------------------


def decode_sid(data: bytes) -> str:
    count = data[1]
    authority = int.from_bytes(data[2:8], "big")
    subs = struct.unpack_from(f"<{count}I", data, 8)
    return "-".join(["S", str(data[0]), str(authority), *map(str, subs)])


def sids_back_to_back(data: bytes) -> list[str]:
    found = []
    while data:
        length = 8 + 4 * data[1]
        found.append(decode_sid(data[:length]))
        data = data[length:]
    return found


def v_entry(v: bytes, index: int) -> bytes:
    offset, length = struct.unpack_from("<II", v, index * 12)
    return v[0xCC + offset : 0xCC + offset + length]


def alias_field(c: bytes, at: int) -> bytes:
    offset, length = struct.unpack_from("<II", c, at)
    return c[0x34 + offset : 0x34 + offset + length]


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def hives_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], dict[str, Path]]:
    """`hives_of(variant)`: the variant's hives ("compliant" or a KNOWN_BAD name), built once."""
    built: dict[str, dict[str, Path]] = {}

    def build(variant: str) -> dict[str, Path]:
        if variant not in built:
            built[variant] = render_hives(system_of(variant), tmp_path_factory.mktemp(variant))
        return built[variant]

    return build


@pytest.fixture(scope="session")
def compliant_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_tree(compliant(), tmp_path_factory.mktemp("tree") / "C")


@pytest.fixture(scope="session")
def disk_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`disk_of(variant)`: the variant's GPT disk image, built once per session."""
    built: dict[str, Path] = {}

    def build(variant: str) -> Path:
        if variant not in built:
            disk = tmp_path_factory.mktemp("disk") / f"{variant}.img"
            built[variant] = render_disk(system_of(variant), disk)
        return built[variant]

    return build


def system_of(variant: str) -> WindowsSystem:
    return compliant() if variant == "compliant" else KNOWN_BAD[variant][0]()


# --- the hive writer -----------------------------------------------------------------------------


def test_an_empty_hive_has_a_valid_base_block_and_an_empty_root(tmp_path: Path) -> None:
    hive = empty_hive(tmp_path / "EMPTY")
    data = hive.read_bytes()
    assert len(data) == 8192 and data[:4] == b"regf" and data[4096:4100] == b"hbin"
    primary, secondary = struct.unpack_from("<II", data, 4)
    root, bins = struct.unpack_from("<II", data, 36)
    assert (primary, secondary, root, bins) == (1, 1, 0x20, 4096)
    xor = 0
    for (dword,) in struct.iter_unpack("<I", data[:508]):
        xor ^= dword
    assert struct.unpack_from("<I", data, 508)[0] == xor
    # The root cell: allocated (negative size), an nk with the hive-entry flags.
    size, signature, flags = struct.unpack_from("<i2sH", data, 4096 + 0x20)
    assert size < 0 and signature == b"nk" and flags == 0x2C
    assert subkeys(hive, "\\") == []


VALUES: dict[str, RegValue] = {
    "": Raw(0x1F4),
    "count": Dword(10),
    "big": Qword(2**40 + 5),
    "text": Sz('quote " and \\ backslash'),
    "non-ascii": Sz("naïve\nline"),
    "path": ExpandSz(r"%SystemRoot%\System32"),
    "list": MultiSz(("one", "two")),
    "blob": Binary(b"\x00\x01\xfe"),
    "typed": Raw(0x1234, b"\x07"),
}


def test_every_value_type_reads_back_through_hivex(tmp_path: Path) -> None:
    hive = write_hive(tmp_path / "H", {r"A\B C\D": VALUES, "": {"at-root": Dword(1)}})
    keys = exported(hive, "\\")
    assert list(keys) == ["\\", "\\A", "\\A\\B C", "\\A\\B C\\D"]
    assert keys["\\"] == {"at-root": (4, b"\x01\0\0\0")}
    assert keys["\\A\\B C\\D"] == {name: (v.type, v.data) for name, v in VALUES.items()}
    assert hivexget(hive, r"\A\B C\D", "count") == "10"
    assert hivexget(hive, r"\A\B C\D", "text") == 'quote " and \\ backslash'
    assert hivexget(hive, r"\A\B C\D", "path") == r"%SystemRoot%\System32"
    assert not (tmp_path / "H.reg").exists()


def test_ancestors_are_created_once_whatever_their_case(tmp_path: Path) -> None:
    hive = write_hive(
        tmp_path / "H",
        {r"Top\Child": {"a": Dword(1)}, r"top\child\Leaf": {"b": Dword(2)}, "Top": {}},
    )
    assert subkeys(hive, "\\") == ["Top"]
    assert subkeys(hive, r"\Top") == ["Child"]
    assert hivexget(hive, r"\Top\Child\Leaf", "b") == "2"


# --- SYSTEM --------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 2])
def test_select_names_the_control_set_and_the_other_one_is_a_decoy(
    tmp_path: Path, number: int
) -> None:
    system = dataclasses.replace(compliant(), control_set=number)
    hive = render_hives(system, tmp_path)["SYSTEM"]
    for name in ("Current", "Default", "LastKnownGood"):
        assert hivexget(hive, r"\Select", name) == str(number)
    current, decoy = rf"\ControlSet00{number}", rf"\ControlSet00{3 - number}"
    assert sorted(subkeys(hive, "\\")) == ["ControlSet001", "ControlSet002", "Select"]

    def read(top: str, key: str, value: str) -> str:
        return hivexget(hive, top + key, value)

    ts = r"\Control\Terminal Server"
    rdp = ts + r"\WinStations\RDP-Tcp"
    assert read(current, ts, "fDenyTSConnections") == "0"
    assert read(decoy, ts, "fDenyTSConnections") == "1"
    assert (read(current, rdp, "PortNumber"), read(current, rdp, "UserAuthentication")) == (
        "3389",
        "1",
    )
    assert read(decoy, rdp, "PortNumber") != "3389"
    assert read(current, r"\Control\ProductOptions", "ProductType") == "ServerNT"
    assert read(decoy, r"\Control\ProductOptions", "ProductType") != "ServerNT"
    env = r"\Control\Session Manager\Environment"
    assert read(current, env, "PROCESSOR_ARCHITECTURE") == "AMD64"
    assert read(current, r"\Services\WinRM", "Start") == "2"
    assert read(decoy, r"\Services\WinRM", "Start") == "4"


def test_services_firewall_profiles_and_rules_are_in_the_current_control_set(
    hives_of: Callable[[str], dict[str, Path]],
) -> None:
    hive = hives_of("compliant")["SYSTEM"]
    services = r"\ControlSet001\Services"
    expected = {
        "TermService": ("3", "32"),
        "WinRM": ("2", "32"),
        "AmazonSSMAgent": ("2", "16"),
        "LanmanServer": ("2", "32"),
        "EC2Launch": ("2", "16"),
    }
    for name, (start, kind) in expected.items():
        key = rf"{services}\{name}"
        assert (hivexget(hive, key, "Start"), hivexget(hive, key, "Type")) == (start, kind)
    values = exported(hive, rf"{services}\TermService")[rf"{services}\TermService"]
    assert values["ImagePath"][0] == 2  # REG_EXPAND_SZ
    policy = rf"{services}\SharedAccess\Parameters\FirewallPolicy"
    for profile in ("DomainProfile", "StandardProfile", "PublicProfile"):
        assert hivexget(hive, rf"{policy}\{profile}", "EnableFirewall") == "1"
        assert hivexget(hive, rf"{policy}\{profile}", "DefaultInboundAction") == "1"
    rules = rf"{policy}\FirewallRules"
    assert hivexget(hive, rules, "WINRM-HTTP-In-TCP") == (
        "v2.30|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|Profile=Private|"
        "LPort=5985|App=System|Name=@FirewallAPI.dll,-30253|Desc=@FirewallAPI.dll,-30256|"
        "EmbedCtxt=@FirewallAPI.dll,-30267|"
    )
    rdp = hivexget(hive, rules, "RemoteDesktop-UserMode-In-TCP")
    assert "Profile=" not in rdp and "RA4=" not in rdp
    assert "|LPort=3389|App=%SystemRoot%\\system32\\svchost.exe|Svc=termservice|" in rdp
    public = hivexget(hive, rules, "WINRM-HTTP-In-TCP-PUBLIC")
    assert "|Profile=Public|" in public
    assert "|RA4=10.0.0.0/255.254.0.0|RA4=10.2.0.0-10.2.255.255|" in public
    assert "|Active=FALSE|" in hivexget(hive, rules, "FPS-SMB-In-TCP")


def test_the_windows_default_winrm_public_rule_admits_the_local_subnet_only(
    hives_of: Callable[[str], dict[str, Path]],
) -> None:
    hive = hives_of("winrm_local_subnet")["SYSTEM"]
    rules = r"\ControlSet001\Services\SharedAccess\Parameters\FirewallPolicy\FirewallRules"
    assert "|Profile=Public|LPort=5985|RA4=LocalSubnet|App=System|" in hivexget(
        hive, rules, "WINRM-HTTP-In-TCP-PUBLIC"
    )


# --- SOFTWARE ------------------------------------------------------------------------------------


def test_software_holds_the_release_winlogon_winrm_and_the_agents(
    hives_of: Callable[[str], dict[str, Path]],
) -> None:
    hive = hives_of("compliant")["SOFTWARE"]
    expected = {
        "ProductName": "Windows Server 2022 Datacenter",
        "CurrentBuild": "20348",
        "CurrentBuildNumber": "20348",
        "UBR": "2849",
        "EditionID": "ServerDatacenter",
        "InstallationType": "Server",
        "DisplayVersion": "21H2",
        "CurrentMajorVersionNumber": "10",
        "CurrentMinorVersionNumber": "0",
    }
    assert {name: hivexget(hive, CURRENT_VERSION, name) for name in expected} == expected
    winlogon = CURRENT_VERSION + r"\Winlogon"
    assert hivexget(hive, winlogon, "AutoAdminLogon") == "0"
    assert hivexget(hive, winlogon, "DefaultUserName") == "Administrator"
    assert not has_value(hive, winlogon, "DefaultPassword")
    listener = r"\Microsoft\Windows\CurrentVersion\WSMAN\Listener\*+HTTP"
    assert (hivexget(hive, listener, "Port"), hivexget(hive, listener, "uriprefix")) == (
        "5985",
        "wsman",
    )
    uninstall = r"\Microsoft\Windows\CurrentVersion\Uninstall"
    names = {
        hivexget(hive, rf"{uninstall}\{key}", "DisplayName"): hivexget(
            hive, rf"{uninstall}\{key}", "DisplayVersion"
        )
        for key in subkeys(hive, uninstall)
    }
    assert names == {"Amazon EC2Launch": "2.0.2107.0", "Amazon SSM Agent": "3.3.1142.0"}


def test_software_variants(hives_of: Callable[[str], dict[str, Path]]) -> None:
    winlogon = CURRENT_VERSION + r"\Winlogon"
    leaky = hives_of("default_password")["SOFTWARE"]
    assert hivexget(leaky, winlogon, "DefaultPassword") == "Summer2026!"
    assert hivexget(leaky, winlogon, "AutoAdminLogon") == "1"
    old = hives_of("end_of_life")["SOFTWARE"]
    assert hivexget(old, CURRENT_VERSION, "CurrentVersion") == "6.3"
    assert hivexget(old, CURRENT_VERSION, "CurrentBuildNumber") == "9600"
    assert hivexget(old, CURRENT_VERSION, "UBR") == "20778"
    assert not has_value(old, CURRENT_VERSION, "CurrentMajorVersionNumber")
    assert not has_value(old, CURRENT_VERSION, "DisplayVersion")
    ec2config = hives_of("ec2config_only")["SOFTWARE"]
    uninstall = r"\Microsoft\Windows\CurrentVersion\Uninstall"
    names = {
        hivexget(ec2config, rf"{uninstall}\{key}", "DisplayName")
        for key in subkeys(ec2config, uninstall)
    }
    assert names == {"EC2ConfigService", "Amazon SSM Agent"}


# --- SAM -----------------------------------------------------------------------------------------


def users_in(sam: Path) -> dict[int, tuple[str, bool]]:
    """RID -> (name, disabled), decoded from each user's F and V values."""
    users_key = r"\SAM\Domains\Account\Users"
    found = {}
    for key, values in exported(sam, users_key).items():
        name = key.rsplit("\\", 1)[-1]
        if not re.fullmatch(r"[0-9A-F]{8}", name):
            continue
        f, v = values["F"][1], values["V"][1]
        assert len(f) == 0x50
        rid, flags = struct.unpack_from("<I", f, 0x30)[0], struct.unpack_from("<H", f, 0x38)[0]
        assert rid == int(name, 16) and flags & 0x0010
        found[rid] = (v_entry(v, 1).decode("utf-16-le"), bool(flags & 0x0001))
    return found


def alias_members(sam: Path, rid: int) -> tuple[str, list[str]]:
    key = rf"\SAM\Domains\Builtin\Aliases\{rid:08X}"
    c = exported(sam, key)[key]["C"][1]
    assert struct.unpack_from("<I", c, 0)[0] == rid
    members = alias_field(c, 0x28)
    assert struct.unpack_from("<I", c, 0x30)[0] == len(sids_back_to_back(members))
    return alias_field(c, 0x10).decode("utf-16-le"), sids_back_to_back(members)


def test_sam_users_decode(hives_of: Callable[[str], dict[str, Path]]) -> None:
    sam = hives_of("compliant")["SAM"]
    assert users_in(sam) == {
        500: ("Administrator", False),
        501: ("Guest", True),
        503: ("DefaultAccount", True),
        504: ("WDAGUtilityAccount", True),
    }
    account = exported(sam, r"\SAM\Domains\Account")
    assert decode_sid(account[r"\SAM\Domains\Account"]["V"][1][-24:]) == SID
    index = "\\SAM\\Domains\\Account\\Users\\Names\\"
    names = {
        key.removeprefix(index): values[""]
        for key, values in account.items()
        if key.startswith(index)
    }
    # The name index: an empty default value whose type is the RID.
    assert names == {
        "Administrator": (500, b""),
        "Guest": (501, b""),
        "DefaultAccount": (503, b""),
        "WDAGUtilityAccount": (504, b""),
    }
    assert users_in(hives_of("guest_enabled")["SAM"])[501] == ("Guest", False)
    assert users_in(hives_of("rdp_user")["SAM"])[1001] == ("builder", False)


def test_sam_alias_members_decode(hives_of: Callable[[str], dict[str, Path]]) -> None:
    sam = hives_of("compliant")["SAM"]
    assert alias_members(sam, 546) == ("Guests", [f"{SID}-501"])
    assert alias_members(sam, 555) == ("Remote Desktop Users", [])
    assert alias_members(sam, 544) == ("Administrators", [f"{SID}-500"])
    assert alias_members(hives_of("rdp_user")["SAM"], 555) == (
        "Remote Desktop Users",
        [f"{SID}-1001"],
    )
    names = exported(sam, r"\SAM\Domains\Builtin\Aliases\Names")
    assert names[r"\SAM\Domains\Builtin\Aliases\Names\Guests"][""] == (546, b"")
    assert names[r"\SAM\Domains\Builtin\Aliases\Names\Remote Desktop Users"][""] == (555, b"")


# --- the volume's files --------------------------------------------------------------------------


def files_below(root: Path) -> set[str]:
    """Every file below `root`, by its path as the directory entries spell it."""

    def walk(directory: Path, prefix: str) -> Iterator[str]:
        for name in os.listdir(directory):
            path = directory / name
            if path.is_dir():
                yield from walk(path, f"{prefix}{name}/")
            else:
                yield prefix + name

    return set(walk(root, ""))


def test_the_tree_is_a_windows_system_volume_cased_as_windows_cases_it(
    compliant_tree: Path,
) -> None:
    assert files_below(compliant_tree) == {
        "Windows/System32/config/SYSTEM",
        "Windows/System32/config/SOFTWARE",
        "Windows/System32/config/SAM",
        "Windows/System32/ntoskrnl.exe",
        "Windows/Panther/Unattend.xml",
        "Program Files/Amazon/EC2Launch/EC2Launch.exe",
        "Program Files/Amazon/SSM/amazon-ssm-agent.exe",
        "ProgramData/Amazon/EC2Launch/config/agent-config.yml",
    }
    assert (compliant_tree / "Windows/System32/ntoskrnl.exe").read_bytes()[:2] == b"MZ"
    assert (
        b"type: random"
        in (compliant_tree / "ProgramData/Amazon/EC2Launch/config/agent-config.yml").read_bytes()
    )
    assert (compliant_tree / "Windows/System32/config/SAM").read_bytes()[:4] == b"regf"
    found = recognise(ImageRoot(compliant_tree))
    assert found.contents is Contents.WINDOWS


def test_the_trees_of_other_agents(tmp_path: Path) -> None:
    ec2config = files_below(render_tree(ec2config_only(), tmp_path / "ec2config"))
    assert "Program Files/Amazon/Ec2ConfigService/Ec2Config.exe" in ec2config
    assert "Program Files/Amazon/Ec2ConfigService/Settings/config.xml" in ec2config
    assert not any("EC2Launch" in path for path in ec2config)
    v1 = dataclasses.replace(
        compliant(),
        ec2launch_v2=None,
        ec2launch_v1=Ec2LaunchV1(EC2LAUNCH_V1_VERSION, '{"adminPasswordType": "Random"}'),
    )
    root = render_tree(v1, tmp_path / "v1")
    manifest = root / "ProgramData/Amazon/EC2-Windows/Launch/Module/Ec2Launch.psd1"
    assert "ModuleVersion = '1.3.2003961'" in manifest.read_text()
    assert (root / "ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json").is_file()


# --- the disk ------------------------------------------------------------------------------------


def partition_table(disk: Path) -> list[tuple[int, int, str, str]]:
    """(number, start sector, type code, name) of each partition, as sgdisk prints them."""
    done = subprocess.run(
        [tool("sgdisk"), "-p", str(disk)], capture_output=True, text=True, check=True
    )
    rows = []
    for line in done.stdout.splitlines():
        match = re.match(r"^\s+(\d+)\s+(\d+)\s+\d+\s+\S+ \S+\s+([0-9A-F]{4})\s+(.*)$", line)
        if match:
            rows.append((int(match[1]), int(match[2]), match[3], match[4].strip()))
    return rows


@pytest.mark.parametrize(
    ("variant", "codes"),
    [
        ("compliant", ["EF00", "0C01", "0700"]),
        ("bitlocker_volume", ["EF00", "0C01", "0700", "0700"]),
    ],
)
def test_the_disk_is_gpt_with_the_windows_volume_on_ntfs(
    disk_of: Callable[[str], Path], variant: str, codes: list[str]
) -> None:
    disk = disk_of(variant)
    table = partition_table(disk)
    assert [code for _, _, code, _ in table] == codes
    layout = disk_layout(system_of(variant))
    assert [start * 512 for _, start, _, _ in table] == [p.start for p in layout]
    with disk.open("rb") as handle:
        handle.seek(layout[2].start)
        assert handle.read(11)[3:] == b"NTFS    "
        handle.seek(layout[0].start)
        assert handle.read(512)[510:] == b"\x55\xaa"
    device = FileDevice(disk)
    try:
        kinds = [
            identify(SliceDevice(device, p.start, p.size, f"partition {p.number}")) for p in layout
        ]
    finally:
        device.close()
    assert kinds == ["vfat", "unknown", "ntfs", "bitlocker"][: len(layout)]


def test_the_ntfs_volume_holds_the_tree(
    disk_of: Callable[[str], Path], compliant_tree: Path, tmp_path: Path
) -> None:
    disk = disk_of("compliant")
    part = disk_layout(compliant())[2]
    volume = tmp_path / "windows.ntfs"
    with disk.open("rb") as source, volume.open("wb") as target:
        source.seek(part.start)
        target.write(source.read(part.size))
    for relative in (
        f"{CONFIG_DIR}/SYSTEM",
        f"{CONFIG_DIR}/SAM",
        "Windows/Panther/Unattend.xml",
        "ProgramData/Amazon/EC2Launch/config/agent-config.yml",
    ):
        done = subprocess.run(
            [tool("ntfscat"), "-f", str(volume), "/" + relative], capture_output=True, check=True
        )
        assert done.stdout == (compliant_tree / relative).read_bytes(), relative


# --- the live probes -------------------------------------------------------------------------------

PARSERS: dict[str, Callable[[Any], object]] = {
    "windows.os.release": parse_release,
    "windows.filesystem.bitlocker": parse_bitlocker,
    "windows.accounts": parse_accounts,
    "windows.launch-agent": parse_launch_agents,
    "windows.secrets.unattend": parse_setup_secrets,
    "windows.services": parse_services,
    "windows.net.listening": parse_listening,
    "windows.rdp.settings": parse_rdp,
    "windows.winrm.listeners": parse_winrm_listeners,
    "windows.firewall": parse_firewall,
    "windows.updates.pending": parse_updates,
}
VARIANTS = ["compliant", *KNOWN_BAD]


def windows_checks() -> list[Check]:
    return sorted(
        (c for c in load_checks().values() if c.platform.value == "windows"), key=lambda c: c.id
    )


def failing(system: WindowsSystem) -> dict[str, str]:
    """The live checks that do not pass on a booted instance of `system`, with their summary."""
    facts = windows_facts(host=probe_outputs(system), scan_date=SCAN_DATE)
    outcomes = {c.id: c.run(facts) for c in windows_checks()}
    return {
        check_id: f"{o.status.value}: {o.summary}"
        for check_id, o in outcomes.items()
        if o.status is not Status.PASS
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_probe_prints_json_the_live_parser_accepts(variant: str) -> None:
    outputs = probe_outputs(system_of(variant))
    assert set(outputs) == set(COMPLIANT) == set(PARSERS)
    for fact, text in outputs.items():
        assert "\n" not in text
        PARSERS[fact](json.loads(text))


def test_the_compliant_image_passes_every_live_windows_check() -> None:
    assert len(windows_checks()) >= 11
    assert failing(compliant()) == {}


@pytest.mark.parametrize("variant", list(KNOWN_BAD))
def test_each_known_bad_image_fails_exactly_its_checks(variant: str) -> None:
    factory, expected = KNOWN_BAD[variant]
    assert set(failing(factory())) == expected, failing(factory())


def test_probe_outputs_follow_the_description() -> None:
    def document(system: WindowsSystem, fact: str) -> Any:
        return json.loads(probe_outputs(system)[fact])

    release = document(end_of_life(), "windows.os.release")
    assert (release["version"], release["build"], release["ubr"]) == ("6.3.9600", "9600", 20778)
    accounts = document(rdp_user(), "windows.accounts")
    assert accounts["remote_desktop_users"] == [
        {"name": "EC2AMAZ-FAKE\\builder", "sid": f"{SID}-1001", "class": "User"}
    ]
    secrets = document(default_password(), "windows.secrets.unattend")
    assert secrets["winlogon"]["default_password_length"] == len("Summer2026!")
    assert [f["path"] for f in secrets["files"]] == ["C:\\Windows\\Panther\\Unattend.xml"]
    services = {s["name"]: s for s in document(ec2config_only(), "windows.services")}
    assert "EC2Launch" not in services and services["Ec2Config"]["start_mode"] == "Auto"
    firewall = document(compliant(), "windows.firewall")
    assert [r["profile"] for r in firewall["rules"]] == ["Any", "Domain, Private", "Public", "Any"]
    listening = {(s["address"], s["port"]) for s in document(compliant(), "windows.net.listening")}
    assert {(ALL_V4, 3389), (ALL_V4, 5985), (ALL_V4, 445)} <= listening
    denied = document(KNOWN_BAD["rdp_denied"][0](), "windows.net.listening")
    assert 3389 not in {s["port"] for s in denied}
