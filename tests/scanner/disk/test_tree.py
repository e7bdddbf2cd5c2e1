"""DiskTree behaves exactly as ImageRoot does over the same tree: resolution, bounds, walks.

The file system under the DiskTree here reads a host directory by inode (an honest
implementation of the FileSystem protocol over lstat/readlink/scandir), so every difference
found is the tree's own; the real readers (ext, XFS) have their own byte-exact tests.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.disk.device import DiskError
from scanner.disk.filesystem import Kind, Node
from scanner.disk.tree import DiskTree
from scanner.fs import FileSource, ImageRoot, ReadRefused, WalkBounds, stream_lines, walk_entries


class HostFileSystem:
    """A host directory seen through the FileSystem protocol (inode numbers are st_ino)."""

    def __init__(self, root: Path) -> None:
        self.description = f"host tree {root}"
        self.dirty = ""
        self._paths: dict[int, Path] = {}
        self.root = self._remember(root)
        self.broken: set[int] = set()

    def _remember(self, path: Path) -> int:
        inode = path.lstat().st_ino
        self._paths[inode] = path
        return inode

    def _path(self, inode: int) -> Path:
        if inode in self.broken:
            raise DiskError(f"{self.description}: inode {inode} is corrupt")
        return self._paths[inode]

    def node(self, inode: int) -> Node:
        info = self._path(inode).lstat()
        kind = (
            Kind.FILE
            if stat.S_ISREG(info.st_mode)
            else Kind.DIRECTORY
            if stat.S_ISDIR(info.st_mode)
            else Kind.SYMLINK
            if stat.S_ISLNK(info.st_mode)
            else Kind.OTHER
        )
        size = len(os.readlink(self._path(inode))) if kind is Kind.SYMLINK else info.st_size
        return Node(inode, kind, size)

    def entries(self, directory: int) -> Iterator[tuple[bytes, int]]:
        with os.scandir(os.fsencode(self._path(directory))) as scan:
            for entry in scan:
                yield entry.name, self._remember(Path(os.fsdecode(entry.path)))

    def read(self, inode: int, offset: int, length: int) -> bytes:
        with open(self._path(inode), "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def read_link(self, inode: int) -> bytes:
        return os.fsencode(os.readlink(self._path(inode)))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "root"
    (base / "etc/ssh").mkdir(parents=True)
    (base / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (base / "etc/ssh/sshd_config").write_text("PermitRootLogin no\n" * 10)
    (base / "etc/big").write_bytes(os.urandom(300_000))
    (base / "home/ec2-user/.ssh").mkdir(parents=True)
    (base / "home/ec2-user/.ssh/authorized_keys").write_text("ssh-ed25519 AAAA x\n")
    (base / "usr/lib").mkdir(parents=True)
    (base / "usr/lib/os-release").write_text("ID=x\n")
    (base / "etc/absolute").symlink_to("/usr/lib/os-release")
    (base / "etc/relative").symlink_to("../usr/lib/os-release")
    (base / "etc/climb").symlink_to("../../../../../etc/ssh/sshd_config")
    (base / "etc/host").symlink_to("/etc/passwd")
    (base / "etc/loop-a").symlink_to("loop-b")
    (base / "etc/loop-b").symlink_to("loop-a")
    (base / "etc/dangling").symlink_to("/nowhere")
    (base / "lib").symlink_to("usr/lib")
    (base / "home/ec2-user/link-to-home").symlink_to("/home")
    os.mkfifo(base / "etc/fifo")
    (base / os.fsdecode(b"etc/caf\xe9")).write_text("latin-1 name\n")
    deep = base / "var/deep"
    for level in range(12):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    (deep / "leaf").write_text("leaf\n")
    return base


QUERIES = [
    "/etc/os-release",
    "/etc/absolute",
    "/etc/relative",
    "/etc/climb",
    "/etc/host",
    "/etc/loop-a",
    "/etc/dangling",
    "/etc/fifo",
    "/etc",
    "/lib/os-release",
    "/lib/../etc/os-release",
    "/../../etc/os-release",
    "/home/ec2-user/link-to-home/ec2-user/.ssh/authorized_keys",
    "/etc/os-release/x",
    "/missing",
    "/etc/big",
    os.fsdecode(b"/etc/caf\xe9"),
]


def _outcome(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except Exception as exc:  # the kind of failure is part of the behaviour compared
        return type(exc).__name__


def _observe(files: FileSource, path: str) -> list[object]:
    return [
        _outcome(lambda: files.read_head(path, 1000)),
        _outcome(lambda: files.read_bytes(path)),
        _outcome(lambda: files.is_file(path)),
        _outcome(lambda: files.is_dir(path)),
        _outcome(lambda: files.size(path)),
        _outcome(lambda: files.list_dir(path)),
        _outcome(lambda: list(files.walk_files(path))),
    ]


@pytest.mark.parametrize("path", QUERIES)
def test_every_query_answers_as_image_root_answers(root: Path, path: str) -> None:
    tree = DiskTree(HostFileSystem(root), "test")
    assert _observe(tree, path) == _observe(ImageRoot(root), path)


def test_streaming_reads_the_same_lines(root: Path) -> None:
    tree = DiskTree(HostFileSystem(root), "test")
    expected = list(stream_lines(ImageRoot(root), "/etc/ssh/sshd_config", 10_000))
    assert list(stream_lines(tree, "/etc/ssh/sshd_config", 10_000)) == expected
    with tree.open_binary("/etc/big") as handle:
        assert handle.read() == (root / "etc/big").read_bytes()


def test_walk_bounds_hide_and_report_the_same_entries(root: Path) -> None:
    tree = DiskTree(HostFileSystem(root), "test")
    for bounds_args in ({"max_depth": 4}, {"max_entries": 7}):
        ours, theirs = WalkBounds(**bounds_args), WalkBounds(**bounds_args)  # type: ignore[arg-type]
        assert list(tree.walk_files("/", ours)) == list(ImageRoot(root).walk_files("/", theirs))
        assert ours.hit == theirs.hit


def test_a_mounted_file_system_shows_at_its_mount_point(root: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "app").mkdir(parents=True)
    (data / "app/config").write_text("secret=no\n")
    (root / "srv").mkdir()
    tree = DiskTree(HostFileSystem(root), "test")
    tree.mount("/srv/data", HostFileSystem(data))
    assert tree.read_bytes("/srv/data/app/config") == b"secret=no\n"
    assert tree.list_dir("/srv") == ["data"]
    assert "/srv/data/app/config" in list(tree.walk_files("/"))
    # `..` from the mounted root climbs into the parent file system, as in the kernel.
    assert tree.read_bytes("/srv/data/../../etc/os-release").startswith(b"ID=debian")


def test_corrupt_structures_refuse_the_read_and_never_look_absent(root: Path) -> None:
    fs = HostFileSystem(root)
    tree = DiskTree(fs, "test")
    etc = (root / "etc").lstat().st_ino
    fs.broken.add(etc)
    with pytest.raises(ReadRefused, match="corrupt"):
        tree.is_file("/etc/os-release")
    with pytest.raises(ReadRefused, match="corrupt"):
        tree.read_bytes("/etc/ssh/sshd_config")
    bounds = WalkBounds()
    files = list(tree.walk_files("/", bounds))
    assert "/usr/lib/os-release" in files
    assert not any(f.startswith("/etc/") for f in files)
    assert any("could not be read" in reason for reason in bounds.hit)


def _entries(files: FileSource) -> list[tuple[str, int, bytes]]:
    listed = []
    for entry in walk_entries(files, "/", WalkBounds()):
        with entry.open() as handle:
            listed.append((entry.path, entry.size, handle.read()))
    return listed


def test_walked_entries_open_the_files_the_paths_name(root: Path) -> None:
    (root / "etc/fifo").unlink()  # the generic walker below resolves paths; no FIFO in the way
    expected = _entries(ImageRoot(root))
    assert ("/etc/big", 300_000, (root / "etc/big").read_bytes()) in expected
    assert _entries(DiskTree(HostFileSystem(root), "test")) == expected

    class PathsOnly:
        """A source without its own walk_entries: the generic walker serves it."""

        def __init__(self, inner: ImageRoot) -> None:
            self.inner = inner

        def __getattr__(self, name: str) -> object:
            if name == "walk_entries":
                raise AttributeError(name)
            return getattr(self.inner, name)

    assert _entries(PathsOnly(ImageRoot(root))) == expected  # type: ignore[arg-type]
