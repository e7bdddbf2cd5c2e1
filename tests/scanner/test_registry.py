"""The plug-in registry: built-in and third-party checks arrive through one entry-point group."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.facts.base import FactFailed, Facts, FactUnavailable, Mode, ScanContext
from scanner.fs import MemoryTree
from scanner.model import Outcome, Platform, Policy, Severity, Status
from scanner.registry import Check, RegistryError, check, load_checks, select_checks
from tests.plugins import PLUGIN_MODULE, install_plugin

CATALOG_LINUX_IDS = {
    "linux.ssh.password-authentication",
    "linux.ssh.root-login",
    "linux.ssh.authorized-keys",
    "linux.ssh.listening",
    "linux.ssh.host-keys",
    "linux.accounts.root-password",
    "linux.accounts.passwords",
    "linux.accounts.sudo",
    "linux.accounts.default-user",
    "linux.os.supported",
    "linux.packages.up-to-date",
    "linux.secrets.shell-history",
    "linux.secrets.aws-credentials",
    "linux.secrets.private-keys",
    "linux.filesystem.unencrypted",
    "linux.cloud-init.clean",
}


@pytest.fixture
def plugin_site(tmp_path: Path) -> Iterator[Path]:
    site = install_plugin(tmp_path / "site")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("acme_checks", None)


def test_every_linux_check_of_the_catalog_is_registered() -> None:
    assert set(load_checks()) >= CATALOG_LINUX_IDS


def test_an_installed_third_party_check_is_loaded_beside_the_built_in_ones(
    plugin_site: Path,
) -> None:
    checks = load_checks()
    assert "acme.motd.internal-hosts" in checks
    assert checks["acme.motd.internal-hosts"].source == "acme_checks"
    assert set(checks) >= CATALOG_LINUX_IDS


def test_a_plugin_reusing_a_built_in_id_is_an_error_naming_both(tmp_path: Path) -> None:
    body = PLUGIN_MODULE.replace('id="acme.motd.internal-hosts"', 'id="linux.ssh.root-login"')
    site = install_plugin(tmp_path / "dupe", body=body, name="dupe_checks")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        with pytest.raises(RegistryError, match=r"linux\.ssh\.root-login.*registered twice"):
            load_checks()
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("dupe_checks", None)


def test_a_plugin_that_fails_to_import_is_named_in_the_error(tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "broken", body="import does_not_exist\n", name="broken_checks")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        with pytest.raises(RegistryError, match=r"broken_checks.*does_not_exist"):
            load_checks()
    finally:
        sys.path.remove(str(site))


def _dummy(check_id: str, platform: Platform = Platform.LINUX) -> Check:
    @check(
        id=check_id,
        title="t",
        severity=Severity.LOW,
        platform=platform,
        policy=Policy("X", "https://example.com"),
        rationale="r",
        remediation="m",
    )
    def judge(facts: Facts) -> Outcome:
        return Outcome(Status.PASS, "ok")

    return judge


def test_selection_by_prefix_and_skip() -> None:
    available = {
        c.id: c for c in (_dummy("linux.ssh.a"), _dummy("linux.ssh.b"), _dummy("linux.os.c"))
    }
    chosen = select_checks(available, only=["linux.ssh"], skip=["linux.ssh.b"])
    assert [c.id for c in chosen] == ["linux.ssh.a"]


def test_selecting_an_unknown_id_is_an_error() -> None:
    available = {"linux.ssh.a": _dummy("linux.ssh.a")}
    with pytest.raises(KeyError, match=r"linux\.nope"):
        select_checks(available, only=["linux.nope"])


@pytest.mark.parametrize("bad", ["Linux.SSH", "nodots", "linux..x", "linux.ssh.", "linux ssh"])
def test_check_ids_must_be_dotted_lowercase_words(bad: str) -> None:
    with pytest.raises(ValueError):
        _dummy(bad)


def _facts() -> Facts:
    return Facts(MemoryTree(), ScanContext(mode=Mode.OFFLINE, target_kind="dir"))


@pytest.mark.parametrize(
    ("raised", "status"),
    [(FactUnavailable("not here"), Status.SKIP), (FactFailed("broke"), Status.ERROR)],
)
def test_missing_facts_become_skip_and_broken_facts_become_error(
    raised: Exception, status: Status
) -> None:
    @check(
        id="t.raises.fact",
        title="t",
        severity=Severity.LOW,
        platform=Platform.LINUX,
        policy=Policy("X", "https://example.com"),
        rationale="r",
        remediation="m",
    )
    def judge(facts: Facts) -> Outcome:
        raise raised

    outcome = judge.run(_facts())
    assert outcome.status is status
    assert outcome.summary == str(raised)
