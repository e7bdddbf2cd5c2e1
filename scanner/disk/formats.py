"""The image-format layer: from the bytes of an image file to the bytes of the disk it holds.

`open_image(device)` recognises qcow2 (versions 2 and 3) and hosted sparse VMDK (monolithic sparse
and streamOptimized) and returns a `BlockDevice` of the virtual disk; anything else that is not a
known container is a raw disk, and the device itself is returned unchanged (no wrapper, so a raw
image costs nothing). The decoded devices carry `format_name` ("qcow2", "VMDK (monolithic
sparse)", "VMDK (streamOptimized)"); `image_format(device)` gives the name for any device
`open_image` returned, "raw" included.

The image is untrusted: every offset and size read from it is checked against the file's size and
sane limits before it is used, decompression never produces more than one cluster or grain, and
everything that goes wrong is a `DiskError` naming the image.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections import OrderedDict
from typing import Generic, TypeVar

from scanner.disk.device import BlockDevice, DiskError, read_exact

# 64 TiB: the largest EBS volume, and far beyond any AMI; a bigger claim is a corrupt header.
MAX_VIRTUAL_SIZE = 64 << 40
# A table read whole at open time (qcow2's L1 table, VMDK's grain directory) costs this at most,
# as qemu caps its own (32 MiB for qcow2's L1).
MAX_TABLE_BYTES = 32 << 20

RAW = "raw"

K = TypeVar("K")
V = TypeVar("V")


def image_format(device: BlockDevice) -> str:
    """The format `open_image` decoded `device` from: its `format_name`, or "raw" for a device
    returned unchanged."""
    name = getattr(device, "format_name", RAW)
    return name if isinstance(name, str) else RAW


def open_image(device: BlockDevice) -> BlockDevice:
    """The virtual disk held in `device`: a qcow2 or VMDK reader over it, or `device` itself when
    it is a raw disk. DiskError when it is a container amiscan cannot read (and says how to
    convert it) or when its headers are corrupt."""
    head = device.pread(0, min(device.size, 4096))
    # Imported here, not at the top: the readers import this module's helpers.
    if head[:4] == b"QFI\xfb":
        from scanner.disk.qcow2 import open_qcow2

        return open_qcow2(device)
    if head[:4] == b"KDMV":
        from scanner.disk.vmdk import open_vmdk

        return open_vmdk(device)
    _refuse_other_containers(device, head)
    return device


def _refuse_other_containers(device: BlockDevice, head: bytes) -> None:
    """DiskError for a container that is not raw but that amiscan does not decode: read as raw,
    its headers would be taken for the disk's first sectors and every layer above would fail with
    a confusing message (or, for a fixed VHD, silently see a disk 512 bytes too long)."""
    name = device.description
    convert_raw = f"convert it with qemu-img convert -O raw {name} disk.raw"
    tail = device.pread(device.size - 512, 512) if device.size >= 1024 else b""
    if head.startswith(b"conectix") or tail.startswith(b"conectix"):
        raise DiskError(f"{name}: VHD images are not supported; {convert_raw}")
    if head.startswith(b"vhdxfile"):
        raise DiskError(f"{name}: VHDX images are not supported; {convert_raw}")
    if head.startswith(b"<<< ") and head[0x40:0x44] == b"\x7f\x10\xda\xbe":
        raise DiskError(f"{name}: VirtualBox VDI images are not supported; {convert_raw}")
    if head.startswith(b"QED\x00"):
        raise DiskError(f"{name}: QED images are not supported; {convert_raw}")
    if head.startswith(b"COWD"):
        raise DiskError(f"{name}: ESX sparse (COWD) VMDK extents are not supported; {convert_raw}")
    if _is_vmdk_descriptor(head):
        raise DiskError(
            f"{name}: is a VMDK descriptor ({vmdk_create_type(head) or 'no createType'}) whose "
            "data lies in other extent files; amiscan reads single-file images: convert it with "
            f"qemu-img convert -O vmdk -o subformat=monolithicSparse {name} disk.vmdk "
            "(or -O raw)"
        )
    if head.startswith((b"WithoutFreeSpace", b"WithouFreSpacExt")):
        raise DiskError(f"{name}: Parallels images are not supported; {convert_raw}")
    if head[257:262] == b"ustar":
        raise DiskError(
            f"{name}: is a tar archive (an OVA?); extract the disk image from it (tar xf) and "
            "scan that"
        )
    for magic, kind in (
        (b"\x1f\x8b\x08", "gzip"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x28\xb5\x2f\xfd", "zstd"),
    ):
        if head.startswith(magic):
            raise DiskError(f"{name}: is a {kind}-compressed file; decompress it and scan that")
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        raise DiskError(f"{name}: is a bzip2-compressed file; decompress it and scan that")


def _is_vmdk_descriptor(head: bytes) -> bool:
    text = head[:1024].lstrip()
    return text.startswith(b"# Disk DescriptorFile") or (
        text.startswith(b"#") and b"createType=" in text
    )


def vmdk_create_type(text: bytes) -> str | None:
    """The createType of a VMDK descriptor's text, or None when it names none."""
    for line in text.split(b"\n"):
        key, sep, value = line.partition(b"=")
        if sep and key.strip() == b"createType":
            return printable(value.strip().strip(b'"'))
    return None


