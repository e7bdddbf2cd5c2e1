"""A host key trusted at login is checked against the fingerprints the console shows later."""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import boto3
import paramiko
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from scanner.errors import ScanAborted
from scanner.model import Evidence, Outcome, Platform, Policy, Severity, Status
from scanner.registry import Check
from scanner.run import ScanRun
from scanner.targets.ami_linux import confirm_host_key
from scanner.targets.base import ScanOptions
from scanner.transports.ssh import SSHTransport

INSTANCE = "i-0123456789abcdef0"
TOFU = "trusted on first use (ssh-ed25519 SHA256:x); not verified"


def _fingerprint(key: paramiko.PKey) -> str:
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _console(*fingerprints: str) -> str:
    lines = [f"ec2: 256 {f} root@ip-10-0-0-5 (ED25519)" for f in fingerprints]
    block = "\n".join(
        [
            "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            *lines,
            "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
        ]
    )
    return "[    0.000000] Linux version 6.1.0-28-cloud-amd64\n" + (block if fingerprints else "")


class _Session:
    """What confirm_host_key reads of an SSH session: the key seen and how it was trusted."""

    def __init__(self, key: paramiko.PKey) -> None:
        self.host_key = key
        self.host_key_verification = TOFU


def _check(id: str, platform: Platform) -> Check:
    return Check(
        id=id,
        title=id,
        severity=Severity.HIGH,
        platform=platform,
        policy=Policy("P", "https://example.com"),
        rationale="",
        remediation="",
        needs=(),
        judge=lambda facts: Outcome(Status.PASS, "ok"),
    )


@pytest.fixture
def host_key() -> paramiko.PKey:
    pem = (
        Ed25519PrivateKey.generate()
        .private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption())
        .decode()
    )
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem))


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    # A stubbed client never sends a request: nothing leaves this machine.
    client = boto3.client(
        "ec2",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        endpoint_url="http://127.0.0.1:9",
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _answer(stubber: Stubber, output: str) -> None:
    stubber.add_response(
        "get_console_output",
        {"InstanceId": INSTANCE, "Output": output, "Timestamp": datetime.now(UTC)},
        {"InstanceId": INSTANCE, "Latest": True},
    )


def _run_with_results() -> ScanRun:
    checks = [
        _check("image.architecture", Platform.IMAGE),
        _check("linux.ssh.root-login", Platform.LINUX),
    ]
    run = ScanRun(kind="ami", target_id="ami-0", platform="linux", checks=checks)
    for item in checks:
        run.record(item, Outcome(Status.PASS, "judged", (Evidence("e"),)))
    return run


def _confirm(client: Any, key: paramiko.PKey, run: ScanRun, wait_s: float = 30.0) -> None:
    options = ScanOptions(host_key_wait_s=wait_s, poll_interval_s=0.05)
    confirm_host_key(client, INSTANCE, cast(SSHTransport, _Session(key)), run, options)


def test_fingerprints_that_appear_after_login_pin_the_key(
    ec2: tuple[Any, Stubber], host_key: paramiko.PKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, stubber = ec2
    monkeypatch.setattr("scanner.targets.ami_linux.CONSOLE_POLL_S", 0.01)
    _answer(stubber, _console())
    _answer(stubber, _console(_fingerprint(host_key)))
    run = _run_with_results()

    _confirm(client, host_key, run)

    verification = run.details["host_key_verification"]
    assert (
        verification
        == f"pinned from the console output after login (ssh-ed25519 {_fingerprint(host_key)})"
    )
    assert "linux.ssh.root-login" in run.results


def test_a_key_the_console_does_not_list_discards_the_in_guest_results(
    ec2: tuple[Any, Stubber], host_key: paramiko.PKey
) -> None:
    client, stubber = ec2
    _answer(stubber, _console("SHA256:someoneelsesKEYaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))
    run = _run_with_results()

    with pytest.raises(ScanAborted, match="host key mismatch"):
        _confirm(client, host_key, run)

    assert "linux.ssh.root-login" not in run.results
    assert "image.architecture" in run.results


def test_no_fingerprints_within_the_wait_leaves_trust_on_first_use_and_says_so(
    ec2: tuple[Any, Stubber], host_key: paramiko.PKey
) -> None:
    client, stubber = ec2
    _answer(stubber, _console())
    run = _run_with_results()

    _confirm(client, host_key, run, wait_s=0)

    verification = run.details["host_key_verification"]
    assert verification.startswith(TOFU)
    assert "showed no host key fingerprints within 0s" in verification
