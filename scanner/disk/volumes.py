"""The volume layer: from a decoded disk to the volumes that may hold file systems.

A disk is, in this order: a bare file system or container (the whole disk is one volume), a GPT,
an MBR, or none of these (one volume of unknown content). File-system signatures come first
because a FAT or NTFS boot sector ends in 0x55AA just as an MBR does; "EFI PART" before the MBR
because a GPT disk's protective MBR is a valid MBR too. Signatures far from the disk's start
(btrfs, swap, ISO 9660) count only where there is no partition table (see `identify`). Each partition is identified by its
signature, and an LVM2 physical volume is replaced by its volume group's logical volumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.disk import lvm
from scanner.disk.device import BlockDevice, SliceDevice
from scanner.disk.partitions import mbr_protective, read_gpt, read_mbr
from scanner.disk.signatures import identify


@dataclass(frozen=True)
class Volume:
    # Where it is, in its description: "partition 2 of disk.img",
    # "logical volume vg0/root on partition 3 of disk.img", or the disk's own.
    device: BlockDevice
    # One of scanner.disk.signatures.KINDS.
    content: str
    # The GPT partition name (else its type), the MBR type byte ("0x83"), the LV's name; for an
    # LVM2 volume that could not be mapped, why. "" for a whole disk.
    label: str
    # What /etc/fstab may name it by (see scanner.disk.assemble): the partition's number,
    # PARTUUID and PARTLABEL, or the logical volume's "vg/lv".
    number: int | None = None
    partuuid: str = ""
    partlabel: str = ""
    lv_path: str = ""


def find_volumes(disk: BlockDevice) -> list[Volume]:
    """The volumes on `disk`, in on-disk order. DiskError when its partition table or LVM
    metadata is corrupt, runs past the disk's end, or names a PV that is not on the disk."""
    content = identify(disk, far=False)
    if content != "unknown":
        return _expand([Volume(disk, content, "")])
    partitions = read_gpt(disk, protective=mbr_protective(disk))
    if partitions is None:
        partitions = read_mbr(disk)
    if partitions is None:
        # No table: a file system whose signature is further in (btrfs, swap, an ISO 9660
        # whose hybrid MBR maps the image from LBA 0), or nothing known.
        return _expand([Volume(disk, identify(disk), "")])
    volumes = []
    for partition in partitions:
        device = SliceDevice(
            disk,
            partition.start,
            partition.size,
            f"partition {partition.number} of {disk.description}",
        )
        volumes.append(
            Volume(
                device,
                identify(device),
                partition.label,
                number=partition.number,
                partuuid=partition.partuuid,
                partlabel=partition.partlabel,
            )
        )
    return _expand(volumes)


def _expand(volumes: list[Volume]) -> list[Volume]:
    """`volumes` with each LVM2 PV replaced by its VG's LVs (where the VG's first PV was)."""
    pvs = [volume for volume in volumes if volume.content == "lvm2"]
    if not pvs:
        return volumes
    groups = {
        id(pvs[group.first_pv]): group for group in lvm.volume_groups([v.device for v in pvs])
    }
    expanded: list[Volume] = []
    for volume in volumes:
        if volume.content != "lvm2":
            expanded.append(volume)
            continue
        group = groups.get(id(volume))
        if group is None:
            continue  # a later PV of a VG already listed
        if not group.name:
            expanded.append(Volume(volume.device, "lvm2", "LVM2 physical volume in no group"))
        for lv in group.logical_volumes:
            if lv.problem:
                # Not a DiskError: the other LVs (the root file system, usually) can still be
                # read; the caller reports this one as not examined, with the reason.
                expanded.append(Volume(lv.device, "unknown", lv.problem))
            else:
                expanded.append(
                    Volume(
                        lv.device,
                        identify(lv.device),
                        lv.name,
                        lv_path=f"{group.name}/{lv.name}",
                    )
                )
    return expanded
