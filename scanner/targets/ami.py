"""`ami-…`: judge the image's attributes, launch it safely, log in as vetting does, clean up.

Everything the scan creates (key pair, security group, instance) is tagged with the scan id and
deleted in `finally`, whatever happened before: an AWS error, a login failure, a timeout, or a
SIGINT/SIGTERM (which cancels the scan at its next wait; cleanup itself cannot be cancelled).
"""

from __future__ import annotations

import dataclasses
import io
import ipaddress
import logging
import os
from pathlib import Path
from typing import Any

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scanner.aws.errors import AwsError, describe
from scanner.aws.launch import (
    Network,
    choose_instance_type,
    find_subnet,
    private_source_cidr,
    public_source_cidr,
    validate_cidr,
)
from scanner.aws.resources import ScanResources, new_scan_id
from scanner.aws.session import ec2_client, is_ami_id
from scanner.aws.windows_password import generate_rsa_key_pair
from scanner.facts.base import Facts, Mode, ScanContext
from scanner.facts.image import ImageInfo
from scanner.fs import MemoryTree
from scanner.model import Evidence, Outcome, Platform, Status
from scanner.run import ScanRun
from scanner.targets.ami_handoff import InstanceScanner, LaunchKey
from scanner.targets.ami_linux import scan_linux_instance
from scanner.targets.base import ScanAborted, ScanOptions, TargetError, aws_session
from scanner.transports.base import TransportError
from scanner.transports.ssh import load_private_key

log = logging.getLogger(__name__)


def generate_ed25519() -> tuple[paramiko.PKey, str, bytes]:
    """A fresh ed25519 key kept in memory: (paramiko key, OpenSSH public line, private PEM)."""
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))
    return key, public.decode(), pem


# An --allow-cidr wider than this is said in the report: the instance is reachable by others.
WIDE_INGRESS_PREFIX = 24


