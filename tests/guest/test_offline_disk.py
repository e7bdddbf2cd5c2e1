"""The real Debian 12 guest's disk, judged without launching: its ext4 root file system as a
bare image, inside a GPT disk converted to qcow2, and as an EBS snapshot read through moto's EBS
direct API (directly, and as an AMI's root with --no-launch). Every path gives the status the
offline `dir:` scan of the same tree gives, on every check.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.aws import Moto, register_image
from tests.diskimages import convert, make_gpt_disk, upload_snapshot
from tests.guest.conftest import TIMINGS
from tests.guest.image import GuestImage
from tests.guest.scan import Scan, run_amiscan

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def as_directory(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    return run_amiscan(f"dir:{guest_image.root}", workdir=tmp_path_factory.mktemp("dir"))


@pytest.fixture(scope="module")
def gpt_disk(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    started = time.monotonic()
    disk = make_gpt_disk(guest_image.rootfs, tmp_path_factory.mktemp("gpt") / "disk.img")
    TIMINGS["offline: GPT disk of the root file system"] = time.monotonic() - started
    return disk


def _timed(label: str, *args: str, workdir: Path, env: dict[str, str] | None = None) -> Scan:
    started = time.monotonic()
    scan = run_amiscan(*args, workdir=workdir, env=env)
    TIMINGS[label] = time.monotonic() - started
    return scan


def test_the_root_file_system_image_gives_the_directorys_statuses(
    as_directory: Scan, guest_image: GuestImage, tmp_path: Path
) -> None:
    scan = _timed("offline: disk: ext4 image", f"disk:{guest_image.rootfs}", workdir=tmp_path)
    assert scan.statuses == as_directory.statuses
    assert scan.returncode == as_directory.returncode


def test_a_gpt_qcow2_of_the_disk_gives_the_directorys_statuses(
    as_directory: Scan, gpt_disk: Path, tmp_path: Path
) -> None:
    qcow2 = convert(gpt_disk, "qcow2", tmp_path / "disk.qcow2")
    scan = _timed("offline: disk: GPT qcow2", f"disk:{qcow2}", workdir=tmp_path)
    assert scan.statuses == as_directory.statuses
    assert "qcow2" in scan.report["target"]["format"]


def test_the_snapshot_and_the_ami_without_launch_give_the_directorys_statuses(
    as_directory: Scan, gpt_disk: Path, moto: Moto, tmp_path: Path
) -> None:
    ebs = moto.client("ebs")
    started = time.monotonic()
    snapshot = upload_snapshot(ebs, gpt_disk)
    TIMINGS["offline: upload to moto's EBS"] = time.monotonic() - started
    env = moto.env()
    scan = _timed("offline: snapshot:", f"snapshot:{snapshot}", workdir=tmp_path / "snap", env=env)
    assert scan.statuses == as_directory.statuses
    read = scan.report["target"]["read"]
    print(f"snapshot read: {read}")
    image = register_image(moto.client(), snapshot_id=snapshot)
    ami = _timed(
        "offline: ami --no-launch", image, "--no-launch", workdir=tmp_path / "ami", env=env
    )
    linux = {i: s for i, s in ami.statuses.items() if not i.startswith("image.")}
    assert linux == as_directory.statuses
    assert moto.client().describe_instances()["Reservations"] == []
