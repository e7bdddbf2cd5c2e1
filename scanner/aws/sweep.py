"""`amiscan cleanup`: find what killed or kept scans left behind (by tag) and delete it."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scanner.aws.errors import AwsError, describe
from scanner.aws.resources import TAG_CREATED_AT, TAG_SCAN_ID, ScanResources

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """ "30m", "2h", "1d", "1w" → timedelta; anything else is a ValueError with the forms accepted."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h, 1d or 1w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class Leftover:
    kind: str  # instance, security-group, key-pair
    id: str
    scan_id: str
    created_at: datetime | None


@dataclass
class SweepResult:
    found: list[Leftover] = field(default_factory=list)
    deleted: list[Leftover] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _tags(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", []) or []}


def _created(tags: dict[str, str]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(tags.get(TAG_CREATED_AT, "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def find_leftovers(client: Any, scan_id: str | None = None) -> list[Leftover]:
    """Every instance, security group and key pair carrying amiscan's scan-id tag."""
    tag_filter = [{"Name": "tag-key", "Values": [TAG_SCAN_ID]}]
    if scan_id:
        tag_filter = [{"Name": f"tag:{TAG_SCAN_ID}", "Values": [scan_id]}]
    found: list[Leftover] = []
    try:
        paginator = client.get_paginator("describe_instances")
        states = {
            "Name": "instance-state-name",
            "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
        }
        for page in paginator.paginate(Filters=[*tag_filter, states]):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    tags = _tags(instance)
                    found.append(
                        Leftover(
                            "instance",
                            instance["InstanceId"],
                            tags.get(TAG_SCAN_ID, ""),
                            _created(tags),
                        )
                    )
        for group in client.describe_security_groups(Filters=tag_filter)["SecurityGroups"]:
            tags = _tags(group)
            found.append(
                Leftover(
                    "security-group", group["GroupId"], tags.get(TAG_SCAN_ID, ""), _created(tags)
                )
            )
        for pair in client.describe_key_pairs(Filters=tag_filter)["KeyPairs"]:
            tags = _tags(pair)
            found.append(
                Leftover("key-pair", pair["KeyName"], tags.get(TAG_SCAN_ID, ""), _created(tags))
            )
    except Exception as exc:
        raise describe(exc, "listing amiscan's resources") from None
    return found


def sweep(
    client: Any,
    older_than: timedelta | None = None,
    scan_id: str | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> SweepResult:
    """Delete leftovers (instances first, then the groups they held, then key pairs)."""
    now = now or datetime.now(UTC)
    result = SweepResult()
    for leftover in find_leftovers(client, scan_id):
        if older_than is not None and (
            leftover.created_at is None or now - leftover.created_at < older_than
        ):
            continue
        result.found.append(leftover)
    if dry_run or not result.found:
        return result
    by_scan: dict[str, ScanResources] = {}
    for leftover in result.found:
        resources = by_scan.setdefault(
            leftover.scan_id or leftover.id,
            ScanResources(client, leftover.scan_id, poll_s=poll_s, sleep=sleep),
        )
        if leftover.kind == "instance":
            resources.instance_id = leftover.id
        elif leftover.kind == "security-group":
            resources.security_group_id = leftover.id
        else:
            resources.key_name, resources.owns_key = leftover.id, True
    remaining: set[str] = set()
    for resources in by_scan.values():
        result.problems += resources.delete_all()
        remaining.update(resources.remaining)
    result.deleted = [leftover for leftover in result.found if leftover.id not in remaining]
    return result


__all__ = ["AwsError", "Leftover", "SweepResult", "find_leftovers", "parse_duration", "sweep"]
