"""LVM2: physical volume labels, the volume group's text metadata, and linear logical volumes.

Read here rather than through libvslvm (pyvslvm), which was tried first: it fails to open a whole
volume group when any one LV is striped (its parser rejects the `"pv0", 0,` lines of a stripes
list that lvm2 writes), it does not say what type a segment is, and it pairs PV files with the
metadata's PVs by position, not by UUID. The format is small and documented in lvm2's
lib/format_text; the tests check this reader against images lvm2 itself made.

Only linear segments are mapped (lvm2 writes them as "striped" with one stripe). An LV with any
other segment (striped over several PVs, mirror, RAID, thin, cache, VDO...) is reported with the
reason instead of a device, so the LVs next to it are still read.
"""

from __future__ import annotations

import bisect
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from scanner.disk.device import BlockDevice, DiskError, SliceDevice, read_exact
from scanner.disk.signatures import lvm2_label_sector

SECTOR = 512
# lvm2's CRC32 starts from this value and has no final inversion (lib/misc/crc.h).
_LVM_CRC_INITIAL = 0xF597A6CF
_MDA_MAGIC = b" LVM2 x[5A%r0N*>"
_MDA_HEADER_SIZE = 512
_RAW_LOCN_IGNORED = 0x1
# Metadata text is a few KiB per LV; lvm2's default metadata area is 1 MiB.
_MAX_METADATA = 64 * 1024 * 1024
_MAX_DEPTH = 16

Value: TypeAlias = "int | str | list[Value] | dict[str, Value]"
Section: TypeAlias = dict[str, Value]


def lvm_crc(data: bytes, initial: int = _LVM_CRC_INITIAL) -> int:
    # zlib's CRC32 inverts before and after; undoing both gives lvm2's plain running CRC.
    return zlib.crc32(data, initial ^ 0xFFFFFFFF) ^ 0xFFFFFFFF


@dataclass(frozen=True)
class _Label:
    uuid: str  # 32 characters, as the label stores it (the metadata adds dashes)
    metadata_areas: tuple[tuple[int, int], ...]  # (offset, size) in bytes from the PV's start


def _read_label(pv: BlockDevice) -> _Label:
    head = pv.pread(0, 4 * SECTOR)
    sector = lvm2_label_sector(head)
    if sector is None:
        raise DiskError(f"{pv.description}: no LVM2 physical volume label")
    raw = head[sector * SECTOR : (sector + 1) * SECTOR]
    if len(raw) < SECTOR:
        raise DiskError(f"{pv.description}: the LVM2 physical volume label is cut short")
    sector_xl, crc, offset = struct.unpack_from("<QII", raw, 8)
    if sector_xl != sector or lvm_crc(raw[20:]) != crc:
        raise DiskError(f"{pv.description}: the LVM2 physical volume label is corrupt")
    # pv_header: UUID, device size, then two zero-terminated lists of (offset, size): the data
    # areas and the metadata areas.
    if not 32 <= offset <= SECTOR - 56:
        raise DiskError(f"{pv.description}: the LVM2 physical volume header is corrupt")
    uuid = raw[offset : offset + 32].decode("ascii", errors="replace")
    lists: list[list[tuple[int, int]]] = [[], []]
    at = offset + 40
    for areas in lists:
        while True:
            if at + 16 > SECTOR:
                raise DiskError(f"{pv.description}: the LVM2 physical volume header is corrupt")
            area_offset, area_size = struct.unpack_from("<QQ", raw, at)
            at += 16
            if area_offset == 0:
                break
            areas.append((area_offset, area_size))
    return _Label(uuid, tuple(lists[1]))


