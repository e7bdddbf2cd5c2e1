"""Image checks, judged from fixture DescribeImages answers with the scan date fixed."""

from __future__ import annotations

from typing import Any

import pytest

from checks.image import (
    age,
    architecture,
    ebs_backed,
    ena_support,
    imdsv2,
    product_codes,
    region,
    size,
    snapshots_unencrypted,
    virtualization_hvm,
)
from scanner.facts.base import Facts, Mode, ScanContext
from scanner.facts.image import ImageInfo
from scanner.fs import MemoryTree
from scanner.model import Outcome, Status
from scanner.registry import Check

SCAN_DATE = "2026-11-27T00:00:00Z"
AMI = "ami-0abcdef1234567890"

# A DescribeImages answer for an image that Marketplace accepts.
GOOD_IMAGE: dict[str, Any] = {
    "ImageId": AMI,
    "Name": "seller-product-1.4.2",
    "OwnerId": "123456789012",
    "State": "available",
    "CreationDate": "2026-10-01T09:30:00.000Z",
    "Architecture": "x86_64",
    "VirtualizationType": "hvm",
    "RootDeviceType": "ebs",
    "RootDeviceName": "/dev/xvda",
    "BootMode": "uefi",
    "EnaSupport": True,
    "ImdsSupport": "v2.0",
    "PlatformDetails": "Linux/UNIX",
    "BlockDeviceMappings": [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {
                "SnapshotId": "snap-0aaa1111bbbb22223",
                "VolumeSize": 8,
                "VolumeType": "gp3",
                "DeleteOnTermination": True,
                "Encrypted": False,
            },
        }
    ],
}


def ebs(device: str, gib: int, snapshot: str | None, encrypted: bool = False) -> dict[str, Any]:
    volume: dict[str, Any] = {"VolumeSize": gib, "VolumeType": "gp3", "Encrypted": encrypted}
    if snapshot:
        volume["SnapshotId"] = snapshot
    return {"DeviceName": device, "Ebs": volume}


def ephemeral(device: str, name: str) -> dict[str, Any]:
    return {"DeviceName": device, "VirtualName": name}


def judge(
    item: Check,
    region_name: str = "us-east-1",
    ebs_default: bool | None = False,
    scan_date: str | None = SCAN_DATE,
    **attributes: Any,
) -> Outcome:
    """The check's outcome for the good image with `attributes` changed (None removes one)."""
    image = {**GOOD_IMAGE, **attributes}
    image = {k: v for k, v in image.items() if v is not None}
    info = ImageInfo(image, region_name, ebs_default)
    context = ScanContext(
        mode=Mode.LIVE, target_kind="ami", scan_date=scan_date, extra={"image": info}
    )
    return item.run(Facts(MemoryTree(), context))


ALL_IMAGE_CHECKS = [
    virtualization_hvm,
    architecture,
    ebs_backed,
    snapshots_unencrypted,
    size,
    age,
    ena_support,
    imdsv2,
    product_codes,
    region,
]


@pytest.mark.parametrize("item", ALL_IMAGE_CHECKS, ids=lambda c: c.id)
def test_a_good_image_passes_every_image_check(item: Check) -> None:
    outcome = judge(item)
    assert outcome.status is Status.PASS, outcome.summary


@pytest.mark.parametrize("item", ALL_IMAGE_CHECKS, ids=lambda c: c.id)
def test_image_checks_skip_on_targets_that_are_not_amis(item: Check) -> None:
    context = ScanContext(mode=Mode.LIVE, target_kind="ssh", scan_date=SCAN_DATE)
    outcome = item.run(Facts(MemoryTree(), context))
    assert outcome.status is Status.SKIP
    assert "only known when scanning an AMI" in outcome.summary


def test_every_image_check_is_covered_here() -> None:
    from scanner.registry import load_checks

    catalog = {i for i in load_checks() if i.startswith("image.")}
    assert catalog == {c.id for c in ALL_IMAGE_CHECKS}


# --- one rule at a time ------------------------------------------------------------------------


