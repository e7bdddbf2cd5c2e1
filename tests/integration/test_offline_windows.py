"""Windows judged at rest: one described Windows Server image (tests/windowsystem.py) rendered as a
GPT disk with an NTFS volume, as a directory tree, as an EBS snapshot and behind an AMI, gives the
same `windows.*` statuses on every path, and the same statuses the live PowerShell probes give on
a booted instance of that image.

What an image at rest cannot say is a `skip`, never a guess: pending updates need a running
instance, and BitLocker's signatures need a disk. A damaged hive is an `error` naming the hive,
said once, and the checks that do not need it are still judged.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from scanner.cancel import Cancel
from scanner.model import Platform, Report, Verdict
from scanner.orchestrate import scan_one
from scanner.registry import Check, load_checks
from scanner.targets import resolve_target
from scanner.targets.base import ScanOptions, checks_for
from tests.aws import REGION, Moto, register_image
from tests.diskimages import upload_snapshot
from tests.fakes.windows_hosts import windows_facts
from tests.hives import write_hive
from tests.windowsystem import (
    CONFIG_DIR,
    KNOWN_BAD,
    WindowsSystem,
    compliant,
    probe_outputs,
    render_disk,
    render_tree,
    sam_keys,
)

Statuses = dict[str, str]

# A fixed judging day: inside Windows Server 2022's support, past 2012 R2's.
SCAN_DATE = "2026-06-15"
UPDATES = "windows.updates.pending"
BITLOCKER = "windows.filesystem.bitlocker"
RDP_USERS = "windows.accounts.rdp-users"
SUPPORTED = "windows.os.supported"
VARIANTS = ["compliant", *KNOWN_BAD]
# The checks whose facts read HKLM\SYSTEM (services, RDP, the firewall policy, the product type).
NEEDS_SYSTEM = frozenset(
    {
        "windows.remote.vetting-access",
        "windows.rdp.enabled",
        "windows.winrm.listener",
        "windows.os.supported",
    }
)
# The SAM's Builtin\Aliases key of Remote Desktop Users (S-1-5-32-555), and its name index.
RDP_USERS_ALIAS = "0000022B"
RDP_USERS_NAME = r"Aliases\Names\Remote Desktop Users"


def system_of(variant: str) -> WindowsSystem:
    return compliant() if variant == "compliant" else KNOWN_BAD[variant][0]()


def expected_failures(variant: str) -> frozenset[str]:
    return frozenset() if variant == "compliant" else KNOWN_BAD[variant][1]


def windows_checks() -> list[Check]:
    return sorted(
        (c for c in load_checks().values() if c.platform is Platform.WINDOWS), key=lambda c: c.id
    )


def options(**changes: Any) -> ScanOptions:
    return ScanOptions(region=REGION, known_hosts=None, scan_date=SCAN_DATE, **changes)


def scan(target_text: str, scan_options: ScanOptions | None = None) -> Report:
    """One target scanned in this process with every registered check."""
    scan_options = scan_options or options()
    target = resolve_target(target_text, scan_options)
    checks = checks_for(target, list(load_checks().values()))
    return scan_one(target, checks, scan_options, Cancel(), lambda _: None).report


def windows_statuses(report: Report) -> Statuses:
    return {r.id: r.status.value for r in report.results if r.id.startswith("windows.")}


def summaries(report: Report) -> dict[str, str]:
    return {r.id: f"{r.status.value}: {r.summary}" for r in report.results}


def live_outcomes(system: WindowsSystem) -> dict[str, tuple[str, str]]:
    """(status, summary) of each Windows check on a booted instance of `system`: the live facts
    from what each PowerShell probe would print there (no reachability context: the scanner's
    own TCP connects are not part of the image)."""
    facts = windows_facts(host=probe_outputs(system), scan_date=SCAN_DATE)
    outcomes = {c.id: c.run(facts) for c in windows_checks()}
    return {i: (o.status.value, o.summary) for i, o in outcomes.items()}


def lower_cased(root: Path) -> Path:
    """Every name below `root` lower-cased, deepest first (as a case-preserving mount of an NTFS
    volume whose names were written in lower case presents them)."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.name != path.name.lower():
            path.rename(path.with_name(path.name.lower()))
    return root


