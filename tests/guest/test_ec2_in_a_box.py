"""Boot 2: `amiscan ami-…` end to end, moto's RunInstances booting the real Debian 12 guest.

amiscan runs as a user runs it (a subprocess, AWS_ENDPOINT_URL at moto): it imports its own key
pair, launches, waits for SSH, pins the host key from the guest's real console output, logs in,
judges the instance and cleans everything up; the harness (tests/guest/ec2box.py) does what EC2
does with a real machine.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import pytest

from tests.aws import Moto, leftovers, loopback_subnet, register_image
from tests.guest.conftest import TIMINGS
from tests.guest.ec2box import BootedInstance, Ec2InABox, scan_port
from tests.guest.image import GuestImage
from tests.guest.scan import Scan, run_amiscan

pytestmark = pytest.mark.guest

CONNECT_TIMEOUT_S = 900
NOTHING_LEFT: dict[str, list[str]] = {"instances": [], "security_groups": [], "key_pairs": []}


@dataclass(frozen=True)
class AmiScan:
    scan: Scan
    port: int
    booted: list[BootedInstance]
    console: str
    vms_running_after_scan: list[str]
    harness_errors: list[str]
    left: dict[str, list[str]]


@pytest.fixture(scope="module")
def ami_scan(
    guest_image: GuestImage, moto_server: Moto, tmp_path_factory: pytest.TempPathFactory
) -> AmiScan:
    """One `amiscan ami-…` of the real guest (boot 2); the tests below judge what it did."""
    moto_server.reset()
    client = moto_server.client()
    image_id = register_image(client, name="debian-12-seller-product")
    subnet = loopback_subnet(client)
    port = scan_port()
    workdir = tmp_path_factory.mktemp("ec2-in-a-box")
    started = time.monotonic()
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        Ec2InABox(guest_image, workdir / "instances", port, monkeypatch) as box,
    ):
        scan = run_amiscan(
            image_id,
            "--region", "us-east-1",
            "--subnet-id", subnet,
            "--address", "private",
            "--scan-port", str(port),
            "--connect-timeout", str(CONNECT_TIMEOUT_S),
            "--poll-interval", "1",
            workdir=workdir / "scan",
            env=moto_server.env(),
            timeout_s=CONNECT_TIMEOUT_S + 600,
        )  # fmt: skip
        booted = list(box.instances.values())
        console = booted[0].vm.console_text() if booted else ""
        running = [b.instance_id for b in booted if b.vm.running()]
    TIMINGS["ami scan (boot 2, whole)"] = time.monotonic() - started
    return AmiScan(scan, port, booted, console, running, box.errors, leftovers(client))


def test_the_ami_scan_judges_the_real_guest_live(ami_scan: AmiScan) -> None:
    scan = ami_scan.scan
    assert not ami_scan.harness_errors, ami_scan.harness_errors
    # The point release has security updates pending; nothing else is wrong with the image.
    assert scan.returncode == 1, scan.stderr
    assert scan.report["verdict"] == "fail"
    statuses = scan.statuses
    assert all(statuses[c] == "pass" for c in statuses if c.startswith("image.")), statuses
    linux = scan.linux_statuses()
    assert not [c for c, s in linux.items() if s == "error"], scan.results
    expected_failures = {"linux.packages.up-to-date"}
    if ami_scan.port != 22:
        # amiscan judges the port it was told vetting uses; the guest's sshd is on 22 only.
        expected_failures.add("linux.ssh.listening")
    assert {c for c, s in linux.items() if s == "fail"} == expected_failures, scan.results
    assert linux["linux.accounts.sudo"] == "pass"
    assert linux["linux.ssh.password-authentication"] == "pass"
    assert linux["linux.ssh.root-login"] == "pass"
    # The key amiscan launched with is in ec2-user's authorized_keys, and is not a finding.
    assert linux["linux.ssh.authorized-keys"] == "pass"
    assert scan.report["target"]["login_user"] == "ec2-user"
    # "host key confirmed" runs only when the fingerprints were not yet on the console at login.
    phases = [p["name"] for p in scan.report["phases"] if p["name"] != "host key confirmed"]
    assert phases == [
        "resolved",
        "launched",
        "running",
        "port open",
        "logged in",
        "collected",
        "judged",
        "terminated",
    ]


def test_the_instance_amiscan_launched_was_the_real_guest_and_nothing_is_left(
    ami_scan: AmiScan,
) -> None:
    target = ami_scan.scan.report["target"]
    (booted,) = ami_scan.booted
    assert booted.instance_id == target["instance_id"]
    # cloud-init gave ec2-user the public half of the key pair amiscan imported for this scan.
    assert booted.key_name == target["scan_id"]
    assert target["address"].startswith(booted.address)
    assert target["hostname"] == "ip-" + booted.address.replace(".", "-")
    # TerminateInstances stopped the VM; the security group and key pair are gone too.
    assert booted.terminated and not ami_scan.vms_running_after_scan
    assert ami_scan.left == NOTHING_LEFT


def console_fingerprints(console: str) -> list[str]:
    return re.findall(r"cloud-init: \d+ (SHA256:[A-Za-z0-9+/]+)=* \S+ \(ED25519\)", console)


def test_the_host_key_amiscan_accepted_is_the_one_cloud_init_printed(ami_scan: AmiScan) -> None:
    fingerprints = console_fingerprints(ami_scan.console)
    assert fingerprints, "cloud-init printed no host key fingerprints on the console"
    assert fingerprints[-1] in ami_scan.scan.report["target"]["host_key_verification"]


def test_the_host_key_is_pinned_from_the_real_console_output(ami_scan: AmiScan) -> None:
    verification = ami_scan.scan.report["target"]["host_key_verification"]
    assert verification.startswith("pinned from the console output"), verification


def test_package_metadata_is_not_called_fresh_when_the_refresh_failed(ami_scan: AmiScan) -> None:
    result = ami_scan.scan.results["linux.packages.up-to-date"]
    assert result["status"] == "fail"
    assert "fresh metadata" not in result["summary"], result["summary"]
    assert "refreshing it failed" in result["summary"], result["summary"]
    assert any(
        "Failed to fetch" in e["text"] or "failed to download" in e["text"]
        for e in result["evidence"]
    ), result["evidence"]


def test_the_refresh_is_timed_beside_the_package_query_it_belongs_to(ami_scan: AmiScan) -> None:
    # A launched instance refreshes its package metadata inside the package probe; the report
    # times the refresh on its own, so a slow scan shows whether the mirrors were to blame.
    probe_ms = ami_scan.scan.report["collection"]["probe_ms"]
    assert "linux.packages.pending.refresh" in probe_ms, probe_ms
    assert 0 <= probe_ms["linux.packages.pending.refresh"] <= probe_ms["linux.packages.pending"]
