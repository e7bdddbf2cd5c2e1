"""Launch decisions and waits: instance type, durations, CIDRs, the SSH port, the instance state."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from scanner.aws.errors import AwsError
from scanner.aws.launch import (
    choose_instance_type,
    validate_cidr,
    wait_for_banner,
    wait_for_state,
)
from scanner.aws.sweep import parse_duration
from scanner.cancel import Cancel, ScanInterrupted
from tests.sshd import SshdServer, free_port

INSTANCE = "i-0123456789abcdef0"

# --- choose_instance_type ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "windows", "expected"),
    [
        pytest.param(
            {"Architecture": "x86_64", "EnaSupport": True, "BootMode": "uefi"},
            False,
            "t3.micro",
            id="x86_64-ena-uefi",
        ),
        pytest.param(
            {"Architecture": "x86_64", "EnaSupport": True}, False, "t3.micro", id="x86_64-ena-bios"
        ),
        pytest.param(
            {"Architecture": "x86_64", "EnaSupport": False, "BootMode": "legacy-bios"},
            False,
            "t2.micro",
            id="no-ena-legacy-bios",
        ),
        pytest.param({"Architecture": "x86_64"}, False, "t2.micro", id="ena-unset-means-no-ena"),
        pytest.param({"Architecture": "arm64", "EnaSupport": True}, False, "t4g.micro", id="arm64"),
        pytest.param(
            {"Architecture": "x86_64", "EnaSupport": True}, True, "t3.medium", id="windows"
        ),
        pytest.param(
            {"Architecture": "x86_64", "EnaSupport": False}, True, "t2.medium", id="windows-no-ena"
        ),
        pytest.param({"Architecture": "arm64"}, True, "t4g.medium", id="windows-arm64"),
    ],
)
def test_the_smallest_instance_type_that_boots_the_image_is_chosen(
    image: dict[str, Any], windows: bool, expected: str
) -> None:
    assert choose_instance_type(image, windows) == expected


def test_uefi_without_ena_is_a_usage_error_because_no_instance_type_boots_it() -> None:
    with pytest.raises(AwsError) as raised:
        choose_instance_type(
            {"Architecture": "x86_64", "EnaSupport": False, "BootMode": "uefi"}, False
        )
    assert raised.value.usage
    assert "UEFI but lacks ENA support" in str(raised.value)
    assert "--instance-type" in str(raised.value)


def test_an_architecture_no_instance_type_runs_is_a_usage_error() -> None:
    with pytest.raises(AwsError) as raised:
        choose_instance_type({"Architecture": "arm64_mac"}, False)
    assert raised.value.usage
    assert "arm64_mac" in str(raised.value)


# --- parse_duration (amiscan cleanup --older-than) ---------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1w", timedelta(weeks=1)),
        ("45s", timedelta(seconds=45)),
        (" 12H ", timedelta(hours=12)),
        ("0m", timedelta(0)),
    ],
)
def test_durations_in_each_unit_are_parsed(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "1.5h", "-1h", "2 days", "1y", "1h30m"])
def test_other_durations_are_refused_with_the_forms_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration such as 30m, 2h, 1d or 1w"):
        parse_duration(text)


# --- validate_cidr (--allow-cidr) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("203.0.113.7/32", "203.0.113.7/32"),
        ("203.0.113.7", "203.0.113.7/32"),
        ("10.1.2.3/16", "10.1.0.0/16"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_ipv4_cidrs_are_normalised(text: str, expected: str) -> None:
    assert validate_cidr(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("my-laptop", "is not an IPv4 CIDR such as 203.0.113.7/32"),
        ("203.0.113.7/33", "is not an IPv4 CIDR"),
        ("2001:db8::/32", "--allow-cidr must be IPv4"),
    ],
)
def test_anything_but_an_ipv4_cidr_is_a_usage_error(text: str, message: str) -> None:
    with pytest.raises(AwsError) as raised:
        validate_cidr(text)
    assert raised.value.usage
    assert message in str(raised.value)


# --- wait_for_banner --------------------------------------------------------------------------


def test_a_closed_port_is_polled_until_the_deadline_then_refused() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(AwsError) as raised:
        wait_for_banner("127.0.0.1", port, started + 0.4, poll_s=0.05)
    waited = time.monotonic() - started
    assert str(raised.value) == f"127.0.0.1:{port} never became reachable (connection refused)"
    assert not raised.value.usage
    assert 0.4 <= waited < 5


def test_the_sshd_banner_ends_the_wait(sshd_server: SshdServer) -> None:
    waited = wait_for_banner(sshd_server.host, sshd_server.port, time.monotonic() + 10, poll_s=0.05)
    assert 0 <= waited < 5


@pytest.fixture
def http_port() -> Iterator[int]:
    """A port that answers, but not with SSH (a web server where sshd was expected)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_a_port_that_answers_without_ssh_is_not_taken_for_sshd(http_port: int) -> None:
    with pytest.raises(
        AwsError, match=r"never became reachable \(the port answered without an SSH banner\)"
    ):
        wait_for_banner("127.0.0.1", http_port, time.monotonic() + 0.3, poll_s=0.05)


