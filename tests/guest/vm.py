"""Boot the real-guest image under QEMU: direct kernel boot, a NoCloud seed, one port forward.

The guest can reach nothing: user-mode networking with `restrict=on` on a guest network outside
10.0.0.0/8 (Marketplace's vetting ranges, which amiscan judges, are 10.0.0.0/16), and exactly one
forward from a loopback address on the host to the guest's port 22.
"""

from __future__ import annotations

import ctypes
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.guest.image import GuestImage

log = logging.getLogger(__name__)

# TEST-NET-1: nothing amiscan or Marketplace treats as a vetting or private range.
GUEST_NET = "192.0.2.0/24"
BOOT_TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "genisoimage": "genisoimage",
}
KERNEL_ARGS = (
    "root=/dev/vda rw console=ttyS0,115200 "
    # Boot speed under emulation: no speculative-execution mitigations, a quiet kernel, no
    # predictable interface names to wait for (eth0, as EC2's Xen guests had).
    "mitigations=off quiet loglevel=3 net.ifnames=0 systemd.show_status=error "
    "8250.nr_uarts=1 tsc=reliable no_timer_check"
)
MEMORY_MIB = 1536
CPUS = 2
_PR_SET_PDEATHSIG = 1


def missing_boot_tools() -> list[str]:
    return sorted({pkg for tool, pkg in BOOT_TOOLS.items() if not shutil.which(tool)})


def kvm_usable() -> bool:
    """KVM only on real hardware virtualisation: a nested paravirtual /dev/kvm (kvm_pvm) without
    vmx/svm hangs a stock kernel, so such hosts emulate (TCG) instead."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    if not re.search(r"^flags\s*:.*\b(vmx|svm)\b", flags, re.MULTILINE):
        return False
    if Path("/sys/module/kvm_pvm").exists():
        return False
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def accelerator() -> str:
    return "kvm" if kvm_usable() else "tcg,thread=multi"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def write_seed(
    path: Path, public_key: str, instance_id: str = "i-amiscanguest0", hostname: str = "guest"
) -> Path:
    """A NoCloud seed (an ISO labelled cidata) giving ec2-user the key, as EC2's metadata does."""
    staging = path.with_suffix(".d")
    staging.mkdir(parents=True, exist_ok=True)
    (staging / "meta-data").write_text(f"instance-id: {instance_id}\nlocal-hostname: {hostname}\n")
    (staging / "user-data").write_text(
        f"#cloud-config\nssh_authorized_keys:\n  - {public_key.strip()}\n"
    )
    subprocess.run(
        ["genisoimage", "-quiet", "-output", str(path), "-volid", "cidata", "-joliet", "-rock",
         str(staging / "user-data"), str(staging / "meta-data")],
        check=True,
    )  # fmt: skip
    return path


def overlay(base: GuestImage, path: Path) -> Path:
    """A copy-on-write disk over the cached file system: a boot never changes the cache."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(base.rootfs),
         str(path)],
        check=True,
    )  # fmt: skip
    return path


def _die_with_parent() -> None:
    # If the test process dies without its teardown (SIGKILL), QEMU must not outlive it.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class GuestVM:
    """One running guest; stop() it (by PID) whatever happens."""

    host: str
    port: int
    workdir: Path
    console: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    def console_text(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except OSError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def wait_for_ssh(self, timeout_s: float) -> float:
        """Seconds from start until the guest's sshd sent its banner through the forward.

        QEMU accepts on the forwarded port before the guest listens, so only a banner counts.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"QEMU exited ({self.process.returncode}):\n{self._tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=5) as sock:
                    sock.settimeout(10)
                    if sock.recv(4) == b"SSH-":
                        return time.monotonic() - self.started
            except OSError:
                pass
            time.sleep(1)
        raise TimeoutError(f"no SSH banner after {timeout_s:.0f} s:\n{self._tail()}")

    def _tail(self) -> str:
        stderr = self.workdir / "qemu.stderr"
        text = stderr.read_text(errors="replace") if stderr.is_file() else ""
        return f"{text}\n--- console ---\n{self.console_text()[-4000:]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def boot(
    image: GuestImage,
    workdir: Path,
    public_key: str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    instance_id: str = "i-amiscanguest0",
    hostname: str = "guest",
) -> GuestVM:
    """Start the guest on a fresh overlay; returns at once (wait_for_ssh() to wait)."""
    workdir.mkdir(parents=True, exist_ok=True)
    disk = overlay(image, workdir / "disk.qcow2")
    seed = write_seed(workdir / "seed.iso", public_key, instance_id, hostname)
    port = port or free_port(host)
    console = workdir / "console.log"
    command = [
        "qemu-system-x86_64",
        "-name", "amiscan-guest",
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-accel", accelerator(),
        "-cpu", "max",
        "-smp", str(CPUS),
        "-m", str(MEMORY_MIB),
        "-kernel", str(image.kernel),
        "-initrd", str(image.initrd),
        "-append", KERNEL_ARGS,
        "-drive", f"file={disk},format=qcow2,if=virtio,cache=unsafe,discard=unmap",
        "-drive", f"file={seed},format=raw,if=virtio,readonly=on",
        "-netdev", f"user,id=net0,restrict=on,net={GUEST_NET},"
                   f"hostfwd=tcp:{host}:{port}-:22",
        "-device", "virtio-net-pci,netdev=net0",
        "-device", "virtio-rng-pci",
        "-serial", f"file:{console}",
        "-monitor", "none",
    ]  # fmt: skip
    log.info("booting the guest: %s", " ".join(command))
    with (workdir / "qemu.stderr").open("wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=_die_with_parent,
        )
    return GuestVM(host, port, workdir, console, process)