def _read_metadata(pv: BlockDevice, offset: int, size: int) -> bytes | None:
    """The current metadata text in the metadata area at `offset`, or None when it has none."""
    what = f"{pv.description}: LVM2 metadata area"
    header = read_exact(pv, offset, _MDA_HEADER_SIZE, "LVM2 metadata area header")
    checksum, magic, _version, start, mda_size = struct.unpack_from("<I16sIQQ", header)
    if magic != _MDA_MAGIC or lvm_crc(header[4:]) != checksum or start != offset:
        raise DiskError(f"{what} at byte {offset} is corrupt")
    if mda_size != size or mda_size <= _MDA_HEADER_SIZE:
        raise DiskError(f"{what} at byte {offset} has an impossible size ({mda_size})")
    text_offset, text_size, text_crc, flags = struct.unpack_from("<QQII", header, 40)
    if text_offset == 0 or text_size == 0 or flags & _RAW_LOCN_IGNORED:
        return None
    if not _MDA_HEADER_SIZE <= text_offset < mda_size or text_size > min(
        mda_size - _MDA_HEADER_SIZE, _MAX_METADATA
    ):
        raise DiskError(f"{what} at byte {offset} points outside itself")
    # The area is a ring after its header: text that runs off its end continues after the header.
    first = min(text_size, mda_size - text_offset)
    text = read_exact(pv, offset + text_offset, first, "LVM2 metadata")
    if first < text_size:
        text += read_exact(pv, offset + _MDA_HEADER_SIZE, text_size - first, "LVM2 metadata")
    if lvm_crc(text) != text_crc:
        raise DiskError(f"{what} at byte {offset} holds metadata that fails its checksum")
    return text.rstrip(b"\0")


_TOKEN = re.compile(rb'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|[{}\[\]=,]|[A-Za-z0-9_.+\-]+')


def parse_metadata(text: bytes, where: str) -> Section:
    """lvm2's text metadata (lib/format_text/import_vsn1.c's grammar) as nested dicts."""
    tokens: list[bytes] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise DiskError(f"{where}: LVM2 metadata does not parse at byte {pos}")
        token = match.group()
        pos = match.end()
        if not token[:1].isspace() and not token.startswith(b"#"):
            tokens.append(token)
    index = 0

    def fail() -> DiskError:
        return DiskError(f"{where}: LVM2 metadata does not parse (token {index})")

    def take() -> bytes:
        nonlocal index
        if index >= len(tokens):
            raise fail()
        index += 1
        return tokens[index - 1]

    def value(depth: int) -> Value:
        if depth > _MAX_DEPTH:
            raise fail()
        token = take()
        if token == b"[":
            items: list[Value] = []
            while tokens[index : index + 1] != [b"]"]:
                items.append(value(depth + 1))
                if tokens[index : index + 1] == [b","]:
                    take()
            take()
            return items
        if token.startswith(b'"'):
            return re.sub(rb"\\(.)", rb"\1", token[1:-1]).decode("utf-8", errors="replace")
        try:
            return int(token)
        except ValueError:
            raise fail() from None

    def section(depth: int, closing: bool) -> Section:
        if depth > _MAX_DEPTH:
            raise fail()
        items: Section = {}
        while index < len(tokens):
            if tokens[index] == b"}" and closing:
                take()
                return items
            name = take().decode("ascii", errors="replace")
            token = take()
            if token == b"{":
                items[name] = section(depth + 1, True)
            elif token == b"=":
                items[name] = value(depth)
            else:
                raise fail()
        if closing:
            raise fail()
        return items

    return section(0, False)


def _int(section: Section, key: str, where: str) -> int:
    item = section.get(key)
    if not isinstance(item, int) or item < 0:
        raise DiskError(f"{where}: LVM2 metadata lacks a valid {key!r}")
    return item


def _str(section: Section, key: str, where: str) -> str:
    item = section.get(key)
    if not isinstance(item, str):
        raise DiskError(f"{where}: LVM2 metadata lacks a valid {key!r}")
    return item


def _sections(section: Section, key: str, where: str) -> dict[str, Section]:
    item = section.get(key, {})
    if not isinstance(item, dict):
        raise DiskError(f"{where}: LVM2 metadata has an invalid {key!r}")
    return {name: sub for name, sub in item.items() if isinstance(sub, dict)}