def test_a_port_that_accepts_ends_the_wait_when_no_banner_is_expected(http_port: int) -> None:
    assert (
        wait_for_banner("127.0.0.1", http_port, time.monotonic() + 5, poll_s=0.05, expect=b"") < 5
    )


def test_a_cancelled_wait_stops_at_once() -> None:
    cancel = Cancel()
    cancel.set("SIGINT")
    started = time.monotonic()
    with pytest.raises(ScanInterrupted, match=r"interrupted \(SIGINT\)"):
        wait_for_banner("127.0.0.1", free_port(), started + 30, cancel, poll_s=0.05)
    assert time.monotonic() - started < 1


# --- wait_for_state ---------------------------------------------------------------------------


def described(state: str, code: int, reason: dict[str, str] | None = None) -> dict[str, Any]:
    instance: dict[str, Any] = {
        "InstanceId": INSTANCE,
        "State": {"Code": code, "Name": state},
        "PrivateIpAddress": "172.31.5.10",
    }
    if reason:
        instance["StateReason"] = reason
    return {"Reservations": [{"Instances": [instance]}]}


@pytest.fixture
def ec2() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def expect_describe(stubber: Stubber, response: dict[str, Any]) -> None:
    stubber.add_response("describe_instances", response, {"InstanceIds": [INSTANCE]})


def test_a_pending_instance_is_polled_until_it_runs(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    expect_describe(stubber, described("pending", 0))
    expect_describe(stubber, described("pending", 0))
    expect_describe(stubber, described("running", 16))
    instance = wait_for_state(client, INSTANCE, time.monotonic() + 10, poll_s=0.01)
    assert instance["State"]["Name"] == "running"
    assert instance["PrivateIpAddress"] == "172.31.5.10"


def test_an_instance_not_yet_visible_after_launch_is_waited_for(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "describe_instances",
        "InvalidInstanceID.NotFound",
        f"The instance ID '{INSTANCE}' does not exist",
    )
    expect_describe(stubber, described("running", 16))
    instance = wait_for_state(client, INSTANCE, time.monotonic() + 10, poll_s=0.01)
    assert instance["State"]["Name"] == "running"


def test_an_instance_that_terminates_while_booting_says_why(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    expect_describe(stubber, described("pending", 0))
    reason = {
        "Code": "Server.InternalError",
        "Message": "Server.InternalError: Internal error on launch",
    }
    expect_describe(stubber, described("terminated", 48, reason))
    with pytest.raises(AwsError) as raised:
        wait_for_state(client, INSTANCE, time.monotonic() + 10, poll_s=0.01)
    assert str(raised.value) == (
        f"{INSTANCE} went to terminated while booting: "
        "Server.InternalError: Internal error on launch"
    )


def test_an_instance_still_pending_at_the_deadline_is_an_error(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    expect_describe(stubber, described("pending", 0))
    expect_describe(stubber, described("pending", 0))
    now = iter([0.0, 100.0])
    with pytest.raises(AwsError, match=rf"^{INSTANCE} did not reach 'running' in time$"):
        wait_for_state(client, INSTANCE, 50.0, poll_s=0.01, clock=lambda: next(now))


def test_a_permission_error_during_the_wait_is_not_retried(ec2: tuple[Any, Stubber]) -> None:
    client, stubber = ec2
    stubber.add_client_error("describe_instances", "UnauthorizedOperation", "not authorized", 403)
    with pytest.raises(AwsError) as raised:
        wait_for_state(client, INSTANCE, time.monotonic() + 10, poll_s=0.01)
    assert str(raised.value).startswith(
        f"describing {INSTANCE}: access denied for ec2:DescribeInstances (UnauthorizedOperation)"
    )
