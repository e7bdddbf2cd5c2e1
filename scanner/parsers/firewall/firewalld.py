"""firewalld: the default zone of `firewall-cmd --list-all`, simulated."""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass, field

from scanner.parsers.firewall.packet import (
    SCANNER_NETWORKS,
    Packet,
    in_ranges,
    make_packets,
    match_destination,
    match_protocol,
    match_source_port,
    match_sources,
    parse_networks,
    port_range,
    split_range,
)
from scanner.parsers.firewall.tristate import Tri, Unknown, all_of, negate
from scanner.parsers.firewall.walk import (
    FirewallVerdict,
    Step,
    Verb,
    Walker,
    Walks,
    decide,
    policy_outcome,
)

# The ports of firewalld's stock services (/usr/lib/firewalld/services/*.xml).
_FIREWALLD_SERVICES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "ssh": (("tcp", 22, 22),),
    "http": (("tcp", 80, 80),),
    "https": (("tcp", 443, 443),),
    "dhcpv6-client": (("udp", 546, 546),),
    "dhcp": (("udp", 67, 67),),
    "cockpit": (("tcp", 9090, 9090),),
    "mdns": (("udp", 5353, 5353),),
    "samba-client": (("udp", 137, 137), ("udp", 138, 138)),
    "samba": (("tcp", 139, 139), ("tcp", 445, 445), ("udp", 137, 137), ("udp", 138, 138)),
    "dns": (("tcp", 53, 53), ("udp", 53, 53)),
    "ntp": (("udp", 123, 123),),
    "ftp": (("tcp", 21, 21),),
    "smtp": (("tcp", 25, 25),),
    "rdp": (("tcp", 3389, 3389),),
    "vnc-server": (("tcp", 5900, 5903),),
    "mysql": (("tcp", 3306, 3306),),
    "postgresql": (("tcp", 5432, 5432),),
    "nfs": (("tcp", 2049, 2049),),
    "redis": (("tcp", 6379, 6379),),
}
# What happens to a packet no rule of the zone accepted, by the zone's target.
_FIREWALLD_TARGETS = {
    "default": False,
    "%%REJECT%%": False,
    "REJECT": False,
    "DROP": False,
    "ACCEPT": True,
}


@dataclass
class _FirewalldZone:
    name: str
    settings: dict[str, str] = field(default_factory=dict)
    rich_rules: list[str] = field(default_factory=list)

    def words(self, key: str) -> list[str]:
        return self.settings.get(key, "").split()


@dataclass
class _RichElement:
    keyword: str
    attributes: dict[str, str] = field(default_factory=dict)
    negated: bool = False


def evaluate_firewalld(
    list_all_text: str,
    port: int,
    protocol: str = "tcp",
    source: str | None = None,
) -> FirewallVerdict:
    """Whether the default zone admits a NEW connection to `port`.

    `list_all_text` is `firewall-cmd --list-all`. The zone's services (stock port definitions),
    ports, protocols, source ports and rich rules are ordered as firewalld orders them:
    rich rules with a negative priority, then deny rich rules, then allow rules, then rich rules
    with a positive priority, then the zone's target. `source` defaults to the scanner networks.
    Services amiscan has no ports for, ipset or MAC sources and rate-limited rich rules make the
    verdict None when they could change it. The zone is taken as the one the scanner's packets
    land in: source-bound zones other than this one are not seen. Raises ValueError when the
    text is not that output.
    """
    if re.match(r"\s*firewalld is not running", list_all_text, re.IGNORECASE):
        return FirewallVerdict(True, "firewalld is not running; it filters nothing")
    sources = [source] if source is not None else list(SCANNER_NETWORKS)
    packets = make_packets(sources, port, protocol, "")
    zone = _firewalld_parse(list_all_text)
    chain = f"zone {zone.name}"
    target = zone.settings.get("target", "default")
    policy = policy_outcome(_FIREWALLD_TARGETS.get(target), chain, f"{chain} target {target}")

    def walk(packet: Packet) -> Walks:
        steps = _firewalld_steps(zone, packet)
        return [(Walker({chain: steps}, policy).run(chain), "")]

    return decide(packets, walk)


def _firewalld_parse(text: str) -> _FirewalldZone:
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.fullmatch(r"(\S+)(?:\s+\([^)]*\))?\s*", lines[0]) if lines else None
    if header is None:
        raise ValueError("not `firewall-cmd --list-all` output: no zone name on the first line")
    zone = _FirewalldZone(header.group(1))
    in_rich = False
    for line in lines[1:]:
        if in_rich and line.strip().startswith("rule"):
            zone.rich_rules.append(line.strip())
            continue
        setting = re.fullmatch(r"\s+([a-z0-9-]+( [a-z]+)?):\s*(.*)", line)
        if setting:
            zone.settings[setting.group(1)] = setting.group(3).strip()
            in_rich = setting.group(1) == "rich rules"
    return zone


