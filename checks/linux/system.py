"""System checks: supported OS, pending updates, encrypted file systems, cloud-init leftovers."""

from __future__ import annotations

from checks.clock import scan_date
from checks.evidence import line, support_outcome
from checks.policies import policy
from scanner.eol import support_on
from scanner.facts.base import Facts, Mode
from scanner.facts.linux.system import (
    CLOUD_INIT_STATE,
    ENCRYPTED_FS,
    OS_RELEASE,
    PENDING_UPDATES,
    PendingUpdates,
)
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check


@check(
    id="linux.os.supported",
    title="the OS release is supported",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("G2"),
    rationale="Marketplace rejects images whose operating system no longer receives security "
    "updates from its vendor.",
    remediation="Rebuild the image on a release that is still in standard support (see the "
    "vendor's lifecycle page).",
    needs=[OS_RELEASE],
)
def os_supported(facts: Facts) -> Outcome:
    found = facts.get(OS_RELEASE)
    release = found.release
    support = support_on(release, scan_date(facts))
    evidence = [
        line(found.path, f"ID={release.id} VERSION_ID={release.version_id} ({release.pretty_name})")
    ]
    return support_outcome(support, evidence)


@check(
    id="linux.packages.up-to-date",
    title="no security update is pending",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("G1", "BP"),
    rationale="Marketplace scans images for known vulnerabilities; a pending security update "
    "is a known, fixed vulnerability still present in the image.",
    remediation="Apply updates before creating the AMI: `dnf -y upgrade --security` / "
    "`yum -y update --security`, `apt-get update && apt-get -y dist-upgrade`, or "
    "`zypper -n patch --category security`; then reboot if the kernel changed.",
    needs=[PENDING_UPDATES],
)
def packages_up_to_date(facts: Facts) -> Outcome:
    pending = facts.get(PENDING_UPDATES)
    if pending.lists_date is not None:
        # Offline: the image's own lists, only as fresh as the build that fetched them.
        return _packages_offline(pending)
    if pending.refreshed:
        basis = "fresh metadata"
    elif pending.refresh_error:
        basis = "the metadata already on the host: refreshing it failed"
    else:
        basis = "the metadata already on the host (not refreshed)"
    evidence = _security_lines(pending)
    if pending.refresh_error:
        evidence.append(line(f"{pending.manager} refresh", pending.refresh_error))
    if pending.security:
        return Outcome(
            Status.FAIL,
            f"{len(pending.security)} pending security update(s), per {basis}",
            tuple(evidence),
        )
    others = [line(pending.manager, item) for item in pending.other[:30]]
    if pending.other:
        return Outcome(
            Status.WARN,
            f"{len(pending.other)} pending non-security update(s), per {basis}",
            tuple(others),
        )
    if pending.refresh_error:
        # Nothing pending per metadata known to be stale is not a judgement of today's updates.
        return Outcome(
            Status.WARN,
            f"no pending updates per {basis}, so newer updates may be missing",
            (
                line(pending.manager, "lists no pending update"),
                line(f"{pending.manager} refresh", pending.refresh_error),
            ),
        )
    return Outcome(
        Status.PASS,
        f"no pending updates ({pending.manager}, per {basis})",
        (line(pending.manager, "lists no pending update"),),
    )


def _listed(source: str, items: tuple[str, ...], shown: int, more_source: str) -> list[Evidence]:
    """The first `shown` items as evidence, and a line counting the rest."""
    lines = [line(source, item) for item in items[:shown]]
    if len(items) > shown:
        lines.append(line(more_source, f"… and {len(items) - shown} more"))
    return lines


def _security_lines(pending: PendingUpdates) -> list[Evidence]:
    return _listed(f"{pending.manager} (security)", pending.security, 50, pending.manager)


