"""`amiscan ami-…` as a subprocess against a moto server, the instance reaching a real sshd.

moto accepts a VPC in 127.0.0.0/16, so the launched instance gets a loopback private address and
`--address private` reaches the test sshd (listening on every address of the subnet) with no
test-only hook in amiscan. A thread plays cloud-init, installing the launch key pair's public key.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.aws import (
    LOOPBACK_HOSTS,
    CloudInitEmulator,
    Moto,
    leftovers,
    loopback_subnet,
    register_image,
)
from tests.conftest import SshdFactory
from tests.plugins import PLUGIN_MODULE, install_plugin
from tests.sshd import SshdServer

LISTEN_ON_SUBNET = "\n".join(f"ListenAddress {host}" for host in LOOPBACK_HOSTS)
NOTHING_LEFT = {"instances": [], "security_groups": [], "key_pairs": []}


def amiscan_args(
    image: str, subnet: str, server: SshdServer, report: Path, *extra: str
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "scanner",
        image,
        "--subnet-id",
        subnet,
        "--address",
        "private",
        "--scan-port",
        str(server.port),
        "--user",
        server.user,
        "--json",
        str(report),
        "--html",
        str(report.with_suffix(".html")),
        "--poll-interval",
        "0.1",
        "--connect-timeout",
        "30",
        # moto's console output never shows host key fingerprints: do not wait for them.
        "--host-key-wait",
        "0",
        *extra,
    ]


def run_amiscan(
    moto: Moto, args: list[str], tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = moto.env(env)
    environment["HOME"] = str(tmp_path)
    environment.pop("SSH_AUTH_SOCK", None)
    return subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        check=False,
        cwd=tmp_path,
    )


def load(report: Path) -> dict[str, Any]:
    assert report.is_file()
    return json.loads(report.read_text())


def results(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["results"]}


def authorized_file(server: SshdServer) -> Path:
    return server.config_path.parent / "authorized" / server.user


@pytest.fixture
def subnet_server(sshd_factory: SshdFactory) -> SshdServer:
    # No pre-installed key: only the key pair amiscan imports (installed by "cloud-init") works.
    return sshd_factory(LISTEN_ON_SUBNET, authorized="")


def test_a_full_scan_judges_the_image_and_the_instance_and_leaves_nothing(
    moto: Moto, subnet_server: SshdServer, tmp_path: Path
) -> None:
    client = moto.client()
    image = register_image(client)
    subnet = loopback_subnet(client)
    report_path = tmp_path / "report.json"
    with CloudInitEmulator(client, authorized_file(subnet_server)) as cloud_init:
        result = run_amiscan(
            moto, amiscan_args(image, subnet, subnet_server, report_path), tmp_path
        )
    assert result.returncode in (0, 1), result.stderr
    report = load(report_path)
    assert report["verdict"] in ("pass", "fail")
    by_id = results(report)
    image_ids = [i for i in by_id if i.startswith("image.")]
    assert len(image_ids) == 10
    assert all(by_id[i]["status"] == "pass" for i in image_ids), [by_id[i] for i in image_ids]
    linux = [r for r in report["results"] if r["id"].startswith("linux.")]
    assert len(linux) == 17
    assert not [r["id"] for r in linux if r["status"] == "error"], linux
    # The key amiscan injected is in authorized_keys, and it is not a finding.
    assert "ignored the key amiscan logged in with" in by_id["linux.ssh.authorized-keys"]["summary"]
    target = report["target"]
    assert target["instance_id"].startswith("i-")
    assert target["instance_type"] == "t3.micro"
    assert target["subnet_id"] == subnet
    assert target["address"].startswith("127.0.0.")
    assert target["login_user"] == subnet_server.user
    assert "trusted on first use" in target["host_key_verification"]
    assert target["ingress"] == f"127.0.0.1/32 on tcp/{subnet_server.port}"
    phases = [p["name"] for p in report["phases"]]
    assert phases == [
        "resolved",
        "launched",
        "running",
        "port open",
        "logged in",
        "collected",
        "judged",
        "host key confirmed",
        "terminated",
    ]
    assert report["collection"]["round_trips"] == 1
    assert cloud_init.installed == [target["scan_id"]]
    assert leftovers(client) == NOTHING_LEFT


def test_the_launch_is_safe_by_default_and_cleanup_sweeps_a_kept_instance(
    moto: Moto, subnet_server: SshdServer, tmp_path: Path
) -> None:
    """IMDSv2 required, no user data, ingress from the scanner only, everything tagged."""
    client = moto.client()
    image = register_image(client)
    subnet = loopback_subnet(client)
    report_path = tmp_path / "r.json"
    with CloudInitEmulator(client, authorized_file(subnet_server)):
        args = amiscan_args(
            image, subnet, subnet_server, report_path, "--checks", "image.region", "--keep-instance"
        )
        result = run_amiscan(moto, args, tmp_path)
    assert result.returncode == 0, result.stderr
    report = load(report_path)
    scan_id = report["target"]["scan_id"]
    assert any(
        f"amiscan cleanup --region us-east-1 --scan-id {scan_id}" in note
        for note in report["notes"]
    )
    key_file = tmp_path / f"{scan_id}.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600

    left = leftovers(client)
    (instance_id,) = left["instances"]
    instance = client.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][
        0
    ]
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert (
        "Value"
        not in client.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")[
            "UserData"
        ]
    )
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["amiscan:scan-id"] == scan_id and tags["amiscan:created-at"]
    (group,) = client.describe_security_groups(GroupIds=left["security_groups"])["SecurityGroups"]
    assert [
        (p["FromPort"], [r["CidrIp"] for r in p["IpRanges"]]) for p in group["IpPermissions"]
    ] == [(subnet_server.port, ["127.0.0.1/32"])]
    assert left["key_pairs"] == [scan_id]

    dry = run_amiscan(moto, [sys.executable, "-m", "scanner", "cleanup", "--dry-run"], tmp_path)
    assert dry.returncode == 0 and f"would delete instance {instance_id}" in dry.stdout
    assert leftovers(client)["instances"] == [instance_id]
    young = run_amiscan(
        moto, [sys.executable, "-m", "scanner", "cleanup", "--older-than", "1h"], tmp_path
    )
    assert "nothing to clean up" in young.stdout
    swept = run_amiscan(
        moto, [sys.executable, "-m", "scanner", "cleanup", "--poll-interval", "0.1"], tmp_path
    )
    assert swept.returncode == 0, swept.stderr
    assert f"deleted instance {instance_id}" in swept.stdout
    assert leftovers(client) == NOTHING_LEFT


def test_no_launch_no_snapshot_runs_only_the_image_checks(moto: Moto, tmp_path: Path) -> None:
    client = moto.client()
    image = register_image(client, ena_support=False, imds_support=None, architecture="i386")
    report = tmp_path / "r.json"
    result = run_amiscan(
        moto,
        [
            *(sys.executable, "-m", "scanner", image, "--no-launch", "--no-snapshot"),
            *("--json", str(report), "--no-html"),
        ],
        tmp_path,
    )
    assert result.returncode == 1
    by_id = results(load(report))
    assert set(by_id) == {i for i in by_id if i.startswith("image.")}
    assert by_id["image.ena-support"]["status"] == "fail"
    assert by_id["image.imdsv2"]["status"] == "fail"
    assert by_id["image.architecture"]["status"] == "fail"
    assert client.describe_instances()["Reservations"] == []


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ami-xyz", "is not an AMI id"),
        ("ami-0123456789abcdef0", "does not exist in us-east-1"),
    ],
)
def test_bad_ami_ids_are_exit_2_with_one_line(
    moto: Moto, tmp_path: Path, target: str, message: str
) -> None:
    result = run_amiscan(
        moto,
        [sys.executable, "-m", "scanner", target, "--no-html", "--json", str(tmp_path / "r.json")],
        tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_region_is_exit_2_with_a_suggestion(moto: Moto, tmp_path: Path) -> None:
    result = run_amiscan(
        moto,
        [
            sys.executable,
            "-m",
            "scanner",
            "ami-0123456789abcdef0",
            "--region",
            "us-east1",
            "--no-html",
        ],
        tmp_path,
    )
    assert result.returncode == 2
    assert "unknown region 'us-east1'; did you mean us-east-1?" in result.stderr


def test_an_image_that_is_not_available_is_exit_3_and_launches_nothing(
    moto: Moto, tmp_path: Path
) -> None:
    client = moto.client()
    image = register_image(client, state="pending")
    report = tmp_path / "r.json"
    result = run_amiscan(
        moto, [sys.executable, "-m", "scanner", image, "--json", str(report), "--no-html"], tmp_path
    )
    assert result.returncode == 3
    assert "is pending, not available" in load(report)["errors"][0]
    assert leftovers(client) == NOTHING_LEFT


def test_no_default_vpc_is_a_clear_error_and_leaves_nothing(moto: Moto, tmp_path: Path) -> None:
    client = moto.client()
    for vpc in client.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]:
        for subnet in client.describe_subnets(
            Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
        )["Subnets"]:
            client.delete_subnet(SubnetId=subnet["SubnetId"])
        client.delete_vpc(VpcId=vpc["VpcId"])
    image = register_image(client)
    report = tmp_path / "r.json"
    result = run_amiscan(
        moto,
        [
            sys.executable,
            "-m",
            "scanner",
            image,
            "--json",
            str(report),
            "--no-html",
            "--allow-cidr",
            "127.0.0.1/32",
        ],
        tmp_path,
    )
    assert result.returncode == 3
    assert "has no default VPC; pass --subnet-id" in load(report)["errors"][0]
    assert leftovers(client) == NOTHING_LEFT


def unanswered_scan_args(image: str, subnet: str, report: Path, *extra: str) -> list[str]:
    """A scan whose instance never answers: nothing listens on the scan port."""
    from tests.sshd import free_port

    return [
        sys.executable, "-m", "scanner", image,
        "--subnet-id", subnet, "--address", "private", "--scan-port", str(free_port()),
        "--json", str(report), "--no-html", "--poll-interval", "0.1", *extra,
    ]  # fmt: skip


def test_an_instance_that_never_answers_is_exit_3_with_its_console_output(
    moto: Moto, tmp_path: Path
) -> None:
    client = moto.client()
    image = register_image(client)
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    args = unanswered_scan_args(image, subnet, report, "--connect-timeout", "2")
    result = run_amiscan(moto, args, tmp_path)
    assert result.returncode == 3
    data = load(report)
    assert "never became reachable (connection refused)" in data["errors"][0]
    assert "Linux version" in data["target"]["console_output"]
    assert leftovers(client) == NOTHING_LEFT


def test_several_amis_are_scanned_concurrently_with_one_report_each(
    moto: Moto, tmp_path: Path
) -> None:
    client = moto.client()
    good = register_image(client)
    old = register_image(client, name="old-product", ena_support=False)
    report = tmp_path / "r.json"
    result = run_amiscan(
        moto,
        [
            sys.executable,
            "-m",
            "scanner",
            good,
            old,
            "--no-launch",
            "--no-snapshot",
            "--json",
            str(report),
            "--no-html",
        ],
        tmp_path,
    )
    assert result.returncode == 1
    assert load(tmp_path / f"r-{good}.json")["verdict"] == "pass"
    assert load(tmp_path / f"r-{old}.json")["verdict"] == "fail"


def _wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def signal_amiscan(
    moto: Moto,
    args: list[str],
    tmp_path: Path,
    signum: int,
    ready: Any,
    settle_s: float = 0.0,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """Start amiscan, send `signum` once `ready()` holds, and wait for it to finish cleaning up."""
    environment = moto.env()
    environment["HOME"] = str(tmp_path)
    environment.update(extra_env or {})
    process = subprocess.Popen(
        args,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        _wait_for(ready)
        time.sleep(settle_s)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    return process, stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_wait_cleans_up_and_writes_the_report(
    moto: Moto, tmp_path: Path, signum: int
) -> None:
    client = moto.client()
    image = register_image(client)
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    args = unanswered_scan_args(image, subnet, report)
    # Waiting for a port nobody opens: the scan is in its wait once the instance exists.
    process, stderr = signal_amiscan(
        moto, args, tmp_path, signum, lambda: bool(leftovers(client)["instances"]), settle_s=0.3
    )
    assert process.returncode == 3, stderr
    assert "interrupted" in load(report)["errors"][0]
    assert "cleaning up" in stderr
    assert leftovers(client) == NOTHING_LEFT


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_collection_cleans_up_and_writes_the_report(
    moto: Moto, sshd_factory: SshdFactory, tmp_path: Path, signum: int
) -> None:
    marker = tmp_path / "collecting"
    body = (
        PLUGIN_MODULE
        + f"""

