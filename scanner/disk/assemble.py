"""From disks to one guest tree: open each volume's file system, find the root, mount the rest.

The root is the volume that holds an operating system (osdetect: /etc/os-release and friends);
the other volumes attach where the root's /etc/fstab mounts them, matched by UUID, LABEL, LV
name or partition device, as the guest would at boot. What cannot be read (btrfs, vfat, swap,
an encrypted volume) is named in the notes, never silently left out.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from dataclasses import dataclass, field

from scanner.disk.device import BlockDevice, DiskError
from scanner.disk.filesystem import FileSystem
from scanner.disk.tree import DiskTree
from scanner.disk.volumes import Volume, find_volumes
from scanner.fs import ReadRefused, read_text_or_none
from scanner.osdetect import Contents, recognise

# File systems amiscan reads, by the content name the volume layer gives them.
READABLE = ("ext", "xfs", "ntfs")
ENCRYPTED = {"luks": "LUKS", "bitlocker": "BitLocker"}
# Said of volumes that hold something other than a file system amiscan reads.
_UNREAD = {
    "btrfs": "btrfs, which amiscan does not read",
    "vfat": "a FAT file system (EFI or firmware files; not judged)",
    "swap": "swap space",
    "lvm2": "an LVM physical volume none of whose logical volumes could be read",
}
_FSTAB_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Identity:
    """What /etc/fstab may name a volume by."""

    uuid: str = ""
    label: str = ""


# Device names the guest's kernel may give the disks, in attachment order: Xen and the first
# Nitro instances name them xvd*, SCSI sd*, virtio vd*, IDE hd*; Nitro NVMe nvme<N>n1.
_DISK_PREFIXES = ("xvd", "sd", "vd", "hd")


_MAPPED_NAME = re.compile(r"^/dev/(?:xvd|sd|vd|hd)([a-z]+)$")


def device_names(volume: Volume, disk_index: int, mapped_as: str = "") -> tuple[str, ...]:
    """The /dev paths an /etc/fstab line may use for `volume` on the `disk_index`th disk.

    `mapped_as` is the disk's device name in the AMI's block device mapping ("/dev/sdf"): the
    guest sees it under that letter (xvdf, sdf), or as an NVMe namespace on Nitro.
    """
    if volume.lv_path:
        group, name = volume.lv_path.split("/", 1)
        # device-mapper doubles the dashes inside each name, then joins them with one.
        mapper = f"{group.replace('-', '--')}-{name.replace('-', '--')}"
        return (f"/dev/mapper/{mapper}", f"/dev/{group}/{name}")
    mapped = _MAPPED_NAME.match(mapped_as)
    fallback = chr(ord("a") + disk_index) if disk_index < 26 else ""
    letter = mapped.group(1) if mapped else fallback
    if volume.number is None:
        names = [f"/dev/{prefix}{letter}" for prefix in _DISK_PREFIXES if letter]
        return (*names, f"/dev/nvme{disk_index}n1")
    names = [f"/dev/{prefix}{letter}{volume.number}" for prefix in _DISK_PREFIXES if letter]
    return (*names, f"/dev/nvme{disk_index}n1p{volume.number}")


@dataclass
class OpenedVolume:
    volume: Volume
    device_names: tuple[str, ...] = ()
    fs: FileSystem | None = None
    identity: Identity = field(default_factory=Identity)
    # Where it is attached in the guest tree ("/" for the root), or "" when not attached.
    mounted_at: str = ""
    # Why it could not be opened, when it could not.
    problem: str = ""

    def summary(self) -> str:
        where = f", mounted at {self.mounted_at}" if self.mounted_at else ""
        what = self.fs.description if self.fs else self.problem or self.volume.content
        label = f" ({self.volume.label})" if self.volume.label and not self.fs else ""
        return f"{self.volume.device.description}: {what}{label}{where}"

    @property
    def expected_unread(self) -> bool:
        """Volumes every image has and no check needs: boot loader, EFI and swap partitions, and
        the Microsoft reserved partition (empty space Windows keeps for itself)."""
        return self.volume.content in ("vfat", "swap") or any(
            kind in self.volume.label for kind in ("BIOS boot", "Microsoft reserved")
        )


@dataclass
class AssembledImage:
    """The guest tree (None when no volume holds an OS) and what was found on the disks."""

    tree: DiskTree | None
    volumes: list[OpenedVolume]
    notes: list[str]
    # Encrypted volumes, as evidence lines ("partition 3 of disk.img: LUKS").
    encrypted: tuple[str, ...]
    # When there is no tree: one line naming what the disks hold instead.
    problem: str = ""


def _xfs_identity(device: BlockDevice) -> Identity:
    block = device.pread(0, 512)
    if len(block) < 120:
        return Identity()
    label = block[108:120].split(b"\0", 1)[0].decode("utf-8", errors="replace")
    return Identity(str(uuid.UUID(bytes=block[32:48])), label)


def _open_fs(volume: Volume) -> FileSystem:
    # Imported here: XFS loads a native library that an ext-only image never needs.
    if volume.content == "ext":
        from scanner.disk.ext import ExtFileSystem

        return ExtFileSystem(volume.device)
    if volume.content == "ntfs":
        from scanner.disk.ntfs import NtfsFileSystem

        return NtfsFileSystem(volume.device)
    from scanner.disk.xfs import XfsFileSystem

    return XfsFileSystem(volume.device)


def _ntfs_identity(device: BlockDevice) -> Identity:
    # The volume serial number (boot sector bytes 0x48-0x4F): what a Linux fstab's UUID= names.
    boot = device.pread(0, 512)
    if len(boot) < 0x50:
        return Identity()
    return Identity(f"{int.from_bytes(boot[0x48:0x50], 'little'):016X}")


def _identity(volume: Volume, fs: FileSystem) -> Identity:
    """UUID and label of an opened file system (the ext reader parsed them already)."""
    from scanner.disk.ext import ExtFileSystem

    if isinstance(fs, ExtFileSystem):
        return Identity(fs.uuid, fs.label)
    if volume.content == "xfs":
        return _xfs_identity(volume.device)
    return _ntfs_identity(volume.device)


def _open(volume: Volume, disk_index: int, mapped_as: str) -> OpenedVolume:
    opened = OpenedVolume(volume, device_names(volume, disk_index, mapped_as))
    if volume.content in ENCRYPTED:
        opened.problem = f"{ENCRYPTED[volume.content]}-encrypted; its files cannot be read"
    elif volume.content not in READABLE:
        opened.problem = _UNREAD.get(volume.content, "no file system amiscan recognises")
    else:
        try:
            opened.fs = _open_fs(volume)
            opened.identity = _identity(volume, opened.fs)
        except DiskError as exc:
            opened.problem = str(exc)
    return opened


def assemble(disks: list[BlockDevice], mapped_as: list[str] | None = None) -> AssembledImage:
    """Open every volume of the disks (the first is the boot disk) and build the guest tree.

    `mapped_as`: each disk's device name in the AMI's block device mapping, when known.
    DiskError when a disk's partition table or container cannot be read at all.
    """
    names = list(mapped_as or []) + [""] * len(disks)
    opened = [
        _open(volume, index, names[index])
        for index, disk in enumerate(disks)
        for volume in find_volumes(disk)
    ]
    encrypted = tuple(
        f"{o.volume.device.description}: {ENCRYPTED[o.volume.content]}"
        for o in opened
        if o.volume.content in ENCRYPTED
    )
    roots: list[OpenedVolume] = []
    found: list[str] = []
    windows: list[OpenedVolume] = []
    for item in opened:
        if item.fs is None:
            continue
        try:
            recognised = recognise(DiskTree(item.fs, item.fs.description))
        except ReadRefused as exc:
            item.problem = str(exc)
            continue
        if recognised.contents is Contents.LINUX:
            roots.append(item)
        elif recognised.contents is Contents.WINDOWS:
            windows.append(item)
        else:
            found.append(f"{item.fs.description}: {recognised.found}")
    notes: list[str] = []
    if not roots and windows:
        return _windows_image(windows, opened, encrypted)
    if not roots:
        found += [f"{o.volume.device.description}: {o.problem}" for o in opened if o.fs is None]
        held = "; ".join(found) if found else "no volumes"
        problem = (
            f"no volume holds a Linux root file system or a Windows system volume ({held}); "
            "scan the image of the instance's boot disk"
        )
        return AssembledImage(None, opened, notes, encrypted, problem)
    root = roots[0]
    if len(roots) > 1:
        others = ", ".join(r.volume.device.description for r in roots[1:])
        notes.append(
            f"several volumes hold a Linux root; judged {root.volume.device.description}, "
            f"not {others}"
        )
    assert root.fs is not None
    tree = DiskTree(root.fs, f"{root.fs.description}")
    root.mounted_at = "/"
    notes += _mount_fstab(tree, root, opened)
    for item in opened:
        if item.fs is not None and item.fs.dirty and item.mounted_at:
            notes.append(f"{item.volume.device.description}: {item.fs.dirty}")
        elif item.fs is None and item.volume.content not in ENCRYPTED and not item.expected_unread:
            notes.append(f"{item.volume.device.description} not read: {item.problem}")
    return AssembledImage(tree, opened, notes, encrypted)


def _windows_image(
    windows: list[OpenedVolume], opened: list[OpenedVolume], encrypted: tuple[str, ...]
) -> AssembledImage:
    """The Windows system volume is C:\\ and the whole tree: drive letters live in the
    registry's MountedDevices, and nothing the Windows checks read is on another volume."""
    root = windows[0]
    assert root.fs is not None
    root.mounted_at = "/"
    notes: list[str] = []
    if len(windows) > 1:
        others = ", ".join(w.volume.device.description for w in windows[1:])
        notes.append(
            f"several volumes hold Windows; judged {root.volume.device.description}, not {others}"
        )
    if root.fs.dirty:
        notes.append(f"{root.volume.device.description}: {root.fs.dirty}")
    for item in opened:
        if item.fs is None and item.volume.content not in ENCRYPTED and not item.expected_unread:
            notes.append(f"{item.volume.device.description} not read: {item.problem}")
    return AssembledImage(DiskTree(root.fs, root.fs.description), opened, notes, encrypted)


