"""The scanner addresses that exercise every outcome of a config's Match Address patterns."""

from __future__ import annotations

import bisect
import functools
import ipaddress

from scanner.parsers.sshd_config.config import SshdConfig
from scanner.parsers.sshd_config.model import ConfigTooLarge
from scanner.parsers.sshd_config.patterns import INCONSISTENT, parse_cidr, pattern_regex

# The address ranges the AWS Marketplace scanner connects from.
VETTING_NETWORKS = (
    ipaddress.IPv4Network("10.0.0.0/16"),
    ipaddress.IPv4Network("10.2.0.0/16"),
)
_MAX_VETTING_ADDRESSES = 32
# Each wildcard entry is tried against all 131072 vetting addresses; past this many distinct
# ones the addresses are not worked out (ConfigTooLarge) rather than guessed.
MAX_WILDCARD_ENTRIES = 64


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
    entries = list(dict.fromkeys(e.removeprefix("!") for e in config.match_addresses()))
    wildcards = [e for e in entries if parse_cidr(e) is None]
    if len(wildcards) > MAX_WILDCARD_ENTRIES:
        raise ConfigTooLarge(
            f"Match Address lists hold {len(wildcards)} distinct wildcard entries; the vetting "
            f"addresses are worked out for at most {MAX_WILDCARD_ENTRIES} (a bound of this scanner)"
        )
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


@functools.cache
def _vetting_texts() -> tuple[tuple[int, str], ...]:
    """Every vetting address, as a number and as the text a wildcard is matched against."""
    return tuple(
        (address, f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}")
        for vetting in VETTING_NETWORKS
        for address in range(int(vetting.network_address), int(vetting.broadcast_address) + 1)
    )


def _wildcard_edges(pattern: str) -> set[int]:
    """For a wildcard entry ("10.0.*"), the addresses where matching changes, by scanning."""
    edges: set[int] = set()
    fullmatch = pattern_regex(pattern).fullmatch
    previous: tuple[int, bool] | None = None
    for address, text in _vetting_texts():
        matched = fullmatch(text) is not None
        # The two ranges are scanned separately: no edge between one's end and the next's start.
        if previous is not None and previous[0] == address - 1 and matched != previous[1]:
            edges |= {address - 1, address}
        previous = (address, matched)
    return edges


def _representatives(addresses: list[int], entries: list[str]) -> list[int]:
    """Too many candidates: keep one address per distinct set of matching entries, then fill."""
    seen: dict[frozenset[int], int] = {}
    for address, signature in zip(addresses, _signatures(addresses, entries), strict=True):
        seen.setdefault(signature, address)
    chosen = set(list(seen.values())[:_MAX_VETTING_ADDRESSES])
    for address in addresses:
        if len(chosen) >= _MAX_VETTING_ADDRESSES:
            break
        chosen.add(address)
    return sorted(chosen)


def _signatures(addresses: list[int], entries: list[str]) -> list[frozenset[int]]:
    """For each (sorted) address, the indices of the entries that match it.

    A network claims the addresses inside it by bisection; only wildcards are tried one by one.
    IPv6 networks and inconsistent entries match no IPv4 address.
    """
    hits: list[set[int]] = [set() for _ in addresses]
    texts = [str(ipaddress.IPv4Address(a)) for a in addresses]
    for index, entry in enumerate(entries):
        network = parse_cidr(entry)
        if isinstance(network, ipaddress.IPv4Network):
            low = bisect.bisect_left(addresses, int(network.network_address))
            high = bisect.bisect_right(addresses, int(network.broadcast_address))
            for position in range(low, high):
                hits[position].add(index)
        elif network is None:
            fullmatch = pattern_regex(entry).fullmatch
            for position, text in enumerate(texts):
                if fullmatch(text):
                    hits[position].add(index)
    return [frozenset(h) for h in hits]