SLEEPER = Fact(
    name="acme.sleeper",
    description="a probe that marks the collection and sleeps",
    probe=Probe("touch {marker}; sleep 120", privileged=False, timeout_s=300),
    derive=lambda g: g.require_output().text,
)


@check(
    id="acme.sleeper.probe",
    title="sleeps",
    severity=Severity.LOW,
    platform=Platform.LINUX,
    policy=Policy("ACME-9", "https://wiki.example.com/acme-9"),
    rationale="r",
    remediation="m",
    needs=[SLEEPER],
)
def sleeper(facts: Facts) -> Outcome:
    facts.get(SLEEPER)
    return Outcome(Status.PASS, "slept")
"""
    )
    site = install_plugin(tmp_path / "site", body=body)
    server = sshd_factory(LISTEN_ON_SUBNET, authorized="")
    client = moto.client()
    image = register_image(client)
    subnet = loopback_subnet(client)
    report = tmp_path / "r.json"
    args = amiscan_args(image, subnet, server, report, "--checks", "acme.sleeper", "--no-html")
    with CloudInitEmulator(client, authorized_file(server)):
        process, stderr = signal_amiscan(
            moto, args, tmp_path, signum, marker.exists, extra_env={"PYTHONPATH": str(site)}
        )
    assert process.returncode == 3, stderr
    data = load(report)
    assert "interrupted" in data["errors"][0]
    assert "terminated" in [p["name"] for p in data["phases"]]
    assert leftovers(client) == NOTHING_LEFT