def _packages_offline(pending: PendingUpdates) -> Outcome:
    # apt's lists, or the repodata dnf or yum cached (pending.manager names which).
    source = "apt lists" if pending.manager == "apt" else f"{pending.manager} repository metadata"
    basis = f"per the image's {source} fetched on {pending.lists_date}"
    manager = pending.manager
    evidence = _security_lines(pending)
    kept = pending.kept_back_security + pending.kept_back_other
    evidence += _listed(f"{manager} (kept back)", kept, 20, f"{manager} (kept back)")
    kept_note = ""
    if kept:
        kept_note = (
            f", and {len(pending.kept_back_security)} security and "
            f"{len(pending.kept_back_other)} other upgrade(s) kept back"
        )
    if pending.security or pending.kept_back_security:
        return Outcome(
            Status.FAIL,
            f"{len(pending.security)} pending security update(s){kept_note}, {basis}",
            tuple(evidence),
        )
    if pending.other or pending.kept_back_other:
        evidence += [line(manager, item) for item in pending.other[:30]]
        return Outcome(
            Status.WARN,
            f"{len(pending.other)} pending non-security update(s){kept_note}, {basis}",
            tuple(evidence),
        )
    return Outcome(
        Status.PASS,
        f"no pending updates ({manager}, {basis})",
        (line(manager, f"no newer version of an installed package in the image's {source}"),),
    )


@check(
    id="linux.filesystem.unencrypted",
    title="no encrypted file systems",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("A6"),
    rationale="Marketplace cannot scan, and buyers cannot boot unattended, an image whose file "
    "systems need a key that only the seller has.",
    remediation="Remove LUKS/dm-crypt volumes and their /etc/crypttab entries; use EBS "
    "encryption in the buyer's account instead.",
    needs=[ENCRYPTED_FS],
)
def filesystem_unencrypted(facts: Facts) -> Outcome:
    state = facts.get(ENCRYPTED_FS)
    evidence = [line(f"/etc/crypttab:{n}", text) for n, text in state.crypttab]
    evidence += [line(state.devices_source, device) for device in state.encrypted_devices]
    if evidence:
        return Outcome(Status.FAIL, "encrypted file systems are configured", tuple(evidence))
    if facts.context.mode is Mode.LIVE and not state.inspected_devices:
        # crypttab alone misses volumes unlocked by other means (e.g. clevis, manual cryptsetup).
        return Outcome(
            Status.WARN,
            "no /etc/crypttab entries, but lsblk could not list the block devices",
            (line("lsblk", "failed or not installed"),),
        )
    lister = "the disks' volumes" if state.devices_source == "volumes" else state.devices_source
    basis = f"/etc/crypttab and {lister}" if state.inspected_devices else "/etc/crypttab"
    evidence = [line("/etc/crypttab", "no entries")]
    if state.devices_source == "volumes":
        evidence.append(line("volumes", "no LUKS or BitLocker volume on the disks"))
    elif state.inspected_devices:
        evidence.append(line("lsblk", "no crypt device and no crypto_LUKS file system"))
    return Outcome(Status.PASS, f"no encrypted file systems ({basis})", tuple(evidence))


@check(
    id="linux.cloud-init.clean",
    title="no cloud-init state is left from the build instance",
    severity=Severity.LOW,
    platform=Platform.LINUX,
    policy=policy("SH"),
    rationale="State left in /var/lib/cloud makes cloud-init treat a buyer's first boot as a "
    "reboot of the build instance, skipping per-instance set-up such as host keys.",
    remediation="Run `cloud-init clean --logs` (or `rm -rf /var/lib/cloud/instances "
    "/var/lib/cloud/instance`) as the last step before creating the AMI.",
    needs=[CLOUD_INIT_STATE],
)
def cloud_init_clean(facts: Facts) -> Outcome:
    state = facts.get(CLOUD_INIT_STATE)
    if state.instances or state.instance_link:
        evidence = [line(path) for path in state.instances]
        if state.instance_link:
            evidence.append(line("/var/lib/cloud/instance"))
        return Outcome(
            Status.FAIL,
            f"cloud-init state of {len(state.instances)} instance(s) remains",
            tuple(evidence),
        )
    return Outcome(
        Status.PASS,
        "/var/lib/cloud holds no instance state",
        (line("/var/lib/cloud", "no instances/* and no instance link"),),
    )
