"""Byte-exact through every layer combination: each file of a generated tree reads back
identical through every file system (ext4, XFS), partition scheme (none, GPT with 512-byte and
4 KiB sectors, MBR logical partition) and image format (raw, qcow2, compressed qcow2, VMDK sparse
and streamOptimized), as the checks read it (the assembled guest tree)."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.disk.assemble import assemble
from scanner.disk.device import BlockCache, FileDevice
from scanner.disk.formats import open_image
from scanner.fs import WalkBounds, walk_entries
from tests.diskimages import convert, make_ext4, make_gpt_disk, make_mbr_disk, make_xfs

FORMATS = ("raw", "qcow2", "qcow2-compressed", "vmdk-sparse", "vmdk-stream")
SCHEMES: dict[str, Callable[[Path, Path], Path]] = {
    "bare": lambda fs, work: fs,
    "GPT 512": lambda fs, work: make_gpt_disk(fs, work / "gpt512.img"),
    "GPT 4K": lambda fs, work: make_gpt_disk(fs, work / "gpt4k.img", sector=4096),
    "MBR logical": lambda fs, work: make_mbr_disk(fs, work / "mbr.img"),
}


def _tree(root: Path) -> dict[str, bytes]:
    """A root with text, binary, empty, big, sparse and deeply nested files, and symlinks."""
    rng = random.Random(7)
    files: dict[str, bytes] = {
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
        "etc/passwd": b"root:x:0:0:root:/root:/bin/bash\n",
        "etc/empty": b"",
        "usr/lib/big.bin": rng.randbytes(3 * 1024 * 1024 + 17),
        "var/log/text.log": b"".join(b"line %d\n" % n for n in range(40_000)),
    }
    for index in range(300):
        size = rng.choice([1, 59, 60, 61, 4095, 4096, 4097, 70_000])
        files[f"srv/d{index % 17}/e{index % 5}/f{index}"] = rng.randbytes(size)
    deep = "/".join(f"l{n}" for n in range(30))
    files[f"opt/{deep}/leaf"] = b"deep\n"
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    sparse = root / "var/sparse"
    with sparse.open("wb") as handle:
        handle.seek(5 * 1024 * 1024)
        handle.write(b"after the hole")
    files["var/sparse"] = bytes(5 * 1024 * 1024) + b"after the hole"
    (root / "etc/link").symlink_to("/usr/lib/big.bin")
    return files


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("tree") / "root"
    return root, _tree(root)


@pytest.fixture(scope="module")
def file_systems(
    source: tuple[Path, dict[str, bytes]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("fs")
    root, _ = source
    return {
        "ext4": make_ext4(root, work / "root.ext4", 48),
        "XFS": make_xfs(root, work / "root.xfs", 320, "-s", "size=4096"),
    }


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("fs_kind", ["ext4", "XFS"])
def test_every_file_reads_back_identical(
    source: tuple[Path, dict[str, bytes]],
    file_systems: dict[str, Path],
    tmp_path: Path,
    fs_kind: str,
    scheme: str,
    fmt: str,
) -> None:
    _, expected = source
    disk = SCHEMES[scheme](file_systems[fs_kind], tmp_path)
    image = disk if fmt == "raw" else convert(disk, fmt, tmp_path / f"disk.{fmt}")
    opened = assemble([open_image(BlockCache(FileDevice(image)))])
    assert opened.tree is not None, opened.problem
    read: dict[str, bytes] = {}
    for entry in walk_entries(opened.tree, "/", WalkBounds()):
        with entry.open() as handle:
            read[entry.path.lstrip("/")] = handle.read()
    # lost+found is mkfs.ext4's own; everything else is the tree's.
    assert {p: c for p, c in read.items() if not p.startswith("lost+found")} == expected
    assert opened.tree.read_bytes("/etc/link", 64) == expected["usr/lib/big.bin"][:64]
