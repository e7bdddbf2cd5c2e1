"""Judge an operating system's files at rest: whichever OS the files hold picks the checks.

Every offline source (`dir:`, `disk:`, `snapshot:`, `ami-… --no-launch`) ends here once it has a
tree: the platform is known only when the files have been looked at, so the run's checks are
narrowed to it here, as an AMI's are once DescribeImages names its platform.
"""

from __future__ import annotations

from scanner.facts.base import Facts, ScanContext
from scanner.fs import FileSource
from scanner.model import Platform
from scanner.osdetect import Contents, Recognised, require_operating_system
from scanner.run import ScanRun


def recognise_and_judge(run: ScanRun, files: FileSource, context: ScanContext) -> Recognised:
    """Recognise the OS the files hold (ScanAborted when none) and judge its offline checks."""
    with run.phase("recognised", "Looking for an operating system"):
        found = require_operating_system(files)
    run.details["contents"] = found.message
    judge_recognised(run, files, context, found)
    return found


def judge_recognised(
    run: ScanRun, files: FileSource, context: ScanContext, found: Recognised
) -> None:
    """Judge the offline checks of the recognised OS; the other platform's checks do not apply."""
    platform = Platform.WINDOWS if found.contents is Contents.WINDOWS else Platform.LINUX
    run.settle_platform(platform.value)
    # Imported here: each platform's scan module (its collectors, transports) loads only when
    # the files hold that OS.
    if platform is Platform.WINDOWS:
        from scanner.windows import record_os
    else:
        from scanner.linux import record_os
    facts = Facts(files, context, cancel=run.cancel)
    with run.phase("judged", "Judging the image's files"):
        run.judge([c for c in run.checks if c.platform is platform], facts)
    record_os(run, facts)
