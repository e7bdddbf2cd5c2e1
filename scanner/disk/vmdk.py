"""Hosted sparse VMDK extents ("KDMV"), read-only: monolithic sparse and streamOptimized.

A small reader of our own rather than libvmdk's binding, which rereads its tables on every read.
Header → grain directory → grain tables → grains, plain or deflate-compressed (streamOptimized,
where the header may sit at the end of the file, after the grains). Images whose data lies in
other files (a descriptor, split or flat extents) are refused with a conversion command.
"""

from __future__ import annotations

import struct
import sys
from array import array
from typing import NamedTuple

from scanner.disk.device import BlockDevice, DiskError
from scanner.disk.formats import (
    LRU,
    MAX_TABLE_BYTES,
    MAX_VIRTUAL_SIZE,
    Run,
    inflate,
    read_within,
    unpack,
    vmdk_create_type,
)

MONOLITHIC = "VMDK (monolithic sparse)"
STREAM_OPTIMIZED = "VMDK (streamOptimized)"

# SparseExtentHeader (VMware's "Virtual Disk Format 5.0"), little-endian, 79 of its 512 bytes:
# magic, version, flags, capacity, grainSize, descriptorOffset, descriptorSize, numGTEsPerGT,
# rgdOffset, gdOffset, overHead, uncleanShutdown, the four newline-check characters,
# compressAlgorithm. Sizes and offsets are in 512-byte sectors.
_HEADER = struct.Struct("<4sIIQQQQIQQQB4sH")
_MARKER = struct.Struct("<QII")  # a stream marker: value (sectors or LBA), size, type
_GRAIN_MARKER = struct.Struct("<QI")  # before a compressed grain: its LBA, its compressed size
_GD_AT_END = 0xFFFF_FFFF_FFFF_FFFF
_FLAG_COMPRESSED = 1 << 16
_FLAG_MARKERS = 1 << 17
_DEFLATE = 1
_ZLIB = 15  # wbits: VMDK grains are zlib-wrapped (RFC 1950) deflate, checksum included
_MARKER_EOS, _MARKER_FOOTER = 0, 3
_SECTOR = 512

# A grain of 16 MiB is far beyond what any tool writes (64 KiB) and bounds one decompression.
_MAX_GRAIN_SECTORS = 1 << 15
_GT_CACHE_BYTES = 8 << 20
_GRAIN_CACHE_BYTES = 16 << 20
_SPLIT = "split (twoGbMaxExtentSparse) extent of a"
_SUPPORTED_TYPES = ("monolithicSparse", "streamOptimized")
_CONVERT = (
    "convert it with qemu-img convert -O vmdk -o subformat=monolithicSparse {} disk.vmdk "
    "(or -O raw)"
)


