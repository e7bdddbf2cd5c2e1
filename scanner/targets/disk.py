"""`disk:PATH`: a local disk image (raw, qcow2, VMDK), judged from its files without mounting it.

The same judging serves `snapshot:` and `ami-… --no-launch` (`judge_disks`): the disks are read
through `scanner.disk`, the guest tree is assembled from their volumes, and the offline checks
judge it exactly as they judge a `dir:` of the same root.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from scanner.disk.assemble import AssembledImage, assemble
from scanner.disk.device import BlockCache, BlockDevice, DiskError, FileDevice
from scanner.disk.formats import image_format, open_image
from scanner.errors import ScanAborted
from scanner.facts.base import Facts, Mode, ScanContext
from scanner.fs import MemoryTree
from scanner.offline import recognise_and_judge
from scanner.run import ScanRun
from scanner.targets.base import UNKNOWN_PLATFORM, ScanOptions, TargetError

# The check an image whose root cannot be read can still be judged by, per kind of encryption:
# a LUKS root is Linux's, a BitLocker one Windows'.
UNENCRYPTED_CHECKS = {
    "luks": ("linux.filesystem.unencrypted", "linux"),
    "bitlocker": ("windows.filesystem.bitlocker", "windows"),
}
OFFLINE_NOTE = (
    "judged offline from the image's files: checks that need a running instance are skipped"
)


def judge_disks(
    run: ScanRun,
    disks: list[BlockDevice],
    context: ScanContext,
    source: str,
    mapped_as: list[str] | None = None,
) -> AssembledImage:
    """Assemble the disks' guest tree and judge every offline-capable check of its OS on it.

    `source` says in the report where the files came from ("disk image", "snapshot snap-…");
    `mapped_as` names each disk as the AMI's block device mapping does ("/dev/sdf").
    ScanAborted (exit 3) when no volume holds an OS; an encrypted root still fails
    linux.filesystem.unencrypted (and windows.filesystem.bitlocker) first, so the verdict says
    what is wrong, not only "error".
    """
    with run.phase("opened", f"Reading the volumes of the {source}"):
        try:
            decoded = [open_image(disk) for disk in disks]
            image = assemble(decoded, mapped_as)
        except DiskError as exc:
            raise ScanAborted(str(exc)) from None
    run.details["format"] = ", ".join(image_format(d) for d in decoded)
    run.details["volumes"] = [v.summary() for v in image.volumes]
    run.notes.extend(image.notes)
    context = dataclasses.replace(context, encrypted_volumes=image.encrypted)
    if image.tree is None:
        _judge_encryption(run, image, context)
        raise ScanAborted(image.problem)
    run.details["mounts"] = {point: fs.description for point, fs in image.tree.mounts.items()}
    recognise_and_judge(run, image.tree, context)
    return image


def _judge_encryption(run: ScanRun, image: AssembledImage, context: ScanContext) -> None:
    """Fail the encryption check of the OS the encrypted volumes point to, before aborting."""
    kinds = {v.volume.content for v in image.volumes if v.volume.content in UNENCRYPTED_CHECKS}
    wanted = [UNENCRYPTED_CHECKS[kind] for kind in sorted(kinds)]
    if not wanted:
        return
    # With both kinds the platform stays unknown; each check judges its own volumes.
    platforms = {platform for _, platform in wanted}
    if len(platforms) == 1:
        run.settle_platform(platforms.pop())
    ids = {check_id for check_id, _ in wanted}
    run.judge(
        [c for c in run.checks if c.id in ids], Facts(MemoryTree(), context, cancel=run.cancel)
    )


def read_figures(devices: list[BlockCache]) -> str:
    """How much of the image files a scan read, for the report."""
    read = sum(d.bytes_read for d in devices)
    total = sum(d.size for d in devices)
    share = 100 * read / total if total else 0.0
    return f"{read / 2**20:.1f} MiB of {total / 2**20:.1f} MiB ({share:.2f}% of the image file)"


class DiskTarget:
    kind = "disk"
    # Linux or Windows: known once the volumes are read.
    platform = UNKNOWN_PLATFORM

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise TargetError(f"{path} does not exist")
        if not path.is_file():
            raise TargetError(
                f"{path} is not a file (disk: needs a disk image: raw, qcow2 or VMDK)"
            )
        self.path = path
        self.id = f"disk:{path}"

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        run.details.update({"image": str(self.path), "mode": "offline (files only, no commands)"})
        try:
            device = BlockCache(FileDevice(self.path))
        except DiskError as exc:
            raise ScanAborted(str(exc)) from None
        context = ScanContext(
            mode=Mode.OFFLINE,
            target_kind=self.kind,
            baseline_login_user=options.baseline_login_user,
            scan_date=options.scan_date,
        )
        try:
            judge_disks(run, [device], context, "disk image")
        finally:
            run.details["read"] = read_figures([device])
