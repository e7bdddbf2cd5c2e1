"""nftables: every input-hook base chain of `nft -j list ruleset`, simulated."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.parsers.firewall.packet import (
    Network,
    Packet,
    describe_packets,
    iface_matches,
    in_ranges,
    ip_range,
    make_packets,
    match_destination,
    match_protocol,
    match_source_port,
    match_sources,
    port_number,
)
from scanner.parsers.firewall.tristate import Tri, Unknown, all_of, any_of, negate
from scanner.parsers.firewall.walk import (
    FirewallVerdict,
    Outcome,
    Step,
    Verb,
    Walker,
    decide,
    policy_outcome,
)

_NFT_VERDICTS = {
    "accept": Verb.ACCEPT,
    "drop": Verb.DROP,
    "reject": Verb.REJECT,
    "return": Verb.RETURN,
    "jump": Verb.JUMP,
    "goto": Verb.GOTO,
    "continue": Verb.CONTINUE,
}
# Statements with no say in the verdict.
_NFT_SIDE_EFFECTS = frozenset(
    ("counter", "log", "mangle", "notrack", "secmark", "dup", "flow", "set", "ct helper")
)
# Statements that stop the rule for some packets (rate limits, quotas): unknown matches.
_NFT_RATE_MATCHES = frozenset(("limit", "quota", "ct count", "meter", "connlimit"))
_NFT_NAMED_PRIORITIES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}
_CT_STATE_BITS = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
_NFT_TCP_FLAG_BITS = {
    "fin": 1,
    "syn": 2,
    "rst": 4,
    "psh": 8,
    "ack": 16,
    "urg": 32,
    "ecn": 64,
    "cwr": 128,
}
_NFT_SYN = frozenset(("syn",))


@dataclass
class _NftRuleset:
    """The objects of `nft -j list ruleset`, indexed by (family, table, name)."""

    chains: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, body: dict[str, Any]) -> None:
        family, table = str(body.get("family", "")), str(body.get("table", ""))
        if kind == "chain":
            self.chains[(family, table, str(body.get("name", "")))] = body
        elif kind == "rule":
            self.rules.setdefault((family, table, str(body.get("chain", ""))), []).append(body)
        elif kind in ("set", "map"):
            self.sets[(family, table, str(body.get("name", "")))] = body


@dataclass(frozen=True)
class _NftContext:
    """What matching a rule needs besides the rule: the packet and the table's named sets."""

    packet: Packet
    ruleset: _NftRuleset
    family: str
    table: str

    def named_set(self, name: str) -> dict[str, Any] | None:
        return self.ruleset.sets.get((self.family, self.table, name))


def evaluate_nftables(
    ruleset_json: str,
    source: str,
    port: int,
    protocol: str = "tcp",
    in_interface: str = "eth0",
) -> FirewallVerdict:
    """Whether nftables admits a NEW connection from `source` to `port`.

    `ruleset_json` is `nft -j list ruleset`. Every base chain on the input hook of the ip/inet
    families (ip6/inet for an IPv6 source) is walked in priority order: the packet must pass all
    of them, and a drop in any is final. Evaluated: ip/ip6 saddr (addresses, prefixes, ranges,
    anonymous and named sets), tcp/udp/th ports, tcp flags, iifname, l4proto, nfproto, ct state,
    verdict maps, and accept/drop/reject/jump/goto/return. Other expressions (fib, limit, xt, ...)
    make the verdict None when they could change it. Raises ValueError when the text is not
    that JSON.
    """
    packets = make_packets([source], port, protocol, in_interface)
    ruleset = _nft_load(ruleset_json)
    families = ("ip", "inet") if packets[0].version == 4 else ("ip6", "inet")
    bases = [
        key
        for key, chain in ruleset.chains.items()
        if chain.get("hook") == "input" and key[0] in families
    ]
    bases.sort(key=lambda key: _nft_priority(ruleset.chains[key].get("prio")))
    if not bases:
        return FirewallVerdict(
            True, f"no nftables chain hooks input; nothing filters {describe_packets(packets)}"
        )
    return decide(packets, lambda packet: [_nft_walk(ruleset, key, packet) for key in bases])


