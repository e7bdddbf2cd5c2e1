"""qcow2 (versions 2 and 3), read-only, without qemu: header → L1 table → L2 tables → clusters.

Our own reader because libqcow's Python binding returned wrong bytes for compressed clusters.
Supported: standard, zero and compressed (deflate) clusters, and extended L2 entries
(subclusters). Refused with a message saying how to convert: backing files, encryption, external
data files, zstd compression, images qemu marked corrupt. Refcounts and snapshots are never read:
the active L1 table alone says what the disk holds.
"""

from __future__ import annotations

import struct
import sys
from array import array

from scanner.disk.device import BlockDevice, DiskError
from scanner.disk.formats import (
    LRU,
    MAX_TABLE_BYTES,
    MAX_VIRTUAL_SIZE,
    Run,
    inflate,
    printable,
    read_within,
    unpack,
)

FORMAT_NAME = "qcow2"

_V2_HEADER = struct.Struct(">4sIQIIQIIQQIIQ")  # 72 bytes, up to snapshots_offset
_V3_HEADER = struct.Struct(">QQQII")  # 32 bytes from offset 72: the feature bits, header_length
_OFFSET_MASK = 0x00FF_FFFF_FFFF_FE00  # bits 9-55 of an L1 or standard L2 entry
_COMPRESSED = 1 << 62
_ZERO = 1

_DIRTY, _CORRUPT, _EXTERNAL_DATA, _COMPRESSION_TYPE, _EXTENDED_L2 = (1 << n for n in range(5))
_KNOWN_INCOMPATIBLE = (1 << 5) - 1

# Caches, in bytes: L2 tables (one cluster each; 32 MiB maps 256 GiB of 64 KiB clusters) and
# decompressed clusters (a sequential read decompresses each once).
_L2_CACHE_BYTES = 32 << 20
_CLUSTER_CACHE_BYTES = 16 << 20

_CONVERT = "qemu-img convert -O qcow2 {} standalone.qcow2"


def _big_endian_u64(data: bytes) -> array[int]:
    table = array("Q", data)
    if sys.byteorder == "little":
        table.byteswap()
    return table


