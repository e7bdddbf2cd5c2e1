"""The scanner addresses that exercise every outcome of a config's Match Address patterns."""

from __future__ import annotations

import ipaddress

from scanner.parsers.sshd_config.config import SshdConfig
from scanner.parsers.sshd_config.patterns import (
    INCONSISTENT,
    addr_match_list,
    parse_cidr,
    pattern_regex,
)

# The address ranges the AWS Marketplace scanner connects from.
VETTING_NETWORKS = (
    ipaddress.IPv4Network("10.0.0.0/16"),
    ipaddress.IPv4Network("10.2.0.0/16"),
)
_MAX_VETTING_ADDRESSES = 32


def vetting_addresses(config: SshdConfig) -> list[str]:
    """Scanner addresses that exercise every outcome of the config's Match Address patterns.

    The four fixed corners of 10.0.0.0/16 and 10.2.0.0/16, plus for every network or wildcard
    in a Match Address/LocalAddress pattern that overlaps them, the addresses on each side of
    its edges. At most 32, sorted.
    """
    candidates = {
        int(ipaddress.IPv4Address(a))
        for a in ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")
    }
    entries = [e.removeprefix("!") for e in config.match_addresses()]
    for entry in entries:
        candidates |= _edges(entry)
    ordered = sorted(candidates)
    if len(ordered) > _MAX_VETTING_ADDRESSES:
        ordered = _representatives(ordered, entries)
    return [str(ipaddress.IPv4Address(a)) for a in ordered]


def _in_vetting_ranges(address: int) -> bool:
    return any(
        int(n.network_address) <= address <= int(n.broadcast_address) for n in VETTING_NETWORKS
    )


def _edges(entry: str) -> set[int]:
    """Addresses in the vetting ranges on both sides of where `entry` starts or stops matching."""
    network = parse_cidr(entry)
    if isinstance(network, ipaddress.IPv6Network) or network == INCONSISTENT:
        return set()
    if isinstance(network, ipaddress.IPv4Network):
        first, last = int(network.network_address), int(network.broadcast_address)
        # Where the network's edges fall outside the ranges, the range corners already cover it.
        return {a for a in (first - 1, first, last, last + 1) if _in_vetting_ranges(a)}
    return _wildcard_edges(entry)


def _wildcard_edges(pattern: str) -> set[int]:
    """For a wildcard entry ("10.0.*"), the addresses where matching changes, by scanning."""
    edges: set[int] = set()
    regex = pattern_regex(pattern)
    for vetting in VETTING_NETWORKS:
        previous: bool | None = None
        for address in range(int(vetting.network_address), int(vetting.broadcast_address) + 1):
            text = f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
            matched = regex.fullmatch(text) is not None
            if previous is not None and matched != previous:
                edges |= {address - 1, address}
            previous = matched
    return edges


def _representatives(addresses: list[int], entries: list[str]) -> list[int]:
    """Too many candidates: keep one address per distinct set of matching entries, then fill."""
    seen: dict[tuple[bool, ...], int] = {}
    for address in addresses:
        text = str(ipaddress.IPv4Address(address))
        signature = tuple(addr_match_list(text, entry) == 1 for entry in entries)
        seen.setdefault(signature, address)
    chosen = set(list(seen.values())[:_MAX_VETTING_ADDRESSES])
    for address in addresses:
        if len(chosen) >= _MAX_VETTING_ADDRESSES:
            break
        chosen.add(address)
    return sorted(chosen)
