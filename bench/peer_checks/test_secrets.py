"""Peer of checks/linux/secrets.py: shell histories, AWS credentials and private keys."""

from __future__ import annotations

import fnmatch
import re
import shlex
from collections.abc import Callable
from typing import Any

import pytest
import testinfra.host
from peer_support import Account

# The secret search, with amiscan's folders, size cap, patterns and limits
# (scanner/facts/linux/secrets.py): files under 2 MiB, at most 20 matching lines per file, down
# to depth 257, not crossing file systems, grep's own binary test; the homes of accounts that can
# log in are searched too when they lie outside these folders and outside system directories.
SEARCH_DIRS = ("/root", "/home", "/etc", "/opt", "/srv", "/usr/local")
SKIPPED_HOMES = (
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib64",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/empty",
    "/nonexistent",
)
GREP_PATTERN = (
    r"(AKIA|ASIA)[A-Z0-9]{16}"
    r"|-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
    r"|[Aa][Ww][Ss]_[Ss][Ee][Cc][Rr][Ee][Tt]_[Aa][Cc][Cc][Ee][Ss][Ss]_[Kk][Ee][Yy]"
)
ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
SECRET_KEY = re.compile(
    r"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
# Bundled runtimes and packages (documentation, test fixtures): amiscan warns, never passes.
BUNDLED = (
    "/site-packages/",
    "/dist-packages/",
    "/node_modules/",
    "/vendor/",
    "/test/",
    "/tests/",
    "/testdata/",
    "/.pyenv/",
    "/.rbenv/",
    "/.nvm/",
    "/.cargo/registry/",
    "/go/pkg/mod/",
)


def _outside_searched(home: str) -> bool:
    home = home.rstrip("/") or "/"
    covered = (*SEARCH_DIRS, *SKIPPED_HOMES)
    return home != "/" and not any(home == d or home.startswith(d + "/") for d in covered)


@pytest.fixture(scope="module")
def secret_matches(
    host: testinfra.host.Host, as_root: Callable[[], Any], accounts: list[Account]
) -> list[tuple[str, str, str]]:
    """(path, kind, line) of every secret-looking line: one find | xargs grep, as root."""
    homes = [a.home for a in accounts if a.can_log_in and _outside_searched(a.home)]
    tops = " ".join(shlex.quote(d) for d in dict.fromkeys([*SEARCH_DIRS, *homes]))
    command = (
        f"find {tops} -xdev -maxdepth 257 -type f -size -2048k -print0 2>/dev/null"
        f" | xargs -0 -r grep -IHnZE -m 20 -e {shlex.quote(GREP_PATTERN)} 2>/dev/null"
        " | cut -c1-4712"
    )
    with as_root():
        output = host.run(command).stdout
    found = []
    for record in output.splitlines():
        path, sep, rest = record.partition("\0")
        number, _, line = rest.partition(":")
        if not sep or not number.isdigit():
            continue
        if any("EXAMPLE" not in key for key in ACCESS_KEY.findall(line)):
            found.append((path, "aws-access-key-id", line))
        if SECRET_KEY.search(line):
            found.append((path, "aws-secret-access-key", line))
        if PRIVATE_KEY.search(line):
            found.append((path, "private-key", line))
    return found


def _bundled(path: str) -> bool:
    return any(part in path for part in BUNDLED)


_CREDENTIAL_KEY = re.compile(
    r"(?im)^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token)\s*="
)


def test_linux_secrets_aws_credentials(
    host: testinfra.host.Host,
    as_root: Callable[[], Any],
    homes: list[str],
    secret_matches: list[tuple[str, str, str]],
) -> None:
    in_files = []
    with as_root():
        for home in homes:
            for name in ("credentials", "config"):
                file = host.file(f"{home}/.aws/{name}")
                if file.exists and _CREDENTIAL_KEY.search(file.content_string):
                    in_files.append(file.path)
    assert not in_files, f"AWS credentials in {in_files}"
    keys = [m for m in secret_matches if m[1].startswith("aws-")]
    assert not [m for m in keys if not _bundled(m[0])], "AWS keys baked into the image"
    assert not keys, "AWS key ids inside bundled packages (confirm none is real)"


def test_linux_secrets_private_keys(secret_matches: list[tuple[str, str, str]]) -> None:
    keys = [
        m
        for m in secret_matches
        if m[1] == "private-key" and not fnmatch.fnmatchcase(m[0], "/etc/ssh/ssh_host_*_key")
    ]
    assert not [m for m in keys if not _bundled(m[0])], "private keys baked into the image"
    assert not keys, "private keys inside bundled packages (confirm none is used)"


HISTORY_NAMES = (".*history", ".*_history", ".lesshst", ".viminfo")


def test_linux_secrets_shell_history(
    host: testinfra.host.Host, as_root: Callable[[], Any], homes: list[str]
) -> None:
    non_empty = []
    with as_root():
        for home in homes:
            try:
                names = host.file(home).listdir()
            except AssertionError:  # not a directory
                continue
            paths = [
                f"{home}/{n}" for n in names if any(fnmatch.fnmatch(n, p) for p in HISTORY_NAMES)
            ]
            paths.append(f"{home}/.local/share/fish/fish_history")
            for path in paths:
                file = host.file(path)
                if file.is_file and file.size > 0:
                    non_empty.append(path)
    assert not non_empty, f"non-empty histories: {non_empty}"
