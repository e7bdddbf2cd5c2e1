"""The NTFS reader against real images: mkntfs, then wimlib-imagex applying a tree straight into
the image file, then libntfs-3g (through ctypes) for short names, compression and holes. No root,
no mount, no Windows."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.disk.device import DiskError, FileDevice
from scanner.disk.filesystem import Kind
from scanner.disk.ntfs import (
    TAG_LX_SYMLINK,
    TAG_MOUNT_POINT,
    TAG_SYMLINK,
    NtfsFileSystem,
    link_target,
    parse_record,
    probe,
)
from tests.filesystems import (
    CutDevice,
    assert_reads_in_odd_chunks,
    assert_tree,
    copy_image,
    read_everything,
    walk,
)
from tests.ntfsimage import Ntfs3g, make_ntfs

BIG_DIRECTORY = 3000
# The tree's own content files, in name → ("file", bytes) | ("dir", {...}) | ("link", target).
Tree = dict[str, tuple[object, ...]]

LZNT1_CONTENT = b"compressible " * 12000 + random.Random(7).randbytes(5000) + bytes(70000)
SPARSE_HOLE = 5 * 1024 * 1024


def _spec() -> Tree:
    rng = random.Random(20260902)
    noise = rng.randbytes
    big: Tree = {f"entry-{i:05d}-{'x' * 24}": ("file", b"%d\n" % i) for i in range(BIG_DIRECTORY)}
    return {
        "empty": ("file", b""),
        "small": ("file", b"hello\n"),
        "f4095": ("file", noise(4095)),
        "f4096": ("file", noise(4096)),
        "f4097": ("file", noise(4097)),
        "random300k": ("file", noise(300 * 1024)),
        "n" * 255: ("file", b"longest name\n"),
        "café": ("file", b"latin\n"),
        "emoji-\U0001f600.txt": ("file", b"astral plane\n"),
        "MixedCase.TXT": ("file", b"mixed\n"),
        "Long File Name.txt": ("file", b"spaces\n"),
        "Program Files": ("dir", {"A Long Directory Name": ("dir", {"x.dll": ("file", b"MZ")})}),
        # wimlib leaves $Recycle.Bin out of a capture; another "$" directory of Windows:
        "$WinREAgent": ("dir", {"Scratch": ("dir", {"x.txt": ("file", b"x")})}),
        "Windows": (
            "dir",
            {
                "System32": (
                    "dir",
                    {
                        "config": ("dir", {"SYSTEM": ("file", noise(20000))}),
                        "drivers": ("dir", {}),
                    },
                ),
                "Panther": ("dir", {"unattend.xml": ("file", b"<unattend/>\r\n")}),
            },
        ),
        "big": ("dir", big),
        "a": ("dir", {"b": ("dir", {"c": ("dir", {"d": ("dir", {"deep": ("file", b"deep\n")})})})}),
        "emptydir": ("dir", {}),
        "rel-link": ("link", "Windows/Panther/unattend.xml"),
        "abs-link": ("link", "/Windows/System32"),
        "dangling": ("link", "/nowhere/at/all"),
        # Filled in by libntfs-3g after wimlib (see `image`).
        "compressed": ("dir", {"packed.txt": ("file", LZNT1_CONTENT)}),
        "sparse": ("file", bytes(SPARSE_HOLE) + b"tail\n"),
    }


def _write_tree(tree: Tree, where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    for name, spec in tree.items():
        path = where / name
        if spec[0] == "file":
            # The LZNT1 file is created later, and the sparse one written later.
            if name not in ("packed.txt", "sparse"):
                path.write_bytes(spec[1])  # type: ignore[arg-type]
            elif name == "sparse":
                path.write_bytes(b"")
        elif spec[0] == "dir":
            _write_tree(spec[1], path)  # type: ignore[arg-type]
        else:
            path.symlink_to(spec[1])  # type: ignore[arg-type]


# Absolute Linux targets come out of wimlib as "\??\C:\..." and back from the reader as they went
# in; relative ones keep their form.
SHORT_NAMES = {"/LongFileNameHere.txt": "LONGFI~1.TXT"}


@dataclass
class Image:
    path: Path
    tree: Tree


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    base = tmp_path_factory.mktemp("ntfs")
    tree = _spec()
    packed: tuple[object, bytes] = tree["compressed"][1]["packed.txt"]  # type: ignore[index]
    source = base / "tree"
    _write_tree(tree, source)
    (source / "compressed" / "packed.txt").unlink(missing_ok=True)
    # A hard link in another directory, and one in the same directory.
    os.link(source / "small", source / "a" / "small-again")
    os.link(source / "small", source / "small-too")
    tree["a"][1]["small-again"] = ("file", b"hello\n")  # type: ignore[index]
    tree["small-too"] = ("file", b"hello\n")
    path = make_ntfs(source, base / "ntfs.img")
    ntfs3g = Ntfs3g(path)
    ntfs3g.create_compressed("/compressed", "packed.txt", packed[1])
    ntfs3g.write("/sparse", b"tail\n", SPARSE_HOLE)
    ntfs3g.close()
    return Image(path, tree)


def _open(path: Path) -> NtfsFileSystem:
    return NtfsFileSystem(FileDevice(path))


def _files(tree: Tree) -> Iterator[bytes]:
    for spec in tree.values():
        if spec[0] == "file":
            yield spec[1]  # type: ignore[misc]
        elif spec[0] == "dir":
            yield from _files(spec[1])  # type: ignore[arg-type]


def test_probe_description_and_root(image: Image) -> None:
    device = FileDevice(image.path)
    assert probe(device)
    fs = NtfsFileSystem(device)
    assert fs.description == f"NTFS file system on {image.path}"
    assert fs.root == 5
    assert fs.node(fs.root).kind is Kind.DIRECTORY
    assert fs.dirty == ""
    assert NtfsFileSystem.case_insensitive is True
    assert NtfsFileSystem(device, "partition 2").description == "partition 2"


def test_every_name_kind_size_and_byte(image: Image) -> None:
    """Every name (no metafiles, no short names, no "."), kind, size and byte of the tree,
    including the LZNT1-compressed file, the sparse file and both hard links."""
    fs = _open(image.path)
    assert assert_tree(fs, fs.root, image.tree) == sum(1 for _ in _files(image.tree))


def test_reads_at_odd_offsets_in_odd_chunks(image: Image) -> None:
    fs = _open(image.path)
    inodes = dict(walk(fs, fs.root))
    cases = {name.encode(): image.tree[name][1] for name in ("f4095", "f4096", "f4097")}
    cases[b"random300k"] = image.tree["random300k"][1]
    cases[b"compressed/packed.txt"] = LZNT1_CONTENT
    for name, content in cases.items():
        assert isinstance(content, bytes)
        inode = inodes[name]
        assert_reads_in_odd_chunks(fs, inode, content, name)
    sparse = inodes[b"sparse"]
    assert fs.read(sparse, SPARSE_HOLE - 3, 6) == b"\0\0\0tai"
    assert fs.read(sparse, 12345, 7) == bytes(7)


def test_short_names_exist_but_are_not_listed(tmp_path: Path) -> None:
    # A small image of its own: libntfs-3g refuses (EIO) to add a short name in the large
    # tree's image, for reasons not looked into.
    source = tmp_path / "tree"
    source.mkdir()
    (source / "LongFileNameHere.txt").write_bytes(b"short name too\n")
    (source / "other").write_bytes(b"x")
    path = make_ntfs(source, tmp_path / "dos.img")
    ntfs3g = Ntfs3g(path)
    for long_name, short in SHORT_NAMES.items():
        ntfs3g.set_short_name(long_name, short)
    ntfs3g.close()
    fs = _open(path)
    inodes = dict(fs.entries(fs.root))
    for long_name, short in SHORT_NAMES.items():
        inode = inodes[long_name.lstrip("/").encode()]
        names = {
            attribute.value[0x42:].decode("utf-16-le"): attribute.value[0x41]
            for attribute in fs._record(inode)
            if attribute.type == 0x30 and attribute.value is not None
        }
        # The DOS (2) name beside the Win32 (1) one, in the MFT record.
        assert names == {long_name.lstrip("/"): 1, short: 2}
    assert sorted(inodes) == [b"LongFileNameHere.txt", b"other"]


def test_hard_links_are_listed_under_each_name(image: Image) -> None:
    fs = _open(image.path)
    inodes = dict(walk(fs, fs.root))
    assert inodes[b"small"] == inodes[b"small-too"] == inodes[b"a/small-again"]


def test_metafiles_hidden_but_dollar_directories_listed(image: Image) -> None:
    fs = _open(image.path)
    root = dict(fs.entries(fs.root))
    assert not {b"$MFT", b"$Bitmap", b"$Extend", b"$Volume", b"$UpCase", b"."} & set(root)
    assert fs.node(root[b"$WinREAgent"]).kind is Kind.DIRECTORY
    # The metafiles remain readable by number.
    assert fs.node(0).kind is Kind.FILE


def test_names_fold_as_windows_compares_them(image: Image) -> None:
    fs = _open(image.path)
    assert fs.fold(b"mixedcase.txt") == fs.fold(b"MIXEDCASE.TXT") == b"MIXEDCASE.TXT"
    assert fs.fold("café".encode()) == "CAFÉ".encode()
    # Beyond the Basic Multilingual Plane $UpCase maps nothing: surrogate halves stay.
    assert fs.fold("emoji-\U0001f600".encode()) == "EMOJI-\U0001f600".encode()
    assert fs.fold(b"\xff") == b"\xff"


def test_wrong_kinds_and_missing_entries(image: Image) -> None:
    fs = _open(image.path)
    inodes = dict(walk(fs, fs.root))
    with pytest.raises(DiskError, match="not a directory"):
        list(fs.entries(inodes[b"small"]))
    with pytest.raises(DiskError, match="not a regular file"):
        fs.read(fs.root, 0, 10)
    with pytest.raises(DiskError, match="not a symbolic link"):
        fs.read_link(inodes[b"small"])
    for bogus in (-1, 100_000, 1 << 40, 1 << 70):
        with pytest.raises(DiskError, match=f"NTFS file system on .*MFT entry {bogus}"):
            fs.node(bogus)


def _sub(name: str) -> bytes:
    return name.encode("utf-16-le")


def _link_data(substitute: str, printed: str, flags: int | None) -> bytes:
    paths = _sub(substitute) + _sub(printed)
    head = struct.pack("<HHHH", 0, len(_sub(substitute)), len(_sub(substitute)), len(_sub(printed)))
    return head + (struct.pack("<I", flags) if flags is not None else b"") + paths


@pytest.mark.parametrize(
    ("tag", "data", "target"),
    [
        (
            TAG_SYMLINK,
            _link_data("\\??\\C:\\Windows\\System32", "C:\\Windows\\System32", 0),
            b"/Windows/System32",
        ),
        (
            TAG_SYMLINK,
            _link_data("..\\Panther\\unattend.xml", "..\\Panther\\unattend.xml", 1),
            b"../Panther/unattend.xml",
        ),
        (TAG_SYMLINK, _link_data("\\??\\D:\\", "D:\\", 0), b"/"),
        (
            TAG_MOUNT_POINT,
            _link_data("\\??\\C:\\Users\\Default", "C:\\Users\\Default", None),
            b"/Users/Default",
        ),
        (TAG_MOUNT_POINT, _link_data("\\??\\Volume{1234}\\", "", None), b"/??/Volume{1234}/"),
        (TAG_MOUNT_POINT, _link_data("", "C:\\ProgramData", None), b"/ProgramData"),
        (TAG_SYMLINK, _link_data("\\??\\C:\\caf\u00e9", "", 0), "/café".encode()),
        (TAG_LX_SYMLINK, b"\x02\0\0\0../lib/x", b"../lib/x"),
        (0x80000013, b"dedup", None),
    ],
)
def test_link_targets(tag: int, data: bytes, target: bytes | None) -> None:
    assert link_target(tag, data) == target


@pytest.mark.parametrize("data", [b"", b"\0" * 7, struct.pack("<HHHHI", 0, 40, 0, 0, 0) + b"ab"])
def test_corrupt_link_data(data: bytes) -> None:
    with pytest.raises(ValueError):
        link_target(TAG_SYMLINK, data)


def test_parse_record_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="FILE"):
        parse_record(bytes(1024))
    record = bytearray(1024)
    record[:4] = b"FILE"
    struct.pack_into("<HH", record, 4, 48, 9)
    with pytest.raises(ValueError, match="update sequence"):
        parse_record(bytes(record))


def _record_offset(fs: NtfsFileSystem, index: int) -> int:
    """Where MFT record `index` lies in the image (mkntfs makes $MFT's start contiguous)."""
    mft = fs._entry(0)
    start, size, _flags = mft.get_extent(0)
    assert (index + 1) * fs._record_size <= size
    return int(start) + index * fs._record_size


def _value_offset(path: Path, record_at: int, kind: int) -> int:
    """Where the value of the record's first resident attribute of type `kind` starts."""
    with path.open("rb") as f:
        f.seek(record_at)
        record = f.read(1024)
    position = struct.unpack_from("<H", record, 0x14)[0]
    while True:
        found, length = struct.unpack_from("<II", record, position)
        assert found != 0xFFFFFFFF, f"no attribute {kind:#x}"
        if found == kind:
            return int(record_at + position + struct.unpack_from("<H", record, position + 20)[0])
        position += length


def _patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        f.write(data)


def test_dirty_flag(image: Image, tmp_path: Path) -> None:
    path = copy_image(image.path, tmp_path, "dirty.img")
    fs = _open(path)
    flags_at = _value_offset(path, _record_offset(fs, 3), 0x70) + 10
    _patch(path, flags_at, b"\x01\x00")
    dirty = _open(path).dirty
    assert dirty.startswith(f"NTFS file system on {path}: the volume is marked dirty")
    assert "\n" not in dirty


def test_encrypted_and_other_reparse_points(image: Image, tmp_path: Path) -> None:
    path = copy_image(image.path, tmp_path, "kinds.img")
    fs = _open(path)
    inodes = dict(walk(fs, fs.root))
    # $STANDARD_INFORMATION's file attribute flags (at 32 in its value): EFS-encrypted.
    secret = inodes[b"f4096"]
    _patch(path, _value_offset(path, _record_offset(fs, secret), 0x10) + 32, b"\x00\x40\0\0")
    # A symbolic link's tag made a deduplication tag: not a link, and no contents here.
    dedup = inodes[b"rel-link"]
    _patch(
        path, _value_offset(path, _record_offset(fs, dedup), 0xC0), struct.pack("<I", 0x80000013)
    )
    fs = _open(path)
    assert fs.node(secret).kind is Kind.FILE
    with pytest.raises(DiskError, match=f"MFT entry {secret}: it is encrypted \\(EFS\\)$"):
        fs.read(secret, 0, 10)
    assert fs.node(dedup).kind is Kind.OTHER
    with pytest.raises(DiskError, match="not a symbolic link"):
        fs.read_link(dedup)


def test_overwritten_signature(image: Image, tmp_path: Path) -> None:
    path = copy_image(image.path, tmp_path, "nosig.img")
    _patch(path, 3, b"XXXXXXXX")
    assert not probe(FileDevice(path))
    with pytest.raises(DiskError, match="no NTFS boot sector"):
        _open(path)


def test_truncated_image(image: Image, tmp_path: Path) -> None:
    path = copy_image(image.path, tmp_path, "truncated.img")
    fs = _open(path)
    # Cut just after the MFT's first records: the tree's records and data are gone.
    cut = _record_offset(fs, 40)
    os.truncate(path, cut)
    try:
        fs = _open(path)
    except DiskError:
        return
    assert read_everything(fs) > 0


def test_device_errors_come_through(image: Image) -> None:
    fs = _open(image.path)
    inode = dict(fs.entries(fs.root))[b"random300k"]
    start = fs._entry(inode).get_extent(0)[0]
    cut_fs = NtfsFileSystem(CutDevice(FileDevice(image.path), int(start)))
    with pytest.raises(DiskError) as caught:
        cut_fs.read(inode, 0, 100)
    message = str(caught.value)
    assert message.startswith(f"NTFS file system on cut.img: cannot read MFT entry {inode}: ")
    assert message.endswith("could not be fetched")


@pytest.mark.parametrize("seed", range(6))
def test_corrupt_mft_gives_disk_errors(image: Image, tmp_path: Path, seed: int) -> None:
    """Random bytes over the MFT records of the tree: only DiskErrors, never a hang."""
    path = copy_image(image.path, tmp_path, "corrupt.img")
    rng = random.Random(seed)
    fs = _open(image.path)
    first, last = _record_offset(fs, 0), _record_offset(fs, 24 + 40)
    with path.open("r+b") as f:
        for _ in range(60):
            f.seek(rng.randrange(first, last))
            f.write(rng.randbytes(rng.choice((1, 8, 64))))
    try:
        corrupt = _open(path)
    except DiskError:
        return
    read_everything(corrupt)


def test_the_guest_tree_finds_names_as_windows_does_without_case(tmp_path: Path) -> None:
    """DiskTree over NTFS: a path in any case names the file; listings keep the disk's case."""
    from scanner.disk.device import FileDevice
    from scanner.disk.tree import DiskTree

    tree = tmp_path / "tree"
    (tree / "Windows/Panther").mkdir(parents=True)
    (tree / "Windows/Panther/Unattend.xml").write_text("<unattend/>\n")
    fs = NtfsFileSystem(FileDevice(make_ntfs(tree, tmp_path / "ntfs.img")))
    guest = DiskTree(fs, "test")
    assert guest.read_bytes("/WINDOWS/panther/UNATTEND.XML") == b"<unattend/>\n"
    assert guest.is_dir("/windows/PANTHER")
    assert guest.list_dir("/windows/panther") == ["Unattend.xml"]
    assert not guest.is_file("/Windows/Panther/missing.xml")
