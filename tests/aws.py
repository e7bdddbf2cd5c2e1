"""AWS for tests: a local moto server, images with the attributes moto drops, a loopback VPC.

Nothing here can reach AWS: clients are pinned to the moto endpoint with fake credentials, and
instances get addresses in 127.0.0.0/28 so the scanner only ever connects to loopback.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.ec2.models import ec2_backends
from moto.server import ThreadedMotoServer

from tests.sshd import free_port

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Every address moto hands out in the test subnet; the test sshd listens on all of them.
LOOPBACK_SUBNET = "127.0.0.0/28"
LOOPBACK_HOSTS = tuple(f"127.0.0.{i}" for i in range(4, 15))


@dataclass
class Moto:
    url: str

    def client(self, service: str = "ec2") -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(base if base is not None else os.environ)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.url,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
            }
        )
        env.pop("AWS_PROFILE", None)
        env.pop("AWS_SESSION_TOKEN", None)
        return env

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Moto]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield Moto(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: Moto) -> Moto:
    moto_server.reset()
    return moto_server


@pytest.fixture
def moto_ebs(moto: Moto) -> Any:
    """An EBS direct client of the moto server (to upload snapshots)."""
    return moto.client("ebs")


@pytest.fixture
def moto_env(moto: Moto, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process's AWS environment pointed at the moto server, for in-process scans."""
    for key, value in moto.env({}).items():
        monkeypatch.setenv(key, value)
    yield


def register_image(
    client: Any,
    *,
    name: str = "seller-product-1.0",
    platform: str | None = None,
    snapshot_id: str | None = None,
    **attributes: Any,
) -> str:
    """A registered AMI with the attributes moto's RegisterImage drops set on its model.

    `snapshot_id` (e.g. one written with tests.diskimages.upload_snapshot) becomes the root
    device's snapshot: moto otherwise invents an empty one of its own.
    """
    # The root snapshot exists for EBS direct reads too (empty: never-written blocks are zeros),
    # as a real AMI's does; `snapshot_id` replaces it with one holding a disk.
    snapshot = snapshot_id or empty_snapshot(client)
    image_id = client.register_image(
        Name=name,
        Architecture="x86_64",
        RootDeviceName="/dev/xvda",
        BlockDeviceMappings=[
            {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot, "VolumeSize": 8}}
        ],
        VirtualizationType="hvm",
    )["ImageId"]
    image = ec2_backends[ACCOUNT][REGION].amis[image_id]
    defaults = {
        "architecture": "x86_64",
        "virtualization_type": "hvm",
        "root_device_type": "ebs",
        "ena_support": True,
        "imds_support": "v2.0",
        "boot_mode": "uefi",
    }
    for key, value in {**defaults, **attributes}.items():
        setattr(image, key, value)
    if platform:
        image.platform = platform
    image.ebs_snapshot = ec2_backends[ACCOUNT][REGION].snapshots[snapshot]
    return str(image_id)


def ebs_client_like(ec2: Any) -> Any:
    """An EBS direct client on the same moto as `ec2` (its server, or the in-process mock)."""
    endpoint = ec2.meta.endpoint_url
    return boto3.client(
        "ebs",
        region_name=REGION,
        endpoint_url=None if "amazonaws.com" in endpoint else endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def empty_snapshot(ec2: Any, gib: int = 8) -> str:
    """A completed EBS snapshot with no block written, readable through EBS direct."""
    ebs = ebs_client_like(ec2)
    snapshot = str(ebs.start_snapshot(VolumeSize=gib)["SnapshotId"])
    ebs.complete_snapshot(SnapshotId=snapshot, ChangedBlocksCount=0)
    with_ebs_block_size(snapshot)
    return snapshot


def with_ebs_block_size(snapshot_id: str) -> None:
    """moto (in this process) says its snapshots have 512-byte blocks; EBS, its documentation
    and amiscan say 524288."""
    from moto.ebs.models import ebs_backends

    ebs_backends[ACCOUNT][REGION].snapshots[snapshot_id].block_size = 512 * 1024


def loopback_subnet(client: Any) -> str:
    vpc = client.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
    return str(client.create_subnet(VpcId=vpc, CidrBlock=LOOPBACK_SUBNET)["Subnet"]["SubnetId"])


def leftovers(client: Any) -> dict[str, list[str]]:
    """Everything amiscan may have created that still exists."""
    instances = [
        i["InstanceId"]
        for r in client.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    groups = [
        g["GroupId"]
        for g in client.describe_security_groups()["SecurityGroups"]
        if g["GroupName"] != "default"
    ]
    keys = [k["KeyName"] for k in client.describe_key_pairs()["KeyPairs"]]
    return {"instances": instances, "security_groups": groups, "key_pairs": keys}


class CloudInitEmulator:
    """Does what cloud-init does at first boot: installs the launch key pair's public key.

    It watches moto for running instances and writes each one's key pair into the test sshd's
    authorized keys file, so the scanner's temporary key works as it would on EC2.
    """

    def __init__(self, client: Any, authorized_file: Path, delay_s: float = 0.0) -> None:
        self.client = client
        self.authorized_file = authorized_file
        self.delay_s = delay_s
        self.installed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CloudInitEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                reservations = self.client.describe_instances()["Reservations"]
            except Exception:  # noqa: S112 (the server may be resetting)
                continue
            for reservation in reservations:
                for instance in reservation["Instances"]:
                    name = instance.get("KeyName")
                    if (
                        not name
                        or name in self.installed
                        or instance["State"]["Name"] == "terminated"
                    ):
                        continue
                    time.sleep(self.delay_s)
                    try:
                        pairs = self.client.describe_key_pairs(
                            KeyNames=[name], IncludePublicKey=True
                        )["KeyPairs"]
                    except Exception:  # noqa: S112 (the scan may already have deleted it)
                        continue
                    with self.authorized_file.open("a") as handle:
                        handle.write(pairs[0]["PublicKey"] + " cloud-init\n")
                    self.installed.append(name)
