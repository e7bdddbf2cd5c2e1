"""The ext2/3/4 reader against images made by mke2fs from a known tree, in every layout that
AMIs carry, and against images damaged on purpose (every failure must be a DiskError)."""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.disk.device import DiskError, FileDevice
from scanner.disk.ext import FLAG_INLINE_DATA, ExtFileSystem, probe
from scanner.disk.filesystem import Kind

MKE2FS = shutil.which("mke2fs") or "/usr/sbin/mke2fs"
DEBUGFS = shutil.which("debugfs") or "/usr/sbin/debugfs"
E2FSCK = shutil.which("e2fsck") or "/usr/sbin/e2fsck"
pytestmark = pytest.mark.skipif(
    not all(Path(tool).exists() for tool in (MKE2FS, DEBUGFS, E2FSCK)),
    reason="e2fsprogs is not installed",
)

MIB = 1024 * 1024
# Past 12 + 256 + 256² blocks at 1 KiB: the ext2 block map's triple-indirect range.
TRIPLE_INDIRECT_OFFSET = 70 * MIB
NOT_UTF8 = b"caf\xe9-\xff.txt"
OS_RELEASE = b'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nVERSION_ID="2023"\n'

LAYOUTS = {
    "ext2-1k": ["-t", "ext2", "-b", "1024"],
    "ext3-4k": ["-t", "ext3", "-b", "4096"],
    # mke2fs picks 1 KiB blocks for file systems this small unless told otherwise.
    "ext4": ["-t", "ext4", "-b", "4096"],
    "ext4-2k": ["-t", "ext4", "-b", "2048"],
    "ext4-inline": ["-t", "ext4", "-b", "4096", "-O", "inline_data"],
    "ext4-large-dir": ["-t", "ext4", "-b", "1024", "-O", "large_dir"],
    "ext4-32bit-1k": ["-t", "ext4", "-O", "^64bit", "-b", "1024"],
    "ext4-128-inodes": ["-t", "ext4", "-b", "4096", "-I", "128"],
    "ext4-orphan-file": ["-t", "ext4", "-b", "4096", "-O", "orphan_file"],
    # Small groups and few inodes per group spread the tree's inodes over several meta groups.
    "ext4-meta-bg": [
        "-t",
        "ext4",
        "-O",
        "meta_bg,^resize_inode,^64bit",
        "-b",
        "1024",
        "-g",
        "1024",
        "-i",
        "65536",
    ],
}
LAYOUT_SIZES = {"ext4-meta-bg": "256M"}


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build_tree(root: Path) -> None:
    rng = random.Random(1)
    root.mkdir()
    for size in (0, 1, 59, 60, 61, 120, 4095, 4096, 4097):
        write(root / "sizes" / f"f{size}", bytes(rng.getrandbits(8) for _ in range(size)))
    write(root / "random-200k", rng.randbytes(200 * 1024))
    # 1.5 MiB: double-indirect blocks on ext2 with 1 KiB blocks.
    write(root / "big", rng.randbytes(1536 * 1024))
    sparse = root / "sparse"
    with sparse.open("wb") as handle:
        for offset in (0, 3 * MIB + 123, TRIPLE_INDIRECT_OFFSET):
            handle.seek(offset)
            handle.write(rng.randbytes(10000))
    # A hole at the end too.
    os.truncate(sparse, TRIPLE_INDIRECT_OFFSET + 2 * MIB)
    # 400 separate extents: an extent tree of depth 1 with 4 KiB blocks, depth 2 with 1 KiB.
    with (root / "fragmented").open("wb") as handle:
        for chunk in range(400):
            handle.seek(chunk * 8192)
            handle.write(rng.randbytes(1024))
    for index in range(3000):
        (root / "many").mkdir(exist_ok=True)
        (root / "many" / f"entry-{index:05d}-{'x' * (index % 40)}").write_bytes(b"%d" % index)
    deep = root / "deep"
    for level in range(25):
        deep = deep / f"level{level}"
    write(deep / "bottom", b"bottom\n")
    write(root / "small-dir" / "a", b"a")
    write(root / "etc" / "os-release", OS_RELEASE)
    (root / "empty-dir").mkdir()
    (root / "fast-link").symlink_to("etc/os-release")
    (root / "absolute-link").symlink_to("/etc/os-release")
    (root / "dangling-link").symlink_to("../nowhere")
    # Inline on an inline_data file system (i_block plus system.data), a block elsewhere.
    (root / "medium-link").symlink_to("../" * 33)
    (root / "slow-link").symlink_to("/" + "/".join(f"component{n:03d}" for n in range(30)))
    (root / "hard-link").hardlink_to(root / "etc" / "os-release")
    os.mkfifo(root / "fifo")
    fd = os.open(os.path.join(os.fsencode(root), NOT_UTF8), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"not utf-8\n")
    os.close(fd)


