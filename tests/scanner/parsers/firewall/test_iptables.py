"""Simulating the scanner's first SYN against `iptables -S` and `iptables-save` rules.

Every table is judged for both scanner ranges' sample addresses, 10.0.0.1 (10.0.0.0/16) and
10.2.3.4 (10.2.0.0/16); expectations are (verdict for 10.0.0.1, verdict for 10.2.3.4).
"""

from __future__ import annotations

import pytest

from scanner.parsers.firewall.iptables import evaluate_iptables
from scanner.parsers.firewall.walk import FirewallVerdict

SOURCES = ("10.0.0.1", "10.2.3.4")
BOTH = (True, True)
NEITHER = (False, False)
UNKNOWN = (None, None)
ONLY_FIRST = (True, False)


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
