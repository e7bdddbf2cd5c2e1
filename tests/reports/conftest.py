"""Shared report fixtures: a small scan with every status, and guest strings that break views."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from scanner.model import (
    Evidence,
    Phase,
    Policy,
    Report,
    Result,
    Severity,
    Status,
    TargetInfo,
    Verdict,
)

SCRIPT_TAG = "<script>alert(1)</script>"
ATTRIBUTE_BREAKOUT = '"><img src=x onerror=alert(1)>'
TEMPLATE_INJECTION = "{{7*7}}"
BACKTICKS = "```` four ` one `` two"
PIPE = "a | b"
CONTROL = "nul\x00 esc\x1b[31mred\x1b[0m"
REPLACEMENT = "bad bytes: \ufffd\ufffd"
LONG_LINE = "x" * 20_000

# Every hostile string above in one evidence text, one per line.
HOSTILE_TEXT = "\n".join(
    [
        SCRIPT_TAG,
        ATTRIBUTE_BREAKOUT,
        TEMPLATE_INJECTION,
        BACKTICKS,
        PIPE,
        CONTROL,
        REPLACEMENT,
        LONG_LINE,
    ]
)

POLICY = Policy(
    "S2",
    "https://docs.aws.amazon.com/marketplace/latest/userguide/product-and-ami-policies.html",
    "Root login with a password must be disabled.",
)


def result(
    id: str = "linux.ssh.root-login",
    status: Status = Status.PASS,
    severity: Severity = Severity.CRITICAL,
    **overrides: Any,
) -> Result:
    """A result with plausible metadata; override any field."""
    fields: dict[str, Any] = {
        "id": id,
        "title": f"Title of {id}",
        "severity": severity,
        "status": status,
        "summary": f"{id} is {status.value}",
        "evidence": (),
        "remediation": f"Fix {id}.",
        "policy": POLICY,
        "rationale": f"Why {id} matters.",
        "duration_s": 0.125,
    }
    fields.update(overrides)
    return Result(**fields)


def report(results: tuple[Result, ...], **overrides: Any) -> Report:
    """A report around `results`; override any field."""
    fields: dict[str, Any] = {
        "amiscan_version": "0.1.0",
        "target": TargetInfo(
            kind="ec2",
            id="ami-0123456789abcdef0",
            platform="linux",
            details={
                "name": "my-product-1.2",
                "region": "us-east-1",
                "architecture": "x86_64",
                "instance_type": "t3.micro",
                "login_user": "ec2-user",
                "host_key_verification": "pinned from console output",
                "volumes": [8, 16],
                "ena_support": True,
            },
        ),
        "started_at": "2024-05-01T12:00:00+00:00",
        "finished_at": "2024-05-01T12:01:30+00:00",
        "duration_s": 90.5,
        "verdict": Verdict.FAIL,
        "results": results,
        "phases": (Phase("launch", 42.0), Phase("collect", 1.25), Phase("judge", 0.01)),
        "notes": ("SSH host key pinned from the console output.",),
        "collection": {"round_trips": 1, "transport": "ssh"},
        "catalog_version": "2024.05",
    }
    fields.update(overrides)
    return Report(**fields)


def mixed_results() -> tuple[Result, ...]:
    """One result per status, a waived fail, and hostile guest strings where guests reach."""
    return (
        result("image.architecture", Status.PASS, Severity.CRITICAL),
        result(
            "linux.ssh.root-login",
            Status.FAIL,
            Severity.CRITICAL,
            summary=f"PermitRootLogin yes {SCRIPT_TAG} {PIPE}",
            evidence=(
                Evidence("/etc/ssh/sshd_config:12", "PermitRootLogin yes"),
                Evidence("sshd -T", HOSTILE_TEXT),
            ),
        ),
        result(
            "linux.accounts.passwords",
            Status.WARN,
            Severity.HIGH,
            summary=f"locked hash for {ATTRIBUTE_BREAKOUT}",
            evidence=(Evidence("/etc/shadow", f"user:!$6$abc:{TEMPLATE_INJECTION}"),),
        ),
        result("linux.accounts.sudo", Status.SKIP, Severity.HIGH, summary="offline target"),
        result(
            "linux.packages.up-to-date",
            Status.ERROR,
            Severity.HIGH,
            summary=f"dnf failed: {CONTROL}",
            evidence=(Evidence("dnf updateinfo", CONTROL),),
        ),
        result(
            "image.region",
            Status.FAIL,
            Severity.LOW,
            summary="AMI is in eu-west-1",
            waived=True,
            waiver={"reason": "copied at release", "expires": "2099-01-01", "approver": "alice"},
        ),
    )


@pytest.fixture
def mixed_report() -> Report:
    """A failed scan with every status, a waiver and hostile evidence."""
    return report(mixed_results())


@pytest.fixture
def make_result() -> Callable[..., Result]:
    return result


@pytest.fixture
def make_report() -> Callable[..., Report]:
    return report


@pytest.fixture
def hostile() -> dict[str, str]:
    """The hostile guest strings by name (each also appears in `mixed_report`)."""
    return {
        "script": SCRIPT_TAG,
        "attribute": ATTRIBUTE_BREAKOUT,
        "template": TEMPLATE_INJECTION,
        "backticks": BACKTICKS,
        "pipe": PIPE,
        "control": CONTROL,
        "replacement": REPLACEMENT,
        "long_line": LONG_LINE,
    }