class AmiTarget:
    kind = "ami"

    def __init__(self, ami_id: str, options: ScanOptions) -> None:
        if not is_ami_id(ami_id):
            raise TargetError(f"{ami_id!r} is not an AMI id (ami- followed by 8 or 17 hex digits)")
        if options.key_name and not options.identity_file:
            raise TargetError("--key-name needs --identity-file (the private key of that key pair)")
        if options.allow_cidr:
            try:
                validate_cidr(options.allow_cidr)
            except AwsError as exc:
                raise TargetError(str(exc)) from None
        self.session = aws_session(options)
        self.id = ami_id
        self.region = str(self.session.region_name)
        self.platform = "linux"

    # -- the scan ---------------------------------------------------------------------------

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        client = ec2_client(self.session)
        run.details.update({"ami_id": self.id, "region": self.region})
        with run.phase("resolved", f"Resolving {self.id}"):
            image = self._resolve(client, run)
        info = ImageInfo(image, self.region, self._ebs_default_encryption(client, run))
        context = ScanContext(
            mode=Mode.LIVE,
            target_kind=self.kind,
            scan_date=options.scan_date,
            baseline_login_user=options.baseline_login_user,
            extra={"image": info},
        )
        image_checks = [c for c in run.checks if c.platform is Platform.IMAGE]
        run.judge(image_checks, Facts(MemoryTree(), context))
        if options.no_launch and not options.no_snapshot:
            self._judge_snapshots(run, image, context)
            return
        if options.no_launch:
            run.notes.append("--no-launch --no-snapshot: only the image checks ran")
            # Selected by design not to run: a skip that says so, never an unjudged error.
            for item in run.checks:
                if item.platform is not Platform.IMAGE:
                    why = "--no-launch: this check needs a launched instance"
                    run.record(item, Outcome(Status.SKIP, why, (Evidence("--no-launch", why),)))
            return
        state = image.get("State")
        if state != "available":
            reason = image.get("StateReason", {}).get("Message", "")
            raise ScanAborted(
                f"{self.id} is {state}, not available{': ' + reason if reason else ''}; it cannot be launched yet"
            )
        scan_instance = scan_linux_instance
        if self.platform == "windows":
            # Imported only here: it loads pywinrm, which a Linux scan never needs (STYLE.md).
            from scanner.targets.ami_windows import scan_windows_instance

            scan_instance = scan_windows_instance
        snapshots = [] if options.no_snapshot else image_snapshots(image)
        if not snapshots:
            self._launch(client, run, options, image, context, scan_instance)
            return
        # The snapshot is read while the instance boots; it speaks only if the instance cannot.
        from scanner.targets.ami_snapshot import SnapshotJudgement

        run.details["snapshots"] = [snapshot for snapshot, _ in snapshots]
        background = SnapshotJudgement(run, self.session, snapshots, context)
        try:
            self._launch(client, run, options, image, context, scan_instance)
        except ScanAborted as exc:
            background.fill_unjudged(run, exc)
            raise
        finally:
            background.stop()

    def _judge_snapshots(self, run: ScanRun, image: dict[str, Any], context: ScanContext) -> None:
        """--no-launch: judge every offline-capable check from the image's EBS snapshots."""
        # Imported here: a launched scan that never reads a snapshot does not load the readers.
        from scanner.targets.snapshot import judge_snapshots

        snapshots = image_snapshots(image)
        if not snapshots:
            raise ScanAborted(
                f"{self.id} has no EBS snapshot for its root device "
                f"({image.get('RootDeviceName') or 'no root device name'}); "
                "an instance-store image cannot be read without launching it"
            )
        run.details["snapshots"] = [snapshot for snapshot, _ in snapshots]
        offline = dataclasses.replace(context, mode=Mode.OFFLINE)
        judge_snapshots(run, self.session, snapshots, offline)
        run.notes.append(
            "--no-launch: judged from the image's snapshots; checks that need a running "
            "instance were skipped"
        )

    def _resolve(self, client: Any, run: ScanRun) -> dict[str, Any]:
        try:
            images = client.describe_images(ImageIds=[self.id])["Images"]
        except Exception as exc:
            error = describe(exc, f"describing {self.id}")
            if error.code in (
                "InvalidAMIID.NotFound",
                "InvalidAMIID.Malformed",
                "InvalidAMIID.Unavailable",
            ):
                raise TargetError(
                    f"{self.id} does not exist in {self.region} (or is not shared with this account)"
                ) from None
            raise ScanAborted(str(error)) from None
        if not images:
            raise TargetError(
                f"{self.id} does not exist in {self.region} (or is not shared with this account)"
            )
        image = dict(images[0])
        windows = (
            str(image.get("Platform", "")).lower() == "windows"
            or "windows" in str(image.get("PlatformDetails", "")).lower()
        )
        self.platform = "windows" if windows else "linux"
        # Only now is the platform known.
        run.settle_platform(self.platform)
        run.details.update(
            {
                "name": image.get("Name"),
                "architecture": image.get("Architecture"),
                "owner": image.get("OwnerId"),
                "boot_mode": image.get("BootMode") or "legacy-bios",
                "ena_support": image.get("EnaSupport"),
                "platform_details": image.get("PlatformDetails")
                or ("Windows" if windows else "Linux/UNIX"),
                "image_state": image.get("State"),
                "creation_date": image.get("CreationDate"),
            }
        )
        return image

    def _ebs_default_encryption(self, client: Any, run: ScanRun) -> bool | None:
        try:
            return bool(client.get_ebs_encryption_by_default()["EbsEncryptionByDefault"])
        except Exception as exc:
            run.notes.append(
                f"{describe(exc, 'reading the EBS encryption default')}; judged the image alone"
            )
            return None

    # -- launching --------------------------------------------------------------------------

    def _launch(
        self,
        client: Any,
        run: ScanRun,
        options: ScanOptions,
        image: dict[str, Any],
        context: ScanContext,
        scan_instance: InstanceScanner,
    ) -> None:
        windows = self.platform == "windows"
        resources = ScanResources(client, new_scan_id(), poll_s=options.poll_interval_s)
        run.details["scan_id"] = resources.scan_id
        # --keep-instance keeps it whatever happens: a failed scan is what one debugs.
        keep = options.keep_instance
        launch_key: LaunchKey | None = None
        try:
            with run.phase("launched", "Launching a temporary instance"):
                network = find_subnet(client, options.subnet_id)
                run.cancel.check()
                launch_key = self._launch_key(resources, options, windows)
                ports = [options.winrm_port, 3389] if windows else [options.scan_port]
                cidr = self._scanner_cidr(options, network)
                if ipaddress.ip_network(cidr).prefixlen < WIDE_INGRESS_PREFIX:
                    run.notes.append(
                        f"--allow-cidr {cidr} opens the scan port to far more than this scanner "
                        "for the length of the scan"
                    )
                group = resources.create_security_group(network.vpc_id, ports, cidr)
                instance_type = options.instance_type or choose_instance_type(image, windows)
                run.details.update(
                    {
                        "instance_type": instance_type,
                        "subnet_id": network.subnet_id,
                        "vpc_id": network.vpc_id,
                        "ingress": f"{cidr} on tcp/{', '.join(map(str, ports))}",
                    }
                )
                run.cancel.check()
                instance_id = resources.run_instance(
                    self._run_request(
                        self.id, resources, network, group, instance_type, launch_key, options
                    )
                )
                run.details["instance_id"] = instance_id
            scan_instance(self, client, run, options, context, resources, launch_key)
        except AwsError as exc:
            if exc.usage:
                raise TargetError(str(exc)) from None
            self._attach_console(client, resources, run)
            raise ScanAborted(str(exc)) from None
        except TransportError as exc:
            self._attach_console(client, resources, run)
            raise ScanAborted(str(exc)) from None
        except ScanAborted:
            self._attach_console(client, resources, run)
            raise
        finally:
            if keep:
                self._explain_kept(run, resources, launch_key)
            else:
                with run.phase("terminated", "Terminating and deleting what the scan created"):
                    problems = resources.delete_all()
                if problems:
                    run.fail_scan(
                        "cleanup incomplete: "
                        + "; ".join(problems)
                        + f"; run `amiscan cleanup --region {self.region}` to finish it"
                    )
                else:
                    run.details["cleanup"] = (
                        "terminated the instance; deleted the security group and key pair"
                    )

    def _launch_key(
        self, resources: ScanResources, options: ScanOptions, windows: bool
    ) -> LaunchKey:
        if options.key_name:
            assert options.identity_file is not None  # checked in __init__
            resources.key_name = options.key_name
            if windows:
                return LaunchKey(
                    options.key_name, None, "", rsa_key=load_rsa_key(options.identity_file)
                )
            key = load_private_key(options.identity_file)
            return LaunchKey(options.key_name, key, f"{key.get_name()} {key.get_base64()}")
        if windows:
            rsa_private, public_line = generate_rsa_key_pair()
            name = resources.import_key_pair(public_line)
            return LaunchKey(name, None, public_line, rsa_key=rsa_private)
        key, public_line, pem = generate_ed25519()
        name = resources.import_key_pair(public_line)
        return LaunchKey(name, key, public_line, pem)

    @staticmethod
    def _scanner_cidr(options: ScanOptions, network: Network) -> str:
        if options.allow_cidr:
            return validate_cidr(options.allow_cidr)
        if options.address == "private":
            return private_source_cidr(network)
        return public_source_cidr()

    @staticmethod
    def _run_request(
        image_id: str,
        resources: ScanResources,
        network: Network,
        group: str,
        instance_type: str,
        key: LaunchKey,
        options: ScanOptions,
    ) -> dict[str, Any]:
        return {
            "ImageId": image_id,
            "InstanceType": instance_type,
            "MinCount": 1,
            "MaxCount": 1,
            "KeyName": key.key_name,
            "NetworkInterfaces": [
                {
                    "DeviceIndex": 0,
                    "SubnetId": network.subnet_id,
                    "Groups": [group],
                    "AssociatePublicIpAddress": options.address == "public",
                    "DeleteOnTermination": True,
                }
            ],
            # IMDSv2 only; no user data: the image must stand on its own, as vetting launches it.
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            # A safety net: a shutdown from inside the guest terminates rather than stops.
            "InstanceInitiatedShutdownBehavior": "terminate",
            "TagSpecifications": resources.spec("instance", "volume", "network-interface"),
        }

    @staticmethod
    def _attach_console(client: Any, resources: ScanResources, run: ScanRun) -> None:
        """An unreachable instance's console output is the best clue to why; keep its tail."""
        if not resources.instance_id:
            return
        try:
            output = client.get_console_output(InstanceId=resources.instance_id).get("Output") or ""
        except Exception as exc:
            output = f"(console output unavailable: {describe(exc, 'reading the console output')})"
        run.details["console_output"] = output[-8000:]

    def _explain_kept(self, run: ScanRun, resources: ScanResources, key: LaunchKey | None) -> None:
        lines = [
            f"--keep-instance: {resources.instance_id} is still running (scan id {resources.scan_id})."
        ]
        if key is not None and key.pem:
            lines.append(
                f"Its private key is in {write_private_key(key.pem, resources.scan_id)} (mode 0600)."
            )
        lines.append(
            f"Delete everything it created with: amiscan cleanup --region {self.region} --scan-id {resources.scan_id}"
        )
        run.notes.append(" ".join(lines))


