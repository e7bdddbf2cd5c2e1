"""The image-format layer against real images made by qemu-img from one raw disk: every format
reads back byte for byte, and broken or unsupported images fail with one clear DiskError."""

from __future__ import annotations

import os
import random
import shutil
import struct
import subprocess
from array import array
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.disk.device import BlockCache, BlockDevice, DiskError, FileDevice
from scanner.disk.formats import image_format, open_image
from scanner.disk.qcow2 import Qcow2Image

QEMU_IMG = shutil.which("qemu-img")
QEMU_IO = shutil.which("qemu-io")
pytestmark = pytest.mark.skipif(QEMU_IMG is None, reason="qemu-img (qemu-utils) is not installed")

MIB = 1 << 20
# Not a multiple of 64 KiB or 2 MiB: the last cluster and grain are partial.
RAW_SIZE = 40 * MIB + 3 * 512


def _raw_content() -> bytes:
    """Random and patterned regions, unaligned on purpose, between long runs of zeros."""
    rng = random.Random(20260901)
    disk = bytearray(RAW_SIZE)
    disk[0:MIB] = rng.randbytes(MIB)
    disk[3 * MIB + 12345 : 3 * MIB + 12345 + 700_000] = rng.randbytes(700_000)
    pattern = bytes(range(251)) * (2 * MIB // 251 + 1)
    disk[8 * MIB : 10 * MIB] = pattern[: 2 * MIB]
    for offset in range(20 * MIB + 7, 30 * MIB, 97 * 1024 + 3):  # isolated bytes and sectors
        disk[offset : offset + 7] = rng.randbytes(7)
    disk[33 * MIB - 300 : 33 * MIB + 300] = rng.randbytes(600)  # across a 2 MiB boundary
    disk[RAW_SIZE - 100_000 :] = rng.randbytes(100_000)
    return bytes(disk)


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """A sparse raw disk: written piecewise with pwrite into a truncated file."""
    content = _raw_content()
    path = tmp_path_factory.mktemp("formats") / "disk.raw"
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.ftruncate(fd, RAW_SIZE)
        for start in range(0, RAW_SIZE, 64 * 1024):
            chunk = content[start : start + 64 * 1024]
            if chunk.count(0) != len(chunk):
                os.pwrite(fd, chunk, start)
    finally:
        os.close(fd)
    return path, content


def _qemu_img(*args: str | Path) -> None:
    assert QEMU_IMG is not None
    subprocess.run([QEMU_IMG, *map(str, args)], check=True, capture_output=True, timeout=60)


def _convert(source: Path, dest: Path, *args: str) -> Path:
    _qemu_img("convert", "-f", "raw", *args, source, dest)
    return dest


def _first_difference(got: bytes, want: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), -1)


def _assert_same(image: BlockDevice, raw: bytes, offset: int, length: int) -> None:
    got, want = image.pread(offset, length), raw[offset : offset + length]
    # Compared by hand: pytest's diff of megabytes of bytes is unreadable and slow.
    if got != want:
        pytest.fail(
            f"pread({offset}, {length}): {len(got)} bytes (want {len(want)}), first difference "
            f"at +{_first_difference(got, want)}"
        )


def _assert_reads_back(image: BlockDevice, raw: bytes) -> None:
    assert image.size == len(raw)
    for start in range(0, len(raw), MIB):
        _assert_same(image, raw, start, MIB)
    rng = random.Random(7)
    for _ in range(250):
        offset = rng.randrange(len(raw))
        length = rng.choice([1, 511, 512, 513, 4096, 65535, 65537, rng.randrange(1, 3 * MIB)])
        _assert_same(image, raw, offset, length)
    # Either side of every cluster and grain size in use, inside the data regions.
    for base in (MIB, 3 * MIB + 12345 + 699_000, 10 * MIB, 32 * MIB, 34 * MIB, len(raw) - 600):
        for unit in (512, 4096, 65536, 2 * MIB):
            boundary = base - base % unit
            _assert_same(image, raw, max(0, boundary - 3), 7)
    _assert_same(image, raw, len(raw) - 10, 100)
    assert image.pread(len(raw), 10) == b""
    assert image.pread(5, 0) == b""


