"""Simulating the scanner's first SYN against `firewall-cmd --list-all` zones.

Every table is judged for both scanner ranges' sample addresses, 10.0.0.1 (10.0.0.0/16) and
10.2.3.4 (10.2.0.0/16); expectations are (verdict for 10.0.0.1, verdict for 10.2.3.4).
"""

from __future__ import annotations

import pytest

from scanner.parsers.firewall.firewalld import evaluate_firewalld
from scanner.parsers.firewall.packet import SCANNER_NETWORKS
from scanner.parsers.firewall.walk import FirewallVerdict

SOURCES = ("10.0.0.1", "10.2.3.4")
BOTH = (True, True)
NEITHER = (False, False)
ONLY_FIRST = (True, False)


def firewalld(
    *,
    services: str = "dhcpv6-client ssh",
    ports: str = "",
    target: str = "default",
    rich: tuple[str, ...] = (),
    protocols: str = "",
) -> str:
    """`firewall-cmd --list-all` of the public zone as firewalld 1.x prints it."""
    lines = [
        "public (active)",
        f"  target: {target}",
        "  icmp-block-inversion: no",
        "  interfaces: eth0",
        "  sources: ",
        f"  services: {services}",
        f"  ports: {ports}",
        f"  protocols: {protocols}",
        "  forward: yes",
        "  masquerade: no",
        "  forward-ports: ",
        "  source-ports: ",
        "  icmp-blocks: ",
        "  rich rules: ",
        *(f"\t{text}" for text in rich),
    ]
    return "\n".join(lines) + "\n"


SSH_FROM_FIRST = 'rule family="ipv4" source address="10.0.0.0/16" service name="ssh" accept'
SSH_FROM_SECOND = 'rule family="ipv4" source address="10.2.0.0/16" service name="ssh" accept'

FIREWALLD_CASES = [
    pytest.param(firewalld(), BOTH, id="ssh-service-admits"),
    pytest.param(firewalld(services="dhcpv6-client cockpit"), NEITHER, id="no-ssh-service"),
    pytest.param(firewalld(services="", ports="22/tcp"), BOTH, id="port-22-tcp"),
    pytest.param(firewalld(services="", ports="20-30/tcp"), BOTH, id="port-range"),
    pytest.param(firewalld(services="", ports="22/udp 2222/tcp"), NEITHER, id="wrong-ports"),
    pytest.param(firewalld(services="", protocols="tcp"), BOTH, id="protocol-tcp"),
    pytest.param(firewalld(services="", target="ACCEPT"), BOTH, id="target-accept"),
    pytest.param(firewalld(services="", target="DROP"), NEITHER, id="target-drop"),
    pytest.param(firewalld(services="", target="%%REJECT%%"), NEITHER, id="target-reject"),
    pytest.param(
        firewalld(services="", rich=(SSH_FROM_FIRST,)), ONLY_FIRST, id="rich-accept-one-range"
    ),
    pytest.param(
        firewalld(services="", rich=(SSH_FROM_FIRST, SSH_FROM_SECOND)),
        BOTH,
        id="rich-accept-both-ranges",
    ),
    pytest.param(
        firewalld(
            rich=('rule family="ipv4" source address="10.2.0.0/16" service name="ssh" reject',)
        ),
        ONLY_FIRST,
        id="rich-reject-runs-before-services",
    ),
    pytest.param(
        firewalld(rich=('rule family="ipv4" source NOT address="10.0.0.0/16" drop',)),
        ONLY_FIRST,
        id="rich-not-address-drop",
    ),
    pytest.param(
        firewalld(
            services="",
            rich=(
                'rule family="ipv4" source address="10.0.0.0/8" drop',
                'rule priority="-10" family="ipv4" source address="10.0.0.0/16" port port="22"'
                ' protocol="tcp" accept',
            ),
        ),
        ONLY_FIRST,
        id="negative-priority-runs-first",
    ),
    pytest.param(
        firewalld(rich=('rule priority="5" family="ipv4" source address="10.0.0.0/8" reject',)),
        BOTH,
        id="positive-priority-runs-after-services",
    ),
    pytest.param(
        firewalld(
            services="",
            rich=(
                'rule family="ipv6" source address="::/0" service name="ssh" accept',
                'rule family="ipv4" service name="ssh" log prefix="ssh " level="info" limit'
                ' value="1/m"',
            ),
        ),
        NEITHER,
        id="ipv6-rule-and-log-only-rule-do-not-admit",
    ),
]


@pytest.mark.parametrize(("text", "expected"), FIREWALLD_CASES)
def test_firewalld_admits_the_scanner_ranges(
    text: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_firewalld(text, 22, source=source).admitted for source in SOURCES)
    assert got == expected


def test_firewalld_judges_both_scanner_networks_by_default() -> None:
    assert SCANNER_NETWORKS == ("10.0.0.0/16", "10.2.0.0/16")
    verdict = evaluate_firewalld(firewalld(), 22)
    assert verdict == FirewallVerdict(
        True, "zone public accepts tcp/22 from 10.0.0.0/16, 10.2.0.0/16", "service ssh"
    )


def test_firewalld_one_network_refused_refuses_and_names_it() -> None:
    verdict = evaluate_firewalld(firewalld(services="", rich=(SSH_FROM_FIRST,)), 22)
    assert verdict == FirewallVerdict(
        False, "zone public target default; no rule accepts tcp/22 from 10.2.0.0/16", ""
    )


def test_firewalld_policy_reason_names_the_zone_target() -> None:
    verdict = evaluate_firewalld(firewalld(services="cockpit"), 22, source="10.0.0.1")
    expected = "zone public target default; no rule accepts tcp/22 from 10.0.0.1"
    assert verdict == FirewallVerdict(False, expected, "")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        pytest.param(
            firewalld(services="", rich=('rule service name="ssh" accept limit value="3/m"',)),
            "rate limit",
            id="rate-limited-rich-accept",
        ),
        pytest.param(firewalld(services="my-ssh"), "my-ssh", id="unknown-service"),
        pytest.param(
            firewalld(services="", rich=('rule family="ipv4" source ipset="scanners" accept',)),
            "ipset",
            id="ipset-source",
        ),
        pytest.param(
            firewalld(
                services="",
                rich=('rule family="ipv4" source address="10.0.0.0/24" accept', SSH_FROM_SECOND),
            ),
            "covers only part of 10.0.0.0/16",
            id="rule-covering-part-of-a-range",
        ),
    ],
)
def test_firewalld_cannot_tell_and_names_why(text: str, named: str) -> None:
    verdict = evaluate_firewalld(text, 22)
    assert verdict.admitted is None
    assert named in verdict.reason


def test_firewalld_unknown_service_does_not_matter_when_ssh_is_allowed() -> None:
    assert evaluate_firewalld(firewalld(services="my-app ssh"), 22).admitted is True


def test_firewalld_not_running_filters_nothing() -> None:
    verdict = evaluate_firewalld("FirewallD is not running\n", 22)
    assert verdict.admitted is True


def test_firewalld_text_that_is_not_list_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="list-all"):
        evaluate_firewalld("  services: ssh\n", 22)