def load_rsa_key(path: Path) -> rsa.RSAPrivateKey:
    """The RSA private key of an existing Windows key pair (PEM or OpenSSH format)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TargetError(f"cannot read {path}: {exc.strerror}") from None
    try:
        key = (
            serialization.load_ssh_private_key(data, password=None)
            if b"OPENSSH PRIVATE KEY" in data
            else serialization.load_pem_private_key(data, password=None)
        )
    except (ValueError, TypeError) as exc:
        raise TargetError(f"{path} is not an unencrypted private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TargetError(
            f"{path} is not an RSA key; Windows passwords are encrypted with RSA key pairs"
        )
    return key


def write_private_key(pem: bytes, scan_id: str) -> Path:
    """The in-memory key, written 0600 for --keep-instance debugging."""
    path = Path.cwd() / f"{scan_id}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return path


def image_snapshots(image: dict[str, Any]) -> list[tuple[str, str]]:
    """(snapshot id, device name) of the image's EBS volumes, the root device's first; empty
    when the root device has no snapshot (an instance-store image)."""
    root_name = image.get("RootDeviceName")
    mappings = image.get("BlockDeviceMappings") or []
    ordered = sorted(mappings, key=lambda m: m.get("DeviceName") != root_name)
    found: dict[str, str] = {}
    for mapping in ordered:
        snapshot = str((mapping.get("Ebs") or {}).get("SnapshotId") or "")
        if snapshot:
            found.setdefault(snapshot, str(mapping.get("DeviceName") or ""))
    root = ordered[0] if ordered and ordered[0].get("DeviceName") == root_name else {}
    if not (root.get("Ebs") or {}).get("SnapshotId"):
        return []
    return list(found.items())
