"""The XFS reader against real images made by mkfs.xfs from a protofile (no root, no mount)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.disk.device import DiskError, FileDevice
from scanner.disk.filesystem import Kind
from scanner.disk.xfs import XfsFileSystem, probe
from tests.filesystems import (
    CutDevice,
    assert_reads_in_odd_chunks,
    assert_tree,
    copy_image,
    read_everything,
    walk,
)

MKFS = shutil.which("mkfs.xfs") or next(
    (p for p in ("/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs") if os.path.exists(p)), None
)
XFS_DB = shutil.which("xfs_db") or next(
    (p for p in ("/usr/sbin/xfs_db", "/sbin/xfs_db") if os.path.exists(p)), None
)
pytestmark = pytest.mark.skipif(MKFS is None, reason="mkfs.xfs (xfsprogs) is not installed")

# XFS's minimum size; the file is sparse, so it costs only what mkfs writes.
IMAGE_SIZE = 300 * 1024 * 1024
BIG_DIRECTORY = 3000

# What the image holds: name → ("file", bytes) | ("dir", {...}) | ("link", target) | ("fifo",).
Tree = dict[bytes, tuple[object, ...]]


def _spec() -> Tree:
    rng = random.Random(20260901)
    noise = rng.randbytes
    big: Tree = {f"entry-{i:05d}-{'x' * 24}".encode(): ("file", b"%d\n" % i) for i in range(3)}
    # Thousands of names push the directory past block form into leaf/node/B-tree form; most
    # share one content file to keep mkfs quick.
    big.update(
        {f"entry-{i:05d}-{'x' * 24}".encode(): ("file", b"same\n") for i in range(3, BIG_DIRECTORY)}
    )
    big[b"late-\xe9\xff"] = ("file", b"not utf-8, in a large directory\n")
    return {
        b"empty": ("file", b""),
        b"small": ("file", b"hello\n"),
        b"f4095": ("file", noise(4095)),
        b"f4096": ("file", noise(4096)),
        b"f4097": ("file", noise(4097)),
        b"random300k": ("file", noise(300 * 1024)),
        # mkfs.xfs 6.1 copies a source's holes as zeros (no sparse files from a protofile).
        b"mostly-zeros": ("file", bytes(3 * 1024 * 1024) + b"tail\n"),
        b"n" * 255: ("file", b"longest name\n"),
        b"caf\xe9-latin1": ("file", b"a Latin-1 name, in the root\n"),
        b"etc": (
            "dir",
            {
                b"os-release": (
                    "file",
                    b'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\n'
                    b'VERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023"\n',
                ),
                b"hostname": ("file", b"ip-10-0-0-1\n"),
                b"os-release-link": ("link", b"os-release"),
            },
        ),
        b"short-form": ("dir", {b"\xff\xfe": ("file", b"x"), b"ok": ("file", b"y")}),
        b"big": ("dir", big),
        b"a": (
            "dir",
            {b"b": ("dir", {b"c": ("dir", {b"d": ("dir", {b"deep": ("file", b"deep\n")})})})},
        ),
        b"emptydir": ("dir", {}),
        b"rel-link": ("link", b"etc/os-release"),
        b"abs-link": ("link", b"/etc/os-release"),
        b"dangling": ("link", b"/nowhere/at/all"),
        # Past the inode's literal area: the target lives in a block of its own.
        b"long-link": ("link", b"/" + b"/".join([b"d" * 50] * 5) + b"/target"),
        b"fifo": ("fifo",),
    }


def _protofile(tree: Tree, sources: Path) -> bytes:
    """mkfs.xfs's protofile for `tree` (whitespace-separated tokens, so no spaces in names),
    with each distinct file content written once under `sources`."""
    written: dict[bytes, Path] = {}
    lines = [b"amiscan", b"0 0", b"d--755 0 0"]

    def source(content: bytes) -> bytes:
        if content not in written:
            written[content] = sources / f"content-{len(written)}"
            written[content].write_bytes(content)
        return os.fsencode(written[content])

    def directory(entries: Tree) -> None:
        for name, spec in entries.items():
            if spec[0] == "file":
                lines.append(name + b" ---644 0 0 " + source(spec[1]))  # type: ignore[arg-type]
            elif spec[0] == "dir":
                lines.append(name + b" d--755 0 0")
                directory(spec[1])  # type: ignore[arg-type]
            elif spec[0] == "link":
                lines.append(name + b" l--777 0 0 " + spec[1])  # type: ignore[operator]
            else:
                lines.append(name + b" p--644 0 0")
        lines.append(b"$")

    directory(tree)
    return b"\n".join(lines) + b"\n"


VARIANTS = {
    # Amazon Linux 2023 / RHEL: 4 KiB sectors.
    "v5-4k-sectors": ["-s", "size=4096"],
    "v5": [],
    # 16 KiB directory blocks: one directory block spans four file-system blocks.
    "v5-16k-dirblocks": ["-n", "size=16384"],
    "v4": ["-m", "crc=0"],
    # Old v4 file systems without the file-type byte in directory entries.
    "v4-no-ftype": ["-m", "crc=0", "-n", "ftype=0"],
}


@dataclass
class Image:
    path: Path
    tree: Tree


@pytest.fixture(scope="module")
def tree() -> Tree:
    return _spec()


@pytest.fixture(scope="module")
def protofile(tmp_path_factory: pytest.TempPathFactory, tree: Tree) -> Path:
    base = tmp_path_factory.mktemp("xfs-sources")
    path = base / "proto"
    path.write_bytes(_protofile(tree, base))
    return path


def _mkfs(path: Path, protofile: Path, options: list[str]) -> None:
    assert MKFS is not None
    with path.open("wb") as image:
        image.truncate(IMAGE_SIZE)
    subprocess.run(
        [MKFS, "-q", "-f", *options, "-p", str(protofile), str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module", params=list(VARIANTS))
def image(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    protofile: Path,
    tree: Tree,
) -> Image:
    path = tmp_path_factory.mktemp("xfs") / f"{request.param}.img"
    _mkfs(path, protofile, VARIANTS[request.param])
    return Image(path, tree)


@pytest.fixture(scope="module")
def v5_image(tmp_path_factory: pytest.TempPathFactory, protofile: Path, tree: Tree) -> Image:
    path = tmp_path_factory.mktemp("xfs-v5") / "v5.img"
    _mkfs(path, protofile, [])
    return Image(path, tree)


def _open(path: Path) -> XfsFileSystem:
    return XfsFileSystem(FileDevice(path))


def test_probe_and_description(image: Image) -> None:
    device = FileDevice(image.path)
    assert probe(device)
    fs = XfsFileSystem(device)
    version = "v4" if "v4" in image.path.name else "v5"
    assert fs.description == f"XFS ({version}) file system on {image.path}"
    assert fs.node(fs.root).kind is Kind.DIRECTORY
    assert fs.dirty == ""
    assert XfsFileSystem(device, "partition 1").description == "partition 1"


def test_every_name_kind_size_and_byte(image: Image) -> None:
    fs = _open(image.path)
    compared = assert_tree(fs, fs.root, image.tree)
    assert compared == sum(1 for _ in _files(image.tree))


def _files(tree: Tree, path: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
    for name, spec in tree.items():
        if spec[0] == "file":
            yield path + name, spec[1]  # type: ignore[misc]
        elif spec[0] == "dir":
            yield from _files(spec[1], path + name + b"/")  # type: ignore[arg-type]


def test_reads_at_odd_offsets_in_odd_chunks(image: Image) -> None:
    fs = _open(image.path)
    inodes = dict(walk(fs, fs.root))
    for name in (b"f4095", b"f4096", b"f4097", b"random300k", b"mostly-zeros"):
        content = image.tree[name][1]
        assert isinstance(content, bytes)
        inode = inodes[name]
        assert_reads_in_odd_chunks(fs, inode, content, name)


def test_raw_directory_reader_agrees_with_libfsxfs(image: Image) -> None:
    """The reader's own directory decoding (used for names libfsxfs cannot return) gives the
    same listing, in the same order, for every directory format in the image."""
    fs = _open(image.path)
    directories = [fs.root] + [
        inode for _, inode in walk(fs, fs.root) if fs.node(inode).kind is Kind.DIRECTORY
    ]
    for inode in directories:
        assert fs._raw.listing(inode) == list(fs.entries(inode))


def test_wrong_kinds_and_missing_inodes(v5_image: Image) -> None:
    fs = _open(v5_image.path)
    inodes = dict(walk(fs, fs.root))
    with pytest.raises(DiskError, match="not a directory"):
        list(fs.entries(inodes[b"small"]))
    with pytest.raises(DiskError, match="not a regular file"):
        fs.read(fs.root, 0, 10)
    with pytest.raises(DiskError, match="not a symbolic link"):
        fs.read_link(inodes[b"small"])
    for bogus in (0, 1 << 40, (1 << 64) - 1, 1 << 70):
        with pytest.raises(DiskError, match=f"XFS \\(v5\\) file system on .*inode {bogus}"):
            fs.node(bogus)


def test_overwritten_magic(v5_image: Image, tmp_path: Path) -> None:
    path = copy_image(v5_image.path, tmp_path, "nomagic.img")
    with path.open("r+b") as f:
        f.write(b"XXXX")
    assert not probe(FileDevice(path))
    with pytest.raises(DiskError, match="no XFS superblock"):
        _open(path)


@pytest.mark.parametrize("seed", range(4))
def test_garbage_superblock(v5_image: Image, tmp_path: Path, seed: int) -> None:
    path = copy_image(v5_image.path, tmp_path, "garbage.img")
    with path.open("r+b") as f:
        f.seek(4)
        f.write(random.Random(seed).randbytes(508))
    assert probe(FileDevice(path))
    with pytest.raises(DiskError, match="XFS"):
        _open(path)


def test_truncated_image(v5_image: Image, tmp_path: Path) -> None:
    path = copy_image(v5_image.path, tmp_path, "truncated.img")
    os.truncate(path, IMAGE_SIZE // 3)
    try:
        fs = _open(path)
    except DiskError:
        return
    # The log lies in a later allocation group, past the cut.
    assert "log" in fs.dirty
    assert read_everything(fs) > 0


def test_device_errors_come_through(v5_image: Image) -> None:
    device = CutDevice(FileDevice(v5_image.path), IMAGE_SIZE // 3)
    try:
        fs = XfsFileSystem(device)
    except DiskError as exc:
        assert "could not be fetched" in str(exc)
        return
    assert read_everything(fs) > 0
    # The device's own message, behind the file system and the operation.
    big = next(inode for name, inode in fs.entries(fs.root) if name == b"big")
    files = [inode for _, inode in fs.entries(big)]
    messages = []
    for inode in files:
        try:
            fs.read(inode, 0, 100)
        except DiskError as exc:
            messages.append(str(exc))
    assert any(
        m.startswith("XFS (v5) file system on cut.img: cannot read inode ")
        and m.endswith("cut.img: block at byte " + m.rsplit("byte ", 1)[1])
        for m in messages
    ), messages[:3]


@pytest.mark.parametrize("seed", range(6))
def test_corrupt_metadata_gives_disk_errors(v5_image: Image, tmp_path: Path, seed: int) -> None:
    """Random bytes over blocks in the inode-rich part of the image: only DiskErrors."""
    path = copy_image(v5_image.path, tmp_path, "corrupt.img")
    rng = random.Random(seed)
    fs = _open(v5_image.path)
    # Blocks near the inodes of the tree: where directories, inodes and extent maps live.
    targets = sorted({inode for _, inode in walk(fs, fs.root)})
    with path.open("r+b") as f:
        for _ in range(40):
            inode = rng.choice(targets)
            offset = fs._sb.inode_offset(inode) + rng.randrange(0, 512)
            f.seek(offset)
            f.write(rng.randbytes(rng.choice((1, 8, 64))))
    try:
        corrupt = _open(path)
    except DiskError:
        return
    read_everything(corrupt)


def _log_offset(fs: XfsFileSystem) -> int:
    return fs._sb.block_offset(fs._sb.log_start)


def test_clean_log_at_a_later_cycle(v5_image: Image, tmp_path: Path) -> None:
    """A log formatted to cycle 7 (as after many passes): the head is found by the cycle drop."""
    if XFS_DB is None:
        pytest.skip("xfs_db is not installed")
    path = copy_image(v5_image.path, tmp_path, "cycle.img")
    subprocess.run(
        [XFS_DB, "-x", "-c", "logformat -c 7", str(path)], check=True, capture_output=True
    )
    assert _open(path).dirty == ""


def test_log_without_unmount_record_is_dirty(v5_image: Image, tmp_path: Path) -> None:
    """The last log record made into an ordinary transaction (xfs_logprint then says DIRTY)."""
    path = copy_image(v5_image.path, tmp_path, "dirty.img")
    start = _log_offset(_open(path))
    with path.open("r+b") as f:
        # mkfs leaves one record: its header in basic block 0, its one operation in block 1,
        # whose flags byte (offset 9) has XLOG_UNMOUNT_TRANS.
        f.seek(start + 512 + 9)
        flags = f.read(1)[0]
        assert flags & 0x20
        f.seek(start + 512 + 9)
        f.write(bytes([flags & ~0x20]))
    fs = _open(path)
    assert fs.dirty.startswith("XFS (v5) file system on ")
    assert "not cleanly unmounted" in fs.dirty
    assert assert_tree(fs, fs.root, v5_image.tree) > 0


@pytest.mark.parametrize("field", ["startoff 10", "extentflag 1"])
def test_holes_and_unwritten_extents_read_as_zeros(
    v5_image: Image, tmp_path: Path, field: str
) -> None:
    """mkfs.xfs cannot make either, so xfs_db edits the file's one extent record: moved 10
    blocks on (a 40 KiB hole at the start), or marked unwritten (preallocated, reads as zeros)."""
    if XFS_DB is None:
        pytest.skip("xfs_db is not installed")
    path = copy_image(v5_image.path, tmp_path, "holes.img")
    inode = dict(_open(path).entries(_open(path).root))[b"random300k"]
    subprocess.run(
        [XFS_DB, "-x", "-c", f"inode {inode}", "-c", f"write u3.bmx[0].{field}", str(path)],
        check=True,
        capture_output=True,
    )
    content = v5_image.tree[b"random300k"][1]
    assert isinstance(content, bytes)
    fs = _open(path)
    data = fs.read(inode, 0, len(content) + 1)
    assert len(data) == len(content)
    if field.startswith("startoff"):
        hole = 10 * 4096
        assert data[:hole] == bytes(hole)
        assert data[hole:] == content[: len(content) - hole]
        assert fs.read(inode, hole - 3, 6) == bytes(3) + content[:3]
    else:
        assert data == bytes(len(content))