def _nft_load(text: str) -> _NftRuleset:
    try:
        data = json.loads(text) if text.strip() else {"nftables": []}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not nft JSON: {exc}") from exc
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('not `nft -j list ruleset` output: no "nftables" list')
    ruleset = _NftRuleset()
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            ((kind, body),) = item.items()
            if isinstance(body, dict):
                ruleset.add(str(kind), body)
    return ruleset


def _nft_priority(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _NFT_NAMED_PRIORITIES.get(value.strip(), 0)
    return 0


def _nft_walk(
    ruleset: _NftRuleset, base: tuple[str, str, str], packet: Packet
) -> tuple[Outcome, str]:
    family, table, name = base
    context = _NftContext(packet, ruleset, family, table)
    chains = {
        key[2]: [_nft_step(rule, context) for rule in ruleset.rules.get(key, [])]
        for key in ruleset.chains
        if key[:2] == (family, table)
    }
    policy_name = str(ruleset.chains[base].get("policy", "accept"))
    admitted = {"accept": True, "drop": False}.get(policy_name)
    policy = policy_outcome(admitted, name, f"{family} {table} {name} policy {policy_name}")
    return Walker(chains, policy).run(name), f"{family} {table} "


def _single(statement: object) -> tuple[str, Any]:
    if isinstance(statement, dict) and len(statement) == 1:
        ((kind, body),) = statement.items()
        return str(kind), body
    return "?", statement


def _nft_step(rule: dict[str, Any], context: _NftContext) -> Step:
    text = _nft_rule_text(rule)
    statements = rule.get("expr") or []
    conditions: list[Tri] = []
    for index, statement in enumerate(statements):
        kind, body = _single(statement)
        if kind == "match":
            conditions.append(_nft_match(body, context))
        elif kind in _NFT_VERDICTS:
            target = str(body.get("target", "")) if isinstance(body, dict) else ""
            return Step(text, all_of(conditions), _NFT_VERDICTS[kind], target)
        elif kind == "vmap":
            verb, target = _nft_vmap(body, context)
            return Step(text, all_of(conditions), verb, target)
        elif kind in _NFT_SIDE_EFFECTS:
            continue
        elif kind in _NFT_RATE_MATCHES or _nft_is_xt_match(body, statements[index + 1 :], kind):
            conditions.append(Unknown(f"the '{_nft_name(kind, body)}' statement is not evaluated"))
        else:  # anything else may decide the packet's fate: an xt target, queue, synproxy, ...
            detail = f"the '{_nft_name(kind, body)}' statement is not evaluated"
            return Step(text, all_of(conditions), Verb.UNKNOWN, detail)
    return Step(text, all_of(conditions), Verb.CONTINUE)


def _nft_name(kind: str, body: object) -> str:
    if kind == "xt" and isinstance(body, dict) and body.get("name"):
        return f"xt {body.get('type', '')} {body['name']}".replace("  ", " ")
    return kind


def _nft_is_xt_match(body: object, rest: Sequence[object], kind: str) -> bool:
    """An iptables-nft compatibility expression used as a match rather than as a target."""
    if kind != "xt":
        return False
    if isinstance(body, dict) and body.get("type") in ("match", "target"):
        return body.get("type") == "match"
    # Older nft prints `"xt": null`; a verdict after it means it was a match.
    return any(_single(s)[0] in _NFT_VERDICTS or _single(s)[0] == "vmap" for s in rest)


def _nft_vmap(body: object, context: _NftContext) -> tuple[Verb, str]:
    if not isinstance(body, dict):
        return Verb.UNKNOWN, "unreadable vmap"
    data = body.get("data")
    entries = _nft_items(data, context)
    if isinstance(entries, Unknown):
        return Verb.UNKNOWN, entries.reason
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2):
            return Verb.UNKNOWN, "unreadable vmap entry"
        hit = _nft_match({"op": "==", "left": body.get("key"), "right": entry[0]}, context)
        if isinstance(hit, Unknown):
            return Verb.UNKNOWN, hit.reason
        if hit:
            kind, verdict_body = _single(entry[1])
            if kind not in _NFT_VERDICTS:
                return Verb.UNKNOWN, f"vmap verdict {kind} is not evaluated"
            target = verdict_body.get("target", "") if isinstance(verdict_body, dict) else ""
            return _NFT_VERDICTS[kind], str(target)
    return Verb.CONTINUE, ""


