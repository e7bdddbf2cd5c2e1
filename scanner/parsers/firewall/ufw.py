"""ufw: the incoming rules and default policy of `ufw status verbose`, simulated."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from scanner.parsers.firewall.packet import (
    Packet,
    iface_matches,
    in_ranges,
    make_packets,
    match_destination,
    match_protocol,
    match_source_port,
    match_sources,
    parse_networks,
    port_ranges,
)
from scanner.parsers.firewall.tristate import Tri, Unknown, all_of
from scanner.parsers.firewall.walk import (
    FirewallVerdict,
    Step,
    Verb,
    Walker,
    Walks,
    decide,
    policy_outcome,
)

# Ports of the application profiles Ubuntu ships (/etc/ufw/applications.d).
_UFW_APPS = {
    "OpenSSH": "22/tcp",
    "Apache": "80/tcp",
    "Apache Secure": "443/tcp",
    "Apache Full": "80,443/tcp",
    "Nginx HTTP": "80/tcp",
    "Nginx HTTPS": "443/tcp",
    "Nginx Full": "80,443/tcp",
}
_UFW_VERBS = {
    "ALLOW": Verb.ACCEPT,
    "DENY": Verb.DROP,
    "REJECT": Verb.REJECT,
    "LIMIT": Verb.UNKNOWN,
}
_UFW_LIMIT = (
    "ufw LIMIT refuses an address that opened 6 connections in the last 30 seconds; "
    "whether the scanner stays below that is not known"
)
_UFW_RULE = re.compile(
    r"(?:\[\s*\d+\]\s+)?(?P<to>.+?)\s+(?P<action>ALLOW|DENY|REJECT|LIMIT)"
    r"(?:\s+(?P<direction>IN|OUT|FWD))?\s+(?P<from>.+?)"
    r"(?:\s+\((?:log|log-all)[^)]*\))?(?:\s+#.*)?"
)
_UFW_PORTS = re.compile(r"(?P<ports>[\d,:]+)(?:/(?P<proto>[a-z0-9]+))?")


@dataclass(frozen=True)
class _UfwEnd:
    """One side (To or From) of a ufw rule."""

    address: str = ""  # "" for Anywhere
    ports: str = ""  # "" for any port; "22", "80,443", "1000:2000"
    protocol: str = ""  # "" for any protocol
    app: str = ""  # an application profile printed by name (ufw status without verbose)
    interface: str = ""
    v6: bool = False


@dataclass
class _UfwStatus:
    active: bool
    default_incoming: str | None = None
    rules: list[str] = field(default_factory=list)


def evaluate_ufw(
    status_verbose_text: str,
    source: str,
    port: int,
    protocol: str = "tcp",
    in_interface: str = "eth0",
) -> FirewallVerdict:
    """Whether ufw admits a NEW connection from `source` to `port`.

    `status_verbose_text` is `ufw status verbose`: its incoming rules are tried in order (the
    first that matches decides, as in ufw-user-input), then the default incoming policy. ufw's
    built-in before/after rules never accept or refuse a new TCP connection from a remote unicast
    address, so they are left out. A LIMIT rule that matches, and application profiles amiscan
    has no ports for, make the verdict None. Raises ValueError when the text is not that output.
    """
    status = _ufw_parse(status_verbose_text)
    if not status.active:
        return FirewallVerdict(True, "ufw is inactive; it filters nothing")
    packets = make_packets([source], port, protocol, in_interface)
    default = status.default_incoming
    if default is None:
        policy = policy_outcome(
            None, "ufw", "the default incoming policy is not shown (not verbose)"
        )
    else:
        policy = policy_outcome(default == "allow", "ufw", f"ufw default incoming policy {default}")

    def walk(packet: Packet) -> Walks:
        steps = [_ufw_step(line, packet) for line in status.rules]
        return [(Walker({"ufw": steps}, policy).run("ufw"), "")]

    return decide(packets, walk)


def _ufw_parse(text: str) -> _UfwStatus:
    state = re.search(r"^Status:\s*(\w+)", text, re.MULTILINE)
    if state is None:
        raise ValueError("not `ufw status` output: no 'Status:' line")
    status = _UfwStatus(active=state.group(1).lower() == "active")
    default = re.search(r"^Default:\s*(\w+)\s+\(incoming\)", text, re.MULTILINE)
    if default:
        status.default_incoming = default.group(1).lower()
    in_rules = False
    for line in text.splitlines():
        if re.match(r"\s*(\[\s*\d+\]\s+)?--\s+-+\s+-+", line):
            in_rules = True  # the rules start after the "--  ------  ----" line
        elif in_rules and line.strip():
            status.rules.append(line.strip())
    return status


def _ufw_step(line: str, packet: Packet) -> Step:
    rule = _UFW_RULE.fullmatch(line)
    if rule is None:
        return Step(line, True, Verb.UNKNOWN, "the ufw rule cannot be read")
    if rule.group("direction") in ("OUT", "FWD"):
        return Step(line, False, Verb.CONTINUE)
    verb = _UFW_VERBS[rule.group("action")]
    try:
        to, origin = _ufw_end(rule.group("to")), _ufw_end(rule.group("from"))
    except ValueError as exc:
        return Step(line, True, Verb.UNKNOWN, f"the ufw rule cannot be read: {exc}")
    try:
        condition = all_of(_ufw_conditions(to, origin, packet))
    except ValueError as exc:
        return Step(line, True, Verb.UNKNOWN, f"the ufw rule cannot be read: {exc}")
    return Step(line, condition, verb, _UFW_LIMIT if verb is Verb.UNKNOWN else "")


def _ufw_end(text: str) -> _UfwEnd:
    """Reads "10.0.0.5 22/tcp (OpenSSH) (v6) on eth0" and its shorter forms."""
    rest, interface, v6 = text.strip(), "", False
    on = re.fullmatch(r"(.+?) on (\S+)", rest)
    if on:
        rest, interface = on.group(1), on.group(2)
    if rest.endswith(" (v6)"):
        rest, v6 = rest.removesuffix(" (v6)"), True
    app = re.fullmatch(r"(\S.*?)\s+\((.+)\)", rest)
    if app and not rest.startswith("Anywhere"):
        rest, v6 = app.group(1), v6 or app.group(2).endswith(" (v6)")
    if rest.startswith("Anywhere"):
        protocol = rest.removeprefix("Anywhere").removeprefix("/")
        return _UfwEnd(protocol=protocol, interface=interface, v6=v6)
    words = rest.split()
    ports = _UFW_PORTS.fullmatch(words[-1])
    if len(words) == 2 and ports and _is_address(words[0]):
        return _UfwEnd(words[0], ports["ports"], ports["proto"] or "", "", interface, v6)
    if len(words) == 1:
        address, protocol = _split_address_protocol(words[0])
        if _is_address(address):
            return _UfwEnd(address, "", protocol, "", interface, v6)
        if ports:
            return _UfwEnd("", ports["ports"], ports["proto"] or "", "", interface, v6)
    return _UfwEnd(app=rest, interface=interface, v6=v6)  # an application profile by name


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _split_address_protocol(text: str) -> tuple[str, str]:
    # "10.0.0.5/tcp" is an address with a protocol; "10.0.0.0/24" is a network.
    head, _, tail = text.rpartition("/")
    if head and tail.isalpha():
        return head, tail
    return text, ""


def _ufw_conditions(to: _UfwEnd, origin: _UfwEnd, packet: Packet) -> list[Tri]:
    conditions: list[Tri] = []
    rule_version = 6 if (to.v6 or origin.v6) else 4
    if not (to.address or origin.address):
        conditions.append(rule_version == packet.version)  # ufw keeps v4 and v6 rules apart
    if to.interface:
        conditions.append(iface_matches(to.interface, packet.in_interface, "+"))
    protocol = to.protocol or origin.protocol
    if protocol:
        conditions.append(match_protocol(protocol, packet))
    if to.address:
        conditions.append(match_destination(packet, parse_networks(to.address), f"to {to.address}"))
    if origin.address:
        conditions.append(
            match_sources(packet, parse_networks(origin.address), f"from {origin.address}")
        )
    if to.ports:
        conditions.append(in_ranges(packet.port, port_ranges(to.ports)))
    if origin.ports:
        conditions.append(match_source_port(port_ranges(origin.ports), f"from port {origin.ports}"))
    if to.app:
        conditions.append(_ufw_app(to.app, packet, source=False))
    if origin.app:
        conditions.append(_ufw_app(origin.app, packet, source=True))
    return conditions


def _ufw_app(name: str, packet: Packet, *, source: bool) -> Tri:
    """An application profile printed by name: its ports are the destination's or source's."""
    spec = _UFW_APPS.get(name)
    if spec is None:
        return Unknown(f"the ports of application profile '{name}' are not known to amiscan")
    ports, _, protocol = spec.partition("/")
    if packet.protocol != protocol:
        return False
    if source:
        return match_source_port(port_ranges(ports), f"from app {name}")
    return in_ranges(packet.port, port_ranges(ports))
