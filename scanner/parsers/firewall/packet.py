"""The scanner's simulated packet, the matches on it, and the address and port syntax."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from scanner.parsers.firewall.tristate import Tri, Unknown, any_of

# The networks the Marketplace scanner connects from (CHECKS.md, policy S4).
SCANNER_NETWORKS: tuple[str, ...] = ("10.0.0.0/16", "10.2.0.0/16")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_N = TypeVar("_N", ipaddress.IPv4Network, ipaddress.IPv6Network)


_PROTOCOL_NUMBERS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
    "udplite": 136,
}

# Port names that appear in rule dumps (nft prints a set's ports by name when told to).
_PORT_NAMES = {
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "domain": 53,
    "http": 80,
    "pop3": 110,
    "ntp": 123,
    "imap": 143,
    "https": 443,
    "microsoft-ds": 445,
    "rdp": 3389,
}

# Linux and Windows clients pick source ports from these; the scanner's port is not known.
_EPHEMERAL_PORTS = (1024, 65535)


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection from the scanner: source, destination port, protocol."""

    source: Network
    port: int
    protocol: str
    in_interface: str

    @property
    def version(self) -> int:
        return self.source.version


def _network_text(network: Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def make_packets(
    sources: Sequence[str], port: int, protocol: str, in_interface: str
) -> list[Packet]:
    """One packet per source; ValueError for a source, port or protocol that is not one."""
    if not 0 < port <= 65535:
        raise ValueError(f"not a port: {port}")
    if protocol.lower() not in ("tcp", "udp"):
        raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
    return [
        Packet(
            ipaddress.ip_network(source.strip(), strict=False), port, protocol.lower(), in_interface
        )
        for source in sources
    ]


def describe_packets(packets: Sequence[Packet]) -> str:
    origins = ", ".join(_network_text(packet.source) for packet in packets)
    return f"{packets[0].protocol}/{packets[0].port} from {origins}"


def _exclude_same(part: _N, network: _N) -> list[_N]:
    if part.subnet_of(network):
        return []
    if network.subnet_of(part):
        return list(part.address_exclude(network))
    return [part]


def _exclude(part: Network, network: Network) -> list[Network]:
    """What is left of `part` outside `network` (two CIDR blocks nest or are disjoint)."""
    if isinstance(part, ipaddress.IPv4Network) and isinstance(network, ipaddress.IPv4Network):
        return list(_exclude_same(part, network))
    if isinstance(part, ipaddress.IPv6Network) and isinstance(network, ipaddress.IPv6Network):
        return list(_exclude_same(part, network))
    return [part]


def _coverage(source: Network, networks: Sequence[Network]) -> str:
    """How much of `source` the union of `networks` covers: "all", "none" or "part"."""
    relevant = [n for n in networks if n.version == source.version and n.overlaps(source)]
    if not relevant:
        return "none"
    remaining: list[Network] = [source]
    for network in relevant:
        remaining = [piece for part in remaining for piece in _exclude(part, network)]
        if not remaining:
            return "all"
    return "part"


def match_sources(packet: Packet, networks: Sequence[Network], what: str) -> Tri:
    """Whether the source lies in `networks` (True), outside them (False), or partly in them."""
    coverage = _coverage(packet.source, networks)
    if coverage == "part":
        return Unknown(f"{what} covers only part of {_network_text(packet.source)}")
    return coverage == "all"


def match_destination(packet: Packet, networks: Sequence[Network], what: str) -> Tri:
    """A destination match: the packet is for the instance's own address, which is not known."""
    results: list[Tri] = []
    for network in networks:
        if network.version != packet.version:
            results.append(False)
        elif network.prefixlen == 0:
            results.append(True)
        elif network.is_loopback or network.is_multicast or network.is_link_local:
            # The scanner reaches the instance's VPC address, never one of these.
            results.append(False)
        elif str(network) == "255.255.255.255/32":
            results.append(False)
        else:
            results.append(Unknown(f"{what} depends on the instance's own address"))
    return any_of(results)


def in_ranges(port: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(low <= port <= high for low, high in ranges)


def _covers(ranges: Iterable[tuple[int, int]], low: int, high: int) -> bool:
    point = low
    for start, end in sorted(ranges):
        if start > point:
            return False
        point = max(point, end + 1)
    return point > high


def match_source_port(ranges: Sequence[tuple[int, int]], what: str) -> Tri:
    """A source-port match: true only when every ephemeral port is in `ranges`."""
    low, high = _EPHEMERAL_PORTS
    clipped = [(max(a, low), min(b, high)) for a, b in ranges if a <= high and b >= low]
    if not clipped:
        return False
    if _covers(clipped, low, high):
        return True
    return Unknown(f"{what} depends on the scanner's source port, which is not known")


def iface_matches(pattern: str, name: str, wildcard: str) -> bool:
    if pattern.endswith(wildcard):
        return name.startswith(pattern[: -len(wildcard)])
    return pattern == name


def _protocol_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return int(text) if text.isdigit() else _PROTOCOL_NUMBERS.get(text)
    return None


def match_protocol(value: object, packet: Packet) -> Tri:
    wanted = _protocol_number(value)
    if wanted is None:
        return Unknown(f"protocol {value} is not known")
    return wanted == _PROTOCOL_NUMBERS[packet.protocol]


def port_number(text: str) -> int:
    text = text.strip()
    number = int(text) if text.isdigit() else _PORT_NAMES.get(text.lower())
    if number is None or not 0 <= number <= 65535:
        raise ValueError(f"not a port: {text!r}")
    return number


def port_range(low: str, high: str) -> tuple[int, int]:
    first = port_number(low) if low else 0
    last = port_number(high) if high else 65535
    return min(first, last), max(first, last)


def parse_networks(text: str) -> list[Network]:
    return [ipaddress.ip_network(part, strict=False) for part in text.split(",") if part]


def port_ranges(text: str) -> list[tuple[int, int]]:
    """Ports as iptables and ufw print them: "22", "80,443", "1000:2000"."""
    return [port_range(*split_range(part, ":")) for part in text.split(",")]


def split_range(text: str, separator: str) -> tuple[str, str]:
    low, found, high = text.partition(separator)
    return (low, high) if found else (low, low)


def ip_range(text: str) -> list[Network]:
    low, high = split_range(text, "-")
    first, last = ipaddress.ip_address(low.strip()), ipaddress.ip_address(high.strip())
    if isinstance(first, ipaddress.IPv4Address) and isinstance(last, ipaddress.IPv4Address):
        return list(ipaddress.summarize_address_range(first, last))
    if isinstance(first, ipaddress.IPv6Address) and isinstance(last, ipaddress.IPv6Address):
        return list(ipaddress.summarize_address_range(first, last))
    raise ValueError(f"a range mixes IPv4 and IPv6: {text!r}")