def checksum(base_block: bytes) -> int:
    """A hive base block's checksum: XOR of its first 127 dwords, never 0 or 0xFFFFFFFF."""
    value = 0
    for (word,) in struct.iter_unpack("<I", base_block[:508]):
        value ^= word
    return {0: 1, 0xFFFFFFFF: 0xFFFFFFFE}.get(value, value)


def amiscan_cli(cwd: Path, target: str) -> subprocess.CompletedProcess[str]:
    """`amiscan TARGET --json - --no-html` as a separate process, its terminal wide enough that
    each summary line stays one line."""
    return subprocess.run(
        [sys.executable, "-m", "scanner", target, "--json", "-", "--no-html"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "400"},
    )


# --- the disks and trees, built once per module ---------------------------------------------------


@pytest.fixture(scope="module")
def disk_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """`disk_of(variant)`: the variant's GPT disk image (rendered on first use)."""
    base = tmp_path_factory.mktemp("windows-disks")
    built: dict[str, Path] = {}

    def disk(variant: str) -> Path:
        if variant not in built:
            built[variant] = render_disk(system_of(variant), base / f"{variant}.img")
        return built[variant]

    return disk


@pytest.fixture(scope="module")
def disk_report(disk_of: Callable[[str], Path]) -> Callable[[str], Report]:
    """`disk_report(variant)`: the in-process `disk:` scan of the variant's disk."""
    reports: dict[str, Report] = {}

    def report(variant: str) -> Report:
        if variant not in reports:
            reports[variant] = scan(f"disk:{disk_of(variant)}")
        return reports[variant]

    return report


@pytest.fixture(scope="module")
def tree_of(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, bool], Path]:
    """`tree_of(variant, lower)`: the variant's volume as a directory, cased as Windows cases it
    or with every name lower-cased."""
    base = tmp_path_factory.mktemp("windows-trees")
    built: dict[tuple[str, bool], Path] = {}

    def tree(variant: str, lower: bool) -> Path:
        if (variant, False) not in built:
            built[variant, False] = render_tree(system_of(variant), base / variant)
        if lower and (variant, True) not in built:
            copy = shutil.copytree(built[variant, False], base / f"{variant}-lower")
            built[variant, True] = lower_cased(copy)
        return built[variant, lower]

    return tree


# --- 1. disk: each variant fails exactly its checks -------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_windows_disk_fails_exactly_the_checks_its_image_breaks(
    disk_report: Callable[[str], Report], variant: str
) -> None:
    report = disk_report(variant)
    assert report.errors == ()
    assert report.target.platform == "windows"
    fails = expected_failures(variant)
    expected = {c.id: "fail" if c.id in fails else "pass" for c in windows_checks()}
    # Pending updates are found by a Windows Update search on a running instance only.
    expected[UPDATES] = "skip"
    assert windows_statuses(report) == expected, summaries(report)
    # A Windows volume is judged by the Windows checks alone.
    assert {r.id for r in report.results} == set(expected)
    assert report.verdict is (Verdict.FAIL if fails else Verdict.PASS)
    assert report.target.details["os"].startswith("Microsoft Windows Server")


def test_the_compliant_disk_names_what_it_read(disk_report: Callable[[str], Report]) -> None:
    details = disk_report("compliant").target.details
    assert details["contents"].startswith("a Windows system volume")
    assert details["mounts"]["/"].startswith("NTFS file system on partition 3")
    assert details["os"] == (
        "Microsoft Windows Server 2022 Datacenter (build 20348.2849, 64-bit, Server)"
    )