class VmdkImage:
    """The virtual disk of a hosted sparse VMDK extent (a BlockDevice)."""

    def __init__(
        self,
        device: BlockDevice,
        *,
        format_name: str,
        capacity: int,
        grain_sectors: int,
        gtes_per_gt: int,
        directory: array[int],
        compressed: bool,
        markers: bool,
    ) -> None:
        self.device = device
        self.description = device.description
        self.format_name = format_name
        self.size = capacity * _SECTOR
        self._grain = grain_sectors * _SECTOR
        self._gtes = gtes_per_gt
        self._directory = directory
        self._compressed = compressed
        self._markers = markers
        self._tables: LRU[int, array[int]] = LRU(_GT_CACHE_BYTES)
        self._grains: LRU[int, bytes] = LRU(_GRAIN_CACHE_BYTES)

    def pread(self, offset: int, length: int) -> bytes:
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        end = min(offset + max(length, 0), self.size)
        run = Run(self.device, "grain")
        pos = offset
        while pos < end:
            grain, within = divmod(pos, self._grain)
            n = min(self._grain - within, end - pos)
            sector = self._grain_sector(grain)
            if sector <= 1:
                # 0: never written; 1: written as zeros (the "zeroed grain" entry).
                run.zeros(n)
            elif self._compressed:
                run.data(self._decompressed(grain, sector)[within : within + n])
            else:
                run.file(sector * _SECTOR + within, n)
            pos += n
        return run.result()

    def _grain_sector(self, grain: int) -> int:
        gd_index, gt_index = divmod(grain, self._gtes)
        gt_sector = self._directory[gd_index]
        if not gt_sector:
            return 0
        table = self._tables.get(gt_sector)
        if table is None:
            data = read_within(self.device, gt_sector * _SECTOR, self._gtes * 4, "grain table")
            table = _little_endian_u32(data)
            self._tables.put(gt_sector, table, len(data))
        return table[gt_index]

    def _decompressed(self, grain: int, sector: int) -> bytes:
        cached = self._grains.get(sector)
        if cached is not None:
            return cached
        offset = sector * _SECTOR
        what = f"compressed grain {grain}"
        # Deflate can grow incompressible data a little; two grains bound any honest stream.
        bound = 2 * self._grain
        if self._markers:
            head = read_within(self.device, offset, _GRAIN_MARKER.size, what)
            _lba, size = unpack(_GRAIN_MARKER, head)
            if not 0 < size <= bound:
                raise DiskError(
                    f"{self.description}: {what} at byte {offset} claims {size} compressed bytes; "
                    "the image is corrupt"
                )
            data = read_within(self.device, offset + _GRAIN_MARKER.size, size, what)
        else:
            if offset >= self.device.size:
                read_within(self.device, offset, 1, what)  # raises: past the end
            data = self.device.pread(offset, min(bound, self.device.size - offset))
        label = f"{self.description}: {what} (at byte {offset})"
        out = inflate(data, _ZLIB, self._grain, label, whole_stream=True)
        # The disk's last grain may be written short (qemu compresses only what the disk holds).
        needed = min(self._grain, self.size - grain * self._grain)
        if len(out) < needed:
            raise DiskError(
                f"{label} decompresses to {len(out)} bytes, less than the {needed} it holds; "
                "the image is corrupt"
            )
        out += bytes(self._grain - len(out))
        self._grains.put(sector, out, len(out))
        return out


def _little_endian_u32(data: bytes) -> array[int]:
    table = array("I", data)  # 4 bytes wherever Python runs (checked by the tests)
    if sys.byteorder == "big":
        table.byteswap()
    return table


