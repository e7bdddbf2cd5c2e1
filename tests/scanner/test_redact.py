"""Secrets never reach a report: what redaction masks, and what it leaves readable."""

from __future__ import annotations

import pytest

from scanner.redact import MASK, clip, redact

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("aws_access_key_id = AKIAIOSFODNN7ABCDEFG", "IOSFODNN7ABC", "AKIAIOSF"),
        (f"aws_secret_access_key = {SECRET_KEY}", SECRET_KEY, "aws_secret_access_key = "),
        (f"export AWS_SECRET_ACCESS_KEY={SECRET_KEY}", SECRET_KEY, "export AWS_SECRET_ACCESS_KEY="),
        ("root:$6$saltsalt$hashhashhash:19000:0:99999:7:::", "saltsalt$hashhashhash", "root:$6$"),
        ("deploy:!$y$j9T$abc$def:19000::::::", "j9T$abc$def", "deploy:!$y$"),
        ('DB_PASSWORD="hunter2hunter2"', "hunter2hunter2", "DB_PASSWORD="),
        (
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAA",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
        ),
        (
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF0\n-----END PGP PRIVATE KEY BLOCK-----",
            "lQOYBF0",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----",
        ),
    ],
)
def test_secrets_are_masked_and_their_context_kept(text: str, hidden: str, kept: str) -> None:
    masked = redact(text)
    assert hidden not in masked
    assert kept in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "PasswordAuthentication yes",
        "PermitRootLogin prohibit-password",
        "root:*:19000:0:99999:7:::",
        "listening on 0.0.0.0:22",
    ],
)
def test_ordinary_evidence_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_clip_cuts_long_lines_with_an_ellipsis() -> None:
    assert clip("x" * 1000, 10) == "x" * 9 + "…"
    assert clip("short") == "short"


@pytest.mark.parametrize(
    "text",
    [
        "root has an empty password: anyone can log in as root",
        "empty password: root, admin; password hash: bob",
        "accounts with no password: deploy, builder",
    ],
)
def test_account_names_a_check_reports_are_not_taken_for_passwords(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "text", ["password: hunter2hunter2", "no_password=hunter2hunter2", "empty password=hunter2"]
)
def test_a_key_that_holds_a_password_is_still_masked(text: str) -> None:
    assert MASK in redact(text)
