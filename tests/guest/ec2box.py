"""EC2 in a box: moto's RunInstances boots the real guest, TerminateInstances stops it.

moto models the API; this harness makes its instances real. It watches moto's backend for a new
instance, reads the public key of the instance's key pair (the one amiscan imported), writes it
into a NoCloud seed as EC2's metadata service would hand it to cloud-init, and boots an overlay
of the cached image. The forward listens on the instance's own address in moto's loopback subnet
(tests/aws.py), so amiscan reaches "the instance" exactly as it would on EC2. GetConsoleOutput
returns the guest's real serial console; TerminateInstances stops the VM before moto marks the
instance terminated.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import Instance
from moto.ec2.responses.general import General

from tests.aws import ACCOUNT, LOOPBACK_HOSTS, REGION
from tests.guest.image import GuestImage
from tests.guest.vm import GuestVM, boot, free_port

log = logging.getLogger(__name__)

POLL_S = 0.2


def scan_port() -> int:
    """22 when this process may listen there on the subnet's addresses (root, and no sshd on
    the host's wildcard address), so amiscan scans the port Marketplace scans; else a free port
    (then amiscan judges that port, and must find nothing listening on it in the guest)."""
    for port in (22, free_port()):
        try:
            for host in LOOPBACK_HOSTS:
                with socket.socket() as sock:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError("no port is free on the loopback subnet")


@dataclass
class BootedInstance:
    instance_id: str
    key_name: str
    address: str
    vm: GuestVM
    terminated: bool = False


@dataclass
class Ec2InABox:
    """Use as a context manager; leaving it stops every VM it started."""

    image: GuestImage
    workdir: Path
    port: int
    monkeypatch: pytest.MonkeyPatch
    instances: dict[str, BootedInstance] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Ec2InABox:
        self._patch_moto()
        # QEMU dies with the thread that started it (PR_SET_PDEATHSIG), so this thread lives
        # until every VM is stopped.
        self._thread = threading.Thread(target=self._watch, name="ec2-in-a-box", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        # Stop first, so the watcher boots nothing more once the VMs are being stopped.
        self._stop.set()
        with self._lock:
            for booted in self.instances.values():
                booted.vm.stop()
        if self._thread:
            self._thread.join(timeout=30)

    @property
    def backend(self) -> Any:
        return ec2_backends[ACCOUNT][REGION]

    def _patch_moto(self) -> None:
        box = self
        original_console = General.get_console_output
        original_terminate = Instance.terminate

        def get_console_output(response: General) -> ActionResult:
            instance_id = response._get_param("InstanceId")
            booted = box.instances.get(instance_id)
            if booted is None:
                return original_console(response)
            return ActionResult(
                {
                    "InstanceId": instance_id,
                    "Timestamp": utcnow(),
                    "Output": Base64EncodedString.from_raw_string(booted.vm.console_text()),
                }
            )

        def terminate(instance: Instance) -> Any:
            box.on_terminate(instance.id)
            return original_terminate(instance)

        self.monkeypatch.setattr(General, "get_console_output", get_console_output)
        self.monkeypatch.setattr(Instance, "terminate", terminate)

    def on_terminate(self, instance_id: str) -> None:
        with self._lock:
            booted = self.instances.get(instance_id)
            if booted:
                booted.vm.stop()
                booted.terminated = True

    def _watch(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self._boot_new_instances()
            except Exception as exc:  # a broken harness must show in the test, not hang it
                log.exception("EC2 in a box")
                self.errors.append(repr(exc))
                return
        # Any VM still running is stopped by __exit__ before this thread ends.
        self._stop.wait()

    def _boot_new_instances(self) -> None:
        for instance in list(self.backend.all_instances()):
            if instance.id in self.instances or instance.state != "running":
                continue
            key = self.backend.key_pairs.get(instance.key_name) if instance.key_name else None
            if key is None:
                # Only instances launched with a key pair can be logged in to; EC2 would boot
                # them anyway, but nothing in these tests launches one without.
                raise RuntimeError(f"{instance.id} was launched without a known key pair")
            public_key = key.material_public
            if isinstance(public_key, bytes):
                public_key = public_key.decode()
            address = str(instance.private_ip)
            with self._lock:
                if self._stop.is_set():
                    return
                vm = boot(
                    self.image,
                    self.workdir / instance.id,
                    public_key,
                    host=address,
                    port=self.port,
                    instance_id=instance.id,
                    hostname="ip-" + address.replace(".", "-"),
                )
                self.instances[instance.id] = BootedInstance(
                    instance.id, instance.key_name, address, vm
                )
