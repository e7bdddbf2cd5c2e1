"""Known-bad variants of the guest's root tree for offline scans, at the cost of hard links.

A variant is `cp -al` of the cached tree (directories copied, files hard-linked) with only the
changed files replaced. A hard-linked file is shared with the cache, so it is never written in
place: a change unlinks it first and writes a new file with the old owner and mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


class VariantTree:
    """A throwaway copy of an image root; paths given to its methods are guest paths."""

    def __init__(self, base: Path, root: Path) -> None:
        # Hard links need one file system: the caller puts `root` next to the cached tree.
        subprocess.run(["cp", "-al", str(base), str(root)], check=True)
        self.root = root

    def path(self, guest_path: str) -> Path:
        return self.root / guest_path.lstrip("/")

    def read(self, guest_path: str) -> str:
        return self.path(guest_path).read_text()

    def write(
        self, guest_path: str, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)
    ) -> None:
        """Write a file (breaking its link to the cache), keeping an existing file's owner/mode."""
        target = self.path(guest_path)
        if target.exists():
            info = target.stat()
            mode, owner = info.st_mode & 0o7777, (info.st_uid, info.st_gid)
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        os.chown(target, *owner)
        target.chmod(mode)

    def replace(self, guest_path: str, old: str, new: str) -> None:
        text = self.read(guest_path)
        assert old in text, f"{guest_path} has no {old!r}: the image changed, update the variant"
        self.write(guest_path, text.replace(old, new, 1))

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
