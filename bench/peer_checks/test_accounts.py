"""Peer of checks/linux/accounts.py: root's password, password hashes, sudo, the login user."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import testinfra.host


def _kind(field: str) -> str:
    """empty, locked, locked-hash, hash or disabled (as amiscan's ShadowEntry.kind)."""
    if field == "":
        return "empty"
    if field.startswith(("!", "*")):
        rest = field.lstrip("!*")
        return "locked-hash" if rest.startswith("$") or len(rest) == 13 else "locked"
    if field.startswith("$") or len(field) == 13:
        return "hash"
    return "disabled"


@pytest.fixture(scope="module")
def shadow(host: testinfra.host.Host, as_root: Callable[[], Any]) -> dict[str, str]:
    """user -> password field of /etc/shadow (read as root)."""
    with as_root():
        text = host.file("/etc/shadow").content_string
    entries = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) >= 2:
            entries[fields[0]] = fields[1]
    return entries


def test_linux_accounts_root_password(shadow: dict[str, str]) -> None:
    assert "root" in shadow, "root has no entry in /etc/shadow"
    assert _kind(shadow["root"]) not in {"empty", "hash"}, "root has a usable password"


def test_linux_accounts_passwords(shadow: dict[str, str]) -> None:
    usable = [u for u, f in shadow.items() if _kind(f) in {"empty", "hash"}]
    locked_hash = [u for u, f in shadow.items() if _kind(f) == "locked-hash"]
    assert not usable, f"empty password or hash: {usable}"
    assert not locked_hash, f"locked, but the hash is still stored: {locked_hash}"


def test_linux_accounts_sudo(host: testinfra.host.Host) -> None:
    with host.sudo():
        assert host.check_output("id -u") == "0"


def test_linux_accounts_default_user(host: testinfra.host.Host) -> None:
    assert host.user().name == "ec2-user"