def _nft_items(right: object, context: _NftContext) -> list[Any] | Unknown:
    """The values a match compares with: a literal, a list, an anonymous or a named set."""
    if isinstance(right, str) and right.startswith("@"):
        named = context.named_set(right[1:])
        if named is None:
            return Unknown(f"set {right} is not in the ruleset")
        right = named.get("elem", [])
    elif isinstance(right, dict) and "set" in right:
        right = right["set"]
    items = right if isinstance(right, list) else [right]
    return [_nft_unwrap(item) for item in items]


def _nft_unwrap(item: object) -> object:
    # Elements with timeouts or comments are printed as {"elem": {"val": ..., ...}}.
    if isinstance(item, dict) and isinstance(item.get("elem"), dict):
        return item["elem"].get("val")
    return item


def _nft_field(left: object) -> str | None:
    if not isinstance(left, dict) or len(left) != 1:
        return None
    kind, body = _single(left)
    if not isinstance(body, dict):
        return None
    if kind == "payload" and "protocol" in body:
        return f"{body['protocol']} {body.get('field', '')}"
    if kind in ("meta", "ct") and "dir" not in body:
        return f"{kind} {body.get('key', '')}"
    return None


def _nft_match(body: object, context: _NftContext) -> Tri:
    if not isinstance(body, dict):
        return Unknown("unreadable match")
    op, left, right = str(body.get("op", "==")), body.get("left"), body.get("right")
    if _nft_flags_operand(left):
        return _nft_flags_match(op, left, right, context.packet)
    name = _nft_field(left)
    matcher = _NFT_FIELDS.get(name or "")
    if matcher is None:
        return Unknown(f"a match on {_nft_render(left)} is not evaluated")
    if op in ("<", ">", "<=", ">="):
        return _nft_relation(op, name or "", right, context.packet)
    items = _nft_items(right, context)
    if isinstance(items, Unknown):
        return items
    try:
        member = matcher(name or "", items, context.packet)
    except (ValueError, TypeError, KeyError) as exc:
        return Unknown(f"cannot read {_nft_render(left)} {_nft_render(right)}: {exc}")
    if op in ("==", "in"):
        return member
    if op in ("!=", "!"):
        return negate(member)
    return Unknown(f"operator {op} is not evaluated")


def _nft_relation(op: str, name: str, right: object, packet: Packet) -> Tri:
    if not name.endswith("dport") or not isinstance(right, int):
        return Unknown(f"{name} {op} {right} is not evaluated")
    if name.split()[0] not in ("th", packet.protocol):
        return False
    return {
        "<": packet.port < right,
        ">": packet.port > right,
        "<=": packet.port <= right,
        ">=": packet.port >= right,
    }[op]


def _nft_networks(item: object) -> list[Network]:
    if isinstance(item, str):
        return [ipaddress.ip_network(item, strict=False)]
    if isinstance(item, dict) and isinstance(item.get("prefix"), dict):
        prefix = item["prefix"]
        return [ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}", strict=False)]
    if isinstance(item, dict) and isinstance(item.get("range"), list):
        low, high = item["range"]
        return ip_range(f"{low}-{high}")
    raise ValueError(f"not an address: {item!r}")


def _nft_ports(item: object) -> tuple[int, int]:
    if isinstance(item, int) and not isinstance(item, bool):
        return item, item
    if isinstance(item, str):
        number = port_number(item)
        return number, number
    if isinstance(item, dict) and isinstance(item.get("range"), list):
        low, high = item["range"]
        return _nft_ports(low)[0], _nft_ports(high)[0]
    raise ValueError(f"not a port: {item!r}")