# --- 2. the offline form agrees with the live form ------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_disk_and_a_booted_instance_of_it_are_judged_alike(
    disk_report: Callable[[str], Report], variant: str
) -> None:
    system = system_of(variant)
    offline = {r.id: (r.status.value, r.summary) for r in disk_report(variant).results}
    live = live_outcomes(system)
    judged_by_both = {
        i
        for i in live
        if i != UPDATES and "skip" not in (live[i][0], offline.get(i, ("skip", ""))[0])
    }
    # Every Windows check but the update search is judged by both forms: none is left out.
    assert judged_by_both == {c.id for c in windows_checks()} - {UPDATES}
    disagreements = {
        i: {"live": live[i], "offline": offline[i]}
        for i in sorted(judged_by_both)
        if live[i][0] != offline[i][0]
    }
    assert disagreements == {}
    assert live[UPDATES][0] == "pass" and offline[UPDATES][0] == "skip"


# --- 3. the command line on a disk image ----------------------------------------------------------


@pytest.mark.parametrize(("variant", "exit_code"), [("compliant", 0), ("rdp_denied", 1)])
def test_the_command_line_judges_a_windows_disk_image(
    disk_of: Callable[[str], Path], tmp_path: Path, variant: str, exit_code: int
) -> None:
    done = amiscan_cli(tmp_path, f"disk:{disk_of(variant)}")
    assert done.returncode == exit_code, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["target"]["kind"] == "disk"
    assert data["target"]["platform"] == "windows"
    statuses = {r["id"]: r["status"] for r in data["results"]}
    # The command line judges against today (it has no --scan-date): the end-of-support check
    # is left to the in-process scans, which fix the day.
    statuses.pop(SUPPORTED)
    assert {i for i, s in statuses.items() if s == "fail"} == expected_failures(variant)
    assert "error" not in statuses.values()
    assert statuses[UPDATES] == "skip"


# --- 4. dir: of the volume's files, cased or lower-cased ------------------------------------------


def test_a_lower_cased_tree_really_is_lower_cased(tree_of: Callable[[str, bool], Path]) -> None:
    root = tree_of("compliant", True)
    assert (root / "windows/system32/config/system").is_file()
    assert (root / "program files/amazon/ec2launch/ec2launch.exe").is_file()
    assert not (root / "Windows").exists()
    assert all(p.name == p.name.lower() for p in root.rglob("*"))


