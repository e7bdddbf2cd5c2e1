"""Recognising what an offline file system holds, from a few well-known paths."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.errors import ScanAborted
from scanner.fs import ImageRoot, MemoryTree
from scanner.osdetect import Contents, Recognised, recognise, require_operating_system
from tests.imagetree import AL2023_OS_RELEASE, ImageTree

PASSWD = "root:x:0:0:root:/root:/bin/bash\n"

Build = Callable[[ImageTree], None]


def _linux(tree: ImageTree) -> None:
    tree.write("/etc/os-release", AL2023_OS_RELEASE)
    tree.write("/etc/passwd", PASSWD)


def _linux_usr_lib_release(tree: ImageTree) -> None:
    tree.write("/usr/lib/os-release", AL2023_OS_RELEASE)
    tree.write("/etc/passwd", PASSWD)


def _linux_absolute_release_link(tree: ImageTree) -> None:
    # Resolved inside the image, as on the running system.
    tree.write("/usr/lib/os-release", AL2023_OS_RELEASE)
    tree.symlink("/etc/os-release", "/usr/lib/os-release")
    tree.write("/etc/passwd", PASSWD)


def _windows(tree: ImageTree) -> None:
    tree.write("/Windows/System32/config/SYSTEM", "regf")
    tree.mkdir("/Program Files")


def _windows_other_case(tree: ImageTree) -> None:
    tree.write("/WINDOWS/system32/Config/system", "regf")


def _efi(tree: ImageTree) -> None:
    tree.write("/EFI/BOOT/BOOTX64.EFI", "MZ")
    tree.write("/EFI/amazon/grubx64.efi", "MZ")


def _efi_lowercase_vendor_dir_only(tree: ImageTree) -> None:
    tree.mkdir("/efi/ubuntu")


def _boot(tree: ImageTree) -> None:
    tree.write("/vmlinuz-6.1.112-122.189.amzn2023.x86_64", "kernel")
    tree.write("/initramfs-6.1.112-122.189.amzn2023.x86_64.img", "initrd")
    tree.write("/grub2/grub.cfg", "set default=0\n")


def _boot_loader_entries_only(tree: ImageTree) -> None:
    tree.write("/loader/entries/amzn.conf", "title Amazon Linux\n")


def _only_lost_and_found(tree: ImageTree) -> None:
    tree.mkdir("/lost+found")


def _data(tree: ImageTree) -> None:
    tree.write("/postgresql/PG_VERSION", "15\n")
    tree.write("/etc/app.conf", "x = 1\n")


def _release_without_passwd(tree: ImageTree) -> None:
    tree.write("/etc/os-release", AL2023_OS_RELEASE)


def _windows_without_hive(tree: ImageTree) -> None:
    tree.mkdir("/Windows/System32/config")


def _release_link_leaving_the_image(tree: ImageTree) -> None:
    # A link to the scanning machine's os-release must not make the image a Linux root.
    tree.symlink("/etc/os-release", "/usr/lib/os-release")
    tree.write("/etc/passwd", PASSWD)


def _nested_root(tree: ImageTree) -> None:
    _linux(ImageTree(tree.root / "p1"))
    tree.mkdir("/lost+found")


CASES = [
    pytest.param(_linux, Contents.LINUX, "a Linux root (/etc/os-release, /etc/passwd)", id="linux"),
    pytest.param(
        _linux_usr_lib_release,
        Contents.LINUX,
        "a Linux root (/usr/lib/os-release, /etc/passwd)",
        id="linux-usr-lib-os-release",
    ),
    pytest.param(
        _linux_absolute_release_link,
        Contents.LINUX,
        "a Linux root (/etc/os-release",
        id="linux-absolute-os-release-link",
    ),
    pytest.param(
        _windows,
        Contents.WINDOWS,
        "a Windows system volume (/Windows/System32, /Windows/System32/config/SYSTEM)",
        id="windows",
    ),
    pytest.param(
        _windows_other_case,
        Contents.WINDOWS,
        "(/WINDOWS/system32, /WINDOWS/system32/Config/system)",
        id="windows-names-in-another-case",
    ),
    pytest.param(
        _efi,
        Contents.EFI,
        "an EFI system partition, not an operating system (/EFI/BOOT/, /EFI/amazon/, "
        "/EFI/BOOT/BOOTX64.EFI, /EFI/amazon/grubx64.efi): mount the image's root file system",
        id="efi-system-partition",
    ),
    pytest.param(
        _efi_lowercase_vendor_dir_only,
        Contents.EFI,
        "an EFI system partition, not an operating system (/efi/ubuntu/)",
        id="efi-lowercase-vendor-directory",
    ),
    pytest.param(
        _boot,
        Contents.BOOT,
        "a /boot partition, not an operating system (/initramfs-6.1.112-122.189.amzn2023"
        ".x86_64.img, /vmlinuz-6.1.112-122.189.amzn2023.x86_64, /grub2/)",
        id="boot-partition",
    ),
    pytest.param(
        _boot_loader_entries_only,
        Contents.BOOT,
        "a /boot partition, not an operating system (/loader/)",
        id="boot-partition-systemd-boot",
    ),
    pytest.param(lambda tree: None, Contents.EMPTY, "an empty directory: mount", id="empty"),
    pytest.param(
        _only_lost_and_found,
        Contents.EMPTY,
        "an empty file system (only lost+found)",
        id="fresh-file-system",
    ),
    pytest.param(
        _data,
        Contents.DATA,
        "a data volume (no /etc/os-release or /etc/passwd): mount the image's root file system "
        "and scan that directory",
        id="data-volume",
    ),
    pytest.param(
        _release_without_passwd,
        Contents.DATA,
        "not a whole Linux root (/etc/os-release, but no /etc/passwd)",
        id="os-release-without-passwd",
    ),
    pytest.param(
        _windows_without_hive,
        Contents.DATA,
        "a data volume",
        id="windows-directory-without-its-system-hive",
    ),
    pytest.param(
        _release_link_leaving_the_image,
        Contents.DATA,
        "not a whole Linux root (/etc/passwd, but no /etc/os-release",
        id="os-release-link-out-of-the-image",
    ),
    pytest.param(
        _nested_root,
        Contents.DATA,
        "no operating system at the top, but one a level down (/p1/): scan that directory",
        id="root-one-level-down",
    ),
]


@pytest.mark.parametrize(("build", "contents", "message"), CASES)
def test_recognise_names_what_the_file_system_holds(
    tmp_path: Path, build: Build, contents: Contents, message: str
) -> None:
    tree = ImageTree(tmp_path / "volume")
    tree.root.mkdir()
    build(tree)
    found = recognise(ImageRoot(tree.root))
    assert found.contents is contents, found.message
    assert message in found.message


def test_only_a_linux_root_or_a_windows_volume_is_an_operating_system() -> None:
    systems = {c for c in Contents if Recognised(c, "found").is_operating_system}
    assert systems == {Contents.LINUX, Contents.WINDOWS}


def test_recognise_works_on_any_file_source_not_only_a_directory() -> None:
    tree = MemoryTree()
    tree.add("/etc/os-release", AL2023_OS_RELEASE.encode())
    tree.add("/etc/passwd", PASSWD.encode())
    assert recognise(tree).contents is Contents.LINUX


def test_names_from_the_image_reach_the_message_without_control_characters(
    tmp_path: Path,
) -> None:
    tree = ImageTree(tmp_path / "esp")
    tree.write("/EFI/\x1b[31mevil/grubx64.efi", "MZ")
    message = recognise(ImageRoot(tree.root)).message
    assert "\x1b" not in message
    assert "/EFI/?[31mevil/" in message


def test_require_operating_system_returns_a_linux_root(tmp_path: Path) -> None:
    tree = ImageTree(tmp_path / "root")
    tree.root.mkdir()
    _linux(tree)
    assert require_operating_system(ImageRoot(tree.root)).contents is Contents.LINUX


def test_require_operating_system_returns_a_windows_system_volume(tmp_path: Path) -> None:
    tree = ImageTree(tmp_path / "c")
    tree.root.mkdir()
    _windows(tree)
    assert require_operating_system(ImageRoot(tree.root)).contents is Contents.WINDOWS


def test_require_operating_system_aborts_on_anything_else_with_one_line(tmp_path: Path) -> None:
    tree = ImageTree(tmp_path / "boot")
    tree.root.mkdir()
    _boot(tree)
    with pytest.raises(ScanAborted) as aborted:
        require_operating_system(ImageRoot(tree.root))
    assert "\n" not in str(aborted.value)
    assert str(aborted.value).startswith("a /boot partition")
