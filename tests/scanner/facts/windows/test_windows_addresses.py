"""Whether a Windows Firewall RemoteAddress list admits both vetting ranges."""

from __future__ import annotations

import pytest

from scanner.facts.windows.addresses import VETTING_RANGES, coverage, overlaps

BOTH = ("10.0.0.0/16", "10.2.0.0/16")


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(["Any"], id="any"),
        pytest.param(["*"], id="star"),
        pytest.param(["10.0.0.0/8"], id="covering-cidr"),
        pytest.param(["10.0.0.0/255.0.0.0"], id="address-and-mask"),
        pytest.param(["10.0.0.0-10.255.255.255"], id="covering-range"),
        pytest.param(["10.0.0.0/16", "10.2.0.0/16"], id="exactly-both"),
        pytest.param(["10.0.0.0/255.254.0.0", "10.2.0.0-10.2.255.255"], id="mask-and-range"),
        pytest.param(["10.0.0.0/17", "10.0.128.0/17", "10.2.0.0/16"], id="halves-merge"),
        pytest.param(["10.0.0.0-10.0.127.255", "10.0.128.0-10.2.255.255"], id="adjacent-ranges"),
        pytest.param(["LocalSubnet", "10.0.0.0/14"], id="keyword-beside-a-cover"),
        pytest.param(["fe80::/64", "10.0.0.0/8"], id="ipv6-ignored"),
    ],
)
def test_lists_that_admit_both_vetting_ranges(entries: list[str]) -> None:
    found = coverage(entries)
    assert found.covers, found
    assert found.missing == ()


@pytest.mark.parametrize(
    ("entries", "missing"),
    [
        pytest.param(["LocalSubnet"], BOTH, id="local-subnet-is-unknowable"),
        pytest.param(["Intranet"], BOTH, id="intranet-keyword"),
        pytest.param(["10.0.0.0/16"], ("10.2.0.0/16",), id="only-the-first"),
        pytest.param(["10.2.0.0/16"], ("10.0.0.0/16",), id="only-the-second"),
        pytest.param(["10.0.0.0/17", "10.2.0.0/16"], ("10.0.0.0/16",), id="half-of-one"),
        pytest.param(["10.0.0.5", "10.2.0.5"], BOTH, id="single-addresses"),
        pytest.param(["192.168.0.0/16"], BOTH, id="elsewhere"),
        pytest.param([], BOTH, id="empty"),
        pytest.param(["not-an-address", "10.0.0.0-10.0.0"], BOTH, id="garbage"),
        pytest.param(["::/0"], BOTH, id="ipv6-any-is-not-ipv4"),
    ],
)
def test_lists_that_miss_a_vetting_range(entries: list[str], missing: tuple[str, ...]) -> None:
    found = coverage(entries)
    assert not found.covers
    assert found.missing == missing


def test_keywords_are_reported_as_unresolved() -> None:
    assert coverage(["LocalSubnet", "DNS", "10.0.0.0/16"]).unresolved == ("LocalSubnet", "DNS")


def test_the_vetting_ranges_are_those_of_the_catalog() -> None:
    assert VETTING_RANGES == BOTH


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        (["Any"], True),
        (["10.0.5.7"], True),
        (["10.1.0.0/16"], False),
        (["10.2.255.255-10.3.0.0"], True),
        (["LocalSubnet"], False),
        ([], False),
    ],
)
def test_overlap_tells_whether_a_block_rule_hits_vetting(
    entries: list[str], expected: bool
) -> None:
    assert overlaps(entries) is expected