def printable(raw: bytes, limit: int = 200) -> str:
    """Bytes from the image, made safe for a one-line message."""
    text = raw[:limit].decode("utf-8", "replace")
    return "".join(c if c.isprintable() else "?" for c in text)


def unpack(layout: struct.Struct, data: bytes, offset: int = 0) -> tuple[int, ...]:
    """`layout` unpacked from `data` (whose length the caller has checked)."""
    values: tuple[int, ...] = layout.unpack_from(data, offset)
    return values


def read_within(device: BlockDevice, offset: int, length: int, what: str) -> bytes:
    """`length` bytes at `offset` of an image file, or DiskError in the words the user needs:
    the structure lies past the end, so the image is truncated or corrupt."""
    if offset < 0 or length < 0 or offset + length > device.size:
        raise DiskError(
            f"{device.description}: {what} at byte {offset} lies past the end of the file "
            f"({device.size} bytes); the image is truncated or corrupt"
        )
    return read_exact(device, offset, length, what)


def inflate(data: bytes, wbits: int, size: int, what: str, *, whole_stream: bool) -> bytes:
    """Decompress `data` to at most `size` bytes (the output is bounded whatever the input says).
    `whole_stream`: the stream must also end there (checking zlib's checksum) and must not hold
    more than `size` bytes; without it, the first `size` bytes are enough (qcow2, as qemu)."""
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(data, size)
        if whole_stream and not decoder.eof:
            # The output is full: one more byte of output means the stream claims more than
            # `size`; none, and the stream must end with its checksum.
            if decoder.decompress(decoder.unconsumed_tail, 1):
                raise DiskError(f"{what} decompresses to more than {size} bytes")
            if not decoder.eof:
                raise DiskError(f"{what} is truncated (its compressed stream does not end)")
    except zlib.error as exc:
        raise DiskError(f"{what} is corrupt: {exc}") from None
    return out


class LRU(Generic[K, V]):
    """A thread-safe least-recently-used map bounded by the total weight (bytes) of its values."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._weight = 0
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: K, value: V, weight: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= old[1]
            self._items[key] = (value, weight)
            self._weight += weight
            # Keep the newest entry even when it alone exceeds the capacity.
            while self._weight > self._capacity and len(self._items) > 1:
                _, (_, dropped) = self._items.popitem(last=False)
                self._weight -= dropped


class Run:
    """Coalesces a read's pieces: adjacent pieces of the image file become one pread, adjacent
    zero pieces one allocation."""

    def __init__(self, device: BlockDevice, what: str) -> None:
        self._device = device
        self._what = what
        self.parts: list[bytes] = []
        self._start = -1  # file offset of the pending file run, or -1 for a zero run
        self._length = 0

    def file(self, offset: int, length: int) -> None:
        if self._length and self._start >= 0 and self._start + self._length == offset:
            self._length += length
            return
        self.flush()
        self._start, self._length = offset, length

    def zeros(self, length: int) -> None:
        if self._length and self._start < 0:
            self._length += length
            return
        self.flush()
        self._start, self._length = -1, length

    def data(self, data: bytes) -> None:
        self.flush()
        self.parts.append(data)

    def flush(self) -> None:
        if self._length:
            if self._start < 0:
                self.parts.append(bytes(self._length))
            else:
                self.parts.append(read_within(self._device, self._start, self._length, self._what))
        self._length = 0

    def result(self) -> bytes:
        self.flush()
        return b"".join(self.parts)
