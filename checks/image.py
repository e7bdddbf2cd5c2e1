"""Image checks: AMI attributes Marketplace validates before any instance is launched."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime
from typing import Any

from checks.clock import scan_time
from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.image import IMAGE, ImageInfo
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check

MAX_SIZE_GIB = 5120
# Marketplace: "less than two years old", i.e. calendar years, not 730 days.
MAX_AGE_MONTHS = 24
AGE_WARN_MONTHS = 21


def _attribute_outcome(facts: Facts, name: str, accepted: Callable[[Any], bool]) -> Outcome:
    """pass when one DescribeImages attribute is acceptable, fail otherwise; it is the evidence."""
    image = facts.get(IMAGE)
    value = image.attributes.get(name)
    status = Status.PASS if accepted(value) else Status.FAIL
    return Outcome(status, f"{name} is {value}", (_attr(image, name),))


def _attr(image: ImageInfo, name: str) -> Evidence:
    return line(f"DescribeImages {image.image_id}", f"{name}: {image.attributes.get(name)!r}")


@check(
    id="image.virtualization-hvm",
    title="the AMI uses HVM virtualization",
    severity=Severity.CRITICAL,
    platform=Platform.IMAGE,
    policy=policy("A2"),
    rationale="Marketplace accepts only hardware virtual machine (HVM) AMIs; paravirtual images "
    "cannot run on current instance types.",
    remediation="Rebuild the image from an HVM base AMI.",
    needs=[IMAGE],
)
def virtualization_hvm(facts: Facts) -> Outcome:
    return _attribute_outcome(facts, "VirtualizationType", lambda value: value == "hvm")


@check(
    id="image.architecture",
    title="the AMI is x86_64 or arm64",
    severity=Severity.CRITICAL,
    platform=Platform.IMAGE,
    policy=policy("A3"),
    rationale="Marketplace supports 64-bit x86 and 64-bit Arm AMIs only.",
    remediation="Build the image for x86_64 or arm64.",
    needs=[IMAGE],
)
def architecture(facts: Facts) -> Outcome:
    return _attribute_outcome(facts, "Architecture", lambda value: value in ("x86_64", "arm64"))


@check(
    id="image.ebs-backed",
    title="the AMI is EBS-backed",
    severity=Severity.CRITICAL,
    platform=Platform.IMAGE,
    policy=policy("A4"),
    rationale="Marketplace accepts only EBS-backed AMIs; instance-store AMIs are not supported.",
    remediation="Create the AMI from an EBS-backed instance (CreateImage), not a bundled "
    "instance-store image.",
    needs=[IMAGE],
)
def ebs_backed(facts: Facts) -> Outcome:
    return _attribute_outcome(facts, "RootDeviceType", lambda value: value == "ebs")


def _ebs_mappings(image: ImageInfo) -> list[tuple[str, dict[str, Any]]]:
    """(device name, Ebs) of every EBS mapping; ephemeral (instance store) mappings have no Ebs."""
    mappings = image.attributes.get("BlockDeviceMappings") or []
    return [
        (str(m.get("DeviceName")), m["Ebs"])
        for m in mappings
        if isinstance(m, dict) and isinstance(m.get("Ebs"), dict)
    ]


@check(
    id="image.snapshots-unencrypted",
    title="the AMI's snapshots are not encrypted",
    severity=Severity.CRITICAL,
    platform=Platform.IMAGE,
    policy=policy("A5"),
    rationale="Marketplace cannot share encrypted snapshots with buyers; encrypted AMIs are rejected.",
    remediation="Copy the AMI without encryption (CopyImage with Encrypted=false from an "
    "unencrypted source), or rebuild it with unencrypted volumes; if the account encrypts new "
    "volumes by default, turn that off while building the product image.",
    needs=[IMAGE],
)
def snapshots_unencrypted(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    mappings = _ebs_mappings(image)
    encrypted = [device for device, ebs in mappings if ebs.get("Encrypted")]
    evidence = tuple(
        line(
            f"BlockDeviceMappings {device}",
            f"Encrypted: {ebs.get('Encrypted')!r}, SnapshotId: {ebs.get('SnapshotId')}",
        )
        for device, ebs in mappings
    )
    if encrypted:
        return Outcome(
            Status.FAIL,
            f"{len(encrypted)} of {len(mappings)} block device mapping(s) are encrypted: "
            + ", ".join(encrypted),
            evidence,
        )
    if image.ebs_encryption_by_default:
        return Outcome(
            Status.WARN,
            "no mapping is encrypted, but this account encrypts new EBS volumes by default: "
            "images built here will be encrypted",
            (*evidence, line("GetEbsEncryptionByDefault", "EbsEncryptionByDefault: True")),
        )
    return Outcome(
        Status.PASS, f"none of {len(mappings)} block device mapping(s) is encrypted", evidence
    )


@check(
    id="image.size",
    title="the AMI is at most 5 TB",
    severity=Severity.HIGH,
    platform=Platform.IMAGE,
    policy=policy("A8"),
    rationale="Marketplace rejects AMIs whose snapshots add up to more than 5 TB.",
    remediation="Shrink or drop data volumes from the image; ship large data separately.",
    needs=[IMAGE],
)
def size(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    total = 0
    evidence = []
    for device, ebs in _ebs_mappings(image):
        if ebs.get("SnapshotId"):
            gib = int(ebs.get("VolumeSize") or 0)
            total += gib
            evidence.append(line(f"BlockDeviceMappings {device}", f"{gib} GiB"))
    status = Status.PASS if total <= MAX_SIZE_GIB else Status.FAIL
    return Outcome(
        status, f"snapshots total {total} GiB (limit {MAX_SIZE_GIB} GiB)", tuple(evidence)
    )


@check(
    id="image.age",
    title="the AMI is less than two years old",
    severity=Severity.HIGH,
    platform=Platform.IMAGE,
    policy=policy("G3"),
    rationale="Marketplace rejects AMIs created more than two years before submission.",
    remediation="Rebuild the image from an up-to-date base and submit the new AMI.",
    needs=[IMAGE],
)
def age(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    created = str(image.attributes.get("CreationDate", ""))
    try:
        moment = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return Outcome(
            Status.ERROR, f"unreadable CreationDate {created!r}", (_attr(image, "CreationDate"),)
        )
    now = scan_time(facts)
    days = (now - moment).days
    limit = add_months(moment, MAX_AGE_MONTHS)
    evidence = (
        _attr(image, "CreationDate"),
        line("limit", f"2 years after creation: {limit.date().isoformat()}"),
    )
    if now >= limit:
        return Outcome(
            Status.FAIL,
            f"created {days} days ago: over two years (since {limit.date().isoformat()})",
            evidence,
        )
    if now >= add_months(moment, AGE_WARN_MONTHS):
        left = (limit - now).days
        return Outcome(
            Status.WARN, f"created {days} days ago: rebuild within {left} days", evidence
        )
    return Outcome(Status.PASS, f"created {days} days ago", evidence)


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, clamped to the month's end (29 Feb + 24 months = 28 Feb)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


@check(
    id="image.ena-support",
    title="the AMI supports ENA",
    severity=Severity.HIGH,
    platform=Platform.IMAGE,
    policy=policy("CAT"),
    rationale="The Catalog API rejects AMI versions without ENA support (INCOMPATIBLE_AMI): "
    "current instance types need the Elastic Network Adapter.",
    remediation="Install the ENA driver in the image and register it with EnaSupport "
    "(`aws ec2 modify-image-attribute` cannot change it: register or copy the image with "
    "--ena-support).",
    needs=[IMAGE],
)
def ena_support(facts: Facts) -> Outcome:
    return _attribute_outcome(facts, "EnaSupport", lambda value: value is True)


@check(
    id="image.imdsv2",
    title="the AMI requires IMDSv2",
    severity=Severity.MEDIUM,
    platform=Platform.IMAGE,
    policy=policy("BP"),
    rationale="Marketplace recommends IMDSv2-only images: session tokens block SSRF-style theft "
    "of instance credentials.",
    remediation="Register the image with `--imds-support v2.0` (or `aws ec2 "
    "modify-image-attribute --imds-support v2.0`).",
    needs=[IMAGE],
)
def imdsv2(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    value = image.attributes.get("ImdsSupport")
    status = Status.PASS if value == "v2.0" else Status.FAIL
    return Outcome(
        status,
        f"ImdsSupport is {value or 'not set (IMDSv1 allowed)'}",
        (_attr(image, "ImdsSupport"),),
    )


@check(
    id="image.product-codes",
    title="the AMI carries no product code",
    severity=Severity.HIGH,
    platform=Platform.IMAGE,
    policy=policy("CAT"),
    rationale="The Catalog API rejects an AMI that already carries a product code "
    "(EXISTING_AMI_PRODUCT_CODE), e.g. one built from another Marketplace AMI.",
    remediation="Build from a base image without Marketplace product codes.",
    needs=[IMAGE],
)
def product_codes(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    codes = image.attributes.get("ProductCodes") or []
    if codes:
        ids = ", ".join(str(c.get("ProductCodeId")) for c in codes if isinstance(c, dict))
        return Outcome(
            Status.FAIL, f"product code(s) attached: {ids}", (_attr(image, "ProductCodes"),)
        )
    return Outcome(Status.PASS, "no product codes", (_attr(image, "ProductCodes"),))


@check(
    id="image.region",
    title="the AMI is in us-east-1",
    severity=Severity.LOW,
    platform=Platform.IMAGE,
    policy=policy("A1"),
    rationale="Marketplace ingests AMIs from us-east-1; an AMI elsewhere must be copied there "
    "before submission.",
    remediation="Copy the AMI to us-east-1 (`aws ec2 copy-image --source-region R "
    "--region us-east-1 …`) and submit the copy.",
    needs=[IMAGE],
)
def region(facts: Facts) -> Outcome:
    image = facts.get(IMAGE)
    evidence = (line("region", image.region),)
    if image.region == "us-east-1":
        return Outcome(Status.PASS, "the AMI is in us-east-1", evidence)
    return Outcome(
        Status.WARN, f"the AMI is in {image.region}; copy it to us-east-1 to submit", evidence
    )
