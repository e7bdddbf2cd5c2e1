"""Shared fixtures: a real sshd on loopback, and an environment that can never reach AWS."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sshd import SshdServer, start_sshd

# Fixtures for a local moto server (tests/aws.py).
pytest_plugins = ["tests.aws"]

# CI sets this: a disk-image test skipped because a tool (mkfs.xfs, sgdisk, qemu-img,
# cryptsetup…) is not installed fails instead, so CI never silently skips them.
REQUIRE_DISK_TOOLS_ENV = "AMISCAN_REQUIRE_DISK_TOOLS"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        report.skipped
        and os.environ.get(REQUIRE_DISK_TOOLS_ENV) == "1"
        and "not installed" in str(report.longrepr)
    ):
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_DISK_TOOLS_ENV}=1, but: {report.longrepr}"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS endpoint: fake credentials, no profile, no IMDS."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


SshdFactory = Callable[..., SshdServer]


@pytest.fixture
def sshd_factory(tmp_path: Path) -> Iterator[SshdFactory]:
    """Start real sshd servers (stopped by PID at teardown), logging in as the current user."""
    started: list[SshdServer] = []

    def start(
        extra_config: str = "", authorized: str | None = None, name: str = "sshd"
    ) -> SshdServer:
        server = start_sshd(tmp_path / name, getpass.getuser(), extra_config, authorized)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sshd_server(sshd_factory: SshdFactory) -> SshdServer:
    return sshd_factory()