FORMATS: dict[str, tuple[list[str], str]] = {
    "qcow2-v3": (["-O", "qcow2", "-o", "compat=1.1"], "qcow2"),
    "qcow2-v2": (["-O", "qcow2", "-o", "compat=0.10"], "qcow2"),
    "qcow2-v3-512": (["-O", "qcow2", "-o", "compat=1.1,cluster_size=512"], "qcow2"),
    "qcow2-v2-2M": (["-O", "qcow2", "-o", "compat=0.10,cluster_size=2M"], "qcow2"),
    "qcow2-v3-2M": (["-O", "qcow2", "-o", "compat=1.1,cluster_size=2M"], "qcow2"),
    "qcow2-compressed": (["-O", "qcow2", "-c"], "qcow2"),
    "qcow2-compressed-v2-512": (
        ["-O", "qcow2", "-c", "-o", "compat=0.10,cluster_size=512"],
        "qcow2",
    ),
    "qcow2-compressed-2M": (["-O", "qcow2", "-c", "-o", "cluster_size=2M"], "qcow2"),
    "qcow2-extended-l2": (["-O", "qcow2", "-o", "extended_l2=on,cluster_size=128k"], "qcow2"),
    "qcow2-extended-l2-compressed": (["-O", "qcow2", "-c", "-o", "extended_l2=on"], "qcow2"),
    "vmdk-monolithic": (
        ["-O", "vmdk", "-o", "subformat=monolithicSparse"],
        "VMDK (monolithic sparse)",
    ),
    "vmdk-zeroed-grain": (
        ["-O", "vmdk", "-o", "subformat=monolithicSparse,zeroed_grain=on"],
        "VMDK (monolithic sparse)",
    ),
    "vmdk-stream": (["-O", "vmdk", "-o", "subformat=streamOptimized"], "VMDK (streamOptimized)"),
}


@pytest.mark.parametrize("name", FORMATS)
def test_reads_back_identically(name: str, raw: tuple[Path, bytes], tmp_path: Path) -> None:
    args, format_name = FORMATS[name]
    image = open_image(FileDevice(_convert(raw[0], tmp_path / name, *args)))
    assert image_format(image) == format_name
    assert getattr(image, "format_name", None) == format_name
    _assert_reads_back(image, raw[1])


def test_raw_is_returned_unchanged(raw: tuple[Path, bytes]) -> None:
    device = FileDevice(raw[0])
    assert open_image(device) is device
    assert image_format(device) == "raw"


def test_random_file_is_raw(tmp_path: Path) -> None:
    path = tmp_path / "noise"
    path.write_bytes(random.Random(3).randbytes(3 * MIB + 17))
    device = FileDevice(path)
    assert open_image(device) is device
    assert image_format(device) == "raw"


def test_stream_optimized_with_footer(raw: tuple[Path, bytes], tmp_path: Path) -> None:
    """As VMware writes a stream: gdOffset in the header is GD_AT_END, the real header a footer
    after the grains (qemu writes the header in front; move it to the end)."""
    data = bytearray(_convert(raw[0], tmp_path / "s.vmdk", *FORMATS["vmdk-stream"][0]).read_bytes())
    data += bytes(-len(data) % 512)
    header = bytes(data[:512])
    data[56:64] = struct.pack("<Q", 0xFFFF_FFFF_FFFF_FFFF)
    footer_marker = struct.pack("<QII", 1, 0, 3).ljust(512, b"\0")
    data += footer_marker + header + bytes(512)  # footer marker, footer, end-of-stream marker
    path = tmp_path / "footer.vmdk"
    path.write_bytes(data)
    image = open_image(FileDevice(path))
    assert image_format(image) == "VMDK (streamOptimized)"
    _assert_reads_back(image, raw[1])

    # Without the footer the header's promise is broken.
    path.write_bytes(data[:-1536])
    with pytest.raises(DiskError, match="footer"):
        open_image(FileDevice(path))


def test_block_cache_over_an_image(raw: tuple[Path, bytes], tmp_path: Path) -> None:
    image = open_image(FileDevice(_convert(raw[0], tmp_path / "c.qcow2", "-O", "qcow2", "-c")))
    cached = BlockCache(image)
    assert cached.size == len(raw[1])
    _assert_same(cached, raw[1], 3 * MIB, 2 * MIB)


