"""The interface a file-system reader offers to `scanner.disk.tree`: inodes, not paths.

Path resolution (symlinks resolved inside the image, `..` never above the root, mount points)
lives once in the tree, so each file-system reader only decodes its own structures.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


class Kind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    # Devices, FIFOs, sockets: listed, never opened.
    OTHER = "other"


@dataclass(frozen=True)
class Node:
    """One inode: its number, what it is and its size in bytes."""

    inode: int
    kind: Kind
    size: int


class FileSystem(Protocol):
    """A read-only file system on a `BlockDevice`.

    Every method raises `scanner.disk.device.DiskError` when the structures it reads are corrupt
    (an extent past the volume's end, a directory block that does not parse): never an
    IndexError or a struct.error, and never a silently shorter file.
    """

    # e.g. "ext4 file system on partition 1 of disk.img"
    description: str
    # The root directory's inode.
    root: int
    # Why the on-disk state may be behind what the running system last saw (a journal that needs
    # recovery, an XFS log that is not clean), or "" when it is clean. Journals are not replayed.
    dirty: str

    def node(self, inode: int) -> Node: ...

    def entries(self, directory: int) -> Iterator[tuple[bytes, int]]:
        """(name, inode) for each entry of a directory, without "." and "..", in on-disk order."""
        ...

    def read(self, inode: int, offset: int, length: int) -> bytes:
        """Bytes of a regular file; holes and unwritten extents read as zeros; fewer than
        `length` only at the file's end."""
        ...

    def read_link(self, inode: int) -> bytes:
        """A symlink's target."""
        ...
