"""What an offline file system holds: a Linux root, a Windows system volume, or something else.

An offline target (a `dir:`, and later a disk image or a snapshot) must hold an operating system
before any check judges it: checks run on a boot partition or a data volume would "pass" for
want of anything to fail. `recognise` looks only at a few well-known paths through a
`FileSource`, so every offline source shares it; anything that is not an operating system is
named (an EFI system partition, a /boot partition, an empty or data volume) with what to do.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from scanner.errors import ScanAborted
from scanner.fs import FileSource

# How far the recogniser looks: it names what it found, it does not inventory the volume.
_MAX_LISTED = 4096
_MAX_EFI_DEPTH = 3
_MAX_SUBDIRS = 64

MOUNT_ROOT_ADVICE = "mount the image's root file system and scan that directory"
_MAX_NAME = 80


class Contents(StrEnum):
    LINUX = "linux"
    WINDOWS = "windows"
    EFI = "efi-system-partition"
    BOOT = "boot-partition"
    EMPTY = "empty"
    DATA = "data-volume"


@dataclass(frozen=True)
class Recognised:
    """What a file system holds, the paths that show it, and what to do when it is no OS."""

    contents: Contents
    found: str
    evidence: tuple[str, ...] = ()
    advice: str = ""

    @property
    def is_operating_system(self) -> bool:
        return self.contents in (Contents.LINUX, Contents.WINDOWS)

    @property
    def message(self) -> str:
        """One line: what was found (with the paths that show it) and what to do."""
        shown = f" ({', '.join(_printable(e) for e in self.evidence)})" if self.evidence else ""
        return f"{self.found}{shown}" + (f": {self.advice}" if self.advice else "")


def require_operating_system(files: FileSource) -> Recognised:
    """The recognised Linux root or Windows system volume; ScanAborted (exit 3) naming what is
    there instead."""
    found = recognise(files)
    if found.is_operating_system:
        return found
    raise ScanAborted(found.message)


def _printable(text: str) -> str:
    # Names come from the image: no control sequence reaches a terminal, no name floods a line.
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text)
    return cleaned if len(cleaned) <= _MAX_NAME else cleaned[: _MAX_NAME - 1] + "…"


def recognise(files: FileSource) -> Recognised:
    """Name what the file system holds; only a Linux root or a Windows system volume is an OS."""
    linux = _linux_root(files, "/")
    if linux is not None:
        return Recognised(Contents.LINUX, "a Linux root", linux)
    windows = _windows_volume(files, "/")
    if windows is not None:
        return Recognised(Contents.WINDOWS, "a Windows system volume", windows)
    names = _names(files, "/")
    efi = _efi_partition(files, names)
    if efi:
        return Recognised(
            Contents.EFI, "an EFI system partition, not an operating system", efi, MOUNT_ROOT_ADVICE
        )
    boot = _boot_partition(files, names)
    if boot:
        return Recognised(
            Contents.BOOT, "a /boot partition, not an operating system", boot, MOUNT_ROOT_ADVICE
        )
    if not [n for n in names if n != "lost+found"]:
        what = "an empty file system (only lost+found)" if names else "an empty directory"
        return Recognised(
            Contents.EMPTY,
            what,
            advice="mount the image's root file system there (read-only) and scan again",
        )
    nested = _nested_root(files, names)
    if nested:
        return Recognised(
            Contents.DATA,
            "no operating system at the top, but one a level down",
            (f"/{nested}/",),
            advice="scan that directory instead",
        )
    return Recognised(Contents.DATA, _data_volume(files), advice=MOUNT_ROOT_ADVICE)


def _names(files: FileSource, path: str) -> list[str]:
    return files.list_dir(path)[:_MAX_LISTED]


def _linux_root(files: FileSource, top: str) -> tuple[str, ...] | None:
    release = next(
        (p for p in ("etc/os-release", "usr/lib/os-release") if files.is_file(_join(top, p))),
        None,
    )
    if release is None or not files.is_file(_join(top, "etc/passwd")):
        return None
    return ("/" + release, "/etc/passwd")


def find_case_insensitive(files: FileSource, top: str, relative: str) -> str | None:
    """The path of `relative` below `top`, matching each name case-insensitively (NTFS, FAT)."""
    current = top
    for part in relative.strip("/").split("/"):
        wanted = part.lower()
        match = next((n for n in _names(files, current) if n.lower() == wanted), None)
        if match is None:
            return None
        current = _join(current, match)
    return current


def _windows_volume(files: FileSource, top: str) -> tuple[str, ...] | None:
    system32 = find_case_insensitive(files, top, "Windows/System32")
    if system32 is None or not files.is_dir(system32):
        return None
    hive = find_case_insensitive(files, system32, "config/SYSTEM")
    if hive is None or not files.is_file(hive):
        return None
    return (system32, hive)


def _efi_partition(files: FileSource, names: list[str]) -> tuple[str, ...]:
    efi = next((n for n in names if n.lower() == "efi"), None)
    if efi is None or not files.is_dir("/" + efi):
        return ()
    shown: list[str] = []
    subdirs = [n for n in _names(files, "/" + efi) if files.is_dir(f"/{efi}/{n}")]
    shown += [f"/{efi}/{n}/" for n in subdirs[:3]]
    binaries = list(_efi_binaries(files, "/" + efi))
    shown += binaries[:2]
    return tuple(shown) if subdirs or binaries else ()


def _efi_binaries(files: FileSource, top: str) -> Iterator[str]:
    # Breadth-first over a few levels: EFI/BOOT/BOOTX64.EFI, EFI/<vendor>/grubx64.efi.
    level = [top]
    for _ in range(_MAX_EFI_DEPTH):
        below: list[str] = []
        for directory in level:
            for name in _names(files, directory):
                path = _join(directory, name)
                if name.lower().endswith(".efi") and files.is_file(path):
                    yield path
                elif files.is_dir(path):
                    below.append(path)
        level = below[:_MAX_SUBDIRS]


_KERNEL_PREFIXES = ("vmlinuz", "initrd.img-", "initramfs-", "initrd-", "system.map-")
_BOOT_DIRS = ("grub", "grub2", "loader", "syslinux", "extlinux")


def _boot_partition(files: FileSource, names: list[str]) -> tuple[str, ...]:
    kernels = [
        "/" + n for n in names if n.lower().startswith(_KERNEL_PREFIXES) and files.is_file("/" + n)
    ]
    loaders = [f"/{n}/" for n in names if n.lower() in _BOOT_DIRS and files.is_dir("/" + n)]
    if not kernels and not loaders:
        return ()
    return tuple(kernels[:3] + loaders[:2])


def _nested_root(files: FileSource, names: list[str]) -> str | None:
    """A directory just below the top that is itself an OS root (a mount one level too high)."""
    for name in names[:_MAX_SUBDIRS]:
        top = "/" + name
        if not files.is_dir(top):
            continue
        if _linux_root(files, top) is not None or _windows_volume(files, top) is not None:
            return name
    return None


def _data_volume(files: FileSource) -> str:
    has_release = any(files.is_file(p) for p in ("/etc/os-release", "/usr/lib/os-release"))
    has_passwd = files.is_file("/etc/passwd")
    if has_release and not has_passwd:
        return "not a whole Linux root (/etc/os-release, but no /etc/passwd)"
    if has_passwd and not has_release:
        return "not a whole Linux root (/etc/passwd, but no /etc/os-release or /usr/lib/os-release)"
    return "a data volume (no /etc/os-release or /etc/passwd)"


def _join(top: str, relative: str) -> str:
    return posixpath.join(top, relative)
