"""Windows system checks: pending updates, a supported release, no BitLocker volumes."""

from __future__ import annotations

from checks.clock import scan_date
from checks.evidence import line, support_outcome
from checks.policies import policy
from scanner.eol import windows_support_on
from scanner.facts.base import Facts
from scanner.facts.windows.system import BITLOCKER, WINDOWS_RELEASE
from scanner.facts.windows.updates import PENDING_UPDATES
from scanner.model import Outcome, Platform, Severity, Status
from scanner.registry import check

_SHOWN = 40
_SOURCE = "Windows Update (IsInstalled=0 and Type='Software')"


@check(
    id="windows.updates.pending",
    title="no critical or important Windows update is pending",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("G1"),
    rationale="Marketplace scans images for known vulnerabilities; an update the MSRC rates "
    "Critical or Important that is not installed is a known, fixed vulnerability in the image.",
    remediation="Install updates before creating the AMI (Windows Update, `Install-WindowsUpdate` "
    "from PSWindowsUpdate, or SSM `AWS-InstallWindowsUpdates`), reboot, and check again; or build "
    "on the latest AWS-provided Windows AMI.",
    needs=[PENDING_UPDATES],
)
def updates_pending(facts: Facts) -> Outcome:
    updates = facts.get(PENDING_UPDATES)
    blocking = [u for u in updates if u.blocking]
    others = [u for u in updates if not u.blocking]
    if blocking:
        evidence = [line(_SOURCE, u.describe()) for u in blocking[:_SHOWN]]
        if len(blocking) > _SHOWN:
            evidence.append(line(_SOURCE, f"… and {len(blocking) - _SHOWN} more"))
        return Outcome(
            Status.FAIL,
            f"{len(blocking)} pending update(s) rated Critical or Important",
            tuple(evidence),
        )
    if others:
        return Outcome(
            Status.WARN,
            f"{len(others)} pending update(s), none rated Critical or Important",
            tuple(line(_SOURCE, u.describe()) for u in others[:_SHOWN]),
        )
    return Outcome(Status.PASS, "no pending software updates", (line(_SOURCE, "0 updates"),))


@check(
    id="windows.os.supported",
    title="the Windows release is supported",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("G2"),
    rationale="Marketplace rejects images whose operating system no longer receives security "
    "updates from Microsoft.",
    remediation="Rebuild the image on a Windows Server release still in support (see "
    "https://learn.microsoft.com/en-us/windows/release-health/windows-server-release-info).",
    needs=[WINDOWS_RELEASE],
)
def os_supported(facts: Facts) -> Outcome:
    release = facts.get(WINDOWS_RELEASE)
    evidence = [line(release.source, release.describe())]
    if not release.is_server:
        return Outcome(
            Status.WARN,
            f"{release.caption} is a client edition; the bundled table covers Windows Server "
            "releases only",
            tuple(evidence),
        )
    support = windows_support_on(release.build, scan_date(facts))
    return support_outcome(support, evidence)


@check(
    id="windows.filesystem.bitlocker",
    title="no BitLocker-encrypted volume",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("A6"),
    rationale="Marketplace cannot scan, and buyers cannot boot unattended, an image whose "
    "volumes need a key only the seller holds.",
    remediation="Decrypt every volume (`Disable-BitLocker -MountPoint C:` or `manage-bde -off C:`) "
    "and wait until it is fully decrypted; use EBS encryption in the buyer's account instead.",
    needs=[BITLOCKER],
)
def bitlocker(facts: Facts) -> Outcome:
    state = facts.get(BITLOCKER)
    source = state.source
    if not state.installed:
        return Outcome(
            Status.PASS, "BitLocker is not installed", (line(source, "namespace absent"),)
        )
    evidence = tuple(line(source, volume.describe()) for volume in state.volumes)
    encrypted = [v for v in state.volumes if v.encrypted]
    if encrypted:
        names = ", ".join(v.drive or v.device for v in encrypted)
        return Outcome(Status.FAIL, f"BitLocker protects or encrypts {names}", evidence)
    if not state.volumes:
        return Outcome(Status.PASS, "no encrypted volume", (line(source, "none"),))
    return Outcome(Status.PASS, f"{len(state.volumes)} volume(s), none encrypted", evidence)
