"""A Windows AMI through moto: RSA key pair, WinRM and RDP ingress, GetPasswordData, login, cleanup.

moto's GetPasswordData returns random text; here it plays EC2Launch instead, encrypting a
password with the launch key pair's public key exactly as EC2 does (RSA PKCS#1 v1.5). No Windows
host exists, so a loopback HTTP server stands in for WinRM and rejects the login: the scan
must get as far as the login attempt, fail cleanly, and leave nothing behind.
"""

from __future__ import annotations

import base64
import json
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from moto.ec2.models import ec2_backends
from moto.ec2.models.windows import WindowsBackend

from tests.aws import (
    ACCOUNT,
    LOOPBACK_HOSTS,
    REGION,
    Moto,
    leftovers,
    loopback_subnet,
    register_image,
)
from tests.integration.test_ami_scan import NOTHING_LEFT, load, results, run_amiscan
from tests.sshd import free_port

PASSWORD = "Tr0ub4dor&3-amiscan"


class _RejectingWinRM(BaseHTTPRequestHandler):
    """Answers every WS-Management request as a server that rejects the credentials."""

    requests_seen: list[str] = []

    def do_POST(self) -> None:
        self.requests_seen.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(401)
        self.send_header("WWW-Authenticate", "Negotiate")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def winrm_port() -> Iterator[int]:
    """A fake WinRM endpoint on every loopback address moto may give the instance."""
    port = free_port()
    servers = []
    for host in LOOPBACK_HOSTS:
        server = ThreadingHTTPServer((host, port), _RejectingWinRM)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    _RejectingWinRM.requests_seen = []
    yield port
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ec2launch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """GetPasswordData as EC2 answers it: the password, encrypted with the key pair's public key."""
    served: list[str] = []

    def get_password_data(self: Any, instance_id: str) -> str:
        backend = ec2_backends[ACCOUNT][REGION]
        instance = backend.get_instance(instance_id)
        material = backend.describe_key_pairs([instance.key_name])[0].material_public
        public = serialization.load_ssh_public_key(
            material if isinstance(material, bytes) else material.encode()
        )
        assert isinstance(public, rsa.RSAPublicKey), "a Windows launch must use an RSA key pair"
        served.append(instance_id)
        return base64.b64encode(public.encrypt(PASSWORD.encode(), padding.PKCS1v15())).decode()

    monkeypatch.setattr(WindowsBackend, "get_password_data", get_password_data)
    return served


def windows_args(image: str, subnet: str, port: int, report: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scanner",
        image,
        "--subnet-id",
        subnet,
        "--address",
        "private",
        "--winrm-port",
        str(port),
        "--json",
        str(report),
        "--no-html",
        "--poll-interval",
        "0.1",
        "--connect-timeout",
        "20",
        *extra,
    ]


def test_a_windows_ami_goes_through_launch_password_login_attempt_and_cleanup(
    moto: Moto, tmp_path: Path, winrm_port: int, ec2launch: list[str]
) -> None:
    client = moto.client()
    image = register_image(client, name="Windows_Server-2022-seller", platform="windows")
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    result = run_amiscan(moto, windows_args(image, subnet, winrm_port, report), tmp_path)
    assert result.returncode == 3, result.stderr
    data = load(report)
    assert data["target"]["platform"] == "windows"
    assert ec2launch, "GetPasswordData was never called"
    phases = [p["name"] for p in data["phases"]]
    assert phases[:5] == ["resolved", "launched", "running", "port open", "password"]
    assert "logged in" in phases and phases[-1] == "terminated"
    assert "refused NTLM" in data["errors"][0]
    assert _RejectingWinRM.requests_seen, "no WinRM login was attempted"
    assert data["target"]["ingress"] == f"127.0.0.1/32 on tcp/{winrm_port}, 3389"
    by_id = results(data)
    assert all(by_id[i]["status"] == "pass" for i in by_id if i.startswith("image."))
    assert {i for i in by_id if i.startswith("windows.")} and not {
        i for i in by_id if i.startswith("linux.")
    }
    assert leftovers(client) == NOTHING_LEFT


