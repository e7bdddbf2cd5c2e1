"""Partition tables: GPT (512-byte and 4 KiB sectors) and MBR (with its chain of logical partitions).

Everything read here is untrusted: counts and sizes are bounded before they size a read, offsets
are checked against the disk, and a table that points past the disk's end is a DiskError naming
the partition, since reading on would give a file-system error that hides the real problem.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
import zlib
from dataclasses import dataclass

from scanner.disk.device import BlockDevice, DiskError, read_exact


@dataclass(frozen=True)
class Partition:
    # Linux's numbering: a GPT entry's index + 1; MBR primaries 1-4, logical partitions from 5.
    number: int
    start: int
    size: int
    # The GPT partition name, else its type's name (or GUID); an MBR type byte as "0x83".
    label: str
    # What /etc/fstab may name it by: PARTUUID (a GPT entry's unique GUID, or an MBR disk's
    # signature and the partition number, "1234abcd-02") and PARTLABEL (the GPT name).
    partuuid: str = ""
    partlabel: str = ""


GPT_SECTOR_SIZES = (512, 4096)
_GPT_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")
# Bounds: the UEFI spec's minimum array is 128 entries of 128 bytes; tools never write more than a
# few hundred entries. 1024 keeps a hostile header from sizing a huge read.
_GPT_MAX_ENTRIES = 1024
_GPT_MAX_ENTRY_SIZE = 4096

# Types worth a name when the partition has none (sgdisk and sfdisk name partitions, other tools
# may not).
_GPT_TYPES = {
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "EFI system partition",
    "21686148-6449-6e6f-744e-656564454649": "BIOS boot partition",
    "0fc63daf-8483-4772-8e79-3d69d8477de4": "Linux filesystem",
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709": "Linux root (x86-64)",
    "b921b045-1df0-41c3-af44-4c6f280d3fae": "Linux root (ARM64)",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "Linux LVM",
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "Linux swap",
    "bc13c2ff-59e6-4262-a352-b275fd6f7172": "Linux extended boot",
    "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7": "Microsoft basic data",
    "e3c9e316-0b5c-4db8-817d-f92df00215ae": "Microsoft reserved",
    "de94bba4-06d1-4d40-a16a-bfd50179d6ac": "Windows recovery",
}

_MBR_EXTENDED = (0x05, 0x0F, 0x85)
_MBR_PROTECTIVE = 0xEE
# Bound on logical partitions: a chain of EBRs is a linked list on the disk, and may loop.
MAX_PARTITIONS = 128


def _past_end(disk: BlockDevice, number: int, start: int, size: int) -> DiskError:
    return DiskError(
        f"partition {number} of {disk.description} runs past the end of the disk "
        f"(bytes {start} to {start + size}, the disk has {disk.size}); the image is truncated "
        "or its partition table is corrupt"
    )


def _crc32_zeroed(data: bytes, start: int, length: int) -> int:
    """CRC32 of `data` with `length` bytes at `start` taken as zero (how GPT stores its own CRC)."""
    return zlib.crc32(data[:start] + bytes(length) + data[start + length :])


def _gpt_header(disk: BlockDevice, sector: int, lba: int) -> tuple[list[Partition], str]:
    """The partitions of the GPT whose header is at `lba`, or ([], why it is not valid)."""
    if lba < 1 or (lba + 1) * sector > disk.size:
        return [], "lies past the end of the disk"
    raw = read_exact(disk, lba * sector, sector, "GPT header")
    (
        signature,
        _revision,
        header_size,
        header_crc,
        _reserved,
        my_lba,
        _alternate_lba,
        _first_usable,
        _last_usable,
        _disk_guid,
        entries_lba,
        count,
        entry_size,
        entries_crc,
    ) = _GPT_HEADER.unpack_from(raw)
    if signature != b"EFI PART":
        return [], "has no GPT signature"
    if not _GPT_HEADER.size <= header_size <= sector:
        return [], f"has an impossible size ({header_size})"
    if _crc32_zeroed(raw[:header_size], 16, 4) != header_crc:
        return [], "fails its CRC check"
    if my_lba != lba:
        return [], f"says it is at LBA {my_lba}"
    if not (128 <= entry_size <= _GPT_MAX_ENTRY_SIZE and entry_size % 8 == 0):
        return [], f"has an impossible partition entry size ({entry_size})"
    if count > _GPT_MAX_ENTRIES:
        return [], f"claims {count} partition entries"
    array_start = entries_lba * sector
    if entries_lba < 1 or array_start + count * entry_size > disk.size:
        return [], "puts its partition entries past the end of the disk"
    entries = read_exact(disk, array_start, count * entry_size, "GPT partition entries")
    if zlib.crc32(entries) != entries_crc:
        return [], "has partition entries that fail their CRC check"
    partitions: list[Partition] = []
    for index in range(count):
        entry = entries[index * entry_size : (index + 1) * entry_size]
        type_guid = entry[:16]
        if type_guid == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        number = index + 1
        if last < first:
            raise DiskError(
                f"partition {number} of {disk.description} ends (LBA {last}) before it starts "
                f"(LBA {first}); the partition table is corrupt"
            )
        start, size = first * sector, (last - first + 1) * sector
        if start + size > disk.size:
            raise _past_end(disk, number, start, size)
        name = entry[56:128].decode("utf-16-le", errors="replace").split("\0", 1)[0].strip()
        kind = str(uuid.UUID(bytes_le=type_guid))
        partitions.append(
            Partition(
                number,
                start,
                size,
                name or _GPT_TYPES.get(kind, kind),
                partuuid=str(uuid.UUID(bytes_le=entry[16:32])),
                partlabel=name,
            )
        )
    return partitions, ""


def read_gpt(disk: BlockDevice, protective: bool) -> list[Partition] | None:
    """The GPT's partitions, or None when the disk has no GPT.

    A disk has one when "EFI PART" is at LBA 1 for 512-byte or 4 KiB sectors, or when its MBR
    holds a protective (0xEE) entry. The primary header is used unless it fails a check; then the
    backup at the disk's last LBA is, which is how firmware and the kernel recover a GPT whose
    start was overwritten. A GPT with neither header valid is a DiskError.
    """
    signed = [
        sector
        for sector in GPT_SECTOR_SIZES
        if disk.size >= 2 * sector and disk.pread(sector, 8) == b"EFI PART"
    ]
    if not signed and not protective:
        return None
    # A signed sector size first; with no signature at all (the primary header was overwritten),
    # both sizes' backups are candidates.
    sizes = signed + [s for s in GPT_SECTOR_SIZES if s not in signed]
    problems: list[str] = []
    for sector in sizes:
        for which, lba in (("primary", 1), ("backup", disk.size // sector - 1)):
            partitions, problem = _gpt_header(disk, sector, lba)
            if not problem:
                return partitions
            if sector in signed or which == "backup":
                problems.append(f"the {which} header for {sector}-byte sectors {problem}")
    raise DiskError(
        f"{disk.description} has a GPT partition table that cannot be read: " + "; ".join(problems)
    )


def _mbr_entries(sector: bytes, ebr: bool = False) -> list[tuple[int, int, int, int]] | None:
    """The four (status, type, first LBA, sector count) entries of an MBR or EBR, or None when
    the sector is not one (no 0x55AA, or an entry no partitioning tool would write: a partition
    at LBA 0 would overlap the MBR. In an EBR, LBAs are relative, and a link at 0 is a loop the
    chain's walk cuts, not a reason to drop the EBR's own partition)."""
    if sector[510:512] != b"\x55\xaa":
        return None
    entries = []
    for slot in range(4):
        status, kind, first, count = struct.unpack_from("<B3xB3xII", sector, 446 + 16 * slot)
        if status not in (0x00, 0x80):
            return None
        if kind and count and first == 0 and not ebr:
            return None
        entries.append((status, kind, first, count))
    return entries


def mbr_protective(disk: BlockDevice) -> bool:
    """Whether the disk starts with an MBR holding a GPT-protective (0xEE) entry."""
    if disk.size < 512:
        return False
    entries = _mbr_entries(disk.pread(0, 512))
    return entries is not None and any(kind == _MBR_PROTECTIVE for _, kind, _, _ in entries)


def read_mbr(disk: BlockDevice) -> list[Partition] | None:
    """The MBR's partitions (primaries and the logical partitions of an extended one), or None
    when the disk does not start with a plausible MBR. LBAs are 512-byte sectors."""
    if disk.size < 512:
        return None
    entries = _mbr_entries(disk.pread(0, 512))
    if entries is None or not any(kind and count for _, kind, _, count in entries):
        return None
    partitions: list[Partition] = []
    extended: tuple[int, int] | None = None
    for slot, (_, kind, first, count) in enumerate(entries):
        if not kind or not count:
            continue
        start, size = first * 512, count * 512
        if start + size > disk.size:
            raise _past_end(disk, slot + 1, start, size)
        if kind in _MBR_EXTENDED:
            # The first extended entry holds the chain, as in Linux; a second is not followed.
            if extended is None:
                extended = (first, count)
            continue
        partitions.append(Partition(slot + 1, start, size, f"0x{kind:02x}"))
    if extended is not None:
        partitions.extend(_logical(disk, *extended))
    # Linux's PARTUUID for MBR partitions: the disk signature, then the partition number.
    signature = int.from_bytes(disk.pread(440, 4), "little")
    return [dataclasses.replace(p, partuuid=f"{signature:08x}-{p.number:02x}") for p in partitions]


def _logical(disk: BlockDevice, ext_first: int, ext_count: int) -> list[Partition]:
    """The logical partitions, following the EBR chain from the extended partition's start.

    Each EBR's first entry is its logical partition (relative to the EBR), its second the next
    EBR (relative to the extended partition). The chain is cut, as the kernel does, at a sector
    that is not an EBR, at an EBR already seen (a loop) and after MAX_PARTITIONS.
    """
    found: list[Partition] = []
    seen: set[int] = set()
    ebr = ext_first
    while len(found) < MAX_PARTITIONS and ebr not in seen:
        seen.add(ebr)
        if not ext_first <= ebr < ext_first + ext_count:
            break
        sector = read_exact(disk, ebr * 512, 512, "extended boot record")
        entries = _mbr_entries(sector, ebr=True)
        if entries is None:
            break
        (_, kind, first, count), (_, next_kind, next_first, _) = entries[0], entries[1]
        if kind and count:
            number = 5 + len(found)
            start, size = (ebr + first) * 512, count * 512
            if start + size > disk.size:
                raise _past_end(disk, number, start, size)
            found.append(Partition(number, start, size, f"0x{kind:02x}"))
        if next_kind not in _MBR_EXTENDED or not next_first:
            break
        ebr = ext_first + next_first
    return found
