"""A `FileSource` over file systems read from a disk image: the checks' view of a `disk:` or
`snapshot:` target, identical in behaviour to `ImageRoot` over a mounted copy of the same root.

Paths resolve component by component inside the image: a symlink's target, absolute or
relative, resolves against the image's root, `..` never climbs above it, and a directory that
is a mount point (from the image's /etc/fstab) continues on the mounted file system.
"""

from __future__ import annotations

import functools
import io
import posixpath
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from scanner.disk.device import DiskError
from scanner.disk.filesystem import FileSystem, Kind, Node
from scanner.fs import (
    LIST_LIMIT,
    READ_LIMIT,
    FileRead,
    ReadRefused,
    TooManyEntries,
    WalkBounds,
    WalkedFile,
)

# As in ImageRoot and Linux: a chain longer than this is a loop.
_MAX_SYMLINKS = 40
# A symlink target longer than this is not a path any system would follow (PATH_MAX).
_MAX_LINK = 4096
# Directories whose name → inode maps are kept; a lookup-heavy fact re-reads few directories.
_DIRECTORY_CACHE = 64


def _decode(name: bytes) -> str:
    # As os.fsdecode does on Linux: bytes that are not UTF-8 survive the round trip.
    return name.decode("utf-8", errors="surrogateescape")


def _encode(name: str) -> bytes:
    return name.encode("utf-8", errors="surrogateescape")


@dataclass(frozen=True)
class _Located:
    """Where a guest path ends: its file system, its inode, and the canonical guest path."""

    fs: FileSystem
    node: Node
    path: str