class LogicalVolumeDevice:
    """A linear LV: its segments, each a run of extents on one PV, end to end."""

    def __init__(self, description: str, segments: list[SliceDevice]) -> None:
        self.description = description
        self._segments = segments
        self._starts: list[int] = []
        size = 0
        for segment in segments:
            self._starts.append(size)
            size += segment.size
        self.size = size

    def pread(self, offset: int, length: int) -> bytes:
        length = max(0, min(length, self.size - offset))
        parts: list[bytes] = []
        while length > 0:
            index = bisect.bisect_right(self._starts, offset) - 1
            within = offset - self._starts[index]
            part = self._segments[index].pread(within, length)
            if not part:
                raise DiskError(f"{self.description}: ends early at byte {offset}")
            parts.append(part)
            offset += len(part)
            length -= len(part)
        return b"".join(parts)


class UnmappedDevice:
    """An LV with a segment this reader does not map: it has a name and no bytes."""

    size = 0

    def __init__(self, description: str, problem: str) -> None:
        self.description = description
        self.problem = problem

    def pread(self, offset: int, length: int) -> bytes:
        raise DiskError(f"{self.description}: {self.problem}")


@dataclass(frozen=True)
class LogicalVolume:
    name: str
    device: LogicalVolumeDevice | UnmappedDevice
    # Why the LV is not mapped (then `device` is an UnmappedDevice), else "".
    problem: str = ""


@dataclass
class VolumeGroup:
    """A volume group (or, with `name` "", an orphan PV: one in no volume group)."""

    name: str
    # Index (into the PVs given to `volume_groups`) of the VG's first PV on this disk.
    first_pv: int
    logical_volumes: list[LogicalVolume] = field(default_factory=list)


@dataclass
class _PhysicalVolume:
    device: BlockDevice
    index: int
    label: _Label
    vg_id: str = ""
    seqno: int = -1
    metadata: Section | None = None


def volume_groups(pvs: Sequence[BlockDevice]) -> list[VolumeGroup]:
    """The volume groups on `pvs` (the PVs of one disk), in the order of their first PV.

    The newest metadata (highest seqno) among a VG's PVs is used. A VG one of whose PVs is not
    among `pvs` is a DiskError naming it: its LVs may run onto the missing disk.
    """
    found: list[_PhysicalVolume] = []
    by_uuid: dict[str, _PhysicalVolume] = {}
    for index, device in enumerate(pvs):
        pv = _PhysicalVolume(device, index, _read_label(device))
        for offset, size in pv.label.metadata_areas:
            text = _read_metadata(device, offset, size)
            if text is None:
                continue
            metadata = parse_metadata(text, device.description)
            vgs = [(name, sub) for name, sub in metadata.items() if isinstance(sub, dict)]
            if len(vgs) != 1:
                raise DiskError(f"{device.description}: LVM2 metadata holds no volume group")
            seqno = _int(vgs[0][1], "seqno", device.description)
            if seqno > pv.seqno:
                pv.vg_id = _str(vgs[0][1], "id", device.description)
                pv.seqno, pv.metadata = seqno, metadata
        found.append(pv)
        # A cloned partition repeats a PV's UUID; as lvm2 does, the first copy is used.
        by_uuid.setdefault(pv.label.uuid, pv)
    groups: list[VolumeGroup] = []
    done: set[str] = set()
    for pv in found:
        if not pv.vg_id:
            # No metadata here: an orphan, or a PV made with --metadatacopies 0 whose VG's
            # metadata lives on another PV (then that PV's VG claims it below).
            if not any(pv.label.uuid in _pv_uuids(other) for other in found):
                groups.append(VolumeGroup("", pv.index))
            continue
        if pv.vg_id in done:
            continue
        done.add(pv.vg_id)
        newest = max((p for p in found if p.vg_id == pv.vg_id), key=lambda p: p.seqno)
        assert newest.metadata is not None
        groups.append(_volume_group(newest.metadata, pv, by_uuid))
    return groups


def _pv_uuids(pv: _PhysicalVolume) -> set[str]:
    if pv.metadata is None:
        return set()
    where = pv.device.description
    ((_, vg),) = ((n, s) for n, s in pv.metadata.items() if isinstance(s, dict))
    return {
        _str(sub, "id", where).replace("-", "")
        for sub in _sections(vg, "physical_volumes", where).values()
    }