def test_a_paravirtual_image_fails() -> None:
    outcome = judge(virtualization_hvm, VirtualizationType="paravirtual")
    assert outcome.status is Status.FAIL
    assert outcome.summary == "VirtualizationType is paravirtual"
    assert "VirtualizationType: 'paravirtual'" in outcome.evidence[0].text


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("x86_64", Status.PASS),
        ("arm64", Status.PASS),
        ("i386", Status.FAIL),
        ("x86_64_mac", Status.FAIL),
    ],
)
def test_only_64_bit_x86_and_arm_images_pass(value: str, status: Status) -> None:
    outcome = judge(architecture, Architecture=value)
    assert outcome.status is status
    assert outcome.summary == f"Architecture is {value}"


def test_an_instance_store_image_fails() -> None:
    outcome = judge(ebs_backed, RootDeviceType="instance-store")
    assert outcome.status is Status.FAIL
    assert outcome.summary == "RootDeviceType is instance-store"


def test_an_encrypted_mapping_fails_and_is_named() -> None:
    mappings = [
        ebs("/dev/xvda", 8, "snap-0aaa1111bbbb22223"),
        ebs("/dev/sdf", 100, "snap-0ccc3333dddd44445", encrypted=True),
    ]
    outcome = judge(snapshots_unencrypted, BlockDeviceMappings=mappings)
    assert outcome.status is Status.FAIL
    assert outcome.summary == "1 of 2 block device mapping(s) are encrypted: /dev/sdf"
    assert [e.text for e in outcome.evidence] == [
        "Encrypted: False, SnapshotId: snap-0aaa1111bbbb22223",
        "Encrypted: True, SnapshotId: snap-0ccc3333dddd44445",
    ]


def test_account_default_encryption_warns_that_images_built_here_will_be_encrypted() -> None:
    outcome = judge(snapshots_unencrypted, ebs_default=True)
    assert outcome.status is Status.WARN
    assert "encrypts new EBS volumes by default" in outcome.summary
    assert outcome.evidence[-1].text == "EbsEncryptionByDefault: True"


def test_an_unreadable_account_default_judges_the_image_alone() -> None:
    assert judge(snapshots_unencrypted, ebs_default=None).status is Status.PASS


def test_an_encrypted_mapping_fails_even_when_the_account_encrypts_by_default() -> None:
    mappings = [ebs("/dev/xvda", 8, "snap-0aaa1111bbbb22223", encrypted=True)]
    outcome = judge(snapshots_unencrypted, ebs_default=True, BlockDeviceMappings=mappings)
    assert outcome.status is Status.FAIL


def test_snapshots_over_5_tib_in_total_fail() -> None:
    mappings = [
        ebs("/dev/xvda", 8, "snap-0aaa1111bbbb22223"),
        ebs("/dev/sdf", 5113, "snap-0ccc3333dddd44445"),
    ]
    outcome = judge(size, BlockDeviceMappings=mappings)
    assert outcome.status is Status.FAIL
    assert outcome.summary == "snapshots total 5121 GiB (limit 5120 GiB)"
    assert [e.text for e in outcome.evidence] == ["8 GiB", "5113 GiB"]


def test_snapshots_of_exactly_5_tib_pass() -> None:
    mappings = [
        ebs("/dev/xvda", 8, "snap-0aaa1111bbbb22223"),
        ebs("/dev/sdf", 5112, "snap-0ccc3333dddd44445"),
    ]
    outcome = judge(size, BlockDeviceMappings=mappings)
    assert outcome.status is Status.PASS
    assert outcome.summary == "snapshots total 5120 GiB (limit 5120 GiB)"


def test_mappings_without_snapshots_do_not_count_toward_the_size() -> None:
    mappings = [
        ebs("/dev/xvda", 8, "snap-0aaa1111bbbb22223"),
        ephemeral("/dev/sdb", "ephemeral0"),
        ephemeral("/dev/sdc", "ephemeral1"),
        # An empty volume created at launch: no snapshot ships with the image.
        ebs("/dev/sdf", 6000, None),
    ]
    outcome = judge(size, BlockDeviceMappings=mappings)
    assert outcome.status is Status.PASS
    assert outcome.summary == "snapshots total 8 GiB (limit 5120 GiB)"


