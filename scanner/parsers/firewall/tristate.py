"""Three-valued matching: a match holds, fails, or is Unknown (the text cannot settle it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Unknown:
    """A match the text cannot settle, and why."""

    reason: str


Tri = bool | Unknown


def all_of(results: Iterable[Tri]) -> Tri:
    """Every match of a rule holds: one False settles it, whatever else is unknown."""
    unknown: Unknown | None = None
    for result in results:
        if result is False:
            return False
        if isinstance(result, Unknown) and unknown is None:
            unknown = result
    return True if unknown is None else unknown


def any_of(results: Iterable[Tri]) -> Tri:
    """Some alternative holds: one True settles it."""
    unknown: Unknown | None = None
    for result in results:
        if result is True:
            return True
        if isinstance(result, Unknown) and unknown is None:
            unknown = result
    return False if unknown is None else unknown


def negate(result: Tri, negated: bool = True) -> Tri:
    if negated and isinstance(result, bool):
        return not result
    return result
