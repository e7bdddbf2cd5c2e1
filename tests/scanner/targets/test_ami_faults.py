"""AMI scans under injected faults: whatever fails, nothing is left behind and the report says why.

In-process against moto (`mock_aws`) and a real OpenSSH sshd listening on the loopback subnet's
addresses. Faults are AWS error responses returned from a `before-call` hook on the scanner's own
EC2 client, so botocore raises them exactly as it raises a real AWS error. Cleanup's retry pauses
run on a virtual clock (each pause is a minute of it) so a ten-minute retry budget ends at once.
"""

from __future__ import annotations

import base64
import functools
import getpass
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

import scanner.aws.session as aws_session
import scanner.targets.ami as ami
import scanner.targets.ami_linux as ami_linux
from reports import json_report
from scanner.aws.resources import ScanResources
from scanner.aws.sweep import sweep
from scanner.cancel import Cancel
from scanner.cli import EXIT_INCOMPLETE, EXIT_PASS, exit_code
from scanner.model import Status, Verdict
from scanner.orchestrate import Outcome, scan_one
from scanner.registry import Check, load_checks
from scanner.targets.base import ScanOptions
from scanner.transports.ssh import fingerprint
from tests.aws import (
    LOOPBACK_HOSTS,
    REGION,
    CloudInitEmulator,
    leftovers,
    loopback_subnet,
    register_image,
)
from tests.conftest import SshdFactory
from tests.sshd import SshdServer, free_port

LISTEN_ON_SUBNET = "\n".join(f"ListenAddress {host}" for host in LOOPBACK_HOSTS)
NOTHING_LEFT = {"instances": [], "security_groups": [], "key_pairs": []}
# The image checks and one live check: enough to prove the login and the collection happened.
CHECK_IDS = ("image.", "linux.ssh.authorized-keys")


def _checks() -> list[Check]:
    return [c for i, c in sorted(load_checks().items()) if i.startswith(CHECK_IDS)]


def _aws_message(operation: str, code: str) -> str:
    """What AWS says for the code, as it says it (UnauthorizedOperation with its encoded blob)."""
    messages = {
        "UnauthorizedOperation": (
            "You are not authorized to perform this operation. User: "
            "arn:aws:iam::123456789012:user/ci-image-builder is not authorized to perform: "
            f"ec2:{operation} because no identity-based policy allows the ec2:{operation} action. "
            "Encoded authorization failure message: 4GIOHlTkIaWHQD0Q0m6XSnuUMCm-2Hkq7C_zBfu1Y"
        ),
        "InsufficientInstanceCapacity": (
            "We currently do not have sufficient t3.micro capacity in the Availability Zone you "
            "requested (us-east-1a). Our system will be working on provisioning additional "
            "capacity."
        ),
        "Unsupported": (
            "The requested configuration is currently not supported. Please check the "
            "documentation for supported configurations."
        ),
        "InvalidInstanceID.NotFound": "The instance ID 'i-0abc' does not exist",
        "RequestLimitExceeded": "Request limit exceeded.",
        "DependencyViolation": "resource sg-0abc has a dependent object",
        "InternalError": "An internal error has occurred",
    }
    return messages[code]


@dataclass
class Fault:
    """Answers `times` calls of an EC2 operation with an AWS error (times=None: until lifted)."""

    operation: str
    code: str
    times: int | None = 1
    calls: int = 0
    lifted: bool = False

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.lifted or (self.times is not None and self.calls >= self.times):
            return None  # the real call goes ahead
        self.calls += 1
        status = 500 if self.code == "InternalError" else 400
        return AWSResponse(None, status, {}, None), {
            "Error": {"Code": self.code, "Message": _aws_message(self.operation, self.code)},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }


@dataclass
class Replace:
    """Answers every call of an EC2 operation with a given (successful) response."""

    operation: str
    response: Callable[[], dict[str, Any]]
    calls: int = 0

    def __call__(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        self.calls += 1
        return AWSResponse(None, 200, {}, None), self.response()


@dataclass
class Injector:
    """Hooks handlers into every EC2 client the AMI target creates."""

    hooks: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)
    after_hooks: list[tuple[str, Callable[..., Any]]] = field(default_factory=list)
    clients: list[Any] = field(default_factory=list)

    def add(self, hook: Fault | Replace) -> None:
        self.on(hook.operation, hook)

    def on(self, operation: str, handler: Callable[..., Any]) -> None:
        """Call `handler` before each `operation`; a None answer lets the real call go ahead."""
        self.hooks.append((operation, handler))

    def on_after(self, operation: str, handler: Callable[..., Any]) -> None:
        """Call `handler` with the parsed response after each `operation`."""
        self.after_hooks.append((operation, handler))

    def wrap(self, real: Callable[[Any], Any], session: Any) -> Any:
        client = real(session)
        for operation, handler in self.hooks:
            client.meta.events.register(f"before-call.ec2.{operation}", handler)
        for operation, handler in self.after_hooks:
            client.meta.events.register(f"after-call.ec2.{operation}", handler)
        self.clients.append(client)
        return client


