"""`disk:PATH` faults and edge cases: each a one-line reason and the documented exit code."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from scanner.cancel import Cancel
from scanner.model import Report, Status, Verdict
from scanner.orchestrate import scan_one
from scanner.registry import load_checks
from scanner.targets import resolve_target
from scanner.targets.base import ScanOptions, TargetError, checks_for
from tests.diskimages import LUKS_FORMAT, MiB, make_ext4, make_gpt_disk, tool
from tests.imagetree import build_compliant
from tests.verdicts import assert_one_line_error


def scan(path: Path | str) -> Report:
    options = ScanOptions(known_hosts=None)
    target = resolve_target(f"disk:{path}", options)
    checks = checks_for(target, list(load_checks().values()))
    return scan_one(target, checks, options, Cancel(), lambda _: None).report


@pytest.fixture
def ext4(tmp_path: Path) -> Path:
    return make_ext4(build_compliant(tmp_path / "root").root, tmp_path / "root.ext4")


@pytest.fixture
def gpt(ext4: Path, tmp_path: Path) -> Path:
    return make_gpt_disk(ext4, tmp_path / "disk.img")


def test_a_missing_path_or_a_directory_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        resolve_target(f"disk:{tmp_path / 'nope.img'}", ScanOptions())
    with pytest.raises(TargetError, match="is not a file"):
        resolve_target(f"disk:{tmp_path}", ScanOptions())
    with pytest.raises(TargetError, match="needs the path"):
        resolve_target("disk:", ScanOptions())


def test_a_clean_image_passes_and_says_what_it_read(gpt: Path) -> None:
    report = scan(gpt)
    assert report.verdict is Verdict.PASS
    details = report.target.details
    assert details["format"] == "raw"
    assert any("ext4 file system on partition 2" in v for v in details["volumes"])
    assert "MiB of" in details["read"]


def test_a_truncated_image_is_one_line_and_exit_3(gpt: Path) -> None:
    os.truncate(gpt, 3 * MiB)
    assert_one_line_error(scan(gpt), "past the end")


def test_a_corrupt_superblock_is_named(ext4: Path) -> None:
    with ext4.open("r+b") as handle:
        handle.seek(1024 + 24)  # s_log_block_size: absurd
        handle.write(struct.pack("<I", 40))
    report = scan(ext4)
    assert report.verdict is Verdict.ERROR
    (error,) = report.errors
    assert "ext" in error and "\n" not in error


def test_a_partition_past_the_end_of_the_disk_is_named(gpt: Path) -> None:
    size = gpt.stat().st_size
    with gpt.open("r+b") as handle:
        handle.truncate(size - 5 * MiB)
    assert_one_line_error(scan(gpt), "partition 2", "past the end")


def test_an_unknown_file_system_says_what_the_disk_holds(tmp_path: Path) -> None:
    blob = tmp_path / "random.img"
    blob.write_bytes(os.urandom(2 * MiB))
    assert_one_line_error(scan(blob), "no volume holds a Linux root")


def test_a_file_system_without_an_os_is_named_like_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "www").mkdir(parents=True)
    (data / "www/index.html").write_text("<p>hello</p>\n")
    report = scan(make_ext4(data, tmp_path / "data.ext4", 16))
    assert_one_line_error(report, "no volume holds a Linux root", "ext4 file system")


def test_a_dirty_journal_is_noted_on_the_offline_results(ext4: Path) -> None:
    subprocess.run(
        [tool("debugfs"), "-w", "-R", "feature needs_recovery", str(ext4)],
        check=True,
        capture_output=True,
    )
    report = scan(ext4)
    assert report.verdict is Verdict.PASS
    assert any("journal" in n and "recovery" in n for n in report.notes), report.notes


@pytest.fixture
def luks_volume(tmp_path: Path) -> Path:
    cryptsetup = shutil.which("cryptsetup") or shutil.which("cryptsetup", path="/usr/sbin:/sbin")
    if not cryptsetup:
        pytest.skip("cryptsetup is not installed (Debian package cryptsetup-bin)")
    volume = tmp_path / "luks.img"
    volume.write_bytes(b"\0" * 24 * MiB)
    subprocess.run(
        [cryptsetup, *LUKS_FORMAT, "-", str(volume)],
        input=b"not-a-real-passphrase",
        check=True,
        capture_output=True,
    )
    return volume


def _two_partitions(first: Path, second: Path, disk: Path) -> Path:
    sizes = [first.stat().st_size // MiB, second.stat().st_size // MiB]
    with disk.open("wb") as handle:
        handle.truncate((sum(sizes) + 4) * MiB)
    subprocess.run(
        [tool("sgdisk"), "-n", f"1:2048:+{sizes[0]}M", "-n", f"2:0:+{sizes[1]}M", str(disk)],
        check=True,
        capture_output=True,
    )
    with disk.open("r+b") as handle:
        handle.seek(MiB)
        handle.write(first.read_bytes())
        handle.seek((1 + sizes[0]) * MiB)
        handle.write(second.read_bytes())
    return disk


def test_an_encrypted_data_volume_fails_the_unencrypted_check_with_evidence(
    ext4: Path, luks_volume: Path, tmp_path: Path
) -> None:
    report = scan(_two_partitions(ext4, luks_volume, tmp_path / "disk.img"))
    result = {r.id: r for r in report.results}["linux.filesystem.unencrypted"]
    assert result.status is Status.FAIL
    assert any("partition 2" in e.text and "LUKS" in e.text for e in result.evidence)
    assert report.verdict is Verdict.FAIL


def test_an_encrypted_root_still_fails_the_unencrypted_check(
    luks_volume: Path, tmp_path: Path
) -> None:
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz").write_bytes(b"kernel")
    boot_fs = make_ext4(boot, tmp_path / "boot.ext4", 8)
    report = scan(_two_partitions(boot_fs, luks_volume, tmp_path / "disk.img"))
    by_id = {r.id: r for r in report.results}
    assert by_id["linux.filesystem.unencrypted"].status is Status.FAIL
    assert report.verdict is Verdict.FAIL
    (error,) = report.errors
    assert "LUKS" in error and "no volume holds a Linux root" in error


def test_a_bitlocker_system_volume_fails_the_bitlocker_check_and_no_linux_one(
    tmp_path: Path,
) -> None:
    from tests.windowsystem import BITLOCKER_SIGNATURE

    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "bootmgr").write_bytes(b"MZ")
    boot_fs = make_ext4(boot, tmp_path / "boot.ext4", 8)
    encrypted = tmp_path / "c.img"
    sector = bytearray(512)
    sector[0:3], sector[3:11], sector[510:512] = b"\xeb\x58\x90", BITLOCKER_SIGNATURE, b"\x55\xaa"
    encrypted.write_bytes(bytes(sector) + bytes(16 * MiB - 512))
    report = scan(_two_partitions(boot_fs, encrypted, tmp_path / "disk.img"))
    by_id = {r.id: r for r in report.results}
    # BitLocker names the platform: the Windows check fails, no Linux check is listed.
    assert report.target.platform == "windows"
    assert by_id["windows.filesystem.bitlocker"].status is Status.FAIL
    assert "partition 2" in by_id["windows.filesystem.bitlocker"].summary
    assert not [check for check in by_id if check.startswith("linux.")]
    assert report.verdict is Verdict.FAIL


def test_a_root_on_btrfs_says_amiscan_does_not_read_btrfs(tmp_path: Path) -> None:
    mkfs = shutil.which("mkfs.btrfs") or shutil.which("mkfs.btrfs", path="/usr/sbin:/sbin")
    if not mkfs:
        pytest.skip("mkfs.btrfs is not installed (Debian package btrfs-progs)")
    root = build_compliant(tmp_path / "root").root
    image = tmp_path / "btrfs.img"
    image.write_bytes(b"")
    os.truncate(image, 128 * MiB)
    subprocess.run(
        [mkfs, "-q", "--mixed", "--rootdir", str(root), str(image)],
        check=True,
        capture_output=True,
    )
    assert_one_line_error(scan(image), "no volume holds a Linux root", "btrfs")


def test_a_windows_disk_is_judged_as_windows_and_a_damaged_hive_is_an_error(
    tmp_path: Path,
) -> None:
    from tests.ntfsimage import make_ntfs

    tree = tmp_path / "windows"
    (tree / "Windows/System32/config").mkdir(parents=True)
    (tree / "Windows/System32/config/SYSTEM").write_bytes(b"regf" + bytes(4092))
    (tree / "Users/Public").mkdir(parents=True)
    volume = make_ntfs(tree, tmp_path / "windows.ntfs")
    report = scan(make_gpt_disk(volume, tmp_path / "disk.img"))
    assert report.target.platform == "windows"
    # No launch agent on the volume is a failure the files settle; the rest cannot be judged.
    assert report.verdict is Verdict.FAIL
    statuses = {r.id: r for r in report.results}
    assert all(check.startswith("windows.") for check in statuses)
    assert statuses["windows.rdp.enabled"].status is Status.ERROR
    assert "the header checksum does not match" in statuses["windows.rdp.enabled"].summary
    assert statuses["windows.accounts.guest"].status is Status.ERROR
    assert "SAM registry hive" in statuses["windows.accounts.guest"].summary
