"""`amiscan ami-…` without usable AWS credentials, and with a profile that does not exist.

Subprocesses against the moto endpoint (so that even a credential found by mistake could only
reach loopback), with HOME an empty directory: no ~/.aws, no keys, no profile, no IMDS.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.aws import Moto, leftovers, register_image

# Everything the boto3 credential chain reads from the environment.
CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)


def without_credentials(moto: Moto, home: Path) -> dict[str, str]:
    env = moto.env()
    for name in CREDENTIAL_VARIABLES:
        env.pop(name, None)
    home.mkdir()
    env.update({"HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true"})
    env.pop("SSH_AUTH_SOCK", None)
    return env


def amiscan(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
        check=False,
    )


def test_missing_credentials_are_one_line_exit_3_and_the_report_is_written(
    moto: Moto, tmp_path: Path
) -> None:
    image = register_image(moto.client())
    env = without_credentials(moto, tmp_path / "home")
    report = tmp_path / "r.json"
    result = amiscan(image, "--json", str(report), "--no-html", env=env, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if "scan incomplete" in ln]
    assert line.startswith(f"amiscan: {image}: scan incomplete: describing {image}: ")
    assert "no usable AWS credentials (set AWS_PROFILE or --profile" in line
    data = json.loads(report.read_text())
    assert data["verdict"] == "error"
    assert "no usable AWS credentials" in data["errors"][0]
    assert "\n" not in data["errors"][0]
    assert leftovers(moto.client()) == {"instances": [], "security_groups": [], "key_pairs": []}


def test_a_profile_that_does_not_exist_is_bad_usage_exit_2(moto: Moto, tmp_path: Path) -> None:
    env = without_credentials(moto, tmp_path / "home")
    result = amiscan(
        "ami-0123456789abcdef0", "--profile", "nope", "--no-html", env=env, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "amiscan: error: starting an AWS session: The config profile (nope) could not be found"
    )


def test_the_environment_really_has_no_credentials(moto: Moto, tmp_path: Path) -> None:
    """Guards the two tests above: boto3 itself finds nothing in that environment."""
    env = without_credentials(moto, tmp_path / "home")
    probe = "import boto3; s = boto3.session.Session(); print(s.get_credentials() is None)"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
        cwd=tmp_path,
    )
    assert result.stdout.strip() == "True"