class VirtualClock:
    """Cleanup's clock: a retry pause takes 10 ms of real time and a minute of this one."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, _seconds: float) -> None:
        time.sleep(0.01)
        self.now += 60.0


# Each scan builds a boto3 session, which reparses the EC2 model and the endpoint data (~1.5 s);
# sharing the parsed data between scans keeps these tests fast and changes nothing they judge.
_SHARED_LOADER = botocore.loaders.create_loader()
_known_regions = functools.cache(aws_session.known_regions)


@pytest.fixture(autouse=True)
def _fast_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    real = aws_session.make_session

    def make_session(profile: str | None, region: str | None) -> Any:
        session = real(profile, region)
        session._session.register_component("data_loader", _SHARED_LOADER)
        return session

    monkeypatch.setattr(aws_session, "known_regions", _known_regions)
    monkeypatch.setattr(aws_session, "make_session", make_session)


@pytest.fixture
def ec2(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    # moto would otherwise build ~1,200 public AMIs (with volumes and snapshots) for each test.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        session._session.register_component("data_loader", _SHARED_LOADER)
        yield session.client("ec2")


@pytest.fixture
def inject(monkeypatch: pytest.MonkeyPatch) -> Injector:
    injector = Injector()
    monkeypatch.setattr(ami, "ec2_client", functools.partial(injector.wrap, ami.ec2_client))
    virtual = VirtualClock()
    monkeypatch.setattr(
        ami,
        "ScanResources",
        functools.partial(ScanResources, sleep=virtual.sleep, clock=virtual.clock),
    )
    return injector


@pytest.fixture
def server(sshd_factory: SshdFactory) -> SshdServer:
    # No key installed: only the key pair the scan imports works, once "cloud-init" installs it.
    return sshd_factory(LISTEN_ON_SUBNET, authorized="")


def authorized_file(server: SshdServer) -> Path:
    return server.config_path.parent / "authorized" / server.user


def options(subnet: str | None, port: int, **overrides: Any) -> ScanOptions:
    settings: dict[str, Any] = {
        "region": REGION,
        "subnet_id": subnet,
        "address": "private",
        "scan_port": port,
        "user": getpass.getuser(),
        "poll_interval_s": 0.05,
        "host_key_wait_s": 0.0,
        "connect_timeout_s": 20.0,
        "known_hosts": None,
        **overrides,
    }
    return ScanOptions(**settings)


def scan(
    ec2: Any,
    image: str,
    scan_options: ScanOptions,
    cloud_init_for: SshdServer | None = None,
    cancel: Cancel | None = None,
) -> Outcome:
    """One AMI scan as `amiscan` runs it; cloud-init installs the launch key into that sshd."""
    with ExitStack() as stack:
        if cloud_init_for is not None:
            stack.enter_context(CloudInitEmulator(ec2, authorized_file(cloud_init_for)))
        target = ami.AmiTarget(image, scan_options)
        return scan_one(target, _checks(), scan_options, cancel or Cancel(), lambda _: None)


def assert_one_clear_line(message: str, *fragments: str) -> None:
    assert "\n" not in message, message
    assert "Traceback" not in message, message
    assert "Encoded authorization failure message" not in message, message
    for fragment in fragments:
        assert fragment in message, message


def assert_incomplete(outcome: Outcome, *fragments: str) -> None:
    """Exit 3: the report renders, its verdict is error, and its first error says why."""
    report = outcome.report
    assert not outcome.usage_error
    assert report.verdict is Verdict.ERROR
    assert exit_code(report) == EXIT_INCOMPLETE
    assert report.errors, report
    assert_one_clear_line(report.errors[0], *fragments)
    written = json.loads(json_report.dumps(report))
    assert (written["verdict"], written["errors"][0]) == ("error", report.errors[0])


# --- every AWS call failing aborts the scan, cleanly ------------------------------------------

ACCESS_DENIED = "UnauthorizedOperation"

ABORTING = [
    pytest.param(
        Fault("DescribeImages", ACCESS_DENIED),
        True,
        ("describing ami-", "access denied for ec2:DescribeImages (UnauthorizedOperation)"),
        id="DescribeImages",
    ),
    pytest.param(
        Fault("DescribeVpcs", ACCESS_DENIED),
        False,
        ("finding a subnet", "access denied for ec2:DescribeVpcs (UnauthorizedOperation)"),
        id="DescribeVpcs",
    ),
    pytest.param(
        Fault("DescribeSubnets", ACCESS_DENIED),
        False,
        ("finding a subnet", "access denied for ec2:DescribeSubnets (UnauthorizedOperation)"),
        id="DescribeSubnets-default-vpc",
    ),
    pytest.param(
        Fault("DescribeSubnets", ACCESS_DENIED),
        True,
        ("finding a subnet", "access denied for ec2:DescribeSubnets (UnauthorizedOperation)"),
        id="DescribeSubnets-subnet-id",
    ),
    pytest.param(
        Fault("ImportKeyPair", ACCESS_DENIED),
        True,
        ("importing the temporary key pair", "ec2:ImportKeyPair (UnauthorizedOperation)"),
        id="ImportKeyPair",
    ),
    pytest.param(
        Fault("CreateSecurityGroup", ACCESS_DENIED),
        True,
        (
            "creating the temporary security group",
            "ec2:CreateSecurityGroup (UnauthorizedOperation)",
        ),
        id="CreateSecurityGroup",
    ),
    pytest.param(
        Fault("AuthorizeSecurityGroupIngress", ACCESS_DENIED),
        True,
        (
            "opening the scan port in the security group",
            "ec2:AuthorizeSecurityGroupIngress (UnauthorizedOperation)",
        ),
        id="AuthorizeSecurityGroupIngress",
    ),
    pytest.param(
        Fault("RunInstances", ACCESS_DENIED),
        True,
        ("launching the instance", "access denied for ec2:RunInstances (UnauthorizedOperation)"),
        id="RunInstances-UnauthorizedOperation",
    ),
    pytest.param(
        Fault("RunInstances", "InsufficientInstanceCapacity"),
        True,
        ("launching the instance", "no capacity for this instance type", "--instance-type"),
        id="RunInstances-InsufficientInstanceCapacity",
    ),
    pytest.param(
        Fault("RunInstances", "Unsupported"),
        True,
        (
            "launching the instance: Unsupported: The requested configuration is currently "
            "not supported",
            "(try --instance-type)",
        ),
        id="RunInstances-Unsupported",
    ),
    pytest.param(
        Fault("DescribeInstances", ACCESS_DENIED, times=1),
        True,
        ("describing i-", "access denied for ec2:DescribeInstances (UnauthorizedOperation)"),
        id="DescribeInstances-during-the-wait",
    ),
]


@pytest.mark.parametrize(("fault", "with_subnet_id", "fragments"), ABORTING)
def test_a_failing_aws_call_aborts_with_one_line_and_leaves_nothing(
    ec2: Any,
    inject: Injector,
    server: SshdServer,
    fault: Fault,
    with_subnet_id: bool,
    fragments: tuple[str, ...],
) -> None:
    image = register_image(ec2)
    subnet = loopback_subnet(ec2)
    fault = replace(fault)  # a fresh call count on every run
    inject.add(fault)
    outcome = scan(ec2, image, options(subnet if with_subnet_id else None, server.port), server)
    assert fault.calls == 1
    assert_incomplete(outcome, *fragments)
    # The checks that could not run say why instead of passing.
    never_ran = [r for r in outcome.report.results if r.status is Status.ERROR]
    assert any(r.id == "linux.ssh.authorized-keys" for r in never_ran)
    assert leftovers(ec2) == NOTHING_LEFT


def test_an_instance_that_was_launched_is_terminated_when_a_later_call_fails(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    inject.add(Fault("DescribeInstances", ACCESS_DENIED, times=1))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert_incomplete(outcome, "DescribeInstances")
    instance_id = outcome.report.target.details["instance_id"]
    (instance,) = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"]
    assert instance["State"]["Name"] == "terminated"
    # Its console output is the first clue to what went wrong.
    assert "Linux version" in outcome.report.target.details["console_output"]


def test_an_instance_whose_launch_answer_was_lost_is_found_by_tag_and_terminated(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    launched: list[str] = []

    def lose_the_answer(parsed: dict[str, Any], **_: Any) -> None:
        # RunInstances succeeded in AWS, but its response never reached the scanner.
        launched.append(parsed["Instances"][0]["InstanceId"])
        raise ConnectionResetError("connection reset while reading the RunInstances response")

    inject.on_after("RunInstances", lose_the_answer)
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert outcome.report.verdict is Verdict.ERROR
    assert launched, "the instance was never launched"
    (instance,) = ec2.describe_instances(InstanceIds=launched)["Reservations"][0]["Instances"]
    assert instance["State"]["Name"] == "terminated"
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_subnet_id_that_does_not_exist_is_bad_input_and_leaves_nothing(
    ec2: Any, inject: Injector
) -> None:
    image = register_image(ec2)
    outcome = scan(ec2, image, options("subnet-0123456789abcdef0", free_port()))
    assert outcome.usage_error
    assert_one_clear_line(outcome.report.errors[0], "finding a subnet", "InvalidSubnetID.NotFound")
    assert leftovers(ec2) == NOTHING_LEFT


# --- faults the scan survives -------------------------------------------------------------------

TOLERATED = [
    pytest.param(
        Fault("DescribeInstances", "InvalidInstanceID.NotFound", times=3),
        id="DescribeInstances-not-yet-visible-after-launch",
    ),
    pytest.param(Fault("GetConsoleOutput", ACCESS_DENIED, times=None), id="GetConsoleOutput"),
    pytest.param(Fault("GetEbsEncryptionByDefault", ACCESS_DENIED), id="GetEbsEncryptionByDefault"),
    pytest.param(Fault("TerminateInstances", "RequestLimitExceeded"), id="TerminateInstances-once"),
    pytest.param(
        Fault("DeleteSecurityGroup", "DependencyViolation"), id="DeleteSecurityGroup-once"
    ),
    pytest.param(Fault("DeleteKeyPair", "InternalError"), id="DeleteKeyPair-once"),
]


@pytest.mark.parametrize("fault", TOLERATED)
def test_a_tolerable_fault_still_completes_the_scan_and_leaves_nothing(
    ec2: Any, inject: Injector, server: SshdServer, fault: Fault
) -> None:
    image = register_image(ec2)
    fault = replace(fault)  # a fresh call count on every run
    inject.add(fault)
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert fault.calls >= 1
    report = outcome.report
    assert report.errors == ()
    assert report.verdict is Verdict.PASS
    assert exit_code(report) == EXIT_PASS
    assert report.target.details["login_user"] == server.user
    assert report.target.details["cleanup"] == (
        "terminated the instance; deleted the security group and key pair"
    )
    assert leftovers(ec2) == NOTHING_LEFT


def test_without_console_output_the_host_key_is_trusted_on_first_use_and_the_report_says_so(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    inject.add(Fault("GetConsoleOutput", ACCESS_DENIED, times=None))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    verification = outcome.report.target.details["host_key_verification"]
    assert verification.startswith("trusted on first use")
    assert fingerprint(server.host_key) in verification


def test_an_unreadable_ebs_default_is_a_note_and_the_image_is_judged_alone(
    ec2: Any, inject: Injector
) -> None:
    image = register_image(ec2)
    inject.add(Fault("GetEbsEncryptionByDefault", ACCESS_DENIED))
    outcome = scan(ec2, image, options(None, 22, no_launch=True, no_snapshot=True))
    report = outcome.report
    assert report.verdict is Verdict.PASS
    (note,) = [n for n in report.notes if "EBS encryption default" in n]
    assert_one_clear_line(
        note,
        "reading the EBS encryption default",
        "ec2:GetEbsEncryptionByDefault (UnauthorizedOperation)",
        "judged the image alone",
    )
    by_id = {r.id: r for r in report.results}
    assert by_id["image.snapshots-unencrypted"].status is Status.PASS
    # The instance checks were not selected to run, by design: skipped, saying why.
    instance_checks = [r for r in report.results if not r.id.startswith("image.")]
    assert instance_checks
    assert {r.status for r in instance_checks} == {Status.SKIP}
    assert all(r.summary.startswith("--no-launch") for r in instance_checks)


# --- cleanup that cannot finish ---------------------------------------------------------------


def test_a_security_group_that_cannot_be_deleted_is_an_error_and_amiscan_cleanup_removes_it(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    fault = Fault("DeleteSecurityGroup", "DependencyViolation", times=None)
    inject.add(fault)
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    group = leftovers(ec2)["security_groups"]
    assert len(group) == 1
    assert fault.calls > 1  # retried before giving up
    assert_incomplete(
        outcome,
        "cleanup incomplete",
        f"deleting security group {group[0]}: DependencyViolation",
        f"amiscan cleanup --region {REGION}",
    )
    # The scan itself ran: the results are judged, only the cleanup is incomplete.
    assert all(r.status is Status.PASS for r in outcome.report.results)
    assert leftovers(ec2) == {"instances": [], "security_groups": group, "key_pairs": []}

    fault.lifted = True
    (client,) = inject.clients
    swept = sweep(client, poll_s=0.01)
    assert swept.problems == []
    assert [(d.kind, d.id) for d in swept.deleted] == [("security-group", group[0])]
    assert leftovers(ec2) == NOTHING_LEFT


# --- an instance that cannot be reached or logged in to ---------------------------------------


@contextmanager
def silent_listener() -> Iterator[int]:
    """A port on every subnet address that accepts connections and never says a word."""
    with ExitStack() as stack:
        port = 0
        for host in LOOPBACK_HOSTS:
            sock = stack.enter_context(socket.socket())
            sock.bind((host, port))
            sock.listen(16)
            port = sock.getsockname()[1]
        yield port


def test_connection_refused_at_the_ssh_port_is_exit_3_with_the_console_output(
    ec2: Any, inject: Injector
) -> None:
    image = register_image(ec2)
    outcome = scan(ec2, image, options(loopback_subnet(ec2), free_port(), connect_timeout_s=0.5))
    assert_incomplete(outcome, "never became reachable (connection refused)")
    assert "Linux version" in outcome.report.target.details["console_output"]
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_port_that_never_greets_times_out_as_exit_3_with_the_console_output(
    ec2: Any, inject: Injector
) -> None:
    image = register_image(ec2)
    with silent_listener() as port:
        outcome = scan(ec2, image, options(loopback_subnet(ec2), port, connect_timeout_s=0.5))
    assert_incomplete(outcome, "never became reachable (timed out)")
    assert "Linux version" in outcome.report.target.details["console_output"]
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_login_that_never_succeeds_is_exit_3_with_the_console_output(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    # sshd answers, but no cloud-init ever installs the launch key.
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port, connect_timeout_s=1.0))
    assert_incomplete(outcome, "permission denied (publickey)", server.user)
    assert "Linux version" in outcome.report.target.details["console_output"]
    assert leftovers(ec2) == NOTHING_LEFT


# --- the host key, pinned from the console output ----------------------------------------------


def _console_listing(*fingerprints: str) -> Callable[[], dict[str, Any]]:
    text = "\n".join(
        [
            "[    4.210000] cloud-init[1021]: Cloud-init v. 23.4 running 'modules:final'",
            "<14>Nov 27 10:00:00 cloud-init: #############################################",
            "<14>Nov 27 10:00:00 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            *(
                f"<14>Nov 27 10:00:00 cloud-init: 256 {f} root@ip-127-0-0-4 (ED25519)"
                for f in fingerprints
            ),
            "<14>Nov 27 10:00:00 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
            "",
        ]
    )
    # botocore base64-decodes Output after the call, as it does for AWS's answer.
    encoded = base64.b64encode(text.encode()).decode()
    return lambda: {"InstanceId": "i-0abc", "Output": encoded, "Timestamp": "2026-11-27T10:00:00Z"}


def test_the_host_key_listed_in_the_console_output_is_pinned(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    inject.add(Replace("GetConsoleOutput", _console_listing(fingerprint(server.host_key))))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert outcome.report.verdict is Verdict.PASS, outcome.report.errors
    verification = outcome.report.target.details["host_key_verification"]
    assert verification.startswith("pinned from the console output")
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_host_key_other_than_the_console_lists_refuses_the_login_and_leaves_nothing(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    listed = "SHA256:" + "A" * 43
    inject.add(Replace("GetConsoleOutput", _console_listing(listed)))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert_incomplete(outcome, "host key mismatch", fingerprint(server.host_key), listed)
    assert leftovers(ec2) == NOTHING_LEFT


# --- SIGINT/SIGTERM (the main thread sets the scan's Cancel) -----------------------------------


def test_a_signal_during_the_wait_cleans_up_and_the_report_says_interrupted(
    ec2: Any, inject: Injector, server: SshdServer
) -> None:
    image = register_image(ec2)
    cancel = Cancel()
    # The first DescribeInstances is the wait for "running": the signal arrives during it.
    inject.on("DescribeInstances", lambda **_: cancel.set("SIGINT"))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server, cancel)
    assert_incomplete(outcome, "interrupted (SIGINT)")
    assert "terminated" in [p.name for p in outcome.report.phases]
    assert "logged in" not in [p.name for p in outcome.report.phases]
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_signal_during_the_collection_cleans_up_and_the_report_says_interrupted(
    ec2: Any, inject: Injector, server: SshdServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = register_image(ec2)
    real_scan_live = ami_linux.scan_live

    def collect_then_signal(run: Any, *args: Any) -> None:
        run.cancel.set("SIGTERM")
        real_scan_live(run, *args)

    monkeypatch.setattr(ami_linux, "scan_live", collect_then_signal)
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    assert_incomplete(outcome, "interrupted (SIGTERM)")
    assert "logged in" in [p.name for p in outcome.report.phases]
    assert leftovers(ec2) == NOTHING_LEFT


@pytest.mark.parametrize(("cidr", "warned"), [("0.0.0.0/0", True), ("127.0.0.1/32", False)])
def test_a_wide_allow_cidr_is_said_in_the_report(
    ec2: Any, inject: Injector, server: SshdServer, cidr: str, warned: bool
) -> None:
    image = register_image(ec2)
    scan_options = options(loopback_subnet(ec2), server.port, allow_cidr=cidr)
    outcome = scan(ec2, image, scan_options, server)
    assert outcome.report.target.details["ingress"].startswith(cidr)
    assert any("opens the scan port" in note for note in outcome.report.notes) is warned
    assert leftovers(ec2) == NOTHING_LEFT


# --- the snapshot, read while the instance boots ------------------------------------------------


def _snapshot_of(tmp_path: Path, stray_key: bool) -> str:
    from tests.aws import ebs_client_like
    from tests.diskimages import make_ext4, make_gpt_disk, upload_snapshot
    from tests.imagetree import PUBLIC_KEY, build_compliant

    tree = build_compliant(tmp_path / "root")
    if stray_key:
        tree.write("/home/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)
    disk = make_gpt_disk(make_ext4(tree.root, tmp_path / "root.ext4"), tmp_path / "disk.img")
    return upload_snapshot(ebs_client_like(boto3.client("ec2", region_name=REGION)), disk)


def test_an_unreachable_instance_still_reports_what_the_snapshot_judged(
    ec2: Any, inject: Injector, tmp_path: Path
) -> None:
    image = register_image(ec2, snapshot_id=_snapshot_of(tmp_path, stray_key=True))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), free_port(), connect_timeout_s=0.5))
    report = outcome.report
    keys = {r.id: r for r in report.results}["linux.ssh.authorized-keys"]
    assert keys.status is Status.FAIL
    assert keys.summary.startswith("judged from the AMI's snapshot")
    # The failure found is the verdict; why the live scan stopped is still said.
    assert report.verdict is Verdict.FAIL
    assert "never became reachable" in report.errors[0]
    assert any("judged from the AMI's snapshot instead" in n for n in report.notes)
    assert leftovers(ec2) == NOTHING_LEFT


def test_a_clean_snapshot_does_not_turn_an_unreachable_instance_into_a_pass(
    ec2: Any, inject: Injector, tmp_path: Path
) -> None:
    image = register_image(ec2, snapshot_id=_snapshot_of(tmp_path, stray_key=False))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), free_port(), connect_timeout_s=0.5))
    keys = {r.id: r for r in outcome.report.results}["linux.ssh.authorized-keys"]
    assert keys.status is Status.PASS
    assert keys.summary.startswith("judged from the AMI's snapshot")
    assert_incomplete(outcome, "never became reachable")


def test_a_live_scan_that_completes_keeps_its_own_results(
    ec2: Any, inject: Injector, server: SshdServer, tmp_path: Path
) -> None:
    # The snapshot holds a stray key; the launched instance (this sshd) does not.
    image = register_image(ec2, snapshot_id=_snapshot_of(tmp_path, stray_key=True))
    outcome = scan(ec2, image, options(loopback_subnet(ec2), server.port), server)
    keys = {r.id: r for r in outcome.report.results}["linux.ssh.authorized-keys"]
    assert keys.status is Status.PASS
    assert not keys.summary.startswith("judged from")
    assert outcome.report.verdict is Verdict.PASS
