"""Simulating the scanner's first SYN against iptables, nftables, firewalld and ufw rules.

Every table is judged for both scanner ranges' sample addresses, 10.0.0.1 (10.0.0.0/16) and
10.2.3.4 (10.2.0.0/16); expectations are (verdict for 10.0.0.1, verdict for 10.2.3.4).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scanner.parsers.firewall import (
    SCANNER_NETWORKS,
    FirewallVerdict,
    evaluate_firewalld,
    evaluate_iptables,
    evaluate_nftables,
    evaluate_ufw,
)

SOURCES = ("10.0.0.1", "10.2.3.4")
BOTH = (True, True)
NEITHER = (False, False)
UNKNOWN = (None, None)
ONLY_FIRST = (True, False)


# --- iptables -----------------------------------------------------------------------------------


def ipt(*rules: str, policy: str = "DROP") -> str:
    """An `iptables -S` dump whose INPUT chain has `policy` and `rules`."""
    header = [f"-P INPUT {policy}", "-P FORWARD DROP", "-P OUTPUT ACCEPT"]
    return "\n".join([*header, *rules]) + "\n"


ACCEPT_SSH = "-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT"

IPTABLES_CASES = [
    pytest.param("", BOTH, id="empty-ruleset-admits"),
    pytest.param(ipt(policy="ACCEPT"), BOTH, id="no-rules-policy-accept-admits"),
    pytest.param(ipt(), NEITHER, id="no-rules-policy-drop-refuses"),
    pytest.param(ipt(ACCEPT_SSH), BOTH, id="dport-22-accept-admits"),
    pytest.param(ipt("-A INPUT -p tcp -m tcp --dport 2222 -j ACCEPT"), NEITHER, id="other-port"),
    pytest.param(ipt("-A INPUT -p udp -m udp --dport 22 -j ACCEPT"), NEITHER, id="udp-not-tcp"),
    pytest.param(ipt("-A INPUT -p all -j ACCEPT"), BOTH, id="protocol-all-admits"),
    pytest.param(ipt("-A INPUT -p 6 --dport 22 -j ACCEPT"), BOTH, id="protocol-by-number"),
    pytest.param(
        ipt("-A INPUT -s 10.0.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT"),
        ONLY_FIRST,
        id="source-network-admits-only-addresses-inside",
    ),
    pytest.param(
        ipt("-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT"),
        BOTH,
        id="source-network-covering-both-ranges",
    ),
    pytest.param(
        ipt("-A INPUT ! -s 10.0.0.0/16 -j DROP", ACCEPT_SSH),
        ONLY_FIRST,
        id="negated-source-drop-spares-the-range",
    ),
    pytest.param(
        ipt("-A INPUT -s ! 10.2.0.0/16 -j ACCEPT"),
        ONLY_FIRST,
        id="old-style-negation-after-the-option",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with tcp-reset", ACCEPT_SSH),
        NEITHER,
        id="reject-before-accept-refuses",
    ),
    pytest.param(
        ipt(ACCEPT_SSH, "-A INPUT -p tcp -m tcp --dport 22 -j DROP"),
        BOTH,
        id="first-matching-rule-wins",
    ),
    pytest.param(
        ipt(ACCEPT_SSH, "-A INPUT -j REJECT --reject-with icmp-host-prohibited", policy="ACCEPT"),
        BOTH,
        id="accept-before-catch-all-reject",
    ),
    pytest.param(
        ipt("-A INPUT -j REJECT --reject-with icmp-host-prohibited", ACCEPT_SSH, policy="ACCEPT"),
        NEITHER,
        id="catch-all-reject-before-accept",
    ),
    pytest.param(
        ipt("-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"),
        NEITHER,
        id="related-established-state-does-not-admit-new",
    ),
    pytest.param(
        ipt("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
        NEITHER,
        id="related-established-ctstate-does-not-admit-new",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp --dport 22 -m conntrack --ctstate NEW,ESTABLISHED -j ACCEPT"),
        BOTH,
        id="ctstate-new-admits",
    ),
    pytest.param(
        ipt("-A INPUT -m conntrack --ctstate INVALID -j DROP", ACCEPT_SSH),
        BOTH,
        id="invalid-drop-does-not-hit-a-new-syn",
    ),
    pytest.param(
        ipt("-A INPUT -m conntrack ! --ctstate INVALID -j ACCEPT"),
        BOTH,
        id="negated-ctstate-invalid-admits",
    ),
    pytest.param(ipt("-A INPUT -i lo -j ACCEPT"), NEITHER, id="loopback-accept-not-eth0"),
    pytest.param(ipt("-A INPUT ! -i lo -j ACCEPT"), BOTH, id="negated-loopback-admits-eth0"),
    pytest.param(ipt("-A INPUT -i eth+ -j ACCEPT"), BOTH, id="interface-wildcard-admits"),
    pytest.param(ipt("-A INPUT -i ens+ -j ACCEPT"), NEITHER, id="other-interface-wildcard"),
    pytest.param(
        ipt("-A INPUT -p tcp -m multiport --dports 80,443,20:25 -j ACCEPT"),
        BOTH,
        id="multiport-range-admits",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m multiport --dports 80,443,2200:2299 -j ACCEPT"),
        NEITHER,
        id="multiport-without-the-port",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m multiport ! --dports 22 -j DROP", "-A INPUT -j ACCEPT"),
        BOTH,
        id="negated-multiport-drop-spares-the-port",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --dport 20:30 -j ACCEPT"), BOTH, id="dport-range-admits"
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --dport :1023 -j ACCEPT"), BOTH, id="open-ended-range"
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --dport 22 --syn -j ACCEPT"), BOTH, id="syn-flag-matches"
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp ! --syn -j DROP", "-A INPUT -j ACCEPT"),
        BOTH,
        id="not-syn-drop-spares-the-syn",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --tcp-flags SYN,ACK SYN --dport 22 -j ACCEPT"),
        BOTH,
        id="tcp-flags-syn-without-ack",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --tcp-flags ALL NONE -j DROP", "-A INPUT -j ACCEPT"),
        BOTH,
        id="null-scan-drop-spares-the-syn",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --sport 1024:65535 --dport 22 -j ACCEPT"),
        BOTH,
        id="ephemeral-source-ports-admit",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp -m tcp --sport 53 -j ACCEPT"), NEITHER, id="privileged-sport"
    ),
    pytest.param(
        ipt("-A INPUT ! -i lo -d 127.0.0.0/8 -j REJECT", ACCEPT_SSH),
        BOTH,
        id="loopback-destination-rule-does-not-hit",
    ),
    pytest.param(
        ipt("-A INPUT -m addrtype --dst-type LOCAL -p tcp --dport 22 -j ACCEPT"),
        BOTH,
        id="addrtype-local-destination",
    ),
    pytest.param(
        ipt("-A INPUT -m iprange --src-range 10.0.0.0-10.0.255.255 -j ACCEPT"),
        ONLY_FIRST,
        id="iprange-source",
    ),
    pytest.param(
        ipt(
            '-A INPUT -m comment --comment "allow ssh -- from anywhere" -p tcp --dport 22 -j ACCEPT'
        ),
        BOTH,
        id="comment-is-ignored",
    ),
    pytest.param(
        ipt('-A INPUT -j LOG --log-prefix "-- in: "', ACCEPT_SSH),
        BOTH,
        id="log-continues",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp --dport 22"),
        NEITHER,
        id="rule-without-target-only-counts",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), IPTABLES_CASES)
def test_iptables_admits_the_scanner_ranges(
    rules: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_iptables(rules, source, 22).admitted for source in SOURCES)
    assert got == expected


USER_CHAIN_CASES = [
    pytest.param(
        ipt("-N SSH", "-A INPUT -p tcp --dport 22 -j SSH", "-A SSH -s 10.0.0.0/16 -j ACCEPT"),
        ONLY_FIRST,
        id="jump-into-user-chain-accepts",
    ),
    pytest.param(
        ipt(
            "-N SSH",
            "-A INPUT -p tcp --dport 22 -j SSH",
            "-A INPUT -j ACCEPT",
            "-A SSH -s 10.2.0.0/16 -j RETURN",
            "-A SSH -j DROP",
        ),
        (False, True),
        id="return-resumes-the-caller",
    ),
    pytest.param(
        ipt("-N EMPTY", "-A INPUT -j EMPTY", ACCEPT_SSH),
        BOTH,
        id="end-of-user-chain-returns",
    ),
    pytest.param(
        ipt("-N LATER", "-A INPUT -g LATER", ACCEPT_SSH, "-A LATER -s 10.2.0.0/16 -j DROP"),
        (False, False),
        id="goto-falls-through-to-the-policy-not-the-caller",
    ),
    pytest.param(
        ipt("-N LATER", "-A INPUT -g LATER", "-A LATER -s 10.0.0.0/16 -j ACCEPT", policy="DROP"),
        ONLY_FIRST,
        id="goto-chain-accepts",
    ),
    pytest.param(
        ipt("-A INPUT -j RETURN", ACCEPT_SSH),
        NEITHER,
        id="return-from-input-applies-the-policy",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), USER_CHAIN_CASES)
def test_iptables_follows_user_chains(
    rules: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_iptables(rules, source, 22).admitted for source in SOURCES)
    assert got == expected


UNKNOWN_CASES = [
    pytest.param(
        ipt("-A INPUT -p tcp --dport 22 -m limit --limit 5/min -j ACCEPT"),
        UNKNOWN,
        "limit",
        id="rate-limited-accept",
    ),
    pytest.param(
        ipt("-A INPUT -m set --match-set blocklist src -j DROP", policy="ACCEPT"),
        UNKNOWN,
        "set",
        id="ipset-drop",
    ),
    pytest.param(
        ipt("-A INPUT -d 172.31.5.10/32 -p tcp --dport 22 -j ACCEPT"),
        UNKNOWN,
        "instance's own address",
        id="destination-is-the-instance-address",
    ),
    pytest.param(
        ipt("-A INPUT -p tcp --dport 22 -j NFQUEUE --queue-num 1"),
        UNKNOWN,
        "userspace",
        id="nfqueue",
    ),
    pytest.param(
        ipt("-A INPUT -j MISSING"),
        UNKNOWN,
        "MISSING",
        id="undefined-target",
    ),
    pytest.param(
        ipt('-A INPUT -m comment --comment "unbalanced -j ACCEPT'),
        UNKNOWN,
        "cannot be read",
        id="unreadable-rule",
    ),
]


@pytest.mark.parametrize(("rules", "expected", "named"), UNKNOWN_CASES)
def test_iptables_cannot_tell_and_names_why(
    rules: str, expected: tuple[bool | None, bool | None], named: str
) -> None:
    for source in SOURCES:
        verdict = evaluate_iptables(rules, source, 22)
        assert verdict.admitted is None
        assert named in verdict.reason
        assert verdict.deciding_rule.startswith("-A INPUT")


@pytest.mark.parametrize(
    "rules",
    [
        pytest.param(
            ipt("-A INPUT -p tcp --dport 22 -j DROP", "-A INPUT -m limit -j ACCEPT"),
            id="a-rule-that-already-decided",
        ),
        pytest.param(
            ipt("-A INPUT -m set --match-set friends src -j DROP"), id="both-outcomes-refuse"
        ),
        pytest.param(
            ipt("-A INPUT -m limit --limit 3/min -j LOG --log-prefix x", "-A INPUT -j DROP"),
            id="unknown-module-on-a-log-rule",
        ),
    ],
)
def test_iptables_unknown_module_does_not_matter_when_it_cannot_change_the_verdict(
    rules: str,
) -> None:
    assert [evaluate_iptables(rules, source, 22).admitted for source in SOURCES] == [False, False]


def test_iptables_a_rule_decides_with_its_text_and_chain() -> None:
    verdict = evaluate_iptables(ipt(ACCEPT_SSH), "10.0.0.1", 22)
    assert verdict == FirewallVerdict(True, "INPUT accepts tcp/22 from 10.0.0.1", ACCEPT_SSH)


def test_iptables_the_policy_decides_without_a_rule() -> None:
    verdict = evaluate_iptables(ipt("-A INPUT -i lo -j ACCEPT"), "10.0.0.1", 22)
    expected = "INPUT policy DROP; no rule accepts tcp/22 from 10.0.0.1"
    assert verdict == FirewallVerdict(False, expected, "")


def test_iptables_reject_is_reported_as_reject() -> None:
    rule = "-A INPUT -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable"
    verdict = evaluate_iptables(ipt(rule), "10.2.3.4", 22)
    assert verdict == FirewallVerdict(False, "INPUT rejects tcp/22 from 10.2.3.4", rule)


def test_iptables_a_network_source_is_admitted_only_when_all_of_it_is() -> None:
    rules = ipt("-A INPUT -s 10.0.0.0/24 -j ACCEPT")
    verdict = evaluate_iptables(rules, "10.0.0.0/16", 22)
    assert verdict.admitted is None
    assert "covers only part of 10.0.0.0/16" in verdict.reason
    assert evaluate_iptables(ipt("-A INPUT -s 10.0.0.0/8 -j ACCEPT"), "10.0.0.0/16", 22).admitted


def test_iptables_a_port_other_than_22_is_simulated() -> None:
    rules = ipt("-A INPUT -p tcp --dport 2222 -j ACCEPT")
    assert evaluate_iptables(rules, "10.0.0.1", 2222).admitted is True
    assert evaluate_iptables(rules, "10.0.0.1", 22).admitted is False


def test_iptables_udp_is_simulated_when_asked() -> None:
    rules = ipt("-A INPUT -p udp -m udp --dport 53 -j ACCEPT")
    assert evaluate_iptables(rules, "10.0.0.1", 53, protocol="udp").admitted is True
    assert evaluate_iptables(rules, "10.0.0.1", 53).admitted is False


def test_iptables_the_interface_is_a_parameter() -> None:
    rules = ipt("-A INPUT -i ens5 -j ACCEPT")
    assert evaluate_iptables(rules, "10.0.0.1", 22, in_interface="ens5").admitted is True
    assert evaluate_iptables(rules, "10.0.0.1", 22).admitted is False


IPTABLES_SAVE = """\
# Generated by iptables-save v1.8.7 on Tue Mar  5 10:12:01 2024
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 22 -j RETURN
COMMIT
# Completed on Tue Mar  5 10:12:01 2024
*filter
:INPUT DROP [12:720]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [40:3100]
:SSH-IN - [0:0]
[100:6000] -A INPUT -i lo -j ACCEPT
[5000:400000] -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
[3:180] -A INPUT -p tcp -m tcp --dport 22 -j SSH-IN
[3:180] -A SSH-IN -s 10.0.0.0/16 -j ACCEPT
[0:0] -A SSH-IN -s 10.2.0.0/16 -j ACCEPT
COMMIT
# Completed on Tue Mar  5 10:12:01 2024
"""


def test_iptables_save_format_reads_only_the_filter_table() -> None:
    for source in SOURCES:
        verdict = evaluate_iptables(IPTABLES_SAVE, source, 22)
        assert verdict.admitted is True
        assert verdict.reason == f"SSH-IN accepts tcp/22 from {source}"


def test_iptables_save_chain_policy_is_read_from_the_colon_line() -> None:
    dump = IPTABLES_SAVE.replace("[3:180] -A INPUT -p tcp -m tcp --dport 22 -j SSH-IN\n", "")
    verdict = evaluate_iptables(dump, "10.0.0.1", 22)
    assert verdict.admitted is False
    assert verdict.reason.startswith("INPUT policy DROP;")


# `iptables -S` of an active ufw (Ubuntu 22.04, logging low), without user rules.
UFW_IPTABLES = """\
-P INPUT DROP
-P FORWARD DROP
-P OUTPUT ACCEPT
-N ufw-after-forward
-N ufw-after-input
-N ufw-after-logging-forward
-N ufw-after-logging-input
-N ufw-after-logging-output
-N ufw-after-output
-N ufw-before-forward
-N ufw-before-input
-N ufw-before-logging-forward
-N ufw-before-logging-input
-N ufw-before-logging-output
-N ufw-before-output
-N ufw-logging-allow
-N ufw-logging-deny
-N ufw-not-local
-N ufw-reject-forward
-N ufw-reject-input
-N ufw-reject-output
-N ufw-skip-to-policy-forward
-N ufw-skip-to-policy-input
-N ufw-skip-to-policy-output
-N ufw-track-forward
-N ufw-track-input
-N ufw-track-output
-N ufw-user-forward
-N ufw-user-input
-N ufw-user-limit
-N ufw-user-limit-accept
-N ufw-user-logging-forward
-N ufw-user-logging-input
-N ufw-user-logging-output
-N ufw-user-output
-A INPUT -j ufw-before-logging-input
-A INPUT -j ufw-before-input
-A INPUT -j ufw-after-input
-A INPUT -j ufw-after-logging-input
-A INPUT -j ufw-reject-input
-A INPUT -j ufw-track-input
-A FORWARD -j ufw-before-logging-forward
-A FORWARD -j ufw-before-forward
-A FORWARD -j ufw-after-forward
-A FORWARD -j ufw-after-logging-forward
-A FORWARD -j ufw-reject-forward
-A FORWARD -j ufw-track-forward
-A OUTPUT -j ufw-before-logging-output
-A OUTPUT -j ufw-before-output
-A OUTPUT -j ufw-after-output
-A OUTPUT -j ufw-after-logging-output
-A OUTPUT -j ufw-reject-output
-A OUTPUT -j ufw-track-output
-A ufw-after-input -p udp -m udp --dport 137 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 138 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 139 -j ufw-skip-to-policy-input
-A ufw-after-input -p tcp -m tcp --dport 445 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 67 -j ufw-skip-to-policy-input
-A ufw-after-input -p udp -m udp --dport 68 -j ufw-skip-to-policy-input
-A ufw-after-input -m addrtype --dst-type BROADCAST -j ufw-skip-to-policy-input
-A ufw-after-logging-forward -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-after-logging-input -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-before-forward -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-forward -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-forward -j ufw-user-forward
-A ufw-before-input -i lo -j ACCEPT
-A ufw-before-input -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-input -m conntrack --ctstate INVALID -j ufw-logging-deny
-A ufw-before-input -m conntrack --ctstate INVALID -j DROP
-A ufw-before-input -p icmp -m icmp --icmp-type 3 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 11 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 12 -j ACCEPT
-A ufw-before-input -p icmp -m icmp --icmp-type 8 -j ACCEPT
-A ufw-before-input -p udp -m udp --sport 67 --dport 68 -j ACCEPT
-A ufw-before-input -j ufw-not-local
-A ufw-before-input -d 224.0.0.251/32 -p udp -m udp --dport 5353 -j ACCEPT
-A ufw-before-input -d 239.255.255.250/32 -p udp -m udp --dport 1900 -j ACCEPT
-A ufw-before-input -j ufw-user-input
-A ufw-before-output -o lo -j ACCEPT
-A ufw-before-output -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A ufw-before-output -j ufw-user-output
-A ufw-logging-allow -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW ALLOW] "
-A ufw-logging-deny -m conntrack --ctstate INVALID -m limit --limit 3/min --limit-burst 10 -j RETURN
-A ufw-logging-deny -m limit --limit 3/min --limit-burst 10 -j LOG --log-prefix "[UFW BLOCK] "
-A ufw-not-local -m addrtype --dst-type LOCAL -j RETURN
-A ufw-not-local -m addrtype --dst-type MULTICAST -j RETURN
-A ufw-not-local -m addrtype --dst-type BROADCAST -j RETURN
-A ufw-not-local -m limit --limit 3/min --limit-burst 10 -j ufw-logging-deny
-A ufw-not-local -j DROP
-A ufw-skip-to-policy-forward -j DROP
-A ufw-skip-to-policy-input -j DROP
-A ufw-skip-to-policy-output -j ACCEPT
-A ufw-track-output -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-track-output -p udp -m conntrack --ctstate NEW -j ACCEPT
-A ufw-user-limit -m limit --limit 3/min -j LOG --log-prefix "[UFW LIMIT BLOCK] "
-A ufw-user-limit -j REJECT --reject-with icmp-port-unreachable
-A ufw-user-limit-accept -j ACCEPT
"""

UFW_ALLOW_22 = "-A ufw-user-input -p tcp -m tcp --dport 22 -j ACCEPT\n"
UFW_ALLOW_OPENSSH = (
    "-A ufw-user-input -p tcp -m tcp --dport 22 -m comment --comment \"'dapp_OpenSSH'\" -j ACCEPT\n"
)
UFW_ALLOW_FROM_FIRST_RANGE = "-A ufw-user-input -s 10.0.0.0/16 -p tcp -m tcp --dport 22 -j ACCEPT\n"
UFW_LIMIT_22 = (
    "-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --set"
    " --name DEFAULT --mask 255.255.255.255 --rsource\n"
    "-A ufw-user-input -p tcp -m tcp --dport 22 -m conntrack --ctstate NEW -m recent --update"
    " --seconds 30 --hitcount 6 --name DEFAULT --mask 255.255.255.255 --rsource -j ufw-user-limit\n"
    "-A ufw-user-input -p tcp -m tcp --dport 22 -j ufw-user-limit-accept\n"
)


@pytest.mark.parametrize(
    ("user_rules", "expected"),
    [
        pytest.param("", NEITHER, id="ufw-without-rules-refuses"),
        pytest.param(UFW_ALLOW_22, BOTH, id="ufw-allow-22-tcp-admits"),
        pytest.param(UFW_ALLOW_OPENSSH, BOTH, id="ufw-allow-openssh-admits"),
        pytest.param(UFW_ALLOW_FROM_FIRST_RANGE, ONLY_FIRST, id="ufw-allow-from-one-range"),
        pytest.param(UFW_LIMIT_22, UNKNOWN, id="ufw-limit-cannot-be-told"),
    ],
)
def test_iptables_of_an_active_ufw(
    user_rules: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_iptables(UFW_IPTABLES + user_rules, s, 22).admitted for s in SOURCES)
    assert got == expected


def test_iptables_of_ufw_names_the_user_rule_or_the_policy() -> None:
    allowed = evaluate_iptables(UFW_IPTABLES + UFW_ALLOW_22, "10.0.0.1", 22)
    assert allowed.reason == "ufw-user-input accepts tcp/22 from 10.0.0.1"
    assert allowed.deciding_rule == UFW_ALLOW_22.strip()
    refused = evaluate_iptables(UFW_IPTABLES, "10.0.0.1", 22)
    assert refused.reason == "INPUT policy DROP; no rule accepts tcp/22 from 10.0.0.1"


def test_iptables_of_ufw_limit_names_the_recent_module() -> None:
    verdict = evaluate_iptables(UFW_IPTABLES + UFW_LIMIT_22, "10.2.3.4", 22)
    assert "'recent'" in verdict.reason
    assert "--update" in verdict.deciding_rule


# `iptables -S` of a host running Docker with one published container port (22 -> 172.17.0.2).
DOCKER_IPTABLES = """\
-P INPUT ACCEPT
-P FORWARD DROP
-P OUTPUT ACCEPT
-N DOCKER
-N DOCKER-ISOLATION-STAGE-1
-N DOCKER-ISOLATION-STAGE-2
-N DOCKER-USER
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -i docker0 ! -o docker0 -j ACCEPT
-A FORWARD -i docker0 -o docker0 -j ACCEPT
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 22 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -i docker0 ! -o docker0 -j DOCKER-ISOLATION-STAGE-2
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
-A DOCKER-ISOLATION-STAGE-2 -o docker0 -j DROP
-A DOCKER-ISOLATION-STAGE-2 -j RETURN
-A DOCKER-USER -j RETURN
"""


def test_iptables_of_docker_leaves_input_open() -> None:
    for source in SOURCES:
        verdict = evaluate_iptables(DOCKER_IPTABLES, source, 22)
        assert verdict.admitted is True
        assert (
            verdict.reason == f"INPUT policy ACCEPT; no rule drops or rejects tcp/22 from {source}"
        )


def test_iptables_of_docker_forward_rules_do_not_admit_to_the_host() -> None:
    # A hardened host: INPUT drops, and only the container's port 22 is forwarded.
    hardened = DOCKER_IPTABLES.replace("-P INPUT ACCEPT", "-P INPUT DROP") + (
        "-A INPUT -i lo -j ACCEPT\n-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
    )
    assert [evaluate_iptables(hardened, s, 22).admitted for s in SOURCES] == [False, False]


@pytest.mark.parametrize(
    ("source", "port"), [("not-an-address", 22), ("10.0.0.1", 0), ("10.0.0.1", 70000)]
)
def test_iptables_rejects_a_bad_source_or_port(source: str, port: int) -> None:
    with pytest.raises(ValueError, match="not"):
        evaluate_iptables(ipt(), source, port)


def test_iptables_rejects_a_protocol_other_than_tcp_or_udp() -> None:
    with pytest.raises(ValueError, match="protocol"):
        evaluate_iptables(ipt(), "10.0.0.1", 22, protocol="icmp")


# --- nftables -----------------------------------------------------------------------------------

TCP_DPORT = {"payload": {"protocol": "tcp", "field": "dport"}}
TH_DPORT = {"payload": {"protocol": "th", "field": "dport"}}
IP_SADDR = {"payload": {"protocol": "ip", "field": "saddr"}}
IP6_SADDR = {"payload": {"protocol": "ip6", "field": "saddr"}}
IP_DADDR = {"payload": {"protocol": "ip", "field": "daddr"}}
IIFNAME = {"meta": {"key": "iifname"}}
L4PROTO = {"meta": {"key": "l4proto"}}
CT_STATE = {"ct": {"key": "state"}}
TCP_FLAGS = {"payload": {"protocol": "tcp", "field": "flags"}}
ACCEPT: dict[str, Any] = {"accept": None}
DROP: dict[str, Any] = {"drop": None}
REJECT = {"reject": {"type": "icmpx", "expr": "admin-prohibited"}}
COUNTER = {"counter": {"packets": 0, "bytes": 0}}
METAINFO = {
    "metainfo": {"version": "1.0.9", "release_name": "Old Doc Yak #3", "json_schema_version": 1}
}


def match(left: dict[str, Any], right: object, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def prefix(addr: str, length: int) -> dict[str, Any]:
    return {"prefix": {"addr": addr, "len": length}}


def nft_set(*items: object) -> dict[str, Any]:
    return {"set": list(items)}


def table(family: str = "inet", name: str = "filter") -> dict[str, Any]:
    return {"table": {"family": family, "name": name, "handle": 1}}


def base_chain(
    policy: str = "drop",
    *,
    name: str = "input",
    prio: int = 0,
    family: str = "inet",
    table_name: str = "filter",
    hook: str = "input",
) -> dict[str, Any]:
    return {
        "chain": {
            "family": family,
            "table": table_name,
            "name": name,
            "handle": 1,
            "type": "filter",
            "hook": hook,
            "prio": prio,
            "policy": policy,
        }
    }


def chain(name: str, family: str = "inet", table_name: str = "filter") -> dict[str, Any]:
    return {"chain": {"family": family, "table": table_name, "name": name, "handle": 2}}


def rule(
    *expr: dict[str, Any], chain: str = "input", family: str = "inet", table_name: str = "filter"
) -> dict[str, Any]:
    return {
        "rule": {
            "family": family,
            "table": table_name,
            "chain": chain,
            "handle": 4,
            "expr": list(expr),
        }
    }


def ruleset(*objects: dict[str, Any]) -> str:
    return json.dumps({"nftables": [METAINFO, *objects]})


def inet_input(*rules: dict[str, Any], policy: str = "drop") -> str:
    """An inet filter table whose input base chain has `policy` and `rules`."""
    return ruleset(table(), base_chain(policy), *rules)


# `nft -j list ruleset` of Debian's /etc/nftables.conf with an SSH rule added, as nft prints it.
DEBIAN_NFT = """
{"nftables": [
  {"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}},
  {"table": {"family": "inet", "name": "filter", "handle": 1}},
  {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1,
             "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}},
  {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2,
             "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
  {"chain": {"family": "inet", "table": "filter", "name": "output", "handle": 3,
             "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [
    {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}},
    {"accept": null}]}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 5, "expr": [
    {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}},
    {"accept": null}]}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [
    {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}},
    {"drop": null}]}},
  {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 7, "expr": [
    {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}},
               "right": 22}},
    {"counter": {"packets": 3, "bytes": 180}},
    {"accept": null}], "comment": "ssh"}}
]}
"""


def test_nftables_debian_ruleset_with_ssh_admits() -> None:
    for source in SOURCES:
        verdict = evaluate_nftables(DEBIAN_NFT, source, 22)
        assert verdict.admitted is True
        assert verdict.reason == f"inet filter input accepts tcp/22 from {source}"
        assert (
            verdict.deciding_rule == 'inet filter input: tcp dport 22 counter accept comment "ssh"'
        )


def test_nftables_debian_ruleset_refuses_another_port_by_policy() -> None:
    verdict = evaluate_nftables(DEBIAN_NFT, "10.0.0.1", 2222)
    expected = "inet filter input policy drop; no rule accepts tcp/2222 from 10.0.0.1"
    assert verdict == FirewallVerdict(False, expected, "")


NFT_CASES = [
    pytest.param(ruleset(), BOTH, id="no-tables-admit"),
    pytest.param(inet_input(policy="accept"), BOTH, id="empty-input-policy-accept"),
    pytest.param(inet_input(), NEITHER, id="empty-input-policy-drop"),
    pytest.param(inet_input(rule(match(TCP_DPORT, 22), ACCEPT)), BOTH, id="tcp-dport-22-accept"),
    pytest.param(inet_input(rule(match(TCP_DPORT, 2222), ACCEPT)), NEITHER, id="other-port"),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, nft_set(22, 80, 443)), ACCEPT)), BOTH, id="port-set"
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, {"range": [20, 30]}), ACCEPT)), BOTH, id="port-range"
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, nft_set(80, {"range": [8000, 8080]})), ACCEPT)),
        NEITHER,
        id="port-set-with-range-without-22",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, nft_set("ssh", "http")), ACCEPT)),
        BOTH,
        id="port-set-by-service-name",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22, "!="), DROP), rule(ACCEPT)),
        BOTH,
        id="negated-port-drop-spares-22",
    ),
    pytest.param(inet_input(rule(match(TCP_DPORT, 1024, "<"), ACCEPT)), BOTH, id="port-below-1024"),
    pytest.param(
        inet_input(rule(match(L4PROTO, "tcp"), match(TH_DPORT, 22), ACCEPT)),
        BOTH,
        id="l4proto-and-th-dport",
    ),
    pytest.param(
        inet_input(rule(match(L4PROTO, "udp"), match(TH_DPORT, 22), ACCEPT)),
        NEITHER,
        id="udp-l4proto-does-not-match-tcp",
    ),
    pytest.param(
        inet_input(rule(match({"payload": {"protocol": "udp", "field": "dport"}}, 22), ACCEPT)),
        NEITHER,
        id="udp-dport-does-not-match-tcp",
    ),
    pytest.param(
        inet_input(rule(match(IP_SADDR, prefix("10.0.0.0", 16)), ACCEPT)),
        ONLY_FIRST,
        id="saddr-prefix",
    ),
    pytest.param(
        inet_input(
            rule(match(IP_SADDR, nft_set(prefix("10.0.0.0", 16), prefix("10.2.0.0", 16))), ACCEPT)
        ),
        BOTH,
        id="saddr-anonymous-set",
    ),
    pytest.param(
        inet_input(rule(match(IP_SADDR, {"range": ["10.2.0.0", "10.2.255.255"]}), ACCEPT)),
        (False, True),
        id="saddr-range",
    ),
    pytest.param(
        inet_input(rule(match(IP_SADDR, "10.0.0.1"), ACCEPT)), ONLY_FIRST, id="saddr-one-address"
    ),
    pytest.param(
        inet_input(rule(match(IP_SADDR, prefix("10.0.0.0", 8), "!="), DROP), rule(ACCEPT)),
        BOTH,
        id="negated-saddr-drop-spares-the-ranges",
    ),
    pytest.param(
        inet_input(rule(match(IP6_SADDR, prefix("::", 0)), ACCEPT)),
        NEITHER,
        id="ip6-saddr-does-not-match-ipv4",
    ),
    pytest.param(
        inet_input(rule(match(IP_DADDR, prefix("127.0.0.0", 8)), DROP), rule(ACCEPT)),
        BOTH,
        id="loopback-daddr-drop-does-not-hit",
    ),
    pytest.param(
        inet_input(rule(match(CT_STATE, ["established", "related"], "in"), ACCEPT)),
        NEITHER,
        id="established-related-only-does-not-admit-new",
    ),
    pytest.param(
        inet_input(rule(match(CT_STATE, nft_set("new", "established"), "in"), ACCEPT)),
        BOTH,
        id="ct-state-new-admits",
    ),
    pytest.param(
        inet_input(rule(match(CT_STATE, "invalid", "in"), DROP), rule(ACCEPT)),
        BOTH,
        id="invalid-drop-does-not-hit",
    ),
    pytest.param(inet_input(rule(match(IIFNAME, "lo"), ACCEPT)), NEITHER, id="lo-accept-not-eth0"),
    pytest.param(inet_input(rule(match(IIFNAME, "eth*"), ACCEPT)), BOTH, id="iifname-wildcard"),
    pytest.param(inet_input(rule(match(IIFNAME, "lo", "!="), ACCEPT)), BOTH, id="negated-iifname"),
    pytest.param(
        inet_input(
            rule(
                match({"&": [TCP_FLAGS, {"|": ["fin", "syn", "rst", "ack"]}]}, "syn"),
                match(TCP_DPORT, 22),
                ACCEPT,
            )
        ),
        BOTH,
        id="masked-tcp-flags-syn",
    ),
    pytest.param(
        inet_input(rule(match(TCP_FLAGS, "syn", "!"), DROP), rule(ACCEPT)),
        BOTH,
        id="drop-of-packets-without-syn-spares-the-syn",
    ),
    pytest.param(
        inet_input(rule(match(TCP_FLAGS, "syn", "in"), DROP), rule(ACCEPT)),
        NEITHER,
        id="drop-of-packets-with-syn-hits-the-syn",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), REJECT), rule(ACCEPT)), NEITHER, id="reject"
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), COUNTER, {"log": {"prefix": "ssh "}}, ACCEPT)),
        BOTH,
        id="counter-and-log-do-not-stop-the-rule",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), COUNTER)), NEITHER, id="rule-without-verdict"
    ),
    pytest.param(
        inet_input(
            rule(
                {
                    "vmap": {
                        "key": CT_STATE,
                        "data": nft_set(
                            ["established", ACCEPT], ["related", ACCEPT], ["invalid", DROP]
                        ),
                    }
                }
            ),
            rule({"vmap": {"key": TCP_DPORT, "data": nft_set([22, ACCEPT], [23, DROP])}}),
        ),
        BOTH,
        id="verdict-maps",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), NFT_CASES)
def test_nftables_admits_the_scanner_ranges(
    rules: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_nftables(rules, source, 22).admitted for source in SOURCES)
    assert got == expected


NFT_CHAIN_CASES = [
    pytest.param(
        ruleset(
            table(),
            base_chain(),
            chain("ssh"),
            rule(match(TCP_DPORT, 22), {"jump": {"target": "ssh"}}),
            rule(match(IP_SADDR, prefix("10.2.0.0", 16)), ACCEPT, chain="ssh"),
        ),
        (False, True),
        id="jump-into-regular-chain",
    ),
    pytest.param(
        ruleset(
            table(),
            base_chain(),
            chain("filter_ssh"),
            rule({"jump": {"target": "filter_ssh"}}),
            rule(ACCEPT),
            rule(match(IP_SADDR, prefix("10.0.0.0", 16)), {"return": None}, chain="filter_ssh"),
            rule(DROP, chain="filter_ssh"),
        ),
        ONLY_FIRST,
        id="return-resumes-the-caller",
    ),
    pytest.param(
        ruleset(
            table(),
            base_chain(),
            chain("later"),
            rule({"goto": {"target": "later"}}),
            rule(ACCEPT),
        ),
        NEITHER,
        id="goto-ends-at-the-policy",
    ),
    pytest.param(
        ruleset(
            table(),
            base_chain("accept", name="early", prio=-10),
            base_chain("drop", name="input", prio=0),
            rule(ACCEPT, chain="early"),
        ),
        NEITHER,
        id="accept-in-one-base-chain-does-not-skip-the-next",
    ),
    pytest.param(
        ruleset(
            table(),
            base_chain("accept", name="late", prio=10),
            base_chain("accept", name="input", prio=0),
            rule(match(TCP_DPORT, 22), DROP, chain="late"),
        ),
        NEITHER,
        id="drop-in-any-base-chain-is-final",
    ),
    pytest.param(
        ruleset(
            table("ip", "legacy"),
            base_chain("accept", family="ip", table_name="legacy", name="INPUT"),
            rule(match(TCP_DPORT, 22), DROP, family="ip", table_name="legacy", chain="INPUT"),
            table(),
            base_chain("accept"),
        ),
        NEITHER,
        id="ip-family-table-also-filters",
    ),
    pytest.param(
        ruleset(
            table("ip6", "v6only"),
            base_chain("drop", family="ip6", table_name="v6only"),
        ),
        BOTH,
        id="ip6-table-does-not-filter-ipv4",
    ),
    pytest.param(
        ruleset(table(), base_chain("drop", name="fwd", hook="forward")),
        BOTH,
        id="forward-chain-does-not-filter-input",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), NFT_CHAIN_CASES)
def test_nftables_follows_chains_and_base_chains(
    rules: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_nftables(rules, source, 22).admitted for source in SOURCES)
    assert got == expected


def test_nftables_named_set_of_prefixes_and_ranges() -> None:
    scanners = {
        "set": {
            "family": "inet",
            "name": "scanners",
            "table": "filter",
            "type": "ipv4_addr",
            "handle": 3,
            "flags": ["interval"],
            "elem": [prefix("10.0.0.0", 16), {"range": ["10.2.0.0", "10.2.0.255"]}],
        }
    }
    rules = inet_input(scanners, rule(match(IP_SADDR, "@scanners"), ACCEPT))
    got = [evaluate_nftables(rules, source, 22).admitted for source in SOURCES]
    assert got == [True, False]  # 10.2.3.4 is past the range's end


def test_nftables_named_set_elements_with_timeouts_are_unwrapped() -> None:
    allowed = {
        "set": {
            "family": "inet",
            "name": "allowed",
            "table": "filter",
            "type": "ipv4_addr",
            "handle": 3,
            "elem": [{"elem": {"val": "10.2.3.4", "timeout": 3600, "expires": 3000}}],
        }
    }
    rules = inet_input(allowed, rule(match(IP_SADDR, "@allowed"), ACCEPT))
    assert [evaluate_nftables(rules, s, 22).admitted for s in SOURCES] == [False, True]


NFT_UNKNOWN_CASES = [
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), {"limit": {"rate": 10, "per": "minute"}}, ACCEPT)),
        "limit",
        id="rate-limited-accept",
    ),
    pytest.param(
        inet_input(rule(match(IP_SADDR, "@blocklist"), DROP), policy="accept"),
        "@blocklist",
        id="set-missing-from-the-dump",
    ),
    pytest.param(
        inet_input(
            rule(
                match({"fib": {"flags": ["daddr", "iif"], "result": "type"}}, "local"),
                ACCEPT,
            )
        ),
        "fib",
        id="fib-match",
    ),
    pytest.param(
        inet_input(rule({"xt": {"type": "match", "name": "recent"}}, ACCEPT)),
        "xt match recent",
        id="iptables-nft-compat-match",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), {"queue": {"num": 1}})),
        "queue",
        id="queue-verdict",
    ),
    pytest.param(
        inet_input(rule(match(TCP_DPORT, 22), {"jump": {"target": "nowhere"}})),
        "nowhere",
        id="jump-to-undefined-chain",
    ),
]


@pytest.mark.parametrize(("rules", "named"), NFT_UNKNOWN_CASES)
def test_nftables_cannot_tell_and_names_why(rules: str, named: str) -> None:
    for source in SOURCES:
        verdict = evaluate_nftables(rules, source, 22)
        assert verdict.admitted is None
        assert named in verdict.reason
        assert verdict.deciding_rule.startswith("inet filter input:")


def test_nftables_unknown_statement_after_a_decision_does_not_matter() -> None:
    rules = inet_input(
        rule(match(TCP_DPORT, 22), DROP),
        rule({"limit": {"rate": 10, "per": "minute"}}, ACCEPT),
    )
    assert [evaluate_nftables(rules, s, 22).admitted for s in SOURCES] == [False, False]


def test_nftables_reason_names_table_chain_and_rule() -> None:
    verdict = evaluate_nftables(inet_input(rule(match(TCP_DPORT, 22), REJECT)), "10.2.3.4", 22)
    assert verdict == FirewallVerdict(
        False,
        "inet filter input rejects tcp/22 from 10.2.3.4",
        "inet filter input: tcp dport 22 reject",
    )


@pytest.mark.parametrize("text", ["not json", '{"tables": []}', "[1, 2]"])
def test_nftables_text_that_is_not_nft_json_is_an_error(text: str) -> None:
    with pytest.raises(ValueError, match="nft"):
        evaluate_nftables(text, "10.0.0.1", 22)


def test_nftables_empty_output_means_no_ruleset() -> None:
    assert evaluate_nftables("", "10.0.0.1", 22).admitted is True


# --- firewalld ----------------------------------------------------------------------------------


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


# --- ufw ----------------------------------------------------------------------------------------


def ufw_line(to: str, action: str, origin: str, extra: str = "") -> str:
    """One rule line, padded as ufw pads it ("%-26s %-12s%-26s%s")."""
    return f"{to:<26} {action:<12}{origin:<26}{extra}"


def ufw(*rules: str, default: str = "deny") -> str:
    """`ufw status verbose` with `rules` under the header."""
    return "\n".join(
        [
            "Status: active",
            "Logging: on (low)",
            f"Default: {default} (incoming), allow (outgoing), disabled (routed)",
            "New profiles: skip",
            "",
            "To                         Action      From",
            "--                         ------      ----",
            *rules,
            "",
        ]
    )


ALLOW_22 = ufw_line("22/tcp", "ALLOW IN", "Anywhere")
ALLOW_22_V6 = ufw_line("22/tcp (v6)", "ALLOW IN", "Anywhere (v6)")

UFW_CASES = [
    pytest.param(ufw(), NEITHER, id="no-rules-default-deny"),
    pytest.param(ufw(default="allow"), BOTH, id="no-rules-default-allow"),
    pytest.param(ufw(ALLOW_22, ALLOW_22_V6), BOTH, id="allow-22-tcp"),
    pytest.param(ufw(ufw_line("22", "ALLOW IN", "Anywhere")), BOTH, id="allow-22-any-protocol"),
    pytest.param(ufw(ufw_line("22/udp", "ALLOW IN", "Anywhere")), NEITHER, id="allow-22-udp"),
    pytest.param(ufw(ALLOW_22_V6), NEITHER, id="v6-rule-does-not-admit-ipv4"),
    pytest.param(
        ufw(
            ufw_line("22/tcp (OpenSSH)", "ALLOW IN", "Anywhere"),
            ufw_line("22/tcp (OpenSSH (v6))", "ALLOW IN", "Anywhere (v6)"),
        ),
        BOTH,
        id="verbose-application-profile",
    ),
    pytest.param(ufw(ufw_line("OpenSSH", "ALLOW", "Anywhere")), BOTH, id="profile-by-name"),
    pytest.param(ufw(ufw_line("Nginx Full", "ALLOW", "Anywhere")), NEITHER, id="other-profile"),
    pytest.param(ufw(ufw_line("22/tcp", "ALLOW IN", "10.0.0.0/16")), ONLY_FIRST, id="from-range"),
    pytest.param(
        ufw(ufw_line("Anywhere", "ALLOW IN", "10.0.0.0/8")), BOTH, id="everything-from-network"
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "DENY IN", "10.2.0.0/16"), ALLOW_22),
        ONLY_FIRST,
        id="deny-before-allow",
    ),
    pytest.param(
        ufw(ALLOW_22, ufw_line("22/tcp", "DENY IN", "10.2.0.0/16")),
        BOTH,
        id="allow-before-deny",
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "REJECT IN", "Anywhere"), default="allow"),
        NEITHER,
        id="reject",
    ),
    pytest.param(ufw(ufw_line("22/tcp on lo", "ALLOW IN", "Anywhere")), NEITHER, id="on-lo"),
    pytest.param(
        ufw(ufw_line("Anywhere on eth0", "ALLOW IN", "Anywhere")), BOTH, id="anything-on-eth0"
    ),
    pytest.param(ufw(ufw_line("80,443/tcp", "ALLOW IN", "Anywhere")), NEITHER, id="port-list"),
    pytest.param(ufw(ufw_line("20:30/tcp", "ALLOW IN", "Anywhere")), BOTH, id="port-range"),
    pytest.param(
        ufw(ufw_line("22/tcp", "ALLOW IN", "Anywhere", " (log) # ssh for vetting")),
        BOTH,
        id="log-attribute-and-comment",
    ),
    pytest.param(
        ufw("", ufw_line("Anywhere", "ALLOW OUT", "22/tcp")),
        NEITHER,
        id="outgoing-rule-ignored",
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "ALLOW FWD", "Anywhere on eth0")),
        NEITHER,
        id="routed-rule-ignored",
    ),
]


@pytest.mark.parametrize(("text", "expected"), UFW_CASES)
def test_ufw_admits_the_scanner_ranges(
    text: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_ufw(text, source, 22).admitted for source in SOURCES)
    assert got == expected


def test_ufw_reason_names_the_rule_line() -> None:
    verdict = evaluate_ufw(ufw(ALLOW_22), "10.0.0.1", 22)
    assert verdict == FirewallVerdict(True, "ufw accepts tcp/22 from 10.0.0.1", ALLOW_22.strip())


def test_ufw_reason_names_the_default_policy() -> None:
    verdict = evaluate_ufw(ufw(), "10.2.3.4", 22)
    expected = "ufw default incoming policy deny; no rule accepts tcp/22 from 10.2.3.4"
    assert verdict == FirewallVerdict(False, expected, "")


def test_ufw_limit_cannot_be_told() -> None:
    verdict = evaluate_ufw(ufw(ufw_line("22/tcp", "LIMIT IN", "Anywhere")), "10.0.0.1", 22)
    assert verdict.admitted is None
    assert "LIMIT" in verdict.reason


def test_ufw_numbered_status_is_read_too() -> None:
    text = "\n".join(
        [
            "Status: active",
            "Default: deny (incoming), allow (outgoing), disabled (routed)",
            "",
            "     To                         Action      From",
            "     --                         ------      ----",
            "[ 1] 22/tcp                     ALLOW IN    10.0.0.0/16",
            "[ 2] 22/tcp                     ALLOW IN    10.2.0.0/16",
        ]
    )
    assert [evaluate_ufw(text, s, 22).admitted for s in SOURCES] == [True, True]


def test_ufw_without_the_default_policy_cannot_tell_when_no_rule_decides() -> None:
    text = "Status: active\n\nTo                         Action      From\n--  ------  ----\n"
    verdict = evaluate_ufw(text, "10.0.0.1", 22)
    assert verdict.admitted is None
    assert "default incoming policy is not shown" in verdict.reason


def test_ufw_inactive_filters_nothing() -> None:
    verdict = evaluate_ufw("Status: inactive\n", "10.0.0.1", 22)
    assert verdict == FirewallVerdict(True, "ufw is inactive; it filters nothing", "")


def test_ufw_text_that_is_not_ufw_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="Status"):
        evaluate_ufw("ERROR: You need to be root to run this script\n", "10.0.0.1", 22)
