"""Disk images made from image trees for tests, with real tools and no root.

A tree (e.g. tests.imagetree's compliant root) becomes an ext4 file system (`mkfs.ext4 -d`) or
an XFS one (`mkfs.xfs -p` with a protofile written from the tree), then a partitioned disk
(`sgdisk` for GPT, `sfdisk` for MBR or 4 KiB-sector GPT), then a qcow2 or VMDK
(`qemu-img convert`), or an EBS snapshot in moto (StartSnapshot, PutSnapshotBlock).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.aws import with_ebs_block_size

MiB = 1024 * 1024
# `cryptsetup` arguments that write a LUKS2 header to a plain file (no loop device needed), with
# a throwaway key and a cheap key derivation; the key file (or "-") and the image follow.
LUKS_FORMAT = (
    "luksFormat",
    "-q",
    "--type",
    "luks2",
    "--pbkdf",
    "pbkdf2",
    "--pbkdf-force-iterations",
    "1000",
    "--key-file",
)
EBS_BLOCK = 512 * 1024
TOOLS = {
    "mkfs.ext4": "e2fsprogs",
    "mkfs.xfs": "xfsprogs",
    "sgdisk": "gdisk",
    "sfdisk": "fdisk",
    "fdisk": "fdisk",
    "qemu-img": "qemu-utils",
    "mkntfs": "ntfs-3g",
    "wimlib-imagex": "wimtools",
    "mkfs.vfat": "dosfstools",
    "hivexregedit": "libwin-hivex-perl",
    "hivexsh": "libhivex-bin",
    "hivexget": "libhivex-bin",
    # Not a disk tool: BusyBox's applets stand in for a minimal guest's (Alpine) userland.
    "busybox": "busybox",
}


def tool(name: str) -> str:
    """The tool's path; the test is skipped (or fails in CI) when it is missing."""
    for directory in ("/usr/sbin", "/sbin", "/usr/bin", "/bin"):
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    # CI turns this skip into a failure (AMISCAN_REQUIRE_DISK_TOOLS, tests/conftest.py).
    pytest.skip(f"{name} is not installed (Debian package {TOOLS.get(name, name)})")


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_ext4(tree: Path, image: Path, size_mib: int = 64, *options: str) -> Path:
    image.unlink(missing_ok=True)
    _run(tool("mkfs.ext4"), "-q", "-F", "-d", str(tree), *options, str(image), f"{size_mib}M")
    return image


def _protofile(tree: Path) -> str:
    """mkfs.xfs's protofile for a tree (names with spaces cannot be expressed: refused)."""
    lines = ["/dev/null", "0 0"]

    def mode_field(kind: str, info: os.stat_result) -> str:
        suid = "u" if info.st_mode & stat.S_ISUID else "-"
        sgid = "g" if info.st_mode & stat.S_ISGID else "-"
        return f"{kind}{suid}{sgid}{stat.S_IMODE(info.st_mode) & 0o777:03o}"

    def walk(directory: Path, depth: int) -> None:
        for entry in sorted(os.scandir(directory), key=lambda e: e.name):
            if any(ch.isspace() for ch in entry.name):
                raise ValueError(f"a protofile cannot name {entry.path!r}")
            info = entry.stat(follow_symlinks=False)
            owner = f"{info.st_uid} {info.st_gid}"
            indent = " " * depth
            if entry.is_symlink():
                lines.append(
                    f"{indent}{entry.name} {mode_field('l', info)} {owner} {os.readlink(entry.path)}"
                )
            elif entry.is_dir():
                lines.append(f"{indent}{entry.name} {mode_field('d', info)} {owner}")
                walk(Path(entry.path), depth + 1)
                lines.append(f"{indent}$")
            elif stat.S_ISFIFO(info.st_mode):
                lines.append(f"{indent}{entry.name} {mode_field('p', info)} {owner}")
            elif entry.is_file():
                lines.append(f"{indent}{entry.name} {mode_field('-', info)} {owner} {entry.path}")

    root = tree.stat()
    lines.append(f"{'d--'}{stat.S_IMODE(root.st_mode) & 0o777:03o} {root.st_uid} {root.st_gid}")
    walk(tree, 1)
    lines.append("$")
    return "\n".join(lines) + "\n"


def make_xfs(tree: Path, image: Path, size_mib: int = 320, *options: str) -> Path:
    image.unlink(missing_ok=True)
    proto = image.with_suffix(".proto")
    proto.write_text(_protofile(tree))
    with image.open("wb") as handle:
        handle.truncate(size_mib * MiB)
    _run(tool("mkfs.xfs"), "-q", "-f", "-p", str(proto), *options, str(image))
    return image


def _copy_into(source: Path, disk: Path, offset: int) -> None:
    """Copy a file system image into a disk at `offset`, keeping the disk sparse."""
    with source.open("rb") as src, disk.open("r+b") as dst:
        position = 0
        while chunk := src.read(MiB):
            if chunk.count(0) != len(chunk):
                dst.seek(offset + position)
                dst.write(chunk)
            position += len(chunk)


