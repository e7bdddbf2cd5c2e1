"""A real OpenSSH sshd on 127.0.0.1 for integration tests: generated host key, test key, free port."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

REQUIRE_ENV = "AMISCAN_REQUIRE_SSHD"


def sshd_binary() -> str | None:
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    return found if Path(found).is_file() else None


def require_sshd() -> str:
    """The sshd binary; skip without one, unless CI demands it (then fail, never skip)."""
    binary = sshd_binary()
    if binary is None:
        message = "OpenSSH sshd is not installed (Debian package openssh-server)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}, and {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    return binary


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SshdServer:
    host: str
    port: int
    user: str
    key_path: Path
    public_key: str
    config_path: Path
    host_key: paramiko.PKey
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def generate_key(path: Path) -> tuple[paramiko.PKey, str]:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    key = paramiko.PKey.from_path(path)
    return key, f"{key.get_name()} {key.get_base64()}"


def start_sshd(
    workdir: Path, user: str, extra_config: str = "", authorized: str | None = None
) -> SshdServer:
    """Start sshd in the foreground on a free loopback port; the caller must stop() it."""
    binary = require_sshd()
    workdir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    host_key, _ = generate_key(workdir / "host_ed25519")
    _, public = generate_key(workdir / "client_ed25519")
    keys_dir = workdir / "authorized"
    keys_dir.mkdir(exist_ok=True)
    (keys_dir / user).write_text((authorized if authorized is not None else public) + "\n")
    port = free_port()
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                extra_config,
                f"Port {port}",
                "ListenAddress 127.0.0.1",
                f"HostKey {workdir / 'host_ed25519'}",
                "PidFile none",
                f"AuthorizedKeysFile {keys_dir}/%u",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "",
            ]
        )
    )
    log_path = workdir / "sshd.log"
    process = subprocess.Popen(
        [binary, "-D", "-e", "-f", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=log_path.open("wb"),
    )
    server = SshdServer(
        "127.0.0.1",
        port,
        user,
        workdir / "client_ed25519",
        public,
        config,
        host_key,
        process,
        log_path,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited: {log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"sshd did not start on port {port}: {log_path.read_text(errors='replace')}")
