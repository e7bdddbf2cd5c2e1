"""Pattern and address-list matching, as match.c and addrmatch.c do it."""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Final, Literal

# match.c copies each sub-pattern into a 1024-byte buffer; a longer one never matches.
_MAX_SUBPATTERN = 1023


@functools.lru_cache(maxsize=256)
def pattern_regex(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, flags=re.DOTALL)


def match_pattern(string: str, pattern: str) -> bool:
    """`*` and `?` wildcard match of a whole string (no character classes, as in match.c)."""
    return pattern_regex(pattern).fullmatch(string) is not None


def match_pattern_list(string: str, patterns: str, lowercase: bool = False) -> int:
    """A comma-separated pattern list: 1 on a match, -1 if a negated (`!`) entry matches, else 0."""
    positive = 0
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        sub = entry[1:] if negated else entry
        if len(sub) > _MAX_SUBPATTERN:
            return 0
        if lowercase:
            sub = sub.lower()
        if match_pattern(string, sub):
            if negated:
                return -1
            positive = 1
    return positive


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> _Address | None:
    """A numeric address as getaddrinfo(AI_NUMERICHOST) reads it, shorthand IPv4 included."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    # glibc takes inet_aton forms too: "10.1" is 10.0.0.1, "0x0a.0.0.1" is 10.0.0.1.
    if re.fullmatch(r"[0-9a-fA-FxX.]+", text) and not text.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


INCONSISTENT: Final = "inconsistent"


def parse_cidr(text: str) -> _Network | Literal["inconsistent"] | None:
    """addr_pton_cidr: a network; None when not an address (so a wildcard); or INCONSISTENT.

    Inconsistent (host bits set, mask too long for the family) makes sshd reject the list.
    """
    addr_text, slash, mask_text = text.partition("/")
    if slash and (not mask_text.isdigit() or not mask_text.isascii() or int(mask_text) > 128):
        return None
    address = parse_address(addr_text)
    if address is None:
        return None
    masklen = int(mask_text) if slash else address.max_prefixlen
    if masklen > address.max_prefixlen:
        return INCONSISTENT
    try:
        return ipaddress.ip_network(f"{address}/{masklen}", strict=True)
    except ValueError:
        return INCONSISTENT  # host bits set


@dataclass(frozen=True)
class AddressList:
    """An address list parsed once (addrmatch.c), matched against addresses in constant time.

    sshd stops at the first invalid entry (-2) or the first negated entry that matches (-1), so
    only the entries before the first invalid one can ever count; a negated match among them
    wins over the invalid entry, and either wins over a positive match.
    """

    # (version, prefix length) -> network numbers, for the entries before the first invalid one.
    positive: dict[tuple[int, int], frozenset[int]]
    negative: dict[tuple[int, int], frozenset[int]]
    wildcards: tuple[tuple[bool, re.Pattern[str]], ...]  # (negated, pattern) in list order
    invalid: bool

    def match(self, addr: str | None) -> int:
        """1 match, 0 none, -1 negated match, -2 invalid list (as addr_match_list)."""
        if addr is None:
            return -2 if self.invalid else 0
        address = parse_address(addr)
        if address is None:
            return 0
        number, bits = int(address), address.max_prefixlen
        negated = _in_any(self.negative, address.version, number, bits)
        negated = negated or any(n and r.fullmatch(addr) for n, r in self.wildcards)
        if negated:
            return -1
        if self.invalid:
            return -2
        found = _in_any(self.positive, address.version, number, bits)
        found = found or any(not n and r.fullmatch(addr) for n, r in self.wildcards)
        return 1 if found else 0


def _in_any(
    networks: dict[tuple[int, int], frozenset[int]], version: int, number: int, bits: int
) -> bool:
    return any(
        number >> (bits - prefix) in members
        for (family, prefix), members in networks.items()
        if family == version
    )


@functools.lru_cache(maxsize=1024)
def address_list(patterns: str) -> AddressList:
    """Parse an address pattern list once; entries after the first invalid one never count."""
    positive: dict[tuple[int, int], set[int]] = {}
    negative: dict[tuple[int, int], set[int]] = {}
    wildcards: list[tuple[bool, re.Pattern[str]]] = []
    invalid = False
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        body = entry[1:] if negated else entry
        network = parse_cidr(body) if body else INCONSISTENT
        if network == INCONSISTENT:
            invalid = True
            break
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            key = (network.version, network.prefixlen)
            number = int(network.network_address) >> (network.max_prefixlen - network.prefixlen)
            (negative if negated else positive).setdefault(key, set()).add(number)
        else:
            wildcards.append((negated, pattern_regex(body)))
    return AddressList(
        {k: frozenset(v) for k, v in positive.items()},
        {k: frozenset(v) for k, v in negative.items()},
        tuple(wildcards),
        invalid,
    )


def addr_match_list(addr: str | None, patterns: str) -> int:
    """addrmatch.c addr_match_list: 1 match, 0 none, -1 negated match, -2 invalid list.

    Entries are CIDR networks or, when they do not parse as one, wildcard patterns matched
    against the address text. With `addr` None the list is only checked.
    """
    return address_list(patterns).match(addr)
