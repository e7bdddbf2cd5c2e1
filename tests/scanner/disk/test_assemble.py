"""Assembling the guest tree: the root is the volume with an OS, and /etc/fstab attaches the
others by every name a guest may use for them (UUID, LABEL, PARTUUID, PARTLABEL, /dev paths)."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from scanner.disk.assemble import assemble, device_names
from scanner.disk.device import FileDevice, SliceDevice
from scanner.disk.volumes import Volume
from tests.diskimages import MiB, make_ext4, tool
from tests.imagetree import build_compliant

HOME_UUID = "6f1c9a1e-2b1d-4c55-9d7e-0a8c6a2f4b11"
HOME_PARTUUID = "0b6a2c4e-8f11-4d0a-9a3b-5c7d9e1f2a43"


def _disk(tmp_path: Path, fstab_line: str) -> Path:
    root = build_compliant(tmp_path / "root")
    root.append("/etc/fstab", fstab_line + "\n")
    home = tmp_path / "home"
    (home / "ec2-user").mkdir(parents=True)
    (home / "ec2-user/marker").write_text("on the home volume\n")
    root_fs = make_ext4(root.root, tmp_path / "root.ext4", 32)
    home_fs = make_ext4(home, tmp_path / "home.ext4", 8, "-U", HOME_UUID, "-L", "homefs")
    disk = tmp_path / "disk.img"
    with disk.open("wb") as handle:
        handle.truncate(44 * MiB)
    subprocess.run(
        [tool("sgdisk"), "-n", "1:2048:+32M", "-c", "1:rootpart", "-n", "2:0:+8M", "-c",
         "2:homepart", "-u", f"2:{HOME_PARTUUID.upper()}", str(disk)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with disk.open("r+b") as handle:
        handle.seek(MiB)
        handle.write(root_fs.read_bytes())
        handle.seek(33 * MiB)
        handle.write(home_fs.read_bytes())
    return disk


@pytest.mark.parametrize(
    "spec",
    [
        f"UUID={HOME_UUID}",
        f"UUID={HOME_UUID.upper()}",
        "LABEL=homefs",
        "PARTLABEL=homepart",
        f"/dev/disk/by-uuid/{HOME_UUID}",
        "/dev/xvda2",
        "/dev/nvme0n1p2",
        "/dev/sda2",
        f"PARTUUID={HOME_PARTUUID}",
    ],
)
def test_fstab_attaches_a_volume_by_any_name_the_guest_uses(tmp_path: Path, spec: str) -> None:
    disk = _disk(tmp_path, f"{spec}  /home  ext4  defaults  0 2")
    image = assemble([FileDevice(disk)])
    assert image.tree is not None
    assert image.tree.read_bytes("/home/ec2-user/marker") == b"on the home volume\n"
    assert not image.notes


def test_an_fstab_entry_for_a_volume_not_on_the_disks_is_noted(tmp_path: Path) -> None:
    disk = _disk(tmp_path, f"UUID={uuid.uuid4()}  /srv  xfs  defaults  0 2")
    image = assemble([FileDevice(disk)])
    assert image.tree is not None
    (note,) = image.notes
    assert "/etc/fstab mounts /srv" in note and "not on the disks read" in note


def test_device_names_follow_the_kernel_and_device_mapper() -> None:
    disk = FileDevice(Path("/dev/null"))
    part = SliceDevice(disk, 0, 0, "p")
    names = device_names(Volume(part, "ext", "", number=3), 1)
    assert {"/dev/xvdb3", "/dev/sdb3", "/dev/vdb3", "/dev/nvme1n1p3"} <= set(names)
    lv = device_names(Volume(part, "ext", "root", lv_path="vg-sys/lv-root"), 0)
    assert lv == ("/dev/mapper/vg--sys-lv--root", "/dev/vg-sys/lv-root")
    assert "/dev/xvda" in device_names(Volume(disk, "ext", ""), 0)
    # The AMI's block device mapping names the disk: the guest sees that letter.
    mapped = device_names(Volume(part, "xfs", "", number=1), 1, "/dev/sdf")
    assert {"/dev/xvdf1", "/dev/sdf1", "/dev/nvme1n1p1"} <= set(mapped)
