"""boto3 sessions and clients: the standard credential chain, --profile, --region, AWS_ENDPOINT_URL."""

from __future__ import annotations

import difflib
import functools
import re
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError

from scanner.aws.errors import AwsError, describe

_AMI_ID = re.compile(r"^ami-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
_PARTITIONS = ("aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b")

# Adaptive retries absorb throttling; calls that must survive more (cleanup) retry on their own.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60
)


def is_ami_id(text: str) -> bool:
    return bool(_AMI_ID.match(text))


@functools.cache
def known_regions() -> frozenset[str]:
    session = boto3.session.Session()
    regions: set[str] = set()
    for partition in _PARTITIONS:
        try:
            regions.update(session.get_available_regions("ec2", partition_name=partition))
        except (ValueError, BotoCoreError):
            continue
    return frozenset(regions)


def validate_region(region: str) -> None:
    """Exit-2 error for a region EC2 does not have, with the nearest spelling."""
    regions = known_regions()
    if region in regions:
        return
    near = difflib.get_close_matches(region, sorted(regions), n=1)
    hint = f"; did you mean {near[0]}?" if near else ""
    raise AwsError(f"unknown region {region!r}{hint}", usage=True)


def make_session(profile: str | None, region: str | None) -> boto3.session.Session:
    try:
        session = boto3.session.Session(profile_name=profile, region_name=region)
    except BotoCoreError as exc:
        raise describe(exc, "starting an AWS session") from None
    if not session.region_name:
        raise AwsError(
            "no region: pass --region or set AWS_REGION (or a region in the profile)", usage=True
        )
    validate_region(session.region_name)
    return session


def ec2_client(session: boto3.session.Session) -> Any:
    """An EC2 client; AWS_ENDPOINT_URL (e.g. a local moto server) is honoured as boto3 does."""
    return session.client("ec2", config=CLIENT_CONFIG)


# EBS direct reads are fetched in parallel (scanner.disk.ebs): one pooled connection per worker.
# The device retries (counted, cancellable, with backoff); botocore's retries would stack on it.
EBS_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=10,
    read_timeout=60,
    max_pool_connections=16,
)


def ebs_client(session: boto3.session.Session) -> Any:
    """An EBS direct API client (ListSnapshotBlocks, GetSnapshotBlock); AWS_ENDPOINT_URL honoured."""
    return session.client("ebs", config=EBS_CLIENT_CONFIG)