# Writes qemu-io makes inside clusters: partial clusters, zeroed ranges (the zero flag, or
# subclusters' zero bits with extended L2), discarded ranges; the reference is qemu's own raw.
QEMU_IO_WRITES = [
    "write -P 0x11 0 4096",
    "write -P 0x22 70000 3000",
    "write -P 0x33 200k 300k",
    "write -z 220k 64k",
    "write -z 1M 128k",
    "write -P 0x44 1100k 5k",
    "discard 300k 64k",
    "write -P 0x55 3M 1M",
    "write -z -u 3M 128k",
    "write -P 0x66 4M 128k",
    "write -z 4M 64k",  # zero flag on an allocated cluster
]


@pytest.mark.skipif(QEMU_IO is None, reason="qemu-io is not installed")
@pytest.mark.parametrize("options", ["compat=1.1", "compat=1.1,extended_l2=on,cluster_size=64k"])
def test_zero_clusters_and_subclusters(options: str, tmp_path: Path) -> None:
    assert QEMU_IO is not None
    path = tmp_path / "written.qcow2"
    _qemu_img("create", "-f", "qcow2", "-o", options, path, "5M")
    commands = [arg for write in QEMU_IO_WRITES for arg in ("-c", write)]
    subprocess.run(
        [QEMU_IO, "-f", "qcow2", *commands, str(path)], check=True, capture_output=True, timeout=60
    )
    reference = tmp_path / "reference.raw"
    _qemu_img("convert", "-f", "qcow2", "-O", "raw", path, reference)
    image = open_image(FileDevice(path))
    assert isinstance(image, Qcow2Image)
    _assert_reads_back(image, reference.read_bytes())


# --- refusals and corruption -------------------------------------------------------------------


