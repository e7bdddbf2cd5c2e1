"""Launch decisions: instance type, subnet, the scanner's address, and waiting without waste."""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanner.aws.errors import AwsError, describe
from scanner.cancel import NEVER, Cancel

# Where the scanner learns its public address when no --allow-cidr is given (as the EC2 console
# does for "My IP").
CHECKIP_URL = "https://checkip.amazonaws.com"
_BAD_SUBNET_CODES = {"InvalidSubnetID.NotFound", "InvalidSubnetID.Malformed"}


def choose_instance_type(image: dict[str, Any], windows: bool) -> str:
    """The smallest sensible type that boots this image (architecture, boot mode, ENA)."""
    architecture = image.get("Architecture")
    ena = image.get("EnaSupport") is True
    uefi = image.get("BootMode") == "uefi"
    if architecture == "arm64":
        return "t4g.medium" if windows else "t4g.micro"
    if architecture not in ("x86_64", "i386"):
        raise AwsError(
            f"no instance type runs {architecture} images; pass --instance-type", usage=True
        )
    if windows:
        return "t3.medium" if ena else "t2.medium"
    if not ena:
        if uefi:
            raise AwsError(
                "the image boots with UEFI but lacks ENA support: no instance type can run it "
                "(UEFI needs Nitro, Nitro needs ENA); pass --instance-type to try anyway",
                usage=True,
            )
        # Xen-based t2 instances boot images without the ENA driver.
        return "t2.micro"
    return "t3.micro"


@dataclass(frozen=True)
class Network:
    subnet_id: str
    vpc_id: str
    cidr: str
    availability_zone: str
    maps_public_ip: bool


def find_subnet(client: Any, subnet_id: str | None) -> Network:
    """The given subnet, or the default VPC's default subnet (first Availability Zone)."""
    try:
        if subnet_id:
            subnets = client.describe_subnets(SubnetIds=[subnet_id])["Subnets"]
        else:
            vpcs = client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])[
                "Vpcs"
            ]
            if not vpcs:
                raise AwsError(
                    "this region has no default VPC; pass --subnet-id (and --address private when "
                    "the scanner runs inside that VPC)"
                )
            subnets = client.describe_subnets(
                Filters=[
                    {"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]},
                    {"Name": "default-for-az", "Values": ["true"]},
                ]
            )["Subnets"]
            if not subnets:
                raise AwsError("the default VPC has no default subnet; pass --subnet-id")
    except AwsError:
        raise
    except Exception as exc:
        error = describe(exc, "finding a subnet")
        # A --subnet-id that does not exist is bad input (exit 2), as a bad AMI id is.
        error.usage = bool(subnet_id) and error.code in _BAD_SUBNET_CODES
        raise error from None
    subnet = sorted(subnets, key=lambda s: s.get("AvailabilityZone", ""))[0]
    return Network(
        subnet["SubnetId"],
        subnet["VpcId"],
        subnet["CidrBlock"],
        subnet.get("AvailabilityZone", ""),
        bool(subnet.get("MapPublicIpOnLaunch")),
    )


def validate_cidr(text: str) -> str:
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise AwsError(
            f"--allow-cidr {text!r} is not an IPv4 CIDR such as 203.0.113.7/32", usage=True
        ) from None
    if network.version != 4:
        raise AwsError("--allow-cidr must be IPv4", usage=True)
    return str(network)


def private_source_cidr(network: Network) -> str:
    """This machine's address toward the subnet, as a /32 (no packet is sent)."""
    target = str(next(ipaddress.ip_network(network.cidr).hosts()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((target, 9))
        except OSError as exc:
            raise AwsError(f"no route from this machine to subnet {network.cidr}: {exc}") from None
        return f"{sock.getsockname()[0]}/32"


def public_source_cidr(url: str = CHECKIP_URL, timeout_s: float = 10.0) -> str:
    """This machine's public IPv4 address as a /32, as AWS sees it."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 (fixed https URL)
            text = response.read(64).decode().strip()
        address = ipaddress.IPv4Address(text)
    except (OSError, ValueError) as exc:
        raise AwsError(
            f"cannot learn this machine's public address from {url} ({exc}); pass --allow-cidr "
            "with the address the instance will see, or --address private inside the VPC"
        ) from None
    return f"{address}/32"


def wait_for_state(
    client: Any,
    instance_id: str,
    deadline: float,
    cancel: Cancel = NEVER,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Poll until the instance runs; its description then. Errors say what the instance did."""
    while True:
        cancel.check()
        try:
            reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
        except Exception as exc:
            error = describe(exc, f"describing {instance_id}")
            if (
                error.code != "InvalidInstanceID.NotFound"
            ):  # eventual consistency right after launch
                raise error from None
            reservations = []
        for reservation in reservations:
            for instance in reservation["Instances"]:
                state = instance["State"]["Name"]
                if state == "running":
                    return dict(instance)
                if state in ("shutting-down", "terminated", "stopping", "stopped"):
                    reason = instance.get("StateReason", {}).get("Message", "no reason given")
                    raise AwsError(f"{instance_id} went to {state} while booting: {reason}")
        if clock() >= deadline:
            raise AwsError(f"{instance_id} did not reach 'running' in time")
        cancel.sleep(poll_s)


def wait_for_banner(
    host: str,
    port: int,
    deadline: float,
    cancel: Cancel = NEVER,
    poll_s: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    expect: bytes = b"SSH-",
) -> float:
    """Poll the port until the server greets (SSH) or accepts (expect=b""); seconds waited."""
    started = clock()
    last = "no attempt"
    while True:
        cancel.check()
        try:
            with socket.create_connection(
                (host, port), timeout=min(5.0, max(deadline - clock(), 0.5))
            ) as sock:
                if not expect:
                    return clock() - started
                sock.settimeout(min(10.0, max(deadline - clock(), 0.5)))
                if sock.recv(len(expect)) == expect:
                    return clock() - started
                last = "the port answered without an SSH banner"
        except ConnectionRefusedError:
            last = "connection refused"
        except TimeoutError:
            last = "timed out"
        except OSError as exc:
            last = exc.strerror or str(exc)
        if clock() >= deadline:
            raise AwsError(f"{host}:{port} never became reachable ({last})")
        cancel.sleep(poll_s)


def instance_address(instance: dict[str, Any], address: str) -> str:
    """The instance's public or private IP, or an error saying what to try instead."""
    value = (
        instance.get("PublicIpAddress") if address == "public" else instance.get("PrivateIpAddress")
    )
    if not value:
        other = "private" if address == "public" else "public"
        raise AwsError(
            f"{instance.get('InstanceId')} has no {address} IP address; use --address {other} "
            "or another --subnet-id"
        )
    return str(value)
