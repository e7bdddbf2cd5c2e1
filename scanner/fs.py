"""Read-only views of a guest's files: an image root on disk, or a snapshot taken from a live host.

Checks judge files through `FileSource`, so the same code judges a mounted image (offline) and the
files a live scan copied back in its one round trip.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

# A symlink chain longer than this is a loop (Linux gives up at 40 as well).
_MAX_SYMLINKS = 40


class FileSource(Protocol):
    """Files of the guest, addressed by absolute guest paths ("/etc/shadow")."""

    description: str

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """Contents of a regular file (at most `limit` bytes); FileNotFoundError when absent."""
        ...

    def is_file(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def size(self, path: str) -> int:
        """Size in bytes of a regular file; FileNotFoundError when absent."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names in a directory, sorted; empty when it does not exist."""
        ...

    def walk_files(self, top: str) -> Iterator[str]:
        """Regular files below `top`, without following symlinked directories."""
        ...


def read_text(source: FileSource, path: str, limit: int | None = None) -> str:
    """A file decoded as UTF-8; bytes that are not UTF-8 become U+FFFD, never an exception."""
    return source.read_bytes(path, limit).decode("utf-8", errors="replace")


def read_text_or_none(source: FileSource, path: str, limit: int | None = None) -> str | None:
    try:
        return read_text(source, path, limit)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


def _name_matches(name: str, pattern: str) -> bool:
    # As in the shell, a wildcard never matches a leading dot unless the pattern spells it.
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def glob(source: FileSource, pattern: str) -> list[str]:
    """Guest paths matching a shell-style pattern (`*`, `?`, `[..]` within one component)."""
    parts = [p for p in posixpath.normpath(pattern).split("/") if p]
    found = ["/"]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        next_found: list[str] = []
        for base in found:
            if any(ch in part for ch in "*?["):
                names = [n for n in source.list_dir(base) if _name_matches(n, part)]
            else:
                names = [part]
            for name in names:
                candidate = posixpath.join(base, name)
                if last:
                    if source.is_file(candidate) or source.is_dir(candidate):
                        next_found.append(candidate)
                elif source.is_dir(candidate):
                    next_found.append(candidate)
        found = next_found
    return sorted(set(found))


class ImageRoot:
    """An image's root file system mounted on this machine, read strictly inside that root.

    Every path is resolved component by component; a symlink's target, absolute or relative,
    is resolved against the image root, so a link to /etc/shadow reads the image's shadow file,
    never this machine's, and `..` cannot climb above the root.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotADirectoryError(f"{root} is not a directory")
        self.description = f"image root {self.root}"

    def _resolve(self, path: str) -> Path:
        """The host path for a guest path, after resolving every symlink inside the root."""
        pending = [p for p in path.split("/") if p]
        resolved: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            host = self.root.joinpath(*resolved, part)
            try:
                mode = host.lstat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                # The rest cannot exist; return a path that is inside the root and absent.
                return self.root.joinpath(*resolved, part, *pending)
            if stat.S_ISLNK(mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise FileNotFoundError(f"too many levels of symbolic links: {path}")
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        host = self._resolve(path)
        if not host.is_file():
            if host.exists():
                raise IsADirectoryError(path)
            raise FileNotFoundError(path)
        with host.open("rb") as handle:
            return handle.read() if limit is None else handle.read(limit)

    def is_file(self, path: str) -> bool:
        try:
            return self._resolve(path).is_file()
        except OSError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            return self._resolve(path).is_dir()
        except OSError:
            return False

    def size(self, path: str) -> int:
        host = self._resolve(path)
        if not host.is_file():
            raise FileNotFoundError(path)
        return host.stat().st_size

    def list_dir(self, path: str) -> list[str]:
        try:
            host = self._resolve(path)
            return sorted(os.listdir(host)) if host.is_dir() else []
        except OSError:
            return []

    def walk_files(self, top: str) -> Iterator[str]:
        try:
            start = self._resolve(top)
        except OSError:
            return
        if not start.is_dir():
            return
        guest_top = "/" + "/".join(start.relative_to(self.root).parts)
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames.sort()
            rel = Path(dirpath).relative_to(start)
            for name in sorted(filenames):
                host = Path(dirpath, name)
                # A symlinked file may point anywhere; regular files only.
                if host.is_symlink() or not host.is_file():
                    continue
                yield posixpath.join(guest_top, *rel.parts, name)


@dataclass
class SnapshotFile:
    content: bytes
    size: int
    truncated: bool = False


@dataclass
class MemoryTree:
    """Files copied back from a live host by the collection script (see `scanner.collect`)."""

    description: str = "live host"
    files: dict[str, SnapshotFile] = field(default_factory=dict)

    def add(self, path: str, content: bytes, size: int | None = None) -> None:
        path = posixpath.normpath("/" + path.lstrip("/"))
        full = len(content) if size is None else size
        self.files[path] = SnapshotFile(content, full, truncated=full > len(content))

    def _dirs(self) -> set[str]:
        dirs = {"/"}
        for path in self.files:
            parent = posixpath.dirname(path)
            while parent not in dirs:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        return dirs

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        entry = self.files.get(posixpath.normpath(path))
        if entry is None:
            raise FileNotFoundError(path)
        return entry.content if limit is None else entry.content[:limit]

    def is_file(self, path: str) -> bool:
        return posixpath.normpath(path) in self.files

    def is_dir(self, path: str) -> bool:
        return posixpath.normpath(path) in self._dirs()

    def size(self, path: str) -> int:
        entry = self.files.get(posixpath.normpath(path))
        if entry is None:
            raise FileNotFoundError(path)
        return entry.size

    def list_dir(self, path: str) -> list[str]:
        base = posixpath.normpath(path)
        prefix = base.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self.files if p.startswith(prefix)}
        return sorted(n for n in names if n)

    def walk_files(self, top: str) -> Iterator[str]:
        prefix = posixpath.normpath(top).rstrip("/") + "/"
        yield from sorted(p for p in self.files if p.startswith(prefix))
