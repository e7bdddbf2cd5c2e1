"""The offline form of each Windows fact, read from a system volume's hives and files."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scanner.facts.base import Facts, FactUnavailable
from scanner.facts.windows.accounts import LOCAL_ACCOUNTS
from scanner.facts.windows.launch_agent import EC2CONFIG, EC2LAUNCH_V1, EC2LAUNCH_V2, LAUNCH_AGENTS
from scanner.facts.windows.network import (
    LISTENING,
    RDP_SETTINGS,
    SERVICES,
    TERMINAL_SERVICES,
    WINRM_LISTENERS,
    WINRM_SERVICE,
)
from scanner.facts.windows.secrets import SETUP_SECRETS
from scanner.facts.windows.system import BITLOCKER, WINDOWS_RELEASE
from scanner.facts.windows.volume import decode_text, expand, volume_path
from scanner.fs import ImageRoot
from tests.factbuilders import offline_context
from tests.windowsystem import (
    SID,
    Ec2LaunchV1,
    WindowsSystem,
    compliant,
    default_password,
    ec2config_only,
    end_of_life,
    rdp_user,
    render_tree,
    unattend_password,
)


def facts_of(system: WindowsSystem, tmp_path: Path) -> Facts:
    root = render_tree(system, tmp_path / "c")
    return Facts(ImageRoot(root), offline_context(target_kind="dir"))


def test_the_release_comes_from_current_version_and_product_options(tmp_path: Path) -> None:
    release = facts_of(compliant(), tmp_path).get(WINDOWS_RELEASE)
    assert (release.build, release.ubr, release.version) == (20348, 2849, "10.0.20348")
    assert release.caption == "Microsoft Windows Server 2022 Datacenter"
    assert release.product_type == 3 and release.is_server
    assert release.architecture == "64-bit"
    assert release.source.endswith(r"Microsoft\Windows NT\CurrentVersion")


def test_a_release_before_windows_10_keeps_its_version_in_current_version(tmp_path: Path) -> None:
    release = facts_of(end_of_life(), tmp_path).get(WINDOWS_RELEASE)
    assert (release.build, release.version) == (9600, "6.3.9600")


@pytest.mark.parametrize("control_set", [1, 2])
def test_the_current_control_set_is_the_one_select_names(tmp_path: Path, control_set: int) -> None:
    # The other control set contradicts the current one: RDP denied, another port.
    system = dataclasses.replace(compliant(), control_set=control_set)
    rdp = facts_of(system, tmp_path).get(RDP_SETTINGS)
    assert (rdp.effective_deny, rdp.port, rdp.network_level_authentication) == (0, 3389, True)


def test_accounts_and_group_members_come_from_the_sam(tmp_path: Path) -> None:
    accounts = facts_of(compliant(), tmp_path).get(LOCAL_ACCOUNTS)
    by_rid = {u.sid.rsplit("-", 1)[1]: u for u in accounts.users}
    assert by_rid["500"].name == "Administrator" and not by_rid["500"].disabled
    assert by_rid["501"].name == "Guest" and by_rid["501"].disabled
    assert by_rid["501"].sid == f"{SID}-501" and by_rid["501"].is_builtin_guest
    assert [(m.name, m.sid) for m in accounts.guests] == [("Guest", f"{SID}-501")]
    assert accounts.remote_desktop_users == ()


def test_a_remote_desktop_user_is_named_from_the_sam(tmp_path: Path) -> None:
    members = facts_of(rdp_user(), tmp_path).get(LOCAL_ACCOUNTS).remote_desktop_users
    assert [(m.name, m.sid, m.kind) for m in members] == [("builder", f"{SID}-1001", "User")]


def test_services_at_rest_have_a_start_mode_and_no_state(tmp_path: Path) -> None:
    services = facts_of(compliant(), tmp_path).get(SERVICES)
    rdp, winrm = services.get(TERMINAL_SERVICES), services.get(WINRM_SERVICE)
    assert rdp is not None and winrm is not None
    assert (rdp.start_mode, rdp.observed, rdp.can_run, rdp.runs_at_boot) == (
        "Manual",
        False,
        True,
        False,
    )
    assert (winrm.start_mode, winrm.runs_at_boot) == ("Auto", True)
    assert "image at rest" in winrm.describe()


def test_nothing_listens_on_an_image_at_rest(tmp_path: Path) -> None:
    listening = facts_of(compliant(), tmp_path).get(LISTENING)
    assert listening.reachable_on(3389) is None


def test_winrm_listeners_come_from_the_wsman_keys(tmp_path: Path) -> None:
    listeners = facts_of(compliant(), tmp_path).get(WINRM_LISTENERS)
    assert [(x.transport, x.address, x.port, x.enabled) for x in listeners] == [
        ("HTTP", "*", 5985, True)
    ]


def test_without_any_winrm_configuration_only_a_running_instance_can_tell(tmp_path: Path) -> None:
    system = dataclasses.replace(compliant(), winrm_listeners=())
    with pytest.raises(FactUnavailable, match="need a running instance"):
        facts_of(system, tmp_path).get(WINRM_LISTENERS)


def test_launch_agents_are_found_by_their_files_with_versions(tmp_path: Path) -> None:
    agents = facts_of(compliant(), tmp_path).get(LAUNCH_AGENTS)
    v2 = agents.get(EC2LAUNCH_V2)
    assert v2 is not None and v2.version == compliant().ec2launch_v2.version  # type: ignore[union-attr]
    assert v2.config_path == r"C:\ProgramData\Amazon\EC2Launch\config\agent-config.yml"
    assert v2.config is not None and "setAdminAccount" in v2.config
    assert agents.get(EC2CONFIG) is None and agents.active is v2


def test_ec2config_and_ec2launch_v1_are_recognised(tmp_path: Path) -> None:
    system = dataclasses.replace(
        ec2config_only(), ec2launch_v1=Ec2LaunchV1("1.3.2003961", '{"adminPasswordType": "Random"}')
    )
    agents = facts_of(system, tmp_path).get(LAUNCH_AGENTS)
    assert [a.agent for a in agents.installed] == [EC2LAUNCH_V1, EC2CONFIG]
    v1 = agents.get(EC2LAUNCH_V1)
    assert v1 is not None and v1.version == "1.3.2003961"
    assert agents.active is v1


def test_an_answer_file_password_is_found_with_its_windows_path(tmp_path: Path) -> None:
    secrets = facts_of(unattend_password(), tmp_path).get(SETUP_SECRETS)
    found = [(f.path, p.element, p.plaintext) for f in secrets.files for p in f.passwords]
    assert (r"C:\Windows\Panther\Unattend.xml", "AdministratorPassword", True) in found


def test_the_winlogon_password_leaves_only_its_length(tmp_path: Path) -> None:
    winlogon = facts_of(default_password(), tmp_path).get(SETUP_SECRETS).winlogon
    assert winlogon.auto_admin_logon
    assert winlogon.default_password_length == len("Summer2026!")
    assert facts_of(compliant(), tmp_path / "clean").get(SETUP_SECRETS).winlogon == (
        dataclasses.replace(winlogon, auto_admin_logon=False, default_password_length=None)
    )


def test_bitlocker_needs_the_disk_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable, match="disk image"):
        facts_of(compliant(), tmp_path).get(BITLOCKER)


def test_bitlocker_at_rest_names_the_encrypted_volumes(tmp_path: Path) -> None:
    root = render_tree(compliant(), tmp_path / "c")
    context = offline_context(
        target_kind="disk", encrypted_volumes=("partition 4 of disk.img: BitLocker",)
    )
    state = Facts(ImageRoot(root), context).get(BITLOCKER)
    assert [(v.drive, v.encrypted) for v in state.volumes] == [("partition 4 of disk.img", True)]
    assert state.volumes[0].describe() == "partition 4 of disk.img: BitLocker-encrypted"


@pytest.mark.parametrize(
    ("windows", "volume"),
    [
        (r"C:\Windows\Panther\Unattend.xml", "/Windows/Panther/Unattend.xml"),
        (r"$env:ProgramFiles\Amazon\SSM", "/Program Files/Amazon/SSM"),
        (r"$env:SystemDrive\unattend.xml", "/unattend.xml"),
        (r"$ENV:SYSTEMROOT\System32", "/Windows/System32"),
    ],
)
def test_windows_paths_map_onto_the_volume(windows: str, volume: str) -> None:
    assert volume_path(windows) == volume


def test_probe_paths_expand_as_windows_prints_them() -> None:
    assert expand(r"$env:ProgramData\Amazon\x.yml") == r"C:\ProgramData\Amazon\x.yml"
    assert expand(r"C:\already") == r"C:\already"


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"\xff\xfeh\x00i\x00", "hi"),
        (b"\xfe\xff\x00h\x00i", "hi"),
        (b"\xef\xbb\xbfhi", "hi"),
        (b"h\xffi", "h\ufffdi"),
    ],
)
def test_text_files_decode_as_dotnet_reads_them(data: bytes, text: str) -> None:
    assert decode_text(data) == text