def _firewalld_steps(zone: _FirewalldZone, packet: Packet) -> list[Step]:
    early: list[tuple[int, Step]] = []
    late: list[tuple[int, Step]] = []
    deny: list[Step] = []
    allow: list[Step] = []
    for text in zone.rich_rules:
        priority, step = _rich_step(text, packet)
        if priority < 0:
            early.append((priority, step))
        elif priority > 0:
            late.append((priority, step))
        elif step.verb is Verb.ACCEPT:
            allow.append(step)
        else:
            deny.append(step)
    allow += [_service_step(name, packet) for name in zone.words("services")]
    allow += [_firewalld_port_step(spec, packet, source=False) for spec in zone.words("ports")]
    allow += [_firewalld_port_step(s, packet, source=True) for s in zone.words("source-ports")]
    allow += [
        Step(f"protocol {name}", match_protocol(name, packet), Verb.ACCEPT)
        for name in zone.words("protocols")
    ]
    ordered_early = [step for _, step in sorted(early, key=lambda pair: pair[0])]
    ordered_late = [step for _, step in sorted(late, key=lambda pair: pair[0])]
    return ordered_early + deny + allow + ordered_late


def _service_step(name: str, packet: Packet) -> Step:
    ports = _FIREWALLD_SERVICES.get(name)
    if ports is None:
        condition: Tri = Unknown(f"the ports of service '{name}' are not known to amiscan")
    else:
        condition = any(
            proto == packet.protocol and low <= packet.port <= high for proto, low, high in ports
        )
    return Step(f"service {name}", condition, Verb.ACCEPT)


def _firewalld_port_step(spec: str, packet: Packet, *, source: bool) -> Step:
    text = f"{'source-port' if source else 'port'} {spec}"
    return Step(text, _firewalld_port_match(spec, packet, source=source), Verb.ACCEPT)


def _firewalld_port_match(spec: str, packet: Packet, *, source: bool) -> Tri:
    ports, _, proto = spec.partition("/")
    if proto and proto.lower() != packet.protocol:
        return False
    try:
        ranges = [port_range(*split_range(ports, "-"))]
    except ValueError as exc:
        return Unknown(str(exc))
    if source:
        return match_source_port(ranges, f"source port {spec}")
    return in_ranges(packet.port, ranges)


def _rich_parse(text: str) -> list[_RichElement]:
    elements: list[_RichElement] = []
    for word in shlex.split(text):
        if word == "NOT" and elements:
            elements[-1].negated = True
        elif "=" in word and elements:
            key, _, value = word.partition("=")
            elements[-1].attributes[key] = value
        else:
            elements.append(_RichElement(word))
    if not elements or elements[0].keyword != "rule":
        raise ValueError("a rich rule starts with 'rule'")
    return elements


def _rich_step(text: str, packet: Packet) -> tuple[int, Step]:
    """A rich rule as (priority, step); an unreadable one is unknown where a deny rule runs."""
    try:
        elements = _rich_parse(text)
        priority = int(elements[0].attributes.get("priority", "0"))
    except ValueError as exc:
        return 0, Step(text, True, Verb.UNKNOWN, f"the rich rule cannot be read: {exc}")
    conditions: list[Tri] = []
    family = elements[0].attributes.get("family")
    if family:
        conditions.append(family == f"ipv{packet.version}")
    verb = Verb.CONTINUE
    for previous, element in itertools.pairwise(elements):
        if element.keyword in ("accept", "reject", "drop"):
            verb = Verb[element.keyword.upper()]
        elif element.keyword in ("masquerade", "forward-port"):
            return priority, Step(text, False, Verb.CONTINUE)  # rewrites, does not filter
        elif element.keyword == "limit" and previous.keyword in ("accept", "reject", "drop"):
            conditions.append(Unknown(f"the rate limit of '{text}' is not evaluated"))
        else:
            conditions.append(_rich_condition(element, packet))
    return priority, Step(text, all_of(conditions), verb)


def _rich_condition(element: _RichElement, packet: Packet) -> Tri:
    keyword, attributes = element.keyword, element.attributes
    result: Tri
    if keyword in ("source", "destination") and "address" in attributes:
        try:
            networks = parse_networks(attributes["address"])
        except ValueError as exc:
            return Unknown(str(exc))
        what = f"{keyword} address {attributes['address']}"
        if keyword == "source":
            result = match_sources(packet, networks, what)
        else:
            result = match_destination(packet, networks, what)
    elif keyword == "service":
        result = _service_step(attributes.get("name", ""), packet).condition
    elif keyword in ("port", "source-port"):
        spec = f"{attributes.get('port', '')}/{attributes.get('protocol', '')}"
        result = _firewalld_port_match(spec, packet, source=keyword == "source-port")
    elif keyword == "protocol":
        result = match_protocol(attributes.get("value", ""), packet)
    elif keyword in ("icmp-block", "icmp-type"):
        result = False  # the packet is TCP or UDP
    elif keyword in ("log", "audit", "nflog", "mark", "limit"):
        result = True  # logging and marking do not filter
    else:
        shown = " ".join([keyword, *(f"{k}={v}" for k, v in attributes.items())])
        result = Unknown(f"rich rule element '{shown}' is not evaluated")
    return negate(result, element.negated)