@pytest.mark.parametrize(
    ("created", "status", "summary"),
    [
        pytest.param(
            "2024-11-26T00:00:00.000Z",
            Status.FAIL,
            "created 731 days ago: over two years (since 2026-11-26)",
            id="two-years-and-a-day",
        ),
        pytest.param(
            "2024-11-27T00:00:00.000Z",
            Status.FAIL,
            "created 730 days ago: over two years (since 2026-11-27)",
            id="exactly-two-years",
        ),
        pytest.param(
            "2025-01-27T00:00:00.000Z",
            Status.WARN,
            "created 669 days ago: rebuild within 61 days",
            id="22-months",
        ),
        pytest.param(
            "2025-02-26T00:00:00.000Z",
            Status.WARN,
            "created 639 days ago: rebuild within 91 days",
            id="21-months",
        ),
        pytest.param(
            "2025-03-27T00:00:00.000Z", Status.PASS, "created 610 days ago", id="20-months"
        ),
        pytest.param("2026-10-01T09:30:00.000Z", Status.PASS, "created 56 days ago", id="new"),
    ],
)
def test_age_is_judged_against_the_scan_date(created: str, status: Status, summary: str) -> None:
    outcome = judge(age, CreationDate=created)
    assert (outcome.status, outcome.summary) == (status, summary)


def test_a_scan_date_without_a_time_zone_is_taken_as_utc() -> None:
    outcome = judge(age, scan_date="2026-11-27T00:00:00", CreationDate="2024-11-26T00:00:00.000Z")
    assert outcome.summary == "created 731 days ago: over two years (since 2026-11-26)"


@pytest.mark.parametrize(
    ("scan_date", "created", "status"),
    [
        ("2025-02-28T12:00:00", "2023-03-01T00:00:00.000Z", Status.WARN),
        ("2025-03-01T00:00:00", "2023-03-01T00:00:00.000Z", Status.FAIL),
        ("2026-02-27T23:59:59", "2024-02-29T00:00:00.000Z", Status.WARN),
        ("2026-02-28T00:00:00", "2024-02-29T00:00:00.000Z", Status.FAIL),
    ],
)
def test_two_years_are_calendar_years_across_a_leap_day(
    scan_date: str, created: str, status: Status
) -> None:
    # 1 Mar 2023 to 1 Mar 2025 spans 29 Feb 2024: 731 days, and 730 days is not yet two years.
    # 29 Feb 2024 plus two years is 28 Feb 2026, as there is no 29th.
    outcome = judge(age, scan_date=scan_date, CreationDate=created)
    assert outcome.status is status


def test_an_unreadable_creation_date_is_an_error_not_a_pass() -> None:
    outcome = judge(age, CreationDate="last Tuesday")
    assert outcome.status is Status.ERROR
    assert outcome.summary == "unreadable CreationDate 'last Tuesday'"


@pytest.mark.parametrize("value", [False, None])
def test_an_image_without_ena_support_fails(value: bool | None) -> None:
    outcome = judge(ena_support, EnaSupport=value)
    assert outcome.status is Status.FAIL
    assert outcome.summary == f"EnaSupport is {value}"


def test_an_image_that_allows_imdsv1_fails() -> None:
    outcome = judge(imdsv2, ImdsSupport=None)
    assert outcome.status is Status.FAIL
    assert outcome.summary == "ImdsSupport is not set (IMDSv1 allowed)"


def test_an_image_with_a_product_code_fails_and_names_it() -> None:
    codes = [{"ProductCodeId": "8fwh0s0qz4alq9e1p3rrr9oyg", "ProductCodeType": "marketplace"}]
    outcome = judge(product_codes, ProductCodes=codes)
    assert outcome.status is Status.FAIL
    assert outcome.summary == "product code(s) attached: 8fwh0s0qz4alq9e1p3rrr9oyg"


def test_an_empty_product_code_list_passes() -> None:
    assert judge(product_codes, ProductCodes=[]).status is Status.PASS


def test_an_image_outside_us_east_1_warns_to_copy_it_there() -> None:
    outcome = judge(region, region_name="eu-west-1")
    assert outcome.status is Status.WARN
    assert outcome.summary == "the AMI is in eu-west-1; copy it to us-east-1 to submit"