class Qcow2Image:
    """The virtual disk of a qcow2 image (a BlockDevice)."""

    format_name = FORMAT_NAME

    def __init__(
        self,
        device: BlockDevice,
        *,
        size: int,
        cluster_bits: int,
        l1: array[int],
        extended_l2: bool,
        dirty: bool,
    ) -> None:
        self.device = device
        self.description = device.description
        self.size = size
        # Lazy refcounts leave the dirty bit set after a crash; it concerns refcounts only, which
        # a reader never uses, so the image reads correctly. Kept for whoever reports on it.
        self.dirty = dirty
        self._cluster_bits = cluster_bits
        self._cluster_size = 1 << cluster_bits
        self._l1 = l1
        self._extended = extended_l2
        # An L2 entry is 8 bytes, or 16 with extended L2 (the entry, then the subcluster bitmap).
        self._l2_entries = self._cluster_size // (16 if extended_l2 else 8)
        # Subclusters: 32 per cluster with extended L2; otherwise the cluster is the unit.
        self._unit = self._cluster_size // 32 if extended_l2 else self._cluster_size
        self._csize_shift = 62 - (cluster_bits - 8)
        self._l2_cache: LRU[int, array[int]] = LRU(_L2_CACHE_BYTES)
        self._clusters: LRU[int, bytes] = LRU(_CLUSTER_CACHE_BYTES)

    def pread(self, offset: int, length: int) -> bytes:
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        end = min(offset + max(length, 0), self.size)
        run = Run(self.device, "data cluster")
        pos = offset
        while pos < end:
            cluster, within = divmod(pos, self._cluster_size)
            entry, bitmap = self._l2_entry(cluster)
            if entry & _COMPRESSED:
                n = min(self._cluster_size - within, end - pos)
                run.data(self._compressed(entry, cluster)[within : within + n])
                pos += n
                continue
            n = min(self._unit - within % self._unit, end - pos)
            host = entry & _OFFSET_MASK
            if self._extended:
                sub = 1 << (within // self._unit)
                if bitmap & (bitmap >> 32):
                    raise self._corrupt(f"cluster {cluster} has subclusters both zero and present")
                if bitmap & (sub << 32):
                    run.zeros(n)
                elif bitmap & sub:
                    if not host:
                        raise self._corrupt(f"cluster {cluster} has subclusters but no offset")
                    run.file(self._host(host, cluster) + within, n)
                else:
                    # Unallocated and no backing file: zeros.
                    run.zeros(n)
            elif entry & _ZERO or not host:
                # The zero flag (v3; qemu writes it only there, and bit 0 is otherwise unused), or
                # an unallocated cluster with no backing file: zeros either way.
                run.zeros(n)
            else:
                run.file(self._host(host, cluster) + within, n)
            pos += n
        return run.result()

    def _corrupt(self, what: str) -> DiskError:
        return DiskError(f"{self.description}: {what}; the image is corrupt")

    def _host(self, host: int, cluster: int) -> int:
        if host % self._cluster_size:
            raise self._corrupt(f"data of cluster {cluster} at byte {host} is not cluster-aligned")
        return host

    def _l2_entry(self, cluster: int) -> tuple[int, int]:
        l1_index, l2_index = divmod(cluster, self._l2_entries)
        l2_offset = self._l1[l1_index] & _OFFSET_MASK
        if not l2_offset:
            return 0, 0
        table = self._l2_cache.get(l2_offset)
        if table is None:
            if l2_offset % self._cluster_size:
                raise self._corrupt(f"L2 table at byte {l2_offset} is not cluster-aligned")
            data = read_within(self.device, l2_offset, self._cluster_size, "L2 table")
            table = _big_endian_u64(data)
            self._l2_cache.put(l2_offset, table, self._cluster_size)
        if self._extended:
            return table[2 * l2_index], table[2 * l2_index + 1]
        return table[l2_index], 0

    def _compressed(self, entry: int, cluster: int) -> bytes:
        cached = self._clusters.get(entry)
        if cached is not None:
            return cached
        # The entry holds the host offset in its low bits and, above it, the number of 512-byte
        # sectors the compressed data touches, less one (qcow2 spec, "Compressed Clusters").
        host = entry & ((1 << self._csize_shift) - 1)
        sectors = ((entry >> self._csize_shift) & ((1 << (self._cluster_bits - 8)) - 1)) + 1
        bound = sectors * 512 - (host & 511)
        if host >= self.device.size:
            raise DiskError(
                f"{self.description}: compressed cluster {cluster} at byte {host} lies past the "
                f"end of the file ({self.device.size} bytes); the image is truncated or corrupt"
            )
        # The bound is rounded up to a sector: the last cluster's may run past the file's end,
        # which qemu reads as zeros; the deflate stream itself must not.
        data = self.device.pread(host, min(bound, self.device.size - host))
        what = f"{self.description}: compressed cluster {cluster} (at byte {host})"
        out = inflate(data, -15, self._cluster_size, what, whole_stream=False)
        if len(out) != self._cluster_size:
            raise DiskError(
                f"{what} decompresses to {len(out)} bytes, not the cluster's "
                f"{self._cluster_size}; the image is corrupt"
            )
        self._clusters.put(entry, out, len(out))
        return out


def open_qcow2(device: BlockDevice) -> Qcow2Image:
    """The virtual disk of the qcow2 image `device`, its header checked; DiskError otherwise."""
    name = device.description
    header = read_within(device, 0, _V2_HEADER.size, "qcow2 header")
    (
        _magic,
        version,
        backing_offset,
        backing_size,
        cluster_bits,
        size,
        crypt_method,
        l1_size,
        l1_offset,
        *_refcounts_and_snapshots,
    ) = _V2_HEADER.unpack(header)
    if version == 1:
        raise DiskError(
            f"{name}: is an old qcow (version 1) image; convert it: {_CONVERT.format(name)}"
        )
    if version not in (2, 3):
        raise DiskError(f"{name}: qcow2 version {version} is not supported (2 and 3 are)")
    incompatible, header_length, compression_type = 0, _V2_HEADER.size, 0
    if version == 3:
        extra = read_within(device, _V2_HEADER.size, _V3_HEADER.size, "qcow2 v3 header")
        incompatible, _compatible, _autoclear, _refcount_order, header_length = unpack(
            _V3_HEADER, extra
        )
        if header_length < _V2_HEADER.size + _V3_HEADER.size:
            raise DiskError(f"{name}: qcow2 header length {header_length} is too short (< 104)")
        if header_length >= 105:
            compression_type = read_within(device, 104, 1, "qcow2 compression type")[0]
    if not 9 <= cluster_bits <= 21:
        raise DiskError(f"{name}: qcow2 cluster_bits {cluster_bits} is invalid (9 to 21)")
    cluster_size = 1 << cluster_bits
    if header_length > cluster_size:
        raise DiskError(f"{name}: qcow2 header length {header_length} exceeds a cluster")
    if size > MAX_VIRTUAL_SIZE:
        raise DiskError(f"{name}: qcow2 virtual size {size} bytes is beyond 64 TiB; corrupt header")

    if backing_offset:
        raise DiskError(
            f"{name}: has a backing file ({_backing_name(device, backing_offset, backing_size)}); "
            f"amiscan reads standalone images: {_CONVERT.format(name)}"
        )
    if crypt_method:
        kind = {1: "AES", 2: "LUKS"}.get(crypt_method, f"method {crypt_method}")
        raise DiskError(f"{name}: is encrypted ({kind}); amiscan reads unencrypted images only")
    if incompatible & _CORRUPT:
        raise DiskError(
            f"{name}: qemu marked this qcow2 image corrupt; repair a copy with "
            "qemu-img check -r all, or convert it to raw"
        )
    if incompatible & _EXTERNAL_DATA:
        raise DiskError(
            f"{name}: keeps its data in an external data file; amiscan reads standalone images: "
            f"{_CONVERT.format(name)}"
        )
    unknown = incompatible & ~_KNOWN_INCOMPATIBLE
    if unknown:
        raise DiskError(f"{name}: uses unknown qcow2 incompatible features {unknown:#x}")
    if compression_type == 1:
        raise DiskError(
            f"{name}: uses zstd compression; convert it with qemu-img convert -O qcow2 -c -o "
            f"compression_type=zlib {name} zlib.qcow2, or to raw"
        )
    if compression_type:
        raise DiskError(f"{name}: uses unknown qcow2 compression type {compression_type}")
    if bool(incompatible & _COMPRESSION_TYPE) != bool(compression_type):
        raise DiskError(f"{name}: qcow2 compression-type feature bit contradicts its header")
    extended = bool(incompatible & _EXTENDED_L2)

    # The L1 table must map the whole virtual size (it may be longer: qemu keeps VM state there).
    l2_entries = cluster_size // (16 if extended else 8)
    needed = -(-size // (cluster_size * l2_entries))
    if l1_size < needed:
        raise DiskError(
            f"{name}: qcow2 L1 table has {l1_size} entries, too few for the virtual size of "
            f"{size} bytes ({needed} needed); the image is corrupt"
        )
    if needed * 8 > MAX_TABLE_BYTES:
        raise DiskError(
            f"{name}: qcow2 L1 table of {needed * 8} bytes is too large (clusters of "
            f"{cluster_size} bytes for {size} bytes); convert it with larger clusters or to raw"
        )
    if needed and l1_offset % cluster_size:
        raise DiskError(f"{name}: qcow2 L1 table at byte {l1_offset} is not cluster-aligned")
    l1 = (
        _big_endian_u64(read_within(device, l1_offset, needed * 8, "L1 table"))
        if needed
        else (array("Q"))
    )
    return Qcow2Image(
        device,
        size=size,
        cluster_bits=cluster_bits,
        l1=l1,
        extended_l2=extended,
        dirty=bool(incompatible & _DIRTY),
    )


def _backing_name(device: BlockDevice, offset: int, size: int) -> str:
    """The backing file's name for the message, or a stand-in when the header's is unreadable."""
    if 0 < size <= 1023 and offset + size <= device.size:
        return printable(device.pread(offset, size))
    return "its name unreadable"
