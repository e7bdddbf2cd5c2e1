"""Target kinds, chosen from the target string (testinfra-style: the scheme picks the backend)."""

from __future__ import annotations

from pathlib import Path

from scanner.targets.base import ScanAborted, ScanOptions, Target, TargetError

__all__ = ["ScanAborted", "ScanOptions", "Target", "TargetError", "resolve_target"]

USAGE = "ssh://[user@]host[:port], local, dir:PATH (or an existing directory)"


def resolve_target(text: str, options: ScanOptions) -> Target:
    """The target a command-line string names; TargetError (exit 2) when it names none."""
    if text.startswith("ssh://"):
        from scanner.targets.ssh import SSHTarget

        return SSHTarget(text, options)
    if text == "local":
        from scanner.targets.local import LocalTarget

        return LocalTarget()
    if text.startswith("dir:"):
        from scanner.targets.directory import DirectoryTarget

        return DirectoryTarget(Path(text[4:]))
    if Path(text).is_dir():
        from scanner.targets.directory import DirectoryTarget

        return DirectoryTarget(Path(text))
    raise TargetError(f"{text!r} is not a target amiscan knows; use one of: {USAGE}")