@pytest.mark.parametrize("lower", [False, True], ids=["cased", "lower-cased"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_a_directory_of_the_volume_gives_the_statuses_of_its_disk(
    disk_report: Callable[[str], Report],
    tree_of: Callable[[str, bool], Path],
    variant: str,
    lower: bool,
) -> None:
    report = scan(f"dir:{tree_of(variant, lower)}")
    assert report.errors == ()
    assert report.target.platform == "windows"
    # A directory has no partitions, so no BitLocker signature to look for: skipped, not passed.
    expected = {**windows_statuses(disk_report(variant)), BITLOCKER: "skip"}
    assert windows_statuses(report) == expected, summaries(report)
    bitlocker = next(r for r in report.results if r.id == BITLOCKER)
    assert "disk image" in bitlocker.summary


# --- 5. snapshot: and ami-… --no-launch -------------------------------------------------------------


# The compliant image, and one whose verdict lies in the disk's second data partition.
@pytest.mark.parametrize("variant", ["compliant", "bitlocker_volume"])
def test_a_windows_snapshot_and_ami_without_launch_give_the_statuses_of_the_disk(
    disk_of: Callable[[str], Path],
    disk_report: Callable[[str], Report],
    moto: Moto,
    moto_ebs: Any,
    moto_env: None,
    variant: str,
) -> None:
    expected = windows_statuses(disk_report(variant))
    snapshot = upload_snapshot(moto_ebs, disk_of(variant))

    report = scan(f"snapshot:{snapshot}")
    assert report.errors == ()
    assert report.target.platform == "windows"
    assert windows_statuses(report) == expected, summaries(report)
    assert "blocks" in report.target.details["read"]

    image = register_image(
        moto.client(),
        name="Windows_Server-2022-seller",
        platform="windows",
        platform_details="Windows",
        snapshot_id=snapshot,
    )
    report = scan(image, options(no_launch=True))
    assert report.errors == ()
    assert report.target.platform == "windows"
    assert windows_statuses(report) == expected, summaries(report)
    image_checks = {c.id for c in load_checks().values() if c.platform is Platform.IMAGE}
    judged = {r.id: r.status.value for r in report.results}
    assert image_checks and image_checks <= set(judged)
    assert set(judged) == image_checks | set(expected)
    assert report.target.details["snapshots"] == [snapshot]
    # Nothing was launched to judge it.
    assert moto.client().describe_instances()["Reservations"] == []


# --- 6. damaged inputs ----------------------------------------------------------------------------


def truncate_system(root: Path) -> None:
    hive = root / CONFIG_DIR / "SYSTEM"
    hive.write_bytes(hive.read_bytes()[:6000])


def dirty_system(root: Path) -> None:
    """SYSTEM as a crash leaves it: the secondary sequence number is behind the primary (changes
    in the transaction logs), the header checksum still right."""
    hive = root / CONFIG_DIR / "SYSTEM"
    data = bytearray(hive.read_bytes())
    primary, secondary = struct.unpack_from("<II", data, 4)
    assert primary == secondary
    struct.pack_into("<I", data, 4, primary + 1)
    struct.pack_into("<I", data, 508, checksum(bytes(data)))
    hive.write_bytes(bytes(data))


def sam_without_remote_desktop_users(root: Path) -> None:
    keys = {
        path: values
        for path, values in sam_keys(compliant()).items()
        if not path.endswith((rf"\{RDP_USERS_ALIAS}", rf"\{RDP_USERS_NAME}"))
    }
    assert len(keys) == len(sam_keys(compliant())) - 2
    write_hive(root / CONFIG_DIR / "SAM", keys)


Damage = Callable[[Path], None]

DAMAGED: dict[str, tuple[Damage, frozenset[str], tuple[str, ...]]] = {
    # name: (damage, checks that must be `error`, words their one reason must hold)
    "truncated SYSTEM": (
        truncate_system,
        NEEDS_SYSTEM,
        ("SYSTEM registry hive", "truncated", "6000 bytes"),
    ),
    "dirty SYSTEM": (dirty_system, NEEDS_SYSTEM, ("SYSTEM registry hive", "transaction logs")),
    "SAM without Remote Desktop Users": (
        sam_without_remote_desktop_users,
        frozenset({RDP_USERS}),
        ("SAM", RDP_USERS_ALIAS, "Remote Desktop Users"),
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_hive_is_an_error_said_in_one_line(
    tree_of: Callable[[str, bool], Path], tmp_path: Path, damage: str
) -> None:
    damaged, must_error, words = DAMAGED[damage]
    root = shutil.copytree(tree_of("compliant", False), tmp_path / "volume")
    damaged(root)
    done = amiscan_cli(tmp_path, f"dir:{root}")
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "error"
    assert data["target"]["platform"] == "windows"
    statuses = {r["id"]: r["status"] for r in data["results"]}
    errored = {i for i, s in statuses.items() if s == "error"}
    assert must_error <= errored
    if damage == "SAM without Remote Desktop Users":
        # The accounts fact is read whole from the SAM: the guest check may share its error.
        assert errored <= must_error | {"windows.accounts.guest"}
    else:
        assert errored == must_error
    # Whatever does not need the damaged hive is still judged (and passes: nothing else is bad).
    assert all(
        s == "pass" for i, s in statuses.items() if i not in errored | {UPDATES, BITLOCKER}
    ), statuses
    assert statuses[UPDATES] == statuses[BITLOCKER] == "skip"
    # One reason, said once, in the report and on the terminal.
    reasons = {u["reason"] for u in data["unjudged"]}
    assert len(reasons) == 1, reasons
    (reason,) = reasons
    assert all(word in reason for word in words), reason
    assert "\n" not in reason
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("could not judge")]
    assert len(lines) == 1, done.stderr
    assert reason in lines[0]