def make_image(
    tree: Path, image: Path, options: list[str], size: str = "64M", htree: bool = True
) -> Path:
    subprocess.run(
        [MKE2FS, "-q", "-F", "-E", "root_owner=0:0", *options, "-d", str(tree), str(image), size],
        check=True,
        capture_output=True,
    )
    if htree:
        # mke2fs -d writes every directory linearly; e2fsck -D indexes the large ones (htree).
        fsck = subprocess.run([E2FSCK, "-fyD", str(image)], check=False, capture_output=True)
        assert fsck.returncode in (0, 1), fsck.stdout
    return image


def debugfs(image: Path, request: str) -> str:
    result = subprocess.run(
        [DEBUGFS, "-w", "-R", request, str(image)], check=True, capture_output=True, text=True
    )
    return result.stdout


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ext-tree") / "tree"
    build_tree(root)
    return root


@pytest.fixture(scope="module")
def ext2_image(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tree, tmp_path_factory.mktemp("ext2") / "ext2.img", LAYOUTS["ext2-1k"])


@pytest.fixture(scope="module")
def ext4_image(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_image(tree, tmp_path_factory.mktemp("ext4") / "ext4.img", LAYOUTS["ext4"])


def open_fs(image: Path) -> ExtFileSystem:
    return ExtFileSystem(FileDevice(image))


def lookup(fs: ExtFileSystem, path: str) -> int:
    inode = fs.root
    for part in path.strip("/").split("/"):
        inode = dict(fs.entries(inode))[part.encode()]
    return inode


def kind_of(mode: int) -> Kind:
    if stat.S_ISREG(mode):
        return Kind.FILE
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    return Kind.OTHER


def compare_file(fs: ExtFileSystem, inode: int, path: bytes, size: int) -> None:
    if size > 8 * MIB:
        # The sparse file: compared in pieces so the test never holds it twice.
        with open(path, "rb") as handle:
            for offset in range(0, size + 1, 4 * MIB):
                assert fs.read(inode, offset, 4 * MIB) == handle.read(4 * MIB)
        return
    with open(path, "rb") as handle:
        expected = handle.read()
    assert fs.read(inode, 0, size + 100) == expected
    # Odd chunks at odd offsets cross block and run boundaries everywhere.
    offset = 7 if size > 7 else 0
    while offset < size:
        chunk = fs.read(inode, offset, 4099)
        assert chunk == expected[offset : offset + 4099]
        offset += 4099 * 3 + 1


def compare_tree(fs: ExtFileSystem, inode: int, source: bytes, top: bool = True) -> int:
    """Every name, kind, size, byte and link target under `source`; returns entries seen."""
    listed = dict(fs.entries(inode))
    expected = {entry.name: entry for entry in os.scandir(source)}
    if top:
        assert listed.pop(b"lost+found")
    assert set(listed) == set(expected), source
    for name, entry in expected.items():
        child = listed[name]
        info = entry.stat(follow_symlinks=False)
        node = fs.node(child)
        assert node.kind is kind_of(info.st_mode), entry.path
        if node.kind is Kind.FILE:
            assert node.size == info.st_size
            compare_file(fs, child, entry.path, info.st_size)
        elif node.kind is Kind.SYMLINK:
            assert fs.read_link(child) == os.readlink(entry.path)
            assert node.size == len(os.readlink(entry.path))
        elif node.kind is Kind.DIRECTORY:
            compare_tree(fs, child, entry.path, top=False)
    return len(listed)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_reads_the_whole_tree_exactly(layout: str, tree: Path, tmp_path: Path) -> None:
    image = make_image(tree, tmp_path / "fs.img", LAYOUTS[layout], LAYOUT_SIZES.get(layout, "64M"))
    if "inline_data" in LAYOUTS[layout]:
        # mke2fs 1.47.0 -d with inline_data drops a file's trailing hole from its size.
        debugfs(image, f"sif /sparse size {(tree / 'sparse').stat().st_size}")
    assert probe(FileDevice(image))
    fs = open_fs(image)

    compare_tree(fs, fs.root, os.fsencode(tree))

    assert fs.dirty == ""
    assert fs.description == f"{fs.version} file system on {image}"
    expected_version = layout.split("-")[0]
    assert fs.version == expected_version
    top = dict(fs.entries(fs.root))
    assert top[b"hard-link"] == lookup(fs, "etc/os-release")
    assert fs.node(top[b"fifo"]).kind is Kind.OTHER
    assert (
        fs.read(lookup(fs, "sparse"), TRIPLE_INDIRECT_OFFSET - 2, 4)
        == b"\0\0"
        + ((tree / "sparse").read_bytes()[TRIPLE_INDIRECT_OFFSET : TRIPLE_INDIRECT_OFFSET + 2])
    )


def test_inline_data_is_really_inline(tree: Path, tmp_path: Path) -> None:
    """Guards the inline layout test: the small files and directory must be stored inline,
    partly in i_block and partly in the system.data attribute."""
    fs = open_fs(make_image(tree, tmp_path / "fs.img", LAYOUTS["ext4-inline"]))
    for path in ("sizes/f59", "sizes/f120", "small-dir", "medium-link"):
        inode = lookup(fs, path)
        assert fs._inode(inode).flags & FLAG_INLINE_DATA, path
    assert fs.read(lookup(fs, "sizes/f120"), 50, 20) == (tree / "sizes/f120").read_bytes()[50:70]


@pytest.mark.parametrize(("layout", "depth"), [("ext4", 1), ("ext4-32bit-1k", 2)])
def test_deep_extent_trees(layout: str, depth: int, tree: Path, tmp_path: Path) -> None:
    fs = open_fs(make_image(tree, tmp_path / "fs.img", LAYOUTS[layout]))
    found = fs._inode(lookup(fs, "fragmented"))
    assert int.from_bytes(found.i_block[6:8], "little") == depth
    expected = (tree / "fragmented").read_bytes()
    # Every start block and short lengths: ranges that end before a later index entry begins.
    for offset in range(0, len(expected), 1023):
        assert fs.read(found.number, offset, 100) == expected[offset : offset + 100]


@pytest.mark.parametrize("layout", ["ext3-4k", "ext4-large-dir"])
def test_large_directories_are_htree_indexed(layout: str, tree: Path, tmp_path: Path) -> None:
    """Guards the layout test: "many" must be an htree, whose index blocks read as empty."""
    fs = open_fs(make_image(tree, tmp_path / "fs.img", LAYOUTS[layout]))
    assert fs._inode(lookup(fs, "many")).flags & 0x1000


def test_contiguous_file_is_read_in_few_requests(ext4_image: Path) -> None:
    device = CountingDevice(FileDevice(ext4_image))
    fs = ExtFileSystem(device)
    inode = lookup(fs, "big")
    fs.node(inode)
    device.reads = 0
    assert len(fs.read(inode, 0, 2 * MIB)) == 1536 * 1024
    assert device.reads <= 4


def test_ten_thousand_entries_list_quickly(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "dir").mkdir(parents=True)
    (tree / "target").touch()
    # Hard links and no metadata_csum: mke2fs -d takes seconds over 10,000 separate inodes.
    for index in range(10000):
        (tree / "dir" / f"file-{index:05d}").hardlink_to(tree / "target")
    options = ["-t", "ext4", "-b", "4096", "-O", "^metadata_csum"]
    fs = open_fs(make_image(tree, tmp_path / "fs.img", options))
    directory = lookup(fs, "dir")
    started = time.perf_counter()
    names = [name for name, _ in fs.entries(directory)]
    elapsed = time.perf_counter() - started
    assert sorted(names) == [f"file-{index:05d}".encode() for index in range(10000)]
    assert elapsed < 0.5


def test_needs_recovery_is_dirty(ext4_image: Path, tmp_path: Path) -> None:
    image = tmp_path / "dirty.img"
    shutil.copyfile(ext4_image, image)
    debugfs(image, "feature needs_recovery")
    dirty = open_fs(image).dirty
    assert "journal needs recovery" in dirty
    assert "\n" not in dirty


def test_unclean_ext2_and_orphans_are_dirty(ext2_image: Path, tmp_path: Path) -> None:
    image = tmp_path / "dirty.img"
    shutil.copyfile(ext2_image, image)
    debugfs(image, "ssv state 0")
    debugfs(image, "ssv last_orphan 12")
    dirty = open_fs(image).dirty
    assert "not cleanly unmounted" in dirty
    assert "orphan" in dirty


def patch(image: Path, offset: int, data: bytes) -> None:
    with image.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def damaged(source: Path, tmp_path: Path) -> Path:
    image = tmp_path / "damaged.img"
    shutil.copyfile(source, image)
    return image


def test_bad_magic(ext4_image: Path, tmp_path: Path) -> None:
    image = damaged(ext4_image, tmp_path)
    patch(image, 1080, b"\0\0")
    assert not probe(FileDevice(image))
    with pytest.raises(DiskError, match="bad magic"):
        open_fs(image)


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (1024 + 0x18, 20, "block size"),
        (1024 + 0x20, 0, "per group"),
        (1024 + 0x28, 1 << 30, "inodes per group"),
        (1024 + 0x0, 1 << 31, "inode count"),
        (1024 + 0x60, 0x80000000 | 0x2, "incompatible features"),
    ],
)
def test_absurd_superblock(
    ext2_image: Path, tmp_path: Path, offset: int, value: int, message: str
) -> None:
    image = damaged(ext2_image, tmp_path)
    patch(image, offset, value.to_bytes(4, "little"))
    with pytest.raises(DiskError, match=message):
        open_fs(image)


