"""One verdict, every path: an image root judged as `dir:`, as `disk:` (each format, partition
scheme and file system), as `snapshot:` and as `ami-… --no-launch` (the disk uploaded to moto's
EBS direct API) gives the same status on every offline-judgeable check, clean and known-bad.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.cancel import Cancel
from scanner.orchestrate import scan_one
from scanner.registry import Check, load_checks
from scanner.targets import resolve_target
from scanner.targets.base import ScanOptions, checks_for
from tests.aws import REGION, Moto, register_image
from tests.diskimages import (
    MiB,
    convert,
    lvm_fixture,
    make_ext4,
    make_gpt_disk,
    make_mbr_disk,
    make_xfs,
    tool,
    upload_snapshot,
)
from tests.imagetree import ACCESS_KEY_ID, PUBLIC_KEY, SHA512_HASH, ImageTree, build_compliant

Statuses = dict[str, str]


@dataclass(frozen=True)
class Variant:
    name: str
    apply: Callable[[ImageTree], None]
    # Checks that must fail on this variant (and pass on the clean root).
    fails: tuple[str, ...]


def _password(tree: ImageTree) -> None:
    tree.set_sshd_option("PasswordAuthentication", "yes")


def _stray_key(tree: ImageTree) -> None:
    tree.write("/home/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)


def _root_password(tree: ImageTree) -> None:
    tree.set_shadow_password("root", SHA512_HASH)


def _aws_key(tree: ImageTree) -> None:
    tree.write("/root/.aws/credentials", f"[default]\naws_access_key_id = {ACCESS_KEY_ID}\n")


VARIANTS = (
    Variant("clean", lambda tree: None, ()),
    Variant("password-authentication", _password, ("linux.ssh.password-authentication",)),
    Variant("stray-key", _stray_key, ("linux.ssh.authorized-keys",)),
    # A root password is also an account with a password.
    Variant(
        "root-password",
        _root_password,
        ("linux.accounts.root-password", "linux.accounts.passwords"),
    ),
    Variant("aws-key", _aws_key, ("linux.secrets.aws-credentials",)),
)

# How each path turns a root tree into a target string (given a scratch directory).
Build = Callable[[Path, Path], str]


def _ext4_bare(root: Path, work: Path) -> str:
    return f"disk:{make_ext4(root, work / 'root.ext4')}"


def _ext4_gpt_qcow2(root: Path, work: Path) -> str:
    disk = make_gpt_disk(make_ext4(root, work / "root.ext4"), work / "disk.img")
    return f"disk:{convert(disk, 'qcow2-compressed', work / 'disk.qcow2')}"


def _ext4_mbr_vmdk(root: Path, work: Path) -> str:
    disk = make_mbr_disk(make_ext4(root, work / "root.ext4"), work / "disk.img")
    return f"disk:{convert(disk, 'vmdk-stream', work / 'disk.vmdk')}"


def _xfs_gpt_4k(root: Path, work: Path) -> str:
    fs = make_xfs(root, work / "root.xfs", 320, "-s", "size=4096")
    return f"disk:{make_gpt_disk(fs, work / 'disk.img', sector=4096)}"


def _xfs_gpt_vmdk(root: Path, work: Path) -> str:
    disk = make_gpt_disk(make_xfs(root, work / "root.xfs"), work / "disk.img")
    return f"disk:{convert(disk, 'vmdk-sparse', work / 'disk.vmdk')}"


DISK_PATHS: dict[str, Build] = {
    "ext4 bare raw": _ext4_bare,
    "ext4 GPT qcow2 compressed": _ext4_gpt_qcow2,
    "ext4 MBR logical VMDK streamOptimized": _ext4_mbr_vmdk,
    "XFS 4K-sector GPT raw": _xfs_gpt_4k,
    "XFS GPT VMDK sparse": _xfs_gpt_vmdk,
}


def _checks() -> list[Check]:
    return list(load_checks().values())


def _statuses(target_text: str, options: ScanOptions | None = None) -> tuple[Statuses, Any]:
    options = options or ScanOptions(region=REGION, known_hosts=None)
    target = resolve_target(target_text, options)
    checks = checks_for(target, _checks())
    report = scan_one(target, checks, options, Cancel(), lambda _: None).report
    assert not report.errors, report.errors
    return {r.id: r.status.value for r in report.results if not r.id.startswith("image.")}, report


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("trees")
    built = {}
    for variant in VARIANTS:
        tree = build_compliant(base / variant.name)
        variant.apply(tree)
        built[variant.name] = tree.root
    return built


@pytest.fixture(scope="module")
def expected(trees: dict[str, Path]) -> dict[str, Statuses]:
    return {name: _statuses(f"dir:{root}")[0] for name, root in trees.items()}


def test_the_variants_fail_exactly_their_own_checks(expected: dict[str, Statuses]) -> None:
    clean = expected["clean"]
    assert "fail" not in clean.values() and "error" not in clean.values()
    for variant in VARIANTS[1:]:
        changed = {i for i, s in expected[variant.name].items() if s != clean[i]}
        assert changed == set(variant.fails), variant.name
        assert all(expected[variant.name][i] == "fail" for i in variant.fails)


# Every variant through one ext4 and one XFS path; the clean root and one known-bad root through
# every other path (each variant costs an image build and a scan: the suite stays quick).
MATRIX = [
    (variant.name, path)
    for path in DISK_PATHS
    for variant in VARIANTS
    if path in ("ext4 GPT qcow2 compressed", "XFS 4K-sector GPT raw")
    or variant.name in ("clean", "stray-key")
]


@pytest.mark.parametrize(("variant", "path"), MATRIX)
def test_a_disk_image_gives_the_statuses_of_its_root_as_a_directory(
    trees: dict[str, Path], expected: dict[str, Statuses], tmp_path: Path, path: str, variant: str
) -> None:
    target = DISK_PATHS[path](trees[variant], tmp_path)
    statuses, report = _statuses(target)
    assert statuses == expected[variant]
    assert report.target.details["contents"].startswith("a Linux root")


@pytest.mark.parametrize("variant", ["clean", "stray-key", "aws-key"])
def test_a_snapshot_and_an_ami_without_launch_give_the_statuses_of_the_directory(
    trees: dict[str, Path],
    expected: dict[str, Statuses],
    tmp_path: Path,
    moto: Moto,
    moto_ebs: Any,
    moto_env: None,
    variant: str,
) -> None:
    disk = make_gpt_disk(make_ext4(trees[variant], tmp_path / "root.ext4"), tmp_path / "d.img")
    snapshot = upload_snapshot(moto_ebs, disk)
    statuses, report = _statuses(f"snapshot:{snapshot}")
    assert statuses == expected[variant]
    assert "blocks" in report.target.details["read"]
    image = register_image(moto.client(), snapshot_id=snapshot)
    options = ScanOptions(region=REGION, known_hosts=None, no_launch=True)
    statuses, report = _statuses(image, options)
    judged = {i: s for i, s in statuses.items() if s != "skip"}
    assert judged == {i: s for i, s in expected[variant].items() if s != "skip"}
    assert report.target.details["snapshots"] == [snapshot]
    # Nothing was launched to judge it.
    assert moto.client().describe_instances()["Reservations"] == []


def test_fstab_mounts_a_second_volume_where_the_guest_would(tmp_path: Path) -> None:
    """A stray key on a separate /home partition, mounted by LABEL, is still found."""
    root = build_compliant(tmp_path / "root")
    root.append("/etc/fstab", "LABEL=home  /home  ext4  defaults  0 2\n")
    home = ImageTree(tmp_path / "home")
    (tmp_path / "home").mkdir()
    home.write("/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)
    root_fs = make_ext4(root.root, tmp_path / "root.ext4", 64)
    home_fs = make_ext4(home.root, tmp_path / "home.ext4", 16, "-L", "home")
    disk = tmp_path / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(90 * MiB)
    subprocess.run(
        [tool("sgdisk"), "-n", "1:2048:+64M", "-n", "2:0:+16M", str(disk)],
        check=True,
        capture_output=True,
    )
    with disk.open("r+b") as handle:
        handle.seek(2048 * 512)
        handle.write(root_fs.read_bytes())
        handle.seek((2048 + 64 * 2048) * 512)
        handle.write(home_fs.read_bytes())
    statuses, report = _statuses(f"disk:{disk}")
    assert statuses["linux.ssh.authorized-keys"] == "fail"
    assert report.target.details["mounts"]["/home"].startswith("ext4 file system on partition 2")


def test_the_command_line_scans_a_plain_image_file(tmp_path: Path) -> None:
    root = build_compliant(tmp_path / "root")
    image = make_ext4(root.root, tmp_path / "root.ext4")
    done = subprocess.run(
        [sys.executable, "-m", "scanner", str(image), "--no-html", "--json", "-"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"kind": "disk"' in done.stdout


def test_a_root_on_lvm_with_home_on_another_logical_volume(tmp_path: Path) -> None:
    """RHEL's layout: the root and /home on logical volumes (lvm2's own metadata and mapping),
    /home mounted by its device-mapper name."""
    root = build_compliant(tmp_path / "root")
    root.append("/etc/fstab", "/dev/mapper/vg0-data  /home  ext4  defaults  0 2\n")
    home = tmp_path / "home"
    (home / "ec2-user/.ssh").mkdir(parents=True)
    (home / "ec2-user/.ssh/authorized_keys").write_text(PUBLIC_KEY + "\n")
    root_fs = make_ext4(root.root, tmp_path / "root.ext4", 8).read_bytes()
    home_fs = make_ext4(home, tmp_path / "home.ext4", 5).read_bytes()
    fixture = lvm_fixture("lvm-pv", {"root": root_fs, "data": home_fs}, ["lvm-pv.img.gz"])
    disk = tmp_path / "pv.img"
    disk.write_bytes(bytes(fixture.pvs[0]))
    statuses, report = _statuses(f"disk:{disk}")
    assert statuses["linux.ssh.authorized-keys"] == "fail"
    mounts = report.target.details["mounts"]
    assert "logical volume vg0/root" in mounts["/"]
    assert "logical volume vg0/data" in mounts["/home"]


def test_the_command_line_says_in_one_line_why_an_image_cannot_be_judged(tmp_path: Path) -> None:
    root = build_compliant(tmp_path / "root")
    disk = make_gpt_disk(make_ext4(root.root, tmp_path / "root.ext4"), tmp_path / "disk.img")
    truncated = tmp_path / "truncated.img"
    truncated.write_bytes(disk.read_bytes()[: 3 * MiB])
    done = subprocess.run(
        [sys.executable, "-m", "scanner", f"disk:{truncated}", "--no-html"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("amiscan:")]
    assert "partition 2" in line and "past the end of the disk" in line
    assert "Traceback" not in done.stderr
