"""What a volume holds, told by the magic numbers file systems and containers put at fixed offsets.

Only signatures are read here: whether the structure behind one is sound is the business of the
reader for that kind (a file-system reader, or `scanner.disk.lvm`).
"""

from __future__ import annotations

import struct

from scanner.disk.device import BlockDevice

# The kinds `identify` returns; "unknown" for anything else (including an empty volume).
KINDS = (
    "ext",
    "xfs",
    "btrfs",
    "luks",
    "bitlocker",
    "ntfs",
    "swap",
    "lvm2",
    "vfat",
    "iso9660",
    "unknown",
)

# Enough of the start of a volume for every signature but btrfs's and ISO 9660's.
_HEAD = 4096
_BTRFS_MAGIC_AT = 65536 + 64
_ISO9660_MAGIC_AT = 32768 + 1
# Swap's signature ends its first page, and the page size is the kernel's that made it: 4 KiB on
# x86, up to 64 KiB on arm64 and ppc64.
_SWAP_PAGE_SIZES = (4096, 16384, 65536)


def _at(data: bytes, offset: int, magic: bytes) -> bool:
    return data[offset : offset + len(magic)] == magic


def lvm2_label_sector(head: bytes) -> int | None:
    """The sector (of the first four) holding an LVM2 physical volume label, or None."""
    for sector in range(4):
        base = sector * 512
        if _at(head, base, b"LABELONE") and _at(head, base + 24, b"LVM2 001"):
            return sector
    return None


def _is_ext(head: bytes) -> bool:
    if len(head) < 1024 + 1024:
        return False
    magic: int = struct.unpack_from("<H", head, 1024 + 0x38)[0]
    # s_log_block_size: ext's blocks are 1 KiB to 64 KiB. A second field to check keeps two bytes
    # that merely happen to read 0xEF53 (in a boot loader, say) from passing for a superblock.
    log_block_size: int = struct.unpack_from("<I", head, 1024 + 24)[0]
    return magic == 0xEF53 and log_block_size <= 6


def _is_vfat(head: bytes) -> bool:
    if not _at(head, 510, b"\x55\xaa"):
        return False
    return _at(head, 82, b"FAT32   ") or _at(head, 54, b"FAT12   ") or _at(head, 54, b"FAT16   ")


def identify(device: BlockDevice, far: bool = True) -> str:
    """The kind of content at the start of `device`, one of KINDS.

    With `far` false, only signatures in the first 4 KiB count: btrfs's (at 64 KiB), ISO 9660's
    (at 32 KiB) and swap's (at the end of a page, up to 64 KiB) lie, on a partitioned disk, in
    the gap before the first partition where GRUB's core.img sits, and core.img carries those
    very strings in its file-system modules.

    The order matters where signatures can coexist: LUKS, BitLocker and NTFS headers are checked
    before FAT (a BitLocker volume keeps a FAT-like boot sector), and a file system before LVM
    (a PV label in sector 1 would sit inside a file system's boot block only if the file system
    was made over an old PV, and then the file system is what is current).
    """
    head = device.pread(0, _HEAD)
    if _at(head, 0, b"LUKS\xba\xbe") or _at(head, 0, b"SKUL\xba\xbe"):
        return "luks"
    if _at(head, 3, b"-FVE-FS-"):
        return "bitlocker"
    if _at(head, 3, b"NTFS    "):
        return "ntfs"
    if _at(head, 0, b"XFSB"):
        return "xfs"
    if _is_ext(head):
        return "ext"
    if _is_vfat(head):
        return "vfat"
    if lvm2_label_sector(head) is not None:
        return "lvm2"
    if not far:
        return "unknown"
    if device.size >= _BTRFS_MAGIC_AT + 8 and (device.pread(_BTRFS_MAGIC_AT, 8) == b"_BHRfS_M"):
        return "btrfs"
    for page in _SWAP_PAGE_SIZES:
        if device.size >= page:
            tail = head[page - 10 : page] if page <= len(head) else device.pread(page - 10, 10)
            if tail in (b"SWAPSPACE2", b"SWAP-SPACE"):
                return "swap"
    if device.size >= _ISO9660_MAGIC_AT + 5 and device.pread(_ISO9660_MAGIC_AT, 5) == b"CD001":
        return "iso9660"
    return "unknown"