def make_gpt_disk(fs_image: Path, disk: Path, sector: int = 512, extra_mib: int = 4) -> Path:
    """A GPT disk: a 1 MiB BIOS boot partition, then the file system as partition 2."""
    size = fs_image.stat().st_size
    disk.unlink(missing_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(size + (2 + extra_mib) * MiB)
    if sector == 512:
        _run(
            tool("sgdisk"),
            "-n",
            "1:2048:+1M",
            "-t",
            "1:ef02",
            "-n",
            f"2:4096:+{size // 1024}K",
            "-t",
            "2:8300",
            "-c",
            "2:root",
            str(disk),
        )
        start = 4096 * 512
    else:
        # This util-linux's sfdisk has no --sector-size and sgdisk assumes 512 for files;
        # fdisk -b writes a 4 KiB-sector GPT (LBA 1 at byte 4096) to a plain file.
        answers = f"g\nn\n1\n256\n+1M\nn\n2\n512\n+{size // 1024}K\nw\n"
        subprocess.run(
            [tool("fdisk"), "-b", str(sector), str(disk)],
            input=answers.encode(),
            check=True,
            capture_output=True,
        )
        start = 512 * sector
    _copy_into(fs_image, disk, start)
    return disk


def make_mbr_disk(fs_image: Path, disk: Path) -> Path:
    """An MBR disk: the file system as the first logical partition inside an extended one."""
    size = fs_image.stat().st_size
    disk.unlink(missing_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(size + 8 * MiB)
    sectors = size // 512
    script = (
        "label: dos\n"
        "start=2048, size=2048, type=83\n"
        f"start=4096, size={sectors + 4096}, type=5\n"
        f"start=6144, size={sectors}, type=83\n"
    )
    subprocess.run(
        [tool("sfdisk"), "-q", str(disk)], input=script.encode(), check=True, capture_output=True
    )
    _copy_into(fs_image, disk, 6144 * 512)
    return disk


def convert(raw: Path, fmt: str, out: Path) -> Path:
    """`qemu-img convert` to qcow2 ("qcow2", "qcow2-compressed") or VMDK ("vmdk-sparse",
    "vmdk-stream")."""
    args = {
        "qcow2": ["-O", "qcow2"],
        "qcow2-compressed": ["-O", "qcow2", "-c"],
        "vmdk-sparse": ["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        "vmdk-stream": ["-O", "vmdk", "-o", "subformat=streamOptimized"],
    }[fmt]
    _run(tool("qemu-img"), "convert", "-f", "raw", *args, str(raw), str(out))
    return out


def upload_snapshot(ebs: Any, disk: Path, volume_gib: int | None = None) -> str:
    """The disk written to an EBS snapshot through the EBS direct APIs (non-zero blocks only,
    as EBS itself lists only written blocks)."""
    size = disk.stat().st_size
    gib = volume_gib or max(1, -(-size // (1024 * MiB)))
    snapshot = ebs.start_snapshot(VolumeSize=gib, Description="amiscan test disk")["SnapshotId"]
    written = 0
    with disk.open("rb") as handle:
        index = 0
        while block := handle.read(EBS_BLOCK):
            block = block.ljust(EBS_BLOCK, b"\0")
            if block.count(0) != EBS_BLOCK:
                ebs.put_snapshot_block(
                    SnapshotId=snapshot,
                    BlockIndex=index,
                    BlockData=block,
                    DataLength=EBS_BLOCK,
                    Checksum=base64.b64encode(hashlib.sha256(block).digest()).decode(),
                    ChecksumAlgorithm="SHA256",
                )
                written += 1
            index += 1
    ebs.complete_snapshot(SnapshotId=snapshot, ChangedBlocksCount=written)
    with_ebs_block_size(snapshot)
    return str(snapshot)


# --- LVM2 (fixtures made by lvm2 itself: tests/scanner/disk/make_lvm_fixture.sh) -----------

LVM_DATA = Path(__file__).parent / "scanner" / "disk" / "data"


@dataclass
class LvmFixture:
    pvs: list[bytearray]
    # LV name -> its content, already written into the PVs at lvm2's own mapping.
    contents: dict[str, bytes]
    # LV name -> the LV byte offsets where one segment ends and the next begins.
    boundaries: dict[str, list[int]]


def lvm_fixture(stem: str, contents: dict[str, bytes], pv_files: list[str]) -> LvmFixture:
    report = json.loads((LVM_DATA / f"{stem}.json").read_text())
    pvs = [bytearray(gzip.decompress((LVM_DATA / name).read_bytes())) for name in pv_files]
    pe_start = {pv["pv_name"]: int(pv["pe_start"].rstrip("B")) for pv in report["pvs"]}
    boundaries: dict[str, list[int]] = {}
    for seg in report["lvs"]:
        if seg["segtype"] != "linear" or seg["lv_name"] not in contents:
            continue
        extent = int(seg["vg_extent_size"].rstrip("B"))
        pv_name, pe_range = seg["seg_pe_ranges"].split(":")
        first, last = (int(x) for x in pe_range.split("-"))
        lv_offset = int(seg["seg_start_pe"]) * extent
        length = (last - first + 1) * extent
        assert length == int(seg["seg_size_pe"]) * extent
        where = pe_start[pv_name] + first * extent
        data = contents[seg["lv_name"]][lv_offset : lv_offset + length]
        pvs[int(pv_name.removeprefix("pv"))][where : where + length] = data
        if lv_offset:
            boundaries.setdefault(seg["lv_name"], []).append(lv_offset)
    return LvmFixture(pvs, contents, boundaries)
