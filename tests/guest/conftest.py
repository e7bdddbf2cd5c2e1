"""Fixtures of the real-guest tier: the cached Debian 12 image, a session key, timings.

Without QEMU or mmdebstrap the tier is skipped with the reason; with AMISCAN_REQUIRE_GUEST=1 (CI)
a missing prerequisite fails instead, so the tier can never silently not run.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.guest.image import GuestImage, ImageUnavailable, cached_image, ensure_image
from tests.guest.image import missing_build_tools as missing_build_packages
from tests.guest.vm import missing_boot_tools
from tests.sshd import generate_key

REQUIRE_ENV = "AMISCAN_REQUIRE_GUEST"
# Printed at the end of a run that used the guest: what the tier's time went on.
TIMINGS: dict[str, float] = {}
# Printed too: each check's status and summary on the clean guest, by path (live, offline), so a
# CI log shows what amiscan said of a real image next to what the tests held it to.
CLEAN_VERDICTS: dict[str, dict[str, tuple[str, str]]] = {}
# This conftest is imported while pytest collects, moments after the run starts.
_RUN_STARTED = time.monotonic()


def unavailable(message: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message}, and {REQUIRE_ENV}=1 forbids skipping", pytrace=False)
    pytest.skip(message)


def require_guest_tools() -> None:
    missing = set(missing_boot_tools())
    if cached_image() is None:
        missing |= set(missing_build_packages())
    if missing:
        unavailable(f"the real-guest tests need the Debian packages: {' '.join(sorted(missing))}")


@pytest.fixture(scope="session")
def guest_image(tmp_path_factory: pytest.TempPathFactory) -> GuestImage:
    """The cached image, built on first use (about a minute or two with a nearby mirror)."""
    require_guest_tools()
    started = time.monotonic()
    try:
        image = ensure_image(log=tmp_path_factory.mktemp("image") / "build.log")
    except ImageUnavailable as exc:
        unavailable(str(exc))
    TIMINGS["image (build or cache)"] = time.monotonic() - started
    return image


@dataclass(frozen=True)
class SessionKey:
    path: Path
    public: str


@pytest.fixture(scope="session")
def guest_key(tmp_path_factory: pytest.TempPathFactory) -> SessionKey:
    """ec2-user's key for this test session (given to the guest by its NoCloud seed)."""
    directory = tmp_path_factory.mktemp("key")
    _, public = generate_key(directory / "id_ed25519")
    return SessionKey(directory / "id_ed25519", public)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        TIMINGS["whole run"] = time.monotonic() - _RUN_STARTED
        terminalreporter.write_sep("-", "real-guest timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.0f} s")
    if CLEAN_VERDICTS:
        terminalreporter.write_sep("-", "the clean guest, check by check")
        checks = sorted({c for verdicts in CLEAN_VERDICTS.values() for c in verdicts})
        for check in checks:
            for path, verdicts in CLEAN_VERDICTS.items():
                status, summary = verdicts.get(check, ("-", ""))
                terminalreporter.write_line(f"{check} [{path}] {status}: {summary[:160]}")
