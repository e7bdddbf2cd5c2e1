"""The AWS resources one scan creates, tagged with its scan id, and their certain deletion."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanner import __version__
from scanner.aws.errors import AwsError, describe, error_code

log = logging.getLogger(__name__)

TAG_SCAN_ID = "amiscan:scan-id"
TAG_CREATED_AT = "amiscan:created-at"
TAG_CREATED_BY = "amiscan:created-by"


def new_scan_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dt%H%M%S")
    return f"amiscan-{stamp}-{secrets.token_hex(3)}"


def tags(scan_id: str, created_at: str, name: str) -> list[dict[str, str]]:
    return [
        {"Key": "Name", "Value": name},
        {"Key": TAG_SCAN_ID, "Value": scan_id},
        {"Key": TAG_CREATED_AT, "Value": created_at},
        {"Key": TAG_CREATED_BY, "Value": f"amiscan {__version__}"},
    ]


def tag_specifications(
    resource_types: list[str], scan_id: str, created_at: str, name: str
) -> list[dict[str, Any]]:
    return [
        {"ResourceType": kind, "Tags": tags(scan_id, created_at, name)} for kind in resource_types
    ]


Sleep = Callable[[float], None]
Clock = Callable[[], float]


@dataclass
class ScanResources:
    """What this scan created in the account; `delete_all` removes it whatever happened before."""

    client: Any
    scan_id: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    poll_s: float = 2.0
    sleep: Sleep = time.sleep
    clock: Clock = time.monotonic
    key_name: str | None = None
    security_group_id: str | None = None
    instance_id: str | None = None
    owns_key: bool = False
    launch_attempted: bool = False
    # Ids of what delete_all could not delete.
    remaining: list[str] = field(default_factory=list)

    def spec(self, *kinds: str) -> list[dict[str, Any]]:
        return tag_specifications(list(kinds), self.scan_id, self.created_at, self.scan_id)

    # -- creation ---------------------------------------------------------------------------

    def import_key_pair(self, public_key_line: str) -> str:
        name = self.scan_id
        try:
            self.client.import_key_pair(
                KeyName=name,
                PublicKeyMaterial=public_key_line.encode(),
                TagSpecifications=self.spec("key-pair"),
            )
        except Exception as exc:
            raise describe(exc, "importing the temporary key pair") from None
        self.key_name, self.owns_key = name, True
        return name

    def create_security_group(self, vpc_id: str, ports: list[int], cidr: str) -> str:
        try:
            response = self.client.create_security_group(
                GroupName=self.scan_id,
                Description=f"amiscan scan {self.scan_id}: scanner access only, deleted after the scan",
                VpcId=vpc_id,
                TagSpecifications=self.spec("security-group"),
            )
        except Exception as exc:
            raise describe(exc, "creating the temporary security group") from None
        self.security_group_id = response["GroupId"]
        try:
            self.client.authorize_security_group_ingress(
                GroupId=self.security_group_id,
                IpPermissions=[
                    {
                        "IpProtocol": "tcp",
                        "FromPort": port,
                        "ToPort": port,
                        "IpRanges": [{"CidrIp": cidr, "Description": "amiscan scanner"}],
                    }
                    for port in ports
                ],
            )
        except Exception as exc:
            raise describe(exc, "opening the scan port in the security group") from None
        return self.security_group_id

    def run_instance(self, request: dict[str, Any]) -> str:
        # The scan id as idempotency token: a retried or timed-out RunInstances cannot start a
        # second instance, and one that started unseen is found by its tag at cleanup.
        self.launch_attempted = True
        try:
            response = self.client.run_instances(ClientToken=self.scan_id, **request)
        except Exception as exc:
            raise _launch_error(exc) from None
        self.instance_id = response["Instances"][0]["InstanceId"]
        return self.instance_id

    def _find_unseen_instance(self) -> str | None:
        """An instance of this scan whose RunInstances answer never arrived (found by tag)."""
        try:
            reservations = self.client.describe_instances(
                Filters=[
                    {"Name": f"tag:{TAG_SCAN_ID}", "Values": [self.scan_id]},
                    {
                        "Name": "instance-state-name",
                        "Values": ["pending", "running", "stopping", "stopped"],
                    },
                ]
            )["Reservations"]
        except Exception as exc:
            log.debug("looking for an unseen instance failed: %s", exc)
            return None
        ids = [i["InstanceId"] for r in reservations for i in r["Instances"]]
        return ids[0] if ids else None

    # -- deletion ---------------------------------------------------------------------------

    def delete_all(self, wait_s: float = 600.0) -> list[str]:
        """Terminate, wait, delete the group and the key; the problems, if any, as lines.

        Every step runs even when an earlier one failed, and `remaining` names what is left.
        """
        problems: list[str] = []
        if self.instance_id is None and self.launch_attempted:
            self.instance_id = self._find_unseen_instance()
        terminated = True
        if self.instance_id:
            failed = self._terminate(wait_s)
            terminated = not failed
            self._note(failed, self.instance_id, problems)
        if self.security_group_id:
            # While the instance still holds it, the group cannot go: retry long only when the
            # instance is on its way out, once otherwise.
            failed = self._retry(
                lambda: self.client.delete_security_group(GroupId=self.security_group_id),
                f"deleting security group {self.security_group_id}",
                wait_s if terminated else 0.0,
                tolerate=frozenset({"InvalidGroup.NotFound"}),
            )
            self._note(failed, self.security_group_id, problems)
        if self.key_name and self.owns_key:
            failed = self._retry(
                lambda: self.client.delete_key_pair(KeyName=self.key_name),
                f"deleting key pair {self.key_name}",
                60.0,
                tolerate=frozenset({"InvalidKeyPair.NotFound"}),
            )
            self._note(failed, self.key_name, problems)
        return problems

    def _note(self, failed: list[str], resource: str, problems: list[str]) -> None:
        if failed:
            problems += failed
            self.remaining.append(resource)

    def _terminate(self, wait_s: float) -> list[str]:
        problems = self._retry(
            lambda: self.client.terminate_instances(InstanceIds=[self.instance_id]),
            f"terminating {self.instance_id}",
            120.0,
            tolerate=frozenset({"InvalidInstanceID.NotFound"}),
        )
        if problems:
            return problems
        deadline = self.clock() + wait_s
        while self.clock() < deadline:
            try:
                state = instance_state(self.client, str(self.instance_id))
            except AwsError as exc:
                if exc.code == "InvalidInstanceID.NotFound":
                    return []
                log.debug("describe during termination failed: %s", exc)
                state = "unknown"
            if state == "terminated":
                return []
            self.sleep(self.poll_s)
        return [f"{self.instance_id} did not reach 'terminated' within {wait_s:g}s"]

    def _retry(
        self,
        call: Callable[[], Any],
        what: str,
        wait_s: float,
        tolerate: frozenset[str] = frozenset(),
    ) -> list[str]:
        deadline = self.clock() + wait_s
        last = ""
        while True:
            try:
                call()
                return []
            except Exception as exc:
                code = error_code(exc)
                if code in tolerate:
                    return []
                last = str(describe(exc, what))
                log.debug("%s failed (%s); retrying", what, last)
            if self.clock() >= deadline:
                return [last]
            self.sleep(self.poll_s)


def instance_state(client: Any, instance_id: str) -> str:
    try:
        reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as exc:
        raise describe(exc, f"describing {instance_id}") from None
    for reservation in reservations:
        for instance in reservation["Instances"]:
            return str(instance["State"]["Name"])
    raise AwsError(f"{instance_id} not found", code="InvalidInstanceID.NotFound")


def _launch_error(exc: BaseException) -> AwsError:
    code = error_code(exc)
    if code == "InsufficientInstanceCapacity":
        return AwsError(
            "launching the instance: AWS has no capacity for this instance type in this "
            "Availability Zone right now; retry later, or pass --instance-type or --subnet-id "
            "(another zone)",
            code=code,
        )
    if code in {"Unsupported", "InvalidParameterCombination", "InvalidParameterValue"}:
        detail = describe(exc, "launching the instance")
        return AwsError(f"{detail} (try --instance-type)", code=code)
    return describe(exc, "launching the instance")
