"""dpkg's version ordering and the apt metadata parsers."""

from __future__ import annotations

import pytest

from scanner.parsers.apt import (
    BadVersion,
    compare_versions,
    dependency_groups,
    parse_release,
    split_version,
    stanzas,
)

# (a, b, expected sign of compare(a, b)): Debian policy 5.6.12 and deb-version(7)'s examples.
ORDER = [
    ("1.0", "1.0", 0),
    ("1.0", "1.0-0", 0),  # an absent revision compares as an empty (= "0") one
    ("0:1.0", "1.0", 0),
    ("1:0.1", "9.9", 1),  # the epoch decides first
    ("1.0~rc1", "1.0", -1),  # ~ sorts before the end of the string
    ("1.0~~", "1.0~~a", -1),
    ("1.0~~a", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0", "1.0a", -1),  # the end sorts before a letter
    ("1.0a", "1.0+", -1),  # letters sort before non-letters
    ("1.0+", "1.0.", -1),  # non-letters by their code ('+' < '.')
    ("1.9", "1.10", -1),  # digit runs numerically
    ("1.010", "1.10", 0),  # leading zeros do not count
    ("1.0-1", "1.0-1.1", -1),
    ("1.0-9", "1.0-10", -1),
    ("2.6.1", "2.6.2", -1),
    ("3.0.20-1~deb12u2", "3.0.22-1~deb12u2", -1),
    ("1.5.4+dfsg2-5", "1.5.4+dfsg2-5+deb12u1", -1),
    ("20230311+deb12u1", "20250419~deb12u2", -1),
    ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", -1),
    ("2.30-1ubuntu1", "2.30-1ubuntu1.1", -1),
    ("1.2-3-4", "1.2-3-5", -1),  # the revision is after the last hyphen
    ("1.0-1~bpo12+1", "1.0-1", -1),
]


@pytest.mark.parametrize(("a", "b", "sign"), ORDER, ids=[f"{a} vs {b}" for a, b, _ in ORDER])
def test_versions_order_as_dpkg_orders_them(a: str, b: str, sign: int) -> None:
    def norm(n: int) -> int:
        return (n > 0) - (n < 0)

    assert norm(compare_versions(a, b)) == sign
    assert norm(compare_versions(b, a)) == -sign


@pytest.mark.parametrize("bad", ["", "a1.0", "x:1.0", "1.0 1", "1:", "-1"])
def test_versions_that_are_not_debian_versions_are_refused(bad: str) -> None:
    with pytest.raises(BadVersion):
        split_version(bad)


def test_split_version_names_epoch_upstream_and_revision() -> None:
    assert split_version("2:1.2-3-4") == (2, "1.2-3", "4")
    assert split_version("1.0") == (0, "1.0", "")


def test_stanzas_keep_the_wanted_fields_and_join_folded_lines() -> None:
    text = (
        b"Package: a\nVersion: 1\nDescription: x\n more\nDepends: b,\n c\n\n\n"
        b"package: d\nVERSION: 2\n"
    )
    found = list(
        stanzas(text.splitlines(keepends=True), frozenset({"Package", "Version", "Depends"}))
    )
    assert found == [
        {"Package": "a", "Version": "1", "Depends": "b, c"},
        {"Package": "d", "Version": "2"},
    ]


def test_release_header_of_a_clear_signed_inrelease() -> None:
    text = (
        "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\n"
        "Label: Debian-Security\nSuite: oldstable-security\nCodename: bookworm-security\n"
        "Date: Mon, 30 Nov 2026 00:22:33 UTC\nSHA256:\n abc 1 main/Suite: x\n"
        "-----BEGIN PGP SIGNATURE-----\nSuite: forged\n"
    )
    release = parse_release(text)
    assert (release.suite, release.codename, release.name) == (
        "oldstable-security",
        "bookworm-security",
        "bookworm-security",
    )
    assert release.security
    assert release.date is not None and release.date.date().isoformat() == "2026-11-30"


@pytest.mark.parametrize(
    ("header", "security"),
    [
        ("Suite: jammy-security\nCodename: jammy\n", True),
        ("Suite: jammy-updates\nCodename: jammy\n", False),
        ("Suite: stable\nCodename: bookworm\n", False),
        ("Label: Debian-Security\n", True),
    ],
)
def test_a_security_suite_ends_in_security(header: str, security: bool) -> None:
    assert parse_release(header).security is security


def test_dependency_groups_drop_versions_and_qualifiers() -> None:
    assert dependency_groups("libc6 (>= 2.34), a | b:any (<< 2) [amd64], c:amd64") == [
        ["libc6"],
        ["a", "b"],
        ["c"],
    ]