def _nft_address(name: str, items: list[Any], packet: Packet) -> Tri:
    family = 4 if name.startswith("ip ") else 6
    if packet.version != family:
        return False  # `ip saddr` implies an IPv4 packet, `ip6 saddr` an IPv6 one
    networks = [network for item in items for network in _nft_networks(item)]
    if name.endswith("saddr"):
        return match_sources(packet, networks, name)
    return match_destination(packet, networks, name)


def _nft_port(name: str, items: list[Any], packet: Packet) -> Tri:
    protocol = name.split()[0]
    if protocol not in ("th", packet.protocol):
        return False  # `tcp dport` implies a TCP packet
    ranges = [_nft_ports(item) for item in items]
    if name.endswith("dport"):
        return in_ranges(packet.port, ranges)
    return match_source_port(ranges, name)


def _nft_protocol(name: str, items: list[Any], packet: Packet) -> Tri:
    if (name == "ip protocol" and packet.version != 4) or (
        name == "ip6 nexthdr" and packet.version != 6
    ):
        return False
    return any_of(match_protocol(item, packet) for item in items)


def _nft_in_interface(name: str, items: list[Any], packet: Packet) -> Tri:
    return any(iface_matches(str(item), packet.in_interface, "*") for item in items)


def _nft_out_interface(name: str, items: list[Any], packet: Packet) -> Tri:
    return False  # an arriving packet has no output interface


def _nft_nfproto(name: str, items: list[Any], packet: Packet) -> Tri:
    # `meta nfproto ipv4` names the family; `meta protocol ip` the EtherType.
    wanted = f"ipv{packet.version}" if name == "meta nfproto" else _ETHER[packet.version]
    return any(str(item).lower() == wanted for item in items)


_ETHER = {4: "ip", 6: "ip6"}


def _nft_pkttype(name: str, items: list[Any], packet: Packet) -> Tri:
    return any(str(item).lower() in ("host", "unicast") for item in items)


def _nft_ct_state(name: str, items: list[Any], packet: Packet) -> Tri:
    # The first packet of a connection is NEW.
    for item in items:
        if isinstance(item, int) and item & _CT_STATE_BITS["new"]:
            return True
        if str(item).lower() == "new":
            return True
    return False


def _nft_ct_direction(name: str, items: list[Any], packet: Packet) -> Tri:
    return any(str(item).lower() == "original" for item in items)


def _nft_flag_set(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value.lower(),))
    if isinstance(value, int) and not isinstance(value, bool):
        return frozenset(n for n, bit in _NFT_TCP_FLAG_BITS.items() if value & bit)
    if isinstance(value, list):
        return frozenset().union(*(_nft_flag_set(item) for item in value))
    if isinstance(value, dict) and "|" in value:
        return _nft_flag_set(value["|"])
    raise ValueError(f"not TCP flags: {value!r}")


def _nft_flag_values(right: object) -> list[frozenset[str]]:
    # A list is one combination of flags ("syn,ack"); a set lists alternatives.
    values = right["set"] if isinstance(right, dict) and "set" in right else [right]
    return [_nft_flag_set(value) for value in (values if isinstance(values, list) else [values])]


def _nft_tcp_flags(op: str, flags: frozenset[str], right: object) -> Tri:
    """Compares the SYN's flags, already masked, with `right` as operator `op` does."""
    try:
        values = _nft_flag_values(right)
    except ValueError as exc:
        return Unknown(str(exc))
    if op in ("in", "!"):  # bitmask test: any of the flags is set
        hit = any(flags & value for value in values)
        return hit if op == "in" else not hit
    equal = any(flags == value for value in values)
    if op in ("==", "!="):
        return equal if op == "==" else not equal
    return Unknown(f"operator {op} on tcp flags is not evaluated")


