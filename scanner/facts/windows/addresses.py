"""Whether a Windows Firewall address list admits the Marketplace vetting ranges.

Get-NetFirewallAddressFilter reports RemoteAddress as a list of "Any", keywords ("LocalSubnet",
"Intranet", "DNS", …), single addresses, CIDR prefixes ("10.0.0.0/16"), address/mask pairs
("10.0.0.0/255.255.0.0") and ranges ("10.0.0.0-10.255.255.255"). Keywords other than "Any" depend
on the network the instance boots in, which the scan cannot know, so they never count as covering.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The Marketplace scanner reaches instances from these ranges (CHECKS.md).
VETTING_RANGES: tuple[str, ...] = ("10.0.0.0/16", "10.2.0.0/16")

_ANY = frozenset({"any", "*"})

Interval = tuple[int, int]


@dataclass(frozen=True)
class Coverage:
    """Which vetting ranges an address list fully admits, and what it could not judge."""

    missing: tuple[str, ...]
    unresolved: tuple[str, ...]

    @property
    def covers(self) -> bool:
        return not self.missing


def _interval(entry: str) -> Interval | None:
    """The IPv4 interval an entry names; None for keywords, IPv6 and nonsense."""
    text = entry.strip()
    try:
        if "-" in text:
            low, high = (ipaddress.ip_address(part.strip()) for part in text.split("-", 1))
            if low.version != 4 or high.version != 4:
                return None
            return (int(low), int(high))
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if network.version != 4:
        return None
    return (int(network.network_address), int(network.broadcast_address))


def _parse(entries: Iterable[str]) -> tuple[list[Interval], list[str]]:
    intervals: list[Interval] = []
    unresolved: list[str] = []
    for entry in entries:
        if entry.strip().lower() in _ANY:
            intervals.append((0, 2**32 - 1))
            continue
        interval = _interval(entry)
        if interval is None:
            # IPv6 addresses are simply irrelevant to IPv4 vetting ranges; keywords are unknowable.
            if ":" not in entry:
                unresolved.append(entry.strip())
            continue
        intervals.append(interval)
    return intervals, unresolved


def _merged(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def coverage(entries: Iterable[str], ranges: Sequence[str] = VETTING_RANGES) -> Coverage:
    """Which of `ranges` the union of `entries` does not fully admit."""
    intervals, unresolved = _parse(entries)
    merged = _merged(intervals)
    missing = []
    for wanted in ranges:
        low, high = _interval(wanted) or (0, -1)
        if not any(a <= low and high <= b for a, b in merged):
            missing.append(wanted)
    return Coverage(tuple(missing), tuple(unresolved))


def overlaps(entries: Iterable[str], ranges: Sequence[str] = VETTING_RANGES) -> bool:
    """Whether `entries` name any address inside `ranges` (a block rule that does hurts)."""
    intervals, _ = _parse(entries)
    for wanted in ranges:
        low, high = _interval(wanted) or (0, -1)
        if any(a <= high and low <= b for a, b in intervals):
            return True
    return False
