"""Target kinds, chosen from the target string (testinfra-style: the scheme picks the backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from scanner.targets.base import ScanAborted, ScanOptions, Target, TargetError

if TYPE_CHECKING:
    from scanner.targets.winrm import WinRMSettings

__all__ = ["ScanAborted", "ScanOptions", "Target", "TargetError", "resolve_target"]

USAGE = (
    "ami-…, ssh://[user@]host[:port], winrm[s]://[user@]host[:port], local, "
    "dir:PATH (or an existing directory), disk:PATH (or an existing file), snapshot:snap-…"
)


def resolve_target(text: str, options: ScanOptions, winrm: WinRMSettings | None = None) -> Target:
    """The target a command-line string names; TargetError (exit 2) when it names none."""
    if text.startswith("ami-"):
        from scanner.targets.ami import AmiTarget

        return AmiTarget(text, options)
    if text.startswith(("winrm://", "winrms://")):
        from scanner.targets.winrm import WinRMTarget

        return WinRMTarget(text, options, winrm)
    if text.startswith("ssh://"):
        from scanner.targets.ssh import SSHTarget

        return SSHTarget(text, options)
    if text == "local":
        from scanner.targets.local import LocalTarget

        return LocalTarget()
    if text.startswith("dir:"):
        from scanner.targets.directory import DirectoryTarget

        if not text[4:]:
            raise TargetError("dir: needs the path of an image root, e.g. dir:/mnt/image")
        return DirectoryTarget(Path(text[4:]))
    if text.startswith("disk:"):
        from scanner.targets.disk import DiskTarget

        if not text[5:]:
            raise TargetError("disk: needs the path of a disk image, e.g. disk:build/image.qcow2")
        return DiskTarget(Path(text[5:]))
    if text.startswith("snapshot:"):
        from scanner.targets.snapshot import SnapshotTarget

        return SnapshotTarget(text[9:], options)
    if Path(text).is_dir():
        from scanner.targets.directory import DirectoryTarget

        return DirectoryTarget(Path(text))
    if Path(text).is_file():
        from scanner.targets.disk import DiskTarget

        return DiskTarget(Path(text))
    raise TargetError(f"{text!r} is not a target amiscan knows; use one of: {USAGE}")