@pytest.fixture
def small_raw(tmp_path: Path) -> Path:
    path = tmp_path / "small.raw"
    # Random (stored as is even when compressing) and text (compressible), then zeros.
    text = b"".join(b"line %d of the disk\n" % i for i in range(40_000))[: MIB // 2]
    path.write_bytes(random.Random(5).randbytes(MIB // 2) + text + bytes(3 * MIB))
    return path


def _open_and_read_all(path: Path) -> None:
    image = open_image(FileDevice(path))
    for start in range(0, image.size, MIB):
        image.pread(start, MIB)


def _refused(path: Path, match: str) -> str:
    """The one-line DiskError opening and reading `path` raises; it names the image."""
    with pytest.raises(DiskError, match=match) as caught:
        _open_and_read_all(path)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    return message


def test_backing_file_refused(small_raw: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    _qemu_img("create", "-f", "qcow2", "-b", small_raw, "-F", "raw", overlay)
    message = _refused(overlay, "backing file")
    assert str(small_raw) in message
    assert "qemu-img convert -O qcow2" in message


def test_encrypted_refused(small_raw: Path, tmp_path: Path) -> None:
    path = tmp_path / "aes.qcow2"
    _qemu_img(
        "create", "-f", "qcow2", "--object", "secret,id=sec0,data=passphrase",
        "-o", "encrypt.format=aes,encrypt.key-secret=sec0", path, "1M",
    )  # fmt: skip
    _refused(path, r"encrypted \(AES\)")
    # LUKS is the same header field; qemu-img takes seconds to make one, so patch it in.
    luks = _convert(small_raw, tmp_path / "luks.qcow2", "-O", "qcow2")
    _patch(luks, 32, struct.pack(">I", 2))
    _refused(luks, r"encrypted \(LUKS\)")


def test_external_data_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "external.qcow2"
    _qemu_img("create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'data.raw'}", path, "1M")
    _refused(path, "external data file")


def _qcow2_zstd_supported(tmp_path: Path) -> bool:
    try:
        _qemu_img("create", "-f", "qcow2", "-o", "compression_type=zstd", tmp_path / "probe", "1M")
    except subprocess.CalledProcessError:
        return False
    return True


def test_zstd_refused(small_raw: Path, tmp_path: Path) -> None:
    if not _qcow2_zstd_supported(tmp_path):
        pytest.skip("this qemu-img cannot write zstd-compressed qcow2")
    path = _convert(
        small_raw, tmp_path / "z.qcow2", "-O", "qcow2", "-c", "-o", "compression_type=zstd"
    )
    message = _refused(path, "zstd")
    assert "compression_type=zlib" in message


def _patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as file:
        file.seek(offset)
        file.write(data)


def _patch_incompatible(path: Path, bit: int) -> None:
    (features,) = struct.unpack(">Q", path.read_bytes()[72:80])
    _patch(path, 72, struct.pack(">Q", features | 1 << bit))


def test_feature_bits(small_raw: Path, tmp_path: Path) -> None:
    dirty = _convert(small_raw, tmp_path / "dirty.qcow2", "-O", "qcow2")
    _patch_incompatible(dirty, 0)
    image = open_image(FileDevice(dirty))
    assert isinstance(image, Qcow2Image) and image.dirty  # refcounts only: reads are fine
    assert image.pread(0, MIB) == small_raw.read_bytes()[:MIB]

    corrupt = _convert(small_raw, tmp_path / "corrupt.qcow2", "-O", "qcow2")
    _patch_incompatible(corrupt, 1)
    _refused(corrupt, "marked this qcow2 image corrupt")

    unknown = _convert(small_raw, tmp_path / "unknown.qcow2", "-O", "qcow2")
    _patch_incompatible(unknown, 40)
    _refused(unknown, "unknown qcow2 incompatible features")


def _qcow2_l1(path: Path) -> tuple[int, int, list[int]]:
    """(cluster size, L1 table offset, L1 entries) of a qcow2 file."""
    data = path.read_bytes()
    cluster_bits, l1_size, l1_offset = struct.unpack_from(">I", data, 20) + struct.unpack_from(
        ">IQ", data, 36
    )
    return 1 << cluster_bits, l1_offset, list(struct.unpack_from(f">{l1_size}Q", data, l1_offset))


def test_truncated_qcow2(raw: tuple[Path, bytes], tmp_path: Path) -> None:
    path = _convert(raw[0], tmp_path / "t.qcow2", "-O", "qcow2")
    os.truncate(path, path.stat().st_size // 2)
    _refused(path, "truncated or corrupt")


def test_l1_entry_past_the_end(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "l1.qcow2", "-O", "qcow2")
    cluster, l1_offset, _ = _qcow2_l1(path)
    beyond = (path.stat().st_size // cluster + 10) * cluster
    _patch(path, l1_offset, struct.pack(">Q", beyond | 1 << 63))
    message = _refused(path, f"L2 table at byte {beyond} lies past the end of the file")
    assert "truncated or corrupt" in message

    _patch(path, l1_offset, struct.pack(">Q", cluster + 512))
    _refused(path, "not cluster-aligned")


def test_l1_table_too_small(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "size.qcow2", "-O", "qcow2")
    _patch(path, 24, struct.pack(">Q", 1 << 40))  # 1 TiB: one L1 entry maps only 512 MiB
    _refused(path, "L1 table has 1 entries, too few")
    _patch(path, 24, struct.pack(">Q", 1 << 50))
    _refused(path, "beyond 64 TiB")


def test_corrupt_compressed_cluster(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "c.qcow2", "-O", "qcow2", "-c")
    cluster, _, l1 = _qcow2_l1(path)
    data = path.read_bytes()
    l2_offset = l1[0] & 0x00FF_FFFF_FFFF_FE00
    l2 = struct.unpack_from(f">{cluster // 8}Q", data, l2_offset)
    index, entry = next((i, e) for i, e in enumerate(l2) if e & 1 << 62)
    host = entry & ((1 << (62 - (cluster.bit_length() - 1 - 8))) - 1)
    # Raw deflate carries no checksum, so a flipped literal would pass unseen: break the block
    # header instead (0xFF is a final block of the reserved type 3).
    _patch(path, host, b"\xff" * 16)
    _refused(path, f"compressed cluster {index} .* is corrupt")


def test_corrupt_compressed_grain(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "s.vmdk", "-O", "vmdk", "-o", "subformat=streamOptimized")
    data = path.read_bytes()
    gtes, gd_offset = struct.unpack_from("<I", data, 44)[0], struct.unpack_from("<Q", data, 56)[0]
    gt_sector = struct.unpack_from("<I", data, gd_offset * 512)[0]
    grain_sector = struct.unpack_from(f"<{gtes}I", data, gt_sector * 512)[0]
    _lba, size = struct.unpack_from("<QI", data, grain_sector * 512)
    middle = grain_sector * 512 + 12 + size // 2
    _patch(path, middle, bytes(b ^ 0x5A for b in data[middle : middle + 8]))
    _refused(path, "compressed grain 0 .* (is corrupt|decompresses)")


def test_vmdk_bad_grain_size(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "g.vmdk", "-O", "vmdk")
    _patch(path, 20, struct.pack("<Q", 0))
    _refused(path, "grain size of 0 sectors is invalid")
    _patch(path, 20, struct.pack("<Q", 100))
    _refused(path, "grain size of 100 sectors")


def test_vmdk_grain_table_past_the_end(small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "gt.vmdk", "-O", "vmdk")
    (gd_offset,) = struct.unpack_from("<Q", path.read_bytes(), 56)
    _patch(path, gd_offset * 512, struct.pack("<I", 1 << 30))
    _refused(path, "grain table at byte 549755813888 lies past the end of the file")


@pytest.mark.parametrize(
    "subformat", ["monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"]
)
def test_multi_file_vmdk_refused(subformat: str, small_raw: Path, tmp_path: Path) -> None:
    path = _convert(small_raw, tmp_path / "d.vmdk", "-O", "vmdk", "-o", f"subformat={subformat}")
    message = _refused(path, f"VMDK descriptor \\({subformat}\\)")
    assert "subformat=monolithicSparse" in message
    extents = sorted(p for p in tmp_path.iterdir() if p.name.startswith("d-"))
    if subformat == "twoGbMaxExtentSparse":  # one extent alone is not the disk either
        _refused(extents[0], "split")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["-O", "vpc"], "VHD images are not supported"),
        (["-O", "vpc", "-o", "subformat=fixed"], "VHD images are not supported"),
        (["-O", "vhdx"], "VHDX images"),
        (["-O", "vdi"], "VDI images"),
        (["-O", "qed"], "QED images"),
    ],
    ids=["vhd", "vhd-fixed", "vhdx", "vdi", "qed"],
)
def test_other_containers_refused(
    args: list[str], match: str, small_raw: Path, tmp_path: Path
) -> None:
    path = _convert(small_raw, tmp_path / "other.img", *args)
    assert "qemu-img convert -O raw" in _refused(path, match)


def test_archives_refused(small_raw: Path, tmp_path: Path) -> None:
    import gzip
    import tarfile

    packed = tmp_path / "disk.raw.gz"
    packed.write_bytes(gzip.compress(small_raw.read_bytes()[:4096]))
    _refused(packed, "gzip-compressed")
    ova = tmp_path / "appliance.ova"
    with tarfile.open(ova, "w") as tar:
        tar.add(small_raw, arcname="disk.vmdk")
    _refused(ova, "tar archive")


# --- hostile headers ---------------------------------------------------------------------------

Mutator = Callable[[random.Random, bytearray], None]


def _flip_header_byte(rng: random.Random, data: bytearray) -> None:
    data[rng.randrange(112)] = rng.randrange(256)


def _flip_table_byte(rng: random.Random, data: bytearray) -> None:
    data[rng.randrange(len(data) // 8)] ^= 1 << rng.randrange(8)


@pytest.mark.parametrize(
    "args",
    [["-O", "qcow2", "-c"], ["-O", "qcow2", "-o", "extended_l2=on"], ["-O", "vmdk"],
     ["-O", "vmdk", "-o", "subformat=streamOptimized"]],
    ids=["qcow2-compressed", "qcow2-extended", "vmdk", "vmdk-stream"],
)  # fmt: skip
def test_mutated_images_fail_only_with_disk_error(
    args: list[str], small_raw: Path, tmp_path: Path
) -> None:
    """Random damage to headers and tables: the reader returns bytes or raises DiskError, never
    another exception, and never reads without bound."""
    original = _convert(small_raw, tmp_path / "orig", *args).read_bytes()
    rng = random.Random(11)
    path = tmp_path / "mutant"
    outcomes = {"read": 0, "refused": 0}
    for trial in range(150):
        data = bytearray(original)
        mutate: Mutator = _flip_header_byte if trial % 2 else _flip_table_byte
        for _ in range(rng.randrange(1, 4)):
            mutate(rng, data)
        path.write_bytes(data)
        try:
            image = open_image(FileDevice(path))
            for offset in (0, image.size // 3, max(0, image.size - 70_000)):
                assert len(image.pread(offset, 70_000)) == min(70_000, image.size - offset)
            outcomes["read"] += 1
        except DiskError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
    assert all(outcomes.values()), outcomes


def test_unsigned_int_array_is_four_bytes() -> None:
    # The VMDK reader decodes grain tables with array("I").
    assert array("I").itemsize == 4
