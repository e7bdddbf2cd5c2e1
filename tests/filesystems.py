"""What the tests of the file-system readers (ext, XFS, NTFS) share: walking and reading a
whole tree through the FileSystem protocol, and a device that fails part-way as a snapshot
read can."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

from scanner.disk.device import BlockDevice, DiskError
from scanner.disk.filesystem import FileSystem, Kind

# A corrupt image may make a directory its own descendant: a walk goes no deeper than this.
MAX_WALK_DEPTH = 20


def walk(fs: FileSystem, inode: int, path: bytes = b"") -> Iterator[tuple[bytes, int]]:
    """(path, inode) of everything below a directory, depth first."""
    for name, child in fs.entries(inode):
        yield path + name, child
        if fs.node(child).kind is Kind.DIRECTORY:
            yield from walk(fs, child, path + name + b"/")


# What a test image holds: name → ("file", bytes) | ("dir", {...}) | ("link", target) | anything
# else for a special file (FIFO, device). Names and link targets are bytes, or text written as
# UTF-8.
ExpectedTree = Mapping[str, tuple[object, ...]] | Mapping[bytes, tuple[object, ...]]


def _encoded(text: object) -> bytes:
    return text if isinstance(text, bytes) else str(text).encode()


def assert_tree(fs: FileSystem, inode: int, expected: ExpectedTree, path: bytes = b"") -> int:
    """Asserts the directory at `inode` holds exactly `expected`, names, kinds, sizes, bytes
    and link targets; returns how many files it compared."""
    listed = list(fs.entries(inode))
    names = [name for name, _ in listed]
    assert len(names) == len(set(names)), path
    by_name = {_encoded(name): spec for name, spec in expected.items()}
    assert sorted(names) == sorted(by_name), path
    compared = 0
    for name, child in listed:
        spec = by_name[name]
        node = fs.node(child)
        where = path + b"/" + name
        if spec[0] == "file":
            content = spec[1]
            assert isinstance(content, bytes)
            assert (node.kind, node.size) == (Kind.FILE, len(content)), where
            assert fs.read(child, 0, len(content) + 100) == content, where
            compared += 1
        elif spec[0] == "dir":
            assert node.kind is Kind.DIRECTORY, where
            compared += assert_tree(fs, child, spec[1], where)  # type: ignore[arg-type]
        elif spec[0] == "link":
            target = _encoded(spec[1])
            assert node.kind is Kind.SYMLINK, where
            assert fs.read_link(child) == target, where
            assert node.size == len(target), where
        else:
            assert node.kind is Kind.OTHER, where
    return compared


def read_everything(fs: FileSystem) -> int:
    """Walks and reads the whole tree; returns how many DiskErrors came up (any other exception
    propagates and fails the test)."""
    errors = 0

    def visit(inode: int, depth: int) -> None:
        nonlocal errors
        try:
            node = fs.node(inode)
            if node.kind is Kind.DIRECTORY and depth < MAX_WALK_DEPTH:
                for _, child in list(fs.entries(inode)):
                    visit(child, depth + 1)
            elif node.kind is Kind.FILE:
                # Bounded as the scanner's reads are: a corrupt size can make a file of
                # gigabytes of holes, which read (correctly) as zeros.
                fs.read(inode, 0, min(node.size, 1 << 20))
            elif node.kind is Kind.SYMLINK:
                fs.read_link(inode)
        except DiskError as exc:
            assert "\n" not in str(exc)
            errors += 1

    visit(fs.root, 0)
    return errors


def assert_reads_in_odd_chunks(fs: FileSystem, inode: int, content: bytes, name: object) -> None:
    """Reading a file in odd-sized chunks at odd offsets gives its bytes, short only at its end."""
    for chunk in (1, 7, 4093, 65537):
        # Small chunks over three windows (the start, a block boundary, the end), larger ones
        # over the whole file: byte-at-a-time over megabytes would take minutes.
        windows = [(3, len(content))]
        if chunk < 4093:
            windows = [(3, 200), (4000, 4200), (len(content) - 150, len(content))]
        for start, stop in windows:
            start, stop = max(0, min(start, len(content))), min(stop, len(content))
            offset, parts = start, []
            while offset < stop:
                part = fs.read(inode, offset, min(chunk, stop - offset))
                assert len(part) == min(chunk, stop - offset)
                parts.append(part)
                offset += len(part)
            assert b"".join(parts) == content[start:stop], (name, chunk, start)
        # A read across the end is short by exactly what lies past the end.
        tail = fs.read(inode, max(0, len(content) - 5), chunk + 5)
        assert tail == content[max(0, len(content) - 5) :]
    assert fs.read(inode, len(content), 10) == b""
    assert fs.read(inode, len(content) + 4096, 10) == b""
    assert fs.read(inode, 0, 0) == b""


def copy_image(image: Path, tmp_path: Path, name: str) -> Path:
    """A copy of a built image, to damage without touching the one other tests read."""
    path = tmp_path / name
    shutil.copyfile(image, path)
    return path


class CutDevice:
    """The whole image's size, but every read past `cut` fails as a snapshot read would."""

    def __init__(self, device: BlockDevice, cut: int) -> None:
        self.device = device
        self.cut = cut
        self.size = device.size
        self.description = "cut.img"

    def pread(self, offset: int, length: int) -> bytes:
        if offset + length > self.cut:
            raise DiskError(f"cut.img: block at byte {offset} could not be fetched")
        return self.device.pread(offset, length)
