"""`amiscan dir:` on known-bad variants of the real Debian 12 tree: each mistake a seller makes
is caught offline by exactly its own check, and nothing else changes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.guest.image import GuestImage
from tests.guest.scan import Scan, run_amiscan
from tests.guest.variants import VariantTree
from tests.imagetree import PUBLIC_KEY, SHA512_HASH

pytestmark = pytest.mark.guest


@dataclass(frozen=True)
class Variant:
    name: str
    apply: Callable[[VariantTree], None]
    # The checks that must fail on it; every other check keeps the clean tree's status.
    checks: tuple[str, ...]


def _password_drop_in(tree: VariantTree) -> None:
    # Sorts before the image's own 60-cloud-image.conf: sshd keeps the first value it reads.
    tree.write("/etc/ssh/sshd_config.d/01-password.conf", "PasswordAuthentication yes\n")


def _root_login(tree: VariantTree) -> None:
    tree.replace(
        "/etc/ssh/sshd_config", "#PermitRootLogin prohibit-password", "PermitRootLogin yes"
    )


def _root_password(tree: VariantTree) -> None:
    tree.replace("/etc/shadow", "root:*:", f"root:{SHA512_HASH}:")


def _stray_key(tree: VariantTree) -> None:
    tree.write("/home/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)


def _root_history(tree: VariantTree) -> None:
    tree.write("/root/.bash_history", "apt-get install -y nginx\nhistory -c\n", mode=0o600)


VARIANTS = (
    Variant("password-drop-in", _password_drop_in, ("linux.ssh.password-authentication",)),
    Variant("permit-root-login", _root_login, ("linux.ssh.root-login",)),
    # A root password is also an account with a password.
    Variant(
        "root-password",
        _root_password,
        ("linux.accounts.root-password", "linux.accounts.passwords"),
    ),
    Variant("stray-authorized-key", _stray_key, ("linux.ssh.authorized-keys",)),
    Variant("root-shell-history", _root_history, ("linux.secrets.shell-history",)),
)


@pytest.fixture(scope="module")
def offline_scans(
    guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Scan]]:
    """The clean tree and every variant, scanned concurrently (offline scans take a second)."""
    reports = tmp_path_factory.mktemp("offline")
    scratch = Path(tempfile.mkdtemp(prefix=".variants-", dir=guest_image.directory.parent))
    trees: list[VariantTree] = []
    try:
        roots = {"clean": guest_image.root}
        for variant in VARIANTS:
            tree = VariantTree(guest_image.root, scratch / variant.name)
            trees.append(tree)
            variant.apply(tree)
            roots[variant.name] = tree.root
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures = {
                name: pool.submit(run_amiscan, f"dir:{root}", workdir=reports / name)
                for name, root in roots.items()
            }
            yield {name: future.result() for name, future in futures.items()}
    finally:
        for tree in trees:
            tree.remove()
        scratch.rmdir()


def test_the_clean_tree_fails_offline_only_on_its_pending_security_updates(
    offline_scans: dict[str, Scan],
) -> None:
    clean = offline_scans["clean"]
    statuses = clean.linux_statuses()
    assert not [c for c, s in statuses.items() if s == "error"], clean.results
    # The tree's own apt lists hold the security updates the build did not apply: the only fail.
    assert [c for c, s in statuses.items() if s == "fail"] == ["linux.packages.up-to-date"]
    assert (
        "per the image's apt lists fetched on"
        in clean.results["linux.packages.up-to-date"]["summary"]
    )
    # Live-only checks say why they cannot judge a tree, never pass for want of data.
    for check in ("linux.ssh.listening", "linux.accounts.sudo"):
        assert statuses[check] == "skip"
    assert clean.results["linux.accounts.default-user"]["summary"].endswith("ec2-user")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_each_mistake_fails_exactly_its_own_checks(
    offline_scans: dict[str, Scan], variant: Variant
) -> None:
    clean = offline_scans["clean"].linux_statuses()
    scan = offline_scans[variant.name]
    assert scan.returncode == 1, scan.stderr
    changed = {c: s for c, s in scan.linux_statuses().items() if s != clean[c]}
    assert changed == dict.fromkeys(variant.checks, "fail"), scan.stderr
    for check in variant.checks:
        assert scan.results[check]["evidence"], f"{check} failed without evidence"