def _nft_flags_match(op: str, left: object, right: object, packet: Packet) -> Tri:
    """`tcp flags syn`, `tcp flags & (fin|syn|rst|ack) == syn` and the like."""
    if packet.protocol != "tcp":
        return False  # a tcp match implies a TCP packet
    if isinstance(left, dict) and "&" in left:
        operands = left["&"]
        if not (isinstance(operands, list) and len(operands) == 2):
            return Unknown("unreadable bitwise match")
        try:
            masked = _NFT_SYN & _nft_flag_set(operands[1])
        except ValueError as exc:
            return Unknown(str(exc))
        return _nft_tcp_flags(op, masked, right)
    return _nft_tcp_flags(op, _NFT_SYN, right)


def _nft_flags_operand(left: object) -> bool:
    if isinstance(left, dict) and "&" in left and isinstance(left["&"], list) and left["&"]:
        return _nft_field(left["&"][0]) == "tcp flags"
    return _nft_field(left) == "tcp flags"


_NftMatcher = Callable[[str, list[Any], Packet], Tri]
_NFT_FIELDS: dict[str, _NftMatcher] = {
    "ip saddr": _nft_address,
    "ip6 saddr": _nft_address,
    "ip daddr": _nft_address,
    "ip6 daddr": _nft_address,
    "ip protocol": _nft_protocol,
    "ip6 nexthdr": _nft_protocol,
    "meta l4proto": _nft_protocol,
    "ct protocol": _nft_protocol,
    "tcp dport": _nft_port,
    "udp dport": _nft_port,
    "th dport": _nft_port,
    "tcp sport": _nft_port,
    "udp sport": _nft_port,
    "th sport": _nft_port,
    "meta iifname": _nft_in_interface,
    "meta iif": _nft_in_interface,
    "meta oifname": _nft_out_interface,
    "meta oif": _nft_out_interface,
    "meta nfproto": _nft_nfproto,
    "meta protocol": _nft_nfproto,
    "meta pkttype": _nft_pkttype,
    "ct state": _nft_ct_state,
    "ct direction": _nft_ct_direction,
}


def _nft_rule_text(rule: dict[str, Any]) -> str:
    """The rule roughly as `nft list ruleset` prints it, prefixed with its table and chain."""
    parts = [_nft_render_statement(s) for s in rule.get("expr") or []]
    text = " ".join(part for part in parts if part)
    if rule.get("comment"):
        text += f' comment "{rule["comment"]}"'
    return f"{rule.get('family', '')} {rule.get('table', '')} {rule.get('chain', '')}: {text}"


def _nft_render_statement(statement: object) -> str:
    kind, body = _single(statement)
    if kind == "match" and isinstance(body, dict):
        op = str(body.get("op", "=="))
        shown = "" if op in ("==", "in") else f"{op} "
        return f"{_nft_render(body.get('left'))} {shown}{_nft_render(body.get('right'))}"
    if kind in ("jump", "goto") and isinstance(body, dict):
        return f"{kind} {body.get('target', '')}"
    if kind == "vmap" and isinstance(body, dict):
        return f"{_nft_render(body.get('key'))} vmap {_nft_render(body.get('data'))}"
    return kind


def _nft_render(value: object) -> str:
    if isinstance(value, dict) and len(value) == 1:
        kind, body = _single(value)
        field_name = _nft_field(value)
        if field_name is not None:
            return field_name.removeprefix("meta ") if kind == "meta" else field_name
        if kind == "prefix" and isinstance(body, dict):
            return f"{body.get('addr')}/{body.get('len')}"
        if kind == "range" and isinstance(body, list):
            return "-".join(_nft_render(item) for item in body)
        if kind == "set":
            items = body if isinstance(body, list) else [body]
            return "{ " + ", ".join(_nft_render(_nft_unwrap(item)) for item in items) + " }"
        if kind in ("&", "|") and isinstance(body, list):
            return f" {kind} ".join(_nft_render(item) for item in body)
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[1], dict) and _single(value[1])[0] in _NFT_VERDICTS:
            return f"{_nft_render(value[0])} : {_nft_render_statement(value[1])}"
        return ",".join(_nft_render(item) for item in value)
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, sort_keys=True)