def test_inode_numbers_out_of_range(ext4_image: Path) -> None:
    fs = open_fs(ext4_image)
    for inode in (0, 10**9):
        with pytest.raises(DiskError, match="out of range"):
            fs.node(inode)


@pytest.mark.parametrize(
    ("source", "request_", "message"),
    [
        ("ext2", "sif /big block[0] 99999999", "past the end"),
        ("ext2", "sif /big block[DIND] 99999999", "past the end"),
        ("ext4", "sif /big block[5] 99999999", "past the end"),
        ("ext4", "sif /big block[0] 0", "extent header"),
        # eh_max 4, eh_depth 9.
        ("ext4", f"sif /big block[1] {4 | 9 << 16}", "depth"),
        ("ext4", "sif /big flags 0x80800", "encrypted"),
    ],
)
def test_damaged_file_data(
    source: str,
    request_: str,
    message: str,
    ext2_image: Path,
    ext4_image: Path,
    tmp_path: Path,
) -> None:
    image = damaged(ext2_image if source == "ext2" else ext4_image, tmp_path)
    debugfs(image, request_)
    fs = open_fs(image)
    with pytest.raises(DiskError, match=message):
        fs.read(lookup(fs, "big"), 0, 2 * MIB)


@pytest.mark.parametrize(
    ("rec_len", "message"), [(3, "record length"), (8, "record length"), (60000, "record length")]
)
def test_damaged_directory_block(
    ext4_image: Path, tmp_path: Path, rec_len: int, message: str
) -> None:
    image = damaged(ext4_image, tmp_path)
    fs = open_fs(image)
    block = int(debugfs(image, "bmap /etc 0").strip())
    # The first entry is ".": its record length follows the 4-byte inode number.
    patch(image, block * fs.block_size + 4, rec_len.to_bytes(2, "little"))
    with pytest.raises(DiskError, match=message):
        list(open_fs(image).entries(lookup(fs, "etc")))


