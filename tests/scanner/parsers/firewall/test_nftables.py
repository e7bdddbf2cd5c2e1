"""Simulating the scanner's first SYN against `nft -j list ruleset` rulesets.

Every table is judged for both scanner ranges' sample addresses, 10.0.0.1 (10.0.0.0/16) and
10.2.3.4 (10.2.0.0/16); expectations are (verdict for 10.0.0.1, verdict for 10.2.3.4).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from scanner.parsers.firewall.nftables import evaluate_nftables
from scanner.parsers.firewall.walk import FirewallVerdict

SOURCES = ("10.0.0.1", "10.2.3.4")
BOTH = (True, True)
NEITHER = (False, False)
ONLY_FIRST = (True, False)


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