def _volume_group(
    metadata: Section, first: _PhysicalVolume, by_uuid: dict[str, _PhysicalVolume]
) -> VolumeGroup:
    where = first.device.description
    ((vg_name, vg),) = ((n, s) for n, s in metadata.items() if isinstance(s, dict))
    extent = _int(vg, "extent_size", where) * SECTOR
    if extent == 0:
        raise DiskError(f"{where}: LVM2 volume group {vg_name} has a zero extent size")
    # The VG's PVs by their metadata name ("pv0"): (device, byte offset of extent 0).
    pvs: dict[str, tuple[BlockDevice, int]] = {}
    for pv_name, sub in _sections(vg, "physical_volumes", where).items():
        uuid = _str(sub, "id", where)
        pv = by_uuid.get(uuid.replace("-", ""))
        if pv is None:
            hint = sub.get("device")
            seen = f", last seen as {hint}" if isinstance(hint, str) else ""
            raise DiskError(
                f"LVM2 volume group {vg_name} on {where} is missing its physical volume "
                f"{pv_name} (UUID {uuid}{seen}): the volume group spans a disk that is not in "
                "this image, so its logical volumes cannot be read"
            )
        pvs[pv_name] = (pv.device, _int(sub, "pe_start", where) * SECTOR)
    group = VolumeGroup(vg_name, first.index)
    for lv_name, lv in _sections(vg, "logical_volumes", where).items():
        status = lv.get("status")
        # Hidden LVs are the parts of another LV (a thin pool's data, a RAID image, a snapshot's
        # exception store): not volumes in their own right.
        if not isinstance(status, list) or "VISIBLE" not in status:
            continue
        group.logical_volumes.append(_logical_volume(vg_name, lv_name, lv, extent, pvs, where))
    return group


def _logical_volume(
    vg_name: str,
    lv_name: str,
    lv: Section,
    extent: int,
    pvs: dict[str, tuple[BlockDevice, int]],
    where: str,
) -> LogicalVolume:
    full = f"{vg_name}/{lv_name}"
    segments = sorted(
        (sub for key, sub in lv.items() if key.startswith("segment") and isinstance(sub, dict)),
        key=lambda sub: _int(sub, "start_extent", where),
    )

    def unmapped(problem: str) -> LogicalVolume:
        names = sorted({device.description for device, _ in pvs.values()})
        description = f"logical volume {full} on {' and '.join(names)}"
        return LogicalVolume(lv_name, UnmappedDevice(description, problem), problem)

    used: list[str] = []
    runs: list[SliceDevice] = []
    next_extent = 0
    for number, segment in enumerate(segments, 1):
        kind = _str(segment, "type", where)
        if _int(segment, "start_extent", where) != next_extent:
            raise DiskError(f"{where}: LVM2 logical volume {full} has a gap in its segments")
        count = _int(segment, "extent_count", where)
        next_extent += count
        stripes = segment.get("stripes")
        if kind != "striped" or not isinstance(stripes, list):
            return unmapped(f"{full} has a {kind} segment, which is not read")
        if _int(segment, "stripe_count", where) != 1 or len(stripes) != 2:
            return unmapped(f"{full} is striped over several physical volumes, which is not read")
        pv_name, pv_extent = stripes
        if not isinstance(pv_name, str) or not isinstance(pv_extent, int) or pv_name not in pvs:
            raise DiskError(f"{where}: LVM2 logical volume {full} names an unknown extent")
        pv_device, pe_start = pvs[pv_name]
        if pv_device.description not in used:
            used.append(pv_device.description)
        runs.append(
            SliceDevice(
                pv_device,
                pe_start + pv_extent * extent,
                count * extent,
                f"segment {number} of LVM2 logical volume {full}",
            )
        )
    if not runs:
        return unmapped(f"{full} has no segments")
    description = f"logical volume {full} on {' and '.join(used)}"
    return LogicalVolume(lv_name, LogicalVolumeDevice(description, runs))