def _fstab_entries(tree: DiskTree) -> list[tuple[str, str, str]]:
    """(spec, mount point, type) of each /etc/fstab line that mounts a file system."""
    text = read_text_or_none(tree, "/etc/fstab", _FSTAB_LIMIT) or ""
    entries = []
    for raw in text.splitlines():
        fields = raw.split("#", 1)[0].split()
        if len(fields) >= 3 and fields[1].startswith("/") and fields[1] != "/":
            # fstab escapes spaces in paths as \040.
            point = posixpath.normpath(fields[1].replace("\\040", " "))
            entries.append((fields[0], point, fields[2]))
    return entries


def _matches(spec: str, item: OpenedVolume) -> bool:
    key, _, value = spec.partition("=")
    value = value.strip("\"'")
    if key == "UUID":
        return bool(item.identity.uuid) and item.identity.uuid.lower() == value.lower()
    if key == "LABEL":
        return bool(item.identity.label) and item.identity.label == value
    if key == "PARTUUID":
        return bool(item.volume.partuuid) and item.volume.partuuid.lower() == value.lower()
    if key == "PARTLABEL":
        return bool(item.volume.partlabel) and item.volume.partlabel == value
    if spec.startswith("/dev/disk/by-uuid/"):
        return item.identity.uuid.lower() == spec.rsplit("/", 1)[1].lower()
    if spec.startswith("/dev/disk/by-label/"):
        return item.identity.label == spec.rsplit("/", 1)[1]
    if spec.startswith("/dev/"):
        return spec in item.device_names
    return False


def _mount_fstab(tree: DiskTree, root: OpenedVolume, opened: list[OpenedVolume]) -> list[str]:
    notes = []
    for spec, point, fstype in _fstab_entries(tree):
        if fstype in ("swap", "tmpfs", "proc", "sysfs", "devpts", "none", "nfs", "nfs4", "efs"):
            continue
        target = next((o for o in opened if o is not root and _matches(spec, o)), None)
        if target is None:
            notes.append(
                f"/etc/fstab mounts {point} from {spec}, which is not on the disks read; "
                f"{point} was judged as the root file system holds it"
            )
            continue
        if target.fs is None:
            notes.append(
                f"/etc/fstab mounts {point} from {target.volume.device.description}: "
                f"{target.problem}; not judged"
            )
            continue
        if not target.mounted_at:
            tree.mount(point, target.fs)
            target.mounted_at = point
    return notes