class DiskTree:
    """Guest files read from file systems on a disk image, without mounting anything."""

    def __init__(self, root: FileSystem, description: str) -> None:
        self.description = description
        self._mounts: dict[str, FileSystem] = {"/": root}
        self._directories: OrderedDict[tuple[int, int], dict[bytes, int]] = OrderedDict()
        self._folded: dict[tuple[int, int], dict[bytes, int]] = {}

    @property
    def mounts(self) -> dict[str, FileSystem]:
        """Guest mount point → file system, "/" first."""
        return dict(self._mounts)

    def mount(self, point: str, fs: FileSystem) -> None:
        """Attach `fs` at the guest directory `point` (it need not exist on the parent)."""
        self._mounts[posixpath.normpath("/" + point.lstrip("/"))] = fs
        self._directories.clear()
        self._folded.clear()

    # --- resolution -------------------------------------------------------------------------

    def _root_of(self, path: str) -> _Located:
        fs = self._mounts[path]
        return _Located(fs, self._node(fs, fs.root), path)

    @staticmethod
    def _node(fs: FileSystem, inode: int) -> Node:
        try:
            return fs.node(inode)
        except DiskError as exc:
            raise ReadRefused(str(exc)) from None

    def _children(self, fs: FileSystem, directory: int) -> dict[bytes, int]:
        key = (id(fs), directory)
        cached = self._directories.get(key)
        if cached is not None:
            self._directories.move_to_end(key)
            return cached
        children: dict[bytes, int] = {}
        try:
            for name, inode in fs.entries(directory):
                children[name] = inode
                if len(children) > LIST_LIMIT:
                    raise TooManyEntries(f"a directory holds more than {LIST_LIMIT} entries")
        except DiskError as exc:
            raise ReadRefused(str(exc)) from None
        self._directories[key] = children
        while len(self._directories) > _DIRECTORY_CACHE:
            self._directories.popitem(last=False)
        return children

    def _lookup(self, fs: FileSystem, directory: int, name: bytes) -> int | None:
        """The inode a directory holds under `name`. On a file system that compares names
        without case (NTFS, as Windows does), an exact match first, then a case-folded one."""
        children = self._children(fs, directory)
        inode = children.get(name)
        fold = getattr(fs, "fold", None) if getattr(fs, "case_insensitive", False) else None
        if inode is not None or fold is None:
            return inode
        key = (id(fs), directory)
        folded = self._folded.get(key)
        if folded is None:
            folded = {}
            for child, number in children.items():
                folded.setdefault(fold(child), number)
            self._folded[key] = folded
            while len(self._folded) > _DIRECTORY_CACHE:
                self._folded.pop(next(iter(self._folded)))
        return folded.get(fold(name))

    def _locate(self, path: str, follow_last: bool = True) -> _Located | None:
        """The file a guest path names, or None when it does not exist.

        ReadRefused when the image's structures on the way cannot be read: an unreadable
        directory is never taken for an absent file.
        """
        pending = [p for p in path.split("/") if p]
        trail: list[_Located] = [self._root_of("/")]
        links = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if len(trail) > 1:
                    trail.pop()
                continue
            here = trail[-1]
            if here.node.kind is not Kind.DIRECTORY:
                return None
            child_path = posixpath.join(here.path, part)
            if child_path in self._mounts:
                trail.append(self._root_of(child_path))
                continue
            inode = self._lookup(here.fs, here.node.inode, _encode(part))
            if inode is None:
                return None
            node = self._node(here.fs, inode)
            if node.kind is Kind.SYMLINK and (pending or follow_last):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise FileNotFoundError(f"too many levels of symbolic links: {path}")
                target = self._link_target(here.fs, node)
                if target.startswith("/"):
                    trail = [trail[0]]
                pending = [p for p in target.split("/") if p] + pending
                continue
            trail.append(_Located(here.fs, node, child_path))
        return trail[-1]

    def _link_target(self, fs: FileSystem, node: Node) -> str:
        if node.size > _MAX_LINK:
            raise ReadRefused(f"a symbolic link's target is {node.size} bytes; not followed")
        try:
            return _decode(fs.read_link(node.inode)[:_MAX_LINK])
        except DiskError as exc:
            raise ReadRefused(str(exc)) from None

    def _regular(self, path: str) -> _Located:
        found = self._locate(path)
        if found is None:
            raise FileNotFoundError(path)
        if found.node.kind is not Kind.FILE:
            raise IsADirectoryError(f"{path} is not a regular file")
        return found

    def _read(self, found: _Located, offset: int, length: int) -> bytes:
        try:
            return found.fs.read(found.node.inode, offset, length)
        except DiskError as exc:
            raise ReadRefused(str(exc)) from None

    # --- FileSource -------------------------------------------------------------------------

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        return self.read_head(path, READ_LIMIT if limit is None else limit).content

    def read_head(self, path: str, limit: int) -> FileRead:
        found = self._regular(path)
        size = found.node.size
        content = self._read(found, 0, min(limit, size))
        if len(content) != min(limit, size):
            raise ReadRefused(f"{path}: the image holds {len(content)} of its {size} bytes")
        return FileRead(content, size, size <= limit)

    def open_binary(self, path: str) -> BinaryIO:
        return self._stream(self._regular(path))

    def _locate_or_none(self, path: str) -> _Located | None:
        # As ImageRoot: a symlink loop makes a path absent for queries (reads still raise).
        try:
            return self._locate(path)
        except FileNotFoundError:
            return None

    def is_file(self, path: str) -> bool:
        found = self._locate_or_none(path)
        return found is not None and found.node.kind is Kind.FILE

    def is_dir(self, path: str) -> bool:
        found = self._locate_or_none(path)
        return found is not None and found.node.kind is Kind.DIRECTORY

    def size(self, path: str) -> int:
        found = self._locate_or_none(path)
        if found is None or found.node.kind is not Kind.FILE:
            raise FileNotFoundError(path)
        return found.node.size

    def list_dir(self, path: str) -> list[str]:
        found = self._locate_or_none(path)
        if found is None or found.node.kind is not Kind.DIRECTORY:
            return []
        names = {_decode(n) for n in self._children(found.fs, found.node.inode)}
        names.update(self._mount_names(found.path))
        return sorted(names)

    def _mount_names(self, directory: str) -> set[str]:
        """Mount points directly below `directory` (they show even where the parent lacks them)."""
        return {
            posixpath.basename(point)
            for point in self._mounts
            if point != "/" and posixpath.dirname(point) == directory
        }

    def walk_files(self, top: str, bounds: WalkBounds | None = None) -> Iterator[str]:
        for found in self._walk(top, bounds if bounds is not None else WalkBounds()):
            yield found.path

    def walk_entries(self, top: str, bounds: WalkBounds) -> Iterator[WalkedFile]:
        for found in self._walk(top, bounds):
            yield WalkedFile(found.path, found.node.size, functools.partial(self._stream, found))

    def _stream(self, found: _Located) -> BinaryIO:
        return io.BufferedReader(_FileStream(self, found), 256 * 1024)

    def _walk(self, top: str, bounds: WalkBounds) -> Iterator[_Located]:
        """Each regular file below `top`, located (a read needs no path resolution)."""
        start = self._locate_or_none(top)
        if start is None or start.node.kind is not Kind.DIRECTORY:
            return
        # Iterative, depth-first in sorted order like ImageRoot.walk_files; symlinks are never
        # followed, so the walk cannot leave the image or loop.
        stack: list[tuple[_Located, int]] = [(start, 0)]
        while stack:
            here, depth = stack.pop()
            try:
                children = self._children(here.fs, here.node.inode)
            except ReadRefused:
                bounds.skip_unreadable(here.path)
                continue
            entries: list[_Located] = []
            for name, inode in children.items():
                if not bounds.count():
                    return
                child_path = posixpath.join(here.path, _decode(name))
                if child_path in self._mounts:
                    continue
                try:
                    entries.append(_Located(here.fs, self._node(here.fs, inode), child_path))
                except ReadRefused:
                    bounds.skip_unreadable(child_path)
            for point in self._mount_names(here.path):
                if not bounds.count():
                    return
                entries.append(self._root_of(posixpath.join(here.path, point)))
            entries.sort(key=lambda entry: entry.path)
            subdirs: list[_Located] = []
            for child in entries:
                if child.node.kind is Kind.DIRECTORY:
                    subdirs.append(child)
                elif child.node.kind is Kind.FILE:
                    yield child
            if subdirs and depth + 1 > bounds.max_depth:
                for directory in subdirs:
                    bounds.skip_deep(directory.path)
                continue
            stack.extend((d, depth + 1) for d in reversed(subdirs))


class _FileStream(io.RawIOBase):
    """One regular file of the image, streamed (for `stream_lines`)."""

    def __init__(self, tree: DiskTree, found: _Located) -> None:
        super().__init__()
        self._tree = tree
        self._found = found
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self._found.node.size - self._offset)
        if wanted <= 0:
            return 0
        data = self._tree._read(self._found, self._offset, wanted)
        if not data:
            raise ReadRefused(f"{self._found.path}: the image ends inside the file")
        buffer[: len(data)] = data
        self._offset += len(data)
        return len(data)
