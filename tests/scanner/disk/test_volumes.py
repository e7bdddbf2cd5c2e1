"""scanner.disk.volumes against disks made by the real tools: sgdisk, fdisk and sfdisk for the
partition tables, mkfs.* for what is in the partitions, and lvm2 itself for the LVM fixtures
(tests/scanner/disk/make_lvm_fixture.sh). Where a disk's layout is checked, the expected layout comes from
the tool that wrote it (sfdisk --json, lvm2's segment report), not from the code under test.

Needs no root. Tests whose tool is missing are skipped: CI installs gdisk, fdisk, e2fsprogs,
xfsprogs, dosfstools, btrfs-progs, cryptsetup-bin and genisoimage.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.disk.device import BlockDevice, DiskError, FileDevice
from scanner.disk.lvm import lvm_crc, parse_metadata
from scanner.disk.volumes import Volume, find_volumes
from tests.diskimages import LUKS_FORMAT, LVM_DATA, LvmFixture, lvm_fixture

MiB = 1024 * 1024


def need(*tools: str) -> None:
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")


def run(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    return subprocess.run(
        args,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout


def sparse(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.truncate(size)
    return path


def put(disk: Path, offset: int, data: bytes | bytearray) -> None:
    """Write `data` into `disk` at `offset` without truncating it (dd conv=notrunc)."""
    with disk.open("r+b") as f:
        f.seek(offset)
        f.write(data)


# Every FileDevice a test opens, closed after it.
_opened: list[FileDevice] = []


@pytest.fixture(autouse=True)
def _close_devices() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def volumes_of(path: Path) -> list[Volume]:
    device = FileDevice(path)
    _opened.append(device)
    return find_volumes(device)


class PatchedDevice:
    """A disk image in memory with its first bytes replaced: many variants of one disk, cheaply."""

    def __init__(self, pristine: bytes, head: bytes) -> None:
        self.pristine = pristine
        self.head = head
        self.size = len(pristine)
        self.description = "patched.img"

    def pread(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + max(0, length))
        split = len(self.head)
        return self.head[offset:end] + self.pristine[max(offset, split) : end]


def read_all(device: BlockDevice) -> bytes:
    return device.pread(0, device.size)


# --- file-system images, made once ------------------------------------------------------------


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small file-system images by kind, for each tool that is installed."""
    work = tmp_path_factory.mktemp("fs")
    tree = work / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "etc" / "hostname").write_text("fixture\n")
    made: dict[str, bytes] = {}

    def make(kind: str, size: int, *command: str, env: dict[str, str] | None = None) -> None:
        if shutil.which(command[0]) is None:
            return
        image = sparse(work / f"{kind}.img", size)
        try:
            run(*command, str(image), env=env)
        except subprocess.CalledProcessError:
            return
        made[kind] = image.read_bytes()

    make("ext", 8 * MiB, "mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree))
    # mkfs.xfs refuses file systems under 300 MB outside xfstests; these variables are how
    # xfstests makes small ones.
    small_xfs = {"TEST_DIR": "1", "TEST_DEV": "1", "QA_CHECK_FS": "1"}
    make("xfs", 32 * MiB, "mkfs.xfs", "-q", "-f", env=small_xfs)
    make("vfat", 8 * MiB, "mkfs.vfat", "-F", "32", "-n", "ESP")
    make("btrfs", 32 * MiB, "mkfs.btrfs", "-q", "-f", "--mixed")
    make("swap", 4 * MiB, "mkswap", "-q")
    # LUKS headers on a plain file need no loop device; the key is throwaway and cheap.
    make(
        "luks",
        20 * MiB,
        "cryptsetup",
        *LUKS_FORMAT,
        str(tree / "etc" / "hostname"),
    )
    if shutil.which("genisoimage"):
        iso = work / "iso9660.img"
        run("genisoimage", "-quiet", "-o", str(iso), str(tree))
        made["iso9660"] = iso.read_bytes()
    return made


def image(images: dict[str, bytes], kind: str) -> bytes:
    if kind not in images:
        # "not installed": CI turns this skip into a failure (tests/conftest.py).
        pytest.skip(f"the tool that makes a {kind} file system is not installed (or failed)")
    return images[kind]


def sfdisk_layout(disk: Path) -> list[tuple[int, int, int]]:
    """(number, start byte, size in bytes) of each partition, as sfdisk reads the table."""
    table = json.loads(run("sfdisk", "--json", str(disk)))["partitiontable"]
    sector = table.get("sectorsize", 512)
    return [
        (int(p["node"].removeprefix(str(disk))), p["start"] * sector, p["size"] * sector)
        for p in table["partitions"]
    ]


def check_layout(volumes: list[Volume], disk: Path, layout: list[tuple[int, int, int]]) -> None:
    """Each volume is the partition the tool says, with the disk's bytes at that place."""
    raw = disk.read_bytes()
    assert len(volumes) == len(layout)
    for volume, (number, start, size) in zip(volumes, layout, strict=True):
        assert volume.device.description == f"partition {number} of {disk}"
        assert volume.device.size == size
        assert read_all(volume.device) == raw[start : start + size]


# --- whole disks -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ext", "xfs", "vfat", "btrfs", "swap", "luks", "iso9660"])
def test_bare_file_system_is_the_whole_disk(
    tmp_path: Path, images: dict[str, bytes], kind: str
) -> None:
    data = image(images, kind)
    disk = tmp_path / "disk.img"
    disk.write_bytes(data)
    (volume,) = volumes_of(disk)
    assert (volume.content, volume.label) == (kind, "")
    assert volume.device.description == str(disk)
    assert read_all(volume.device) == data


def test_blank_disk_is_one_unknown_volume(tmp_path: Path) -> None:
    disk = sparse(tmp_path / "blank.img", 4 * MiB)
    (volume,) = volumes_of(disk)
    assert (volume.content, volume.label, volume.device.size) == ("unknown", "", 4 * MiB)


def test_tiny_disks_do_not_crash(tmp_path: Path) -> None:
    for size in (0, 1, 511, 512, 1100, 4095):
        disk = tmp_path / f"tiny{size}.img"
        disk.write_bytes(b"\x55\xaa" * (size // 2) + b"\0" * (size % 2))
        assert [v.content for v in volumes_of(disk)] == ["unknown"]


# --- GPT ---------------------------------------------------------------------------------------


def gpt_disk(path: Path, images: dict[str, bytes]) -> Path:
    """BIOS boot, ESP (vfat), root (ext4), data (XFS), swap; each file system written in place."""
    need("sgdisk", "sfdisk")
    disk = sparse(path, 80 * MiB)
    run(
        "sgdisk",
        "-n1:2048:+1M", "-t1:ef02", "-c1:BIOS boot",
        "-n2:0:+8M", "-t2:ef00", "-c2:EFI system",
        "-n3:0:+16M", "-t3:8300", "-c3:root",
        "-n4:0:+32M", "-t4:8300", "-c4:data",
        "-n5:0:+4M", "-t5:8200", "-c5:swap",
        str(disk),
    )  # fmt: skip
    layout = sfdisk_layout(disk)
    for (_, start, _), kind in zip(layout[1:], ["vfat", "ext", "xfs", "swap"], strict=True):
        if kind in images:
            put(disk, start, images[kind])
    return disk


def test_gpt_512_byte_sectors(tmp_path: Path, images: dict[str, bytes]) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    volumes = volumes_of(disk)
    check_layout(volumes, disk, sfdisk_layout(disk))
    assert [v.label for v in volumes] == ["BIOS boot", "EFI system", "root", "data", "swap"]
    expected = [k if k in images else "unknown" for k in ["unknown", "vfat", "ext", "xfs", "swap"]]
    assert [v.content for v in volumes] == expected
    root = volumes[2].device
    assert root.pread(0, len(images["ext"])) == images["ext"]


def test_gpt_4k_sectors(tmp_path: Path, images: dict[str, bytes]) -> None:
    """fdisk -b 4096 writes a 4Kn GPT (LBA 1 at byte 4096) to a plain file; sfdisk of this
    util-linux has no --sector-size and sgdisk assumes 512 for files."""
    need("fdisk")
    disk = sparse(tmp_path / "gpt4k.img", 64 * MiB)
    # g: new GPT; n 1, +8M, t: EFI System (type 1); n 2, +16M (Linux filesystem); w.
    run("fdisk", "-b", "4096", str(disk), stdin="g\nn\n1\n\n+8M\nt\n1\nn\n2\n\n+16M\nw\n")
    listing = run("fdisk", "-b", "4096", "-l", "-o", "Device,Start,Sectors", str(disk))
    layout = []
    for line in listing.splitlines():
        if line.startswith(str(disk)):
            node, start, sectors = line.split()
            layout.append(
                (int(node.removeprefix(str(disk))), int(start) * 4096, int(sectors) * 4096)
            )
    assert [n for n, _, _ in layout] == [1, 2]
    assert disk.read_bytes()[4096:4104] == b"EFI PART"
    put(disk, layout[0][1], image(images, "vfat"))
    put(disk, layout[1][1], image(images, "ext"))
    volumes = volumes_of(disk)
    check_layout(volumes, disk, layout)
    assert [(v.content, v.label) for v in volumes] == [
        ("vfat", "EFI system partition"),
        ("ext", "Linux filesystem"),
    ]


def corrupt_header(disk: Path, lba: int) -> None:
    """Flip a byte of the disk GUID in the GPT header at `lba`, so its CRC no longer matches."""
    with disk.open("r+b") as f:
        f.seek(lba * 512 + 60)
        byte = f.read(1)
        f.seek(lba * 512 + 60)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_gpt_with_corrupt_primary_header_uses_the_backup(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    good = [(v.device.description, v.content, v.label) for v in volumes_of(disk)]
    corrupt_header(disk, 1)
    assert [(v.device.description, v.content, v.label) for v in volumes_of(disk)] == good
    # So also with the primary header gone entirely (the protective MBR says "GPT").
    put(disk, 512, bytes(512))
    assert [(v.device.description, v.content, v.label) for v in volumes_of(disk)] == good


def test_gpt_with_corrupt_primary_entries_uses_the_backup(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    good = [(v.device.description, v.content, v.label) for v in volumes_of(disk)]
    put(disk, 2 * 512 + 56, "xx".encode("utf-16-le"))  # the first entry's name
    assert [(v.device.description, v.content, v.label) for v in volumes_of(disk)] == good


def test_gpt_with_both_headers_corrupt_is_a_disk_error(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    corrupt_header(disk, 1)
    corrupt_header(disk, disk.stat().st_size // 512 - 1)
    with pytest.raises(DiskError, match=r"GPT partition table that cannot be read.*CRC"):
        volumes_of(disk)


def test_gpt_partition_past_the_end_is_a_disk_error(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    """Entry 5's last LBA patched beyond the disk, with both CRCs recomputed as a tool would."""
    disk = gpt_disk(tmp_path / "gpt.img", images)
    raw = bytearray(disk.read_bytes())
    entry = 2 * 512 + 4 * 128
    struct.pack_into("<Q", raw, entry + 40, len(raw) // 512 + 100)
    struct.pack_into("<I", raw, 512 + 88, zlib.crc32(raw[1024 : 1024 + 128 * 128]))
    header = raw[512 : 512 + 92]
    header[16:20] = bytes(4)
    struct.pack_into("<I", raw, 512 + 16, zlib.crc32(header))
    disk.write_bytes(raw)
    with pytest.raises(DiskError, match=r"partition 5 of .* runs past the end of the disk"):
        volumes_of(disk)


def test_truncated_gpt_disk_is_a_disk_error(tmp_path: Path, images: dict[str, bytes]) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    raw = disk.read_bytes()
    # Within the last partition, which ends at 62 MiB (the primary GPT is whole, the backup gone).
    disk.write_bytes(raw[: 60 * MiB])
    with pytest.raises(DiskError, match=r"partition 5 of .* runs past the end"):
        volumes_of(disk)
    # Within the partition entries.
    disk.write_bytes(raw[:4000])
    with pytest.raises(DiskError, match=r"past the end|cannot be read"):
        volumes_of(disk)


def test_image_that_shrinks_after_opening_is_a_disk_error(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    disk = gpt_disk(tmp_path / "gpt.img", images)
    device = FileDevice(disk)
    try:
        os.truncate(disk, 40 * MiB)
        with pytest.raises(DiskError):
            for volume in find_volumes(device):
                read_all(volume.device)
    finally:
        device.close()


# --- MBR ---------------------------------------------------------------------------------------


def mbr_disk(path: Path, images: dict[str, bytes]) -> Path:
    """Primary ext4 (0x83), an extended partition (1 MiB to 80 MiB), logical vfat (0x0c) at
    18 MiB and logical XFS (0x83) at 27 MiB."""
    need("sfdisk")
    disk = sparse(path, 80 * MiB)
    run(
        "sfdisk",
        "-q",
        str(disk),
        # The extended partition takes the rest of the disk: sfdisk will not fit logical
        # partitions into a sized one from a script.
        stdin="label: dos\nstart=2048, size=16MiB, type=83\ntype=5\n"
        "size=8MiB, type=c\nsize=34MiB, type=83\n",
    )
    layout = sfdisk_layout(disk)
    starts = {number: start for number, start, _ in layout}
    for number, kind in ((1, "ext"), (5, "vfat"), (6, "xfs")):
        if kind in images:
            put(disk, starts[number], images[kind])
    return disk


def test_mbr_with_logical_partitions(tmp_path: Path, images: dict[str, bytes]) -> None:
    disk = mbr_disk(tmp_path / "mbr.img", images)
    layout = [p for p in sfdisk_layout(disk) if p[0] != 2]  # 2 is the extended partition
    volumes = volumes_of(disk)
    check_layout(volumes, disk, layout)
    assert [v.label for v in volumes] == ["0x83", "0x0c", "0x83"]
    assert [v.content for v in volumes] == [
        k if k in images else "unknown" for k in ["ext", "vfat", "xfs"]
    ]


def test_signatures_in_the_boot_loader_gap_do_not_hide_the_partition_table(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    """GRUB's core.img sits between the MBR and the first partition and contains the btrfs and
    ISO 9660 magic strings (in its modules); where they land must not make the disk a bare file
    system."""
    disk = mbr_disk(tmp_path / "mbr.img", images)
    expected = [(v.device.description, v.content) for v in volumes_of(disk)]
    put(disk, 65536 + 64, b"_BHRfS_M")
    put(disk, 32768 + 1, b"CD001")
    put(disk, 4096 - 10, b"SWAPSPACE2")
    assert [(v.device.description, v.content) for v in volumes_of(disk)] == expected


def ebr_sectors(disk: Path) -> list[int]:
    """The EBR chain's LBAs, followed by hand (the test's own reading, not the code's)."""
    raw = disk.read_bytes()
    ext = next(
        struct.unpack_from("<I", raw, 446 + 16 * slot + 8)[0]
        for slot in range(4)
        if raw[446 + 16 * slot + 4] == 0x05
    )
    chain, ebr = [], ext
    while True:
        chain.append(ebr)
        link = struct.unpack_from("<B3xI", raw, ebr * 512 + 446 + 16 + 4)
        if link[0] != 0x05:
            return chain
        ebr = ext + link[1]


def test_mbr_ebr_chain_that_loops_is_bounded(tmp_path: Path, images: dict[str, bytes]) -> None:
    disk = mbr_disk(tmp_path / "mbr.img", images)
    first, second = ebr_sectors(disk)
    raw = disk.read_bytes()
    ext = struct.unpack_from("<I", raw, 446 + 16 + 8)[0]
    # The second EBR's link now points back at the first.
    put(disk, second * 512 + 446 + 16 + 8, struct.pack("<I", first - ext))
    assert [v.device.description.split()[1] for v in volumes_of(disk)] == ["1", "5", "6"]
    # And the first EBR's link at itself.
    put(disk, first * 512 + 446 + 16 + 8, struct.pack("<I", first - ext))
    assert [v.device.description.split()[1] for v in volumes_of(disk)] == ["1", "5"]


def test_mbr_partition_past_the_end_is_a_disk_error(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    disk = mbr_disk(tmp_path / "mbr.img", images)
    raw = disk.read_bytes()
    disk.write_bytes(raw[: 70 * MiB])  # inside the extended partition
    with pytest.raises(DiskError, match=r"partition 2 of .* runs past the end of the disk"):
        volumes_of(disk)
    disk.write_bytes(raw[: 10 * MiB])  # inside partition 1 too
    with pytest.raises(DiskError, match=r"partition 1 of .* runs past the end of the disk"):
        volumes_of(disk)


def test_corrupted_partition_tables_raise_only_disk_error(
    tmp_path: Path, images: dict[str, bytes]
) -> None:
    """Random bytes over the first 40 KiB (MBR, EBR-free GPT header and entries) of both kinds of
    disk: whatever happens, it is a result or a DiskError."""
    rng = random.Random(1234)
    for make in (gpt_disk, mbr_disk):
        disk = make(tmp_path / f"{make.__name__}.img", images)
        pristine = disk.read_bytes()
        for _ in range(300):
            raw = bytearray(pristine[:65536])
            for _ in range(rng.randint(1, 16)):
                at = rng.choice([446, 454, 458, 510, 512, 520, 528, 536, 584, 1024, 1056, 1064])
                at += rng.randrange(0, 40)
                raw[at] = rng.randrange(256)
            try:
                volumes = find_volumes(PatchedDevice(pristine, bytes(raw)))
            except DiskError:
                continue
            for volume in volumes:
                assert isinstance(volume.device.pread(0, 16), bytes)


# --- LVM ---------------------------------------------------------------------------------------


def noise(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


@pytest.fixture
def vg0(images: dict[str, bytes]) -> LvmFixture:
    # root: an ext4 file system (so its content is identified); data: seeded random bytes.
    root = image(images, "ext")
    return lvm_fixture(
        "lvm-pv",
        {"root": root + bytes(8 * MiB - len(root)), "data": noise(1, 5 * MiB)},
        ["lvm-pv.img.gz"],
    )


def check_lvs(volumes: list[Volume], fixture: LvmFixture, where: str) -> None:
    by_label = {v.label: v for v in volumes}
    rng = random.Random(99)
    for name, content in fixture.contents.items():
        device = by_label[name].device
        assert device.description.startswith("logical volume ") and device.description.endswith(
            f"/{name} on {where}"
        )
        assert device.size == len(content)
        assert read_all(device) == content
        for boundary in fixture.boundaries.get(name, []):
            for _ in range(40):
                offset = rng.randrange(max(0, boundary - 70000), boundary)
                length = rng.randrange(boundary - offset + 1, boundary - offset + 70000)
                assert device.pread(offset, length) == content[offset : offset + length]
        for _ in range(20):
            offset = rng.randrange(len(content))
            length = rng.randrange(0, 300000)
            assert device.pread(offset, length) == content[offset : offset + length]


def test_lvm_physical_volume_as_the_whole_disk(tmp_path: Path, vg0: LvmFixture) -> None:
    disk = tmp_path / "pv.img"
    disk.write_bytes(vg0.pvs[0])
    volumes = volumes_of(disk)
    assert [(v.label, v.content) for v in volumes] == [("data", "unknown"), ("root", "ext")]
    assert vg0.boundaries == {"data": [2 * MiB]}
    check_lvs(volumes, vg0, str(disk))
    assert volumes[1].device.description == f"logical volume vg0/root on {disk}"


def test_lvm_physical_volume_in_a_gpt_partition(tmp_path: Path, vg0: LvmFixture) -> None:
    need("sgdisk", "sfdisk")
    disk = sparse(tmp_path / "disk.img", 32 * MiB)
    run(
        "sgdisk",
        "-n1:2048:+1M", "-t1:ef02", "-c1:BIOS boot",
        "-n2:0:+24M", "-t2:8e00", "-c2:lvm",
        str(disk),
    )  # fmt: skip
    (_, _, _), (number, start, size) = sfdisk_layout(disk)
    assert (number, size) == (2, len(vg0.pvs[0]))
    put(disk, start, vg0.pvs[0])
    volumes = volumes_of(disk)
    assert [(v.label, v.content) for v in volumes] == [
        ("BIOS boot", "unknown"),
        ("data", "unknown"),
        ("root", "ext"),
    ]
    check_lvs(volumes[1:], vg0, f"partition 2 of {disk}")


def two_pv_disk(tmp_path: Path, vg1: LvmFixture, both: bool) -> Path:
    need("sgdisk", "sfdisk")
    disk = sparse(tmp_path / "disk.img", 40 * MiB)
    run(
        "sgdisk",
        "-n1:2048:+4M", "-t1:8300", "-c1:boot",
        "-n2:0:+12M", "-t2:8e00", "-c2:pv a",
        "-n3:0:+12M", "-t3:8e00", "-c3:pv b",
        str(disk),
    )  # fmt: skip
    layout = sfdisk_layout(disk)
    put(disk, layout[1][1], vg1.pvs[0])
    if both:
        put(disk, layout[2][1], vg1.pvs[1])
    return disk


@pytest.fixture
def vg1() -> LvmFixture:
    return lvm_fixture(
        "lvm-vg1", {"span": noise(2, 14 * MiB)}, ["lvm-vg1-a.img.gz", "lvm-vg1-b.img.gz"]
    )


def test_lvm_volume_group_over_two_partitions(tmp_path: Path, vg1: LvmFixture) -> None:
    disk = two_pv_disk(tmp_path, vg1, both=True)
    volumes = volumes_of(disk)
    assert [v.content for v in volumes] == ["unknown", "unknown", "unknown"]
    boot, stripes, span = volumes
    assert boot.label == "boot"
    # The striped LV is listed, unread, saying why; the linear LV next to it is read.
    assert (
        stripes.label == "vg1/stripes is striped over several physical volumes, which is not read"
    )
    assert stripes.device.size == 0
    with pytest.raises(DiskError, match="striped"):
        stripes.device.pread(0, 1)
    assert vg1.boundaries == {"span": [9 * MiB]}
    check_lvs([span], vg1, f"partition 2 of {disk} and partition 3 of {disk}")


def test_lvm_volume_group_missing_a_physical_volume_is_a_disk_error(
    tmp_path: Path, vg1: LvmFixture
) -> None:
    disk = two_pv_disk(tmp_path, vg1, both=False)
    uuid = json.loads((LVM_DATA / "lvm-vg1.json").read_text())["pvs"][1]["pv_uuid"]
    with pytest.raises(DiskError, match=f"vg1 .* missing its physical volume pv1 \\(UUID {uuid}"):
        volumes_of(disk)


def test_lvm_extent_past_the_end_of_the_pv_is_a_disk_error(tmp_path: Path, vg0: LvmFixture) -> None:
    disk = tmp_path / "pv.img"
    disk.write_bytes(vg0.pvs[0][: 12 * MiB])  # data's second segment is at 11-14 MiB
    with pytest.raises(DiskError, match=r"vg0/data .*past the end"):
        volumes_of(disk)


def test_lvm_corrupt_metadata_is_a_disk_error(tmp_path: Path, vg0: LvmFixture) -> None:
    raw = bytearray(vg0.pvs[0])
    # The current text, where the metadata area's header (at 4 KiB) points: older copies precede
    # it in the area.
    text_offset = struct.unpack_from("<Q", raw, 4096 + 40)[0]
    at = raw.index(b"logical_volumes", 4096 + text_offset)
    raw[at] ^= 0x20  # the text's checksum no longer matches
    disk = tmp_path / "pv.img"
    disk.write_bytes(raw)
    with pytest.raises(DiskError, match="checksum"):
        volumes_of(disk)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"vg {",
        b"vg { a = [",
        b"vg { a = [1, 2",
        b"a = " + b"[" * 5000,
        b"vg " + b"{ x " * 5000,
        b'vg { a = "unterminated }',
        b"vg { = 3 }",
        b"vg { a = 3 } }",
        b"\xff\xfe",
    ],
)
def test_metadata_parser_fails_only_with_disk_error(text: bytes) -> None:
    if text:
        with pytest.raises(DiskError, match="LVM2 metadata does not parse"):
            parse_metadata(text, "pv")
    else:
        assert parse_metadata(text, "pv") == {}


def test_mutated_lvm_metadata_gives_volumes_or_disk_error(vg0: LvmFixture) -> None:
    """Random edits to the current metadata text, its checksums recomputed (so the parser and the
    VG/LV checks see them, not just the CRC): a result or a DiskError, nothing else."""
    pristine = bytes(vg0.pvs[0])
    header_at = 4096
    text_offset, text_size = struct.unpack_from("<QQ", pristine, header_at + 40)
    start = header_at + text_offset
    text = pristine[start : start + text_size]
    rng = random.Random(7)
    alphabet = b'{}[]=,"# \n0123456789-abcxyz'
    outcomes = {"volumes": 0, "error": 0}
    for _ in range(400):
        mutated = bytearray(text)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(mutated) - 1)
            mutated[at] = rng.choice(alphabet)
        head = bytearray(pristine[: start + text_size])
        head[start:] = mutated
        struct.pack_into("<I", head, header_at + 40 + 16, lvm_crc(bytes(mutated)))
        struct.pack_into(
            "<I", head, header_at, lvm_crc(bytes(head[header_at + 4 : header_at + 512]))
        )
        try:
            volumes = find_volumes(PatchedDevice(pristine, bytes(head)))
        except DiskError:
            outcomes["error"] += 1
            continue
        outcomes["volumes"] += 1
        for volume in volumes:
            if volume.device.size:
                assert isinstance(volume.device.pread(0, 16), bytes)
    assert outcomes["volumes"] and outcomes["error"]


def test_metadata_parser_reads_lvm2_text() -> None:
    text = b'# comment\nvg0 {\n\tid = "a-b"\n\tseqno = 3\n\tstatus = ["READ", "WRITE"]\n\tpvs {\n\t\tpv0 {\n\t\t\tstripes = [\n"pv0", 0,\n"pv1", -1\n]\n}\n}\n}\ncontents = "x \\" y"\n'
    assert parse_metadata(text, "pv") == {
        "vg0": {
            "id": "a-b",
            "seqno": 3,
            "status": ["READ", "WRITE"],
            "pvs": {"pv0": {"stripes": ["pv0", 0, "pv1", -1]}},
        },
        "contents": 'x " y',
    }