class CountingDevice:
    def __init__(self, device: FileDevice) -> None:
        self.device = device
        self.description = device.description
        self.size = device.size
        self.reads = 0

    def pread(self, offset: int, length: int) -> bytes:
        self.reads += 1
        return self.device.pread(offset, length)


class MemoryDevice:
    def __init__(self, data: bytes, description: str = "memory.img") -> None:
        self.data = data
        self.size = len(data)
        self.description = description

    def pread(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


def walk_everything(fs: ExtFileSystem) -> Iterator[int]:
    """Every inode reachable from the root, each read whole (bounded, as a scanner would)."""
    seen: set[int] = set()
    pending = [fs.root]
    while pending and len(seen) < 20000:
        directory = pending.pop()
        if directory in seen:
            continue
        seen.add(directory)
        for _, child in fs.entries(directory):
            node = fs.node(child)
            yield child
            if node.kind is Kind.DIRECTORY:
                pending.append(child)
            elif node.kind is Kind.FILE:
                fs.read(child, 0, min(node.size, 4 * MIB))
            elif node.kind is Kind.SYMLINK:
                fs.read_link(child)


def survive(data: bytes) -> bool:
    """Reads everything; True when some DiskError stopped it. Any other exception fails."""
    try:
        fs = ExtFileSystem(MemoryDevice(data))
        for _ in walk_everything(fs):
            pass
    except DiskError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return True
    return False


@pytest.mark.parametrize("source", ["ext2", "ext4"])
def test_truncated_image(source: str, ext2_image: Path, ext4_image: Path) -> None:
    data = (ext2_image if source == "ext2" else ext4_image).read_bytes()
    stopped = [survive(data[: len(data) // fraction]) for fraction in (2, 4, 8, 16, 64, 1000)]
    assert any(stopped)


@pytest.mark.parametrize("layout", ["ext2-1k", "ext4-inline", "ext4-32bit-1k"])
def test_random_damage_raises_only_disk_errors(layout: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write(tree / "a" / "b" / "file", b"x" * 5000)
    write(tree / "a" / "small", b"small")
    (tree / "a" / "link").symlink_to("b/file")
    for index in range(200):
        write(tree / "many" / f"f{index}", b"%d" % index)
    data = make_image(tree, tmp_path / "fs.img", LAYOUTS[layout], "2M").read_bytes()
    # Damage only the blocks in use near the start: the superblock, descriptors, inode table,
    # directories and indirect/extent blocks; the empty remainder would test nothing.
    used = len(data.rstrip(b"\0"))
    rng = random.Random(layout)
    for _ in range(150):
        corrupted = bytearray(data)
        for _ in range(rng.choice((1, 4, 32))):
            position = rng.randrange(1024, used)
            corrupted[position] = rng.getrandbits(8)
        survive(bytes(corrupted))


def test_unwritten_extent_reads_as_zeros(ext4_image: Path, tmp_path: Path) -> None:
    image = damaged(ext4_image, tmp_path)
    fs = open_fs(image)
    found = fs._inode(lookup(fs, "big"))
    length = int.from_bytes(found.i_block[16:18], "little")
    assert length * fs.block_size == 1536 * 1024, "expected one extent"
    # ee_len above 32768 marks the extent unwritten (ee_start_hi is 0 in the high half).
    debugfs(image, f"sif /big block[4] {length + 32768}")
    fs = open_fs(image)
    assert fs.read(found.number, 1000, 2 * MIB) == bytes(1536 * 1024 - 1000)


def test_wrong_kind_of_inode(ext4_image: Path) -> None:
    fs = open_fs(ext4_image)
    with pytest.raises(DiskError, match="not a directory"):
        list(fs.entries(lookup(fs, "big")))
    with pytest.raises(DiskError, match="not a regular file"):
        fs.read(fs.root, 0, 10)
    with pytest.raises(DiskError, match="not a symlink"):
        fs.read_link(lookup(fs, "big"))
