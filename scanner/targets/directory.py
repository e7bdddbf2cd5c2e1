"""`dir:PATH`: an image root mounted read-only, judged from its files alone."""

from __future__ import annotations

from pathlib import Path

from scanner.facts.base import Mode, ScanContext
from scanner.fs import ImageRoot
from scanner.offline import recognise_and_judge
from scanner.run import ScanRun
from scanner.targets.base import UNKNOWN_PLATFORM, ScanOptions, TargetError


class DirectoryTarget:
    kind = "dir"
    # Linux or Windows: known once the files are looked at.
    platform = UNKNOWN_PLATFORM

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise TargetError(f"{path} does not exist")
        if not path.is_dir():
            raise TargetError(f"{path} is not a directory (dir: needs an image root)")
        self.path = path
        self.id = f"dir:{path}"

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        root = ImageRoot(self.path)
        run.details.update({"root": str(root.root), "mode": "offline (files only, no commands)"})
        context = ScanContext(
            mode=Mode.OFFLINE,
            target_kind=self.kind,
            baseline_login_user=options.baseline_login_user,
            scan_date=options.scan_date,
        )
        # Checks judge an operating system; on anything else they would pass for want of data.
        recognise_and_judge(run, root, context)