def open_vmdk(device: BlockDevice) -> VmdkImage:
    """The virtual disk of the hosted sparse VMDK extent `device`; DiskError otherwise."""
    name = device.description
    header = _header(device, read_within(device, 0, _HEADER.size, "VMDK header"))
    if header.gd_offset == _GD_AT_END:
        # streamOptimized written as a stream: the real header follows the grains, in a footer.
        header = _footer(device)
    version, flags, capacity, grain = header.version, header.flags, header.capacity, header.grain
    gtes, gd_offset, compress_algorithm = header.gtes, header.gd_offset, header.compress_algorithm
    if not 1 <= version <= 3:
        raise DiskError(f"{name}: VMDK sparse extent version {version} is not supported (1 to 3)")

    create_type = _create_type(device, header.desc_offset, header.desc_size)
    if create_type not in _SUPPORTED_TYPES:
        raise DiskError(
            f"{name}: is a {create_type} VMDK; amiscan reads single-file VMDKs: {_CONVERT.format(name)}"
        )
    if capacity == 0 or capacity * _SECTOR > MAX_VIRTUAL_SIZE:
        raise DiskError(
            f"{name}: VMDK capacity of {capacity} sectors is invalid (0, or beyond 64 TiB)"
        )
    if grain < 8 or grain > _MAX_GRAIN_SECTORS or grain & (grain - 1):
        raise DiskError(
            f"{name}: VMDK grain size of {grain} sectors is invalid (a power of 2, 8 to "
            f"{_MAX_GRAIN_SECTORS}); the image is corrupt"
        )
    if not 1 <= gtes <= 512:
        raise DiskError(f"{name}: VMDK has {gtes} entries per grain table (1 to 512); corrupt")
    compressed = bool(flags & _FLAG_COMPRESSED) or compress_algorithm == _DEFLATE
    if compressed and compress_algorithm != _DEFLATE:
        raise DiskError(f"{name}: VMDK compression algorithm {compress_algorithm} is not supported")

    entries = -(-capacity // (grain * gtes))
    if entries * 4 > MAX_TABLE_BYTES:
        raise DiskError(f"{name}: VMDK grain directory of {entries * 4} bytes is too large")
    directory = _little_endian_u32(
        read_within(device, gd_offset * _SECTOR, entries * 4, "VMDK grain directory")
    )
    return VmdkImage(
        device,
        format_name=STREAM_OPTIMIZED if compressed else MONOLITHIC,
        capacity=capacity,
        grain_sectors=grain,
        gtes_per_gt=gtes,
        directory=directory,
        compressed=compressed,
        markers=bool(flags & _FLAG_MARKERS),
    )


class _Header(NamedTuple):
    version: int
    flags: int
    capacity: int
    grain: int
    desc_offset: int
    desc_size: int
    gtes: int
    gd_offset: int
    compress_algorithm: int


def _header(device: BlockDevice, data: bytes) -> _Header:
    fields = _HEADER.unpack(data)
    if fields[0] != b"KDMV":
        raise DiskError(f"{device.description}: VMDK header magic is missing; the image is corrupt")
    # Skipped: the magic, rgdOffset (a redundant copy, read only by writers), overHead, and the
    # unclean-shutdown and newline-check bytes.
    version, flags, capacity, grain, desc_offset, desc_size, gtes = fields[1:8]
    return _Header(
        version, flags, capacity, grain, desc_offset, desc_size, gtes, fields[9], fields[13]
    )


def _footer(device: BlockDevice) -> _Header:
    """The header copy at the end of a streamOptimized file: footer marker, footer, end marker."""
    name = device.description
    start = (device.size // _SECTOR) * _SECTOR - 3 * _SECTOR
    if start < _SECTOR:
        raise DiskError(f"{name}: VMDK footer is missing (the file is too short); truncated")
    tail = read_within(device, start, 3 * _SECTOR, "VMDK footer")
    _value, size, kind = unpack(_MARKER, tail)
    _eos_value, eos_size, eos_kind = unpack(_MARKER, tail, 2 * _SECTOR)
    if (size, kind, eos_size, eos_kind) != (0, _MARKER_FOOTER, 0, _MARKER_EOS):
        raise DiskError(
            f"{name}: VMDK header says it is at the end of the file, but no footer is there; "
            "the image is truncated or corrupt"
        )
    footer = _header(device, tail[_SECTOR : _SECTOR + _HEADER.size])
    if footer.gd_offset == _GD_AT_END:
        raise DiskError(f"{name}: VMDK footer does not locate the grain directory; corrupt")
    return footer


def _create_type(device: BlockDevice, offset: int, size: int) -> str:
    """The createType of the descriptor embedded in the extent. A monolithic extent carries one;
    an extent without one is a piece of a split image whose descriptor is another file."""
    if not offset or not size:
        return _SPLIT
    # A descriptor is text of a few hundred bytes; 64 KiB is plenty and bounds the read.
    length = min(size * _SECTOR, 64 << 10)
    text = read_within(device, offset * _SECTOR, length, "VMDK descriptor").split(b"\0", 1)[0]
    if not text.strip():
        return _SPLIT
    create_type = vmdk_create_type(text)
    if create_type is None:
        # No createType: nothing says the data lies elsewhere, and the header says how to read it.
        return "monolithicSparse"
    extents = [
        line
        for line in text.split(b"\n")
        if line.strip().startswith((b"RW ", b"RDONLY ", b"NOACCESS "))
    ]
    if create_type in _SUPPORTED_TYPES and len(extents) > 1:
        return f"multi-extent {create_type}"
    return create_type