def test_no_administrator_password_fails_the_password_check_and_cleans_up(
    moto: Moto, tmp_path: Path, winrm_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(WindowsBackend, "get_password_data", lambda self, instance_id: "")
    client = moto.client()
    image = register_image(client, name="Windows_Server-2022-nopassword", platform="windows")
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    args = windows_args(image, subnet, winrm_port, report)
    args[args.index("--connect-timeout") + 1] = "3"
    result = run_amiscan(moto, args, tmp_path)
    # The scan stopped early, but what it judged fails: a failure beats could-not-judge.
    assert result.returncode == 1
    data = load(report)
    assert data["verdict"] == "fail"
    password = results(data)["windows.launch-agent.password"]
    assert password["status"] == "fail"
    assert "GetPasswordData" in password["evidence"][0]["source"]
    assert "posted no administrator password" in data["errors"][0]
    assert leftovers(client) == NOTHING_LEFT


def test_the_windows_key_pair_is_rsa_and_the_group_opens_winrm_and_rdp(
    moto: Moto, tmp_path: Path, winrm_port: int, ec2launch: list[str]
) -> None:
    client = moto.client()
    image = register_image(client, name="Windows_Server-2022-keep", platform="windows")
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    run_amiscan(moto, windows_args(image, subnet, winrm_port, report, "--keep-instance"), tmp_path)
    left = leftovers(client)
    (pair,) = client.describe_key_pairs(KeyNames=left["key_pairs"])["KeyPairs"]
    assert pair["KeyType"] == "rsa"
    (group,) = client.describe_security_groups(GroupIds=left["security_groups"])["SecurityGroups"]
    assert sorted(p["FromPort"] for p in group["IpPermissions"]) == sorted([winrm_port, 3389])
    assert all(r["CidrIp"] == "127.0.0.1/32" for p in group["IpPermissions"] for r in p["IpRanges"])
    swept = run_amiscan(
        moto, [sys.executable, "-m", "scanner", "cleanup", "--poll-interval", "0.1"], tmp_path
    )
    assert swept.returncode == 0, swept.stderr
    assert leftovers(client) == NOTHING_LEFT
    assert json.loads(report.read_text())["target"]["scan_id"] in swept.stdout


def test_loopback_only() -> None:
    # Every address this module serves on is loopback.
    assert all(socket.inet_aton(h)[0] == 127 for h in LOOPBACK_HOSTS)


def test_a_windows_instance_that_refuses_the_login_still_reports_what_its_snapshot_judged(
    moto: Moto, tmp_path: Path, winrm_port: int, ec2launch: list[str]
) -> None:
    from tests.aws import ebs_client_like
    from tests.diskimages import upload_snapshot
    from tests.windowsystem import rdp_denied, render_disk

    client = moto.client()
    disk = render_disk(rdp_denied(), tmp_path / "windows.img")
    snapshot = upload_snapshot(ebs_client_like(client), disk)
    image = register_image(
        client, name="Windows_Server-2022-rdp-off", platform="windows", snapshot_id=snapshot
    )
    report = tmp_path / "r.json"
    result = run_amiscan(
        moto, windows_args(image, loopback_subnet(client), winrm_port, report), tmp_path
    )
    # WinRM refused the login, but the snapshot shows RDP denied: the failure is the verdict.
    assert result.returncode == 1, result.stderr
    data = load(report)
    assert "refused NTLM" in data["errors"][0]
    by_id = results(data)
    rdp = by_id["windows.rdp.enabled"]
    assert rdp["status"] == "fail"
    assert rdp["summary"].startswith("judged from the AMI's snapshot")
    assert by_id["windows.accounts.guest"]["status"] == "pass"
    assert by_id["windows.accounts.guest"]["summary"].startswith("judged from the AMI's snapshot")
    # Only a running instance can say what is pending: still not judged.
    assert by_id["windows.updates.pending"]["status"] == "error"
    assert leftovers(client) == NOTHING_LEFT
