"""Checks and the plug-in registry (entry-point group `amiscan.checks`).

A check is metadata plus one pure function of facts. Built-in checks are registered through the
same entry-point group as third-party ones, so a plug-in is a first-class citizen.
"""

from __future__ import annotations

import importlib.metadata
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from scanner.facts.base import Fact, FactFailed, Facts, FactUnavailable
from scanner.model import Evidence, Outcome, Platform, Policy, Severity, Status

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "amiscan.checks"
_CHECK_ID = re.compile(r"^[a-z0-9]+(?:[.-][a-z0-9]+)+$")

CheckFunction = Callable[[Facts], Outcome]


@dataclass(frozen=True, eq=False)
class Check:
    """One check: who it is, what policy it enforces, what it needs, and how it judges."""

    id: str
    title: str
    severity: Severity
    platform: Platform
    policy: Policy
    rationale: str
    remediation: str
    needs: tuple[Fact[Any], ...]
    judge: CheckFunction
    source: str = "amiscan"

    def run(self, facts: Facts) -> Outcome:
        """Judge, turning an unavailable fact into `skip` and a broken one into `error`."""
        try:
            return self.judge(facts)
        except FactUnavailable as exc:
            return Outcome(Status.SKIP, str(exc), (Evidence("not collectable", str(exc)),))
        except FactFailed as exc:
            return Outcome(Status.ERROR, str(exc), (Evidence("collection", str(exc)),))


def check(
    *,
    id: str,
    title: str,
    severity: Severity,
    platform: Platform,
    policy: Policy,
    rationale: str,
    remediation: str,
    needs: Iterable[Fact[Any]] = (),
) -> Callable[[CheckFunction], Check]:
    """Declare a check: `@check(id=..., ...)` over a function `facts -> Outcome`."""
    if not _CHECK_ID.match(id):
        raise ValueError(f"check id {id!r} must be dotted lowercase words, e.g. 'vendor.area.name'")

    def register(judge: CheckFunction) -> Check:
        return Check(
            id=id,
            title=title,
            severity=severity,
            platform=platform,
            policy=policy,
            rationale=rationale,
            remediation=remediation,
            needs=tuple(needs),
            judge=judge,
            source=judge.__module__,
        )

    return register


class RegistryError(Exception):
    """A plug-in could not be loaded, or two checks claim one id."""


def _checks_in(obj: Any) -> list[Check]:
    if isinstance(obj, Check):
        return [obj]
    if isinstance(obj, ModuleType):
        return [value for value in vars(obj).values() if isinstance(value, Check)]
    if callable(obj):
        return _checks_in_iterable(obj())
    return _checks_in_iterable(obj)


def _checks_in_iterable(obj: Any) -> list[Check]:
    try:
        items = list(obj)
    except TypeError:
        raise RegistryError(f"{obj!r} is neither a check, a module of checks nor a list") from None
    if not all(isinstance(item, Check) for item in items):
        raise RegistryError(f"{obj!r} holds something that is not a check")
    return items


def load_checks(group: str = ENTRY_POINT_GROUP) -> dict[str, Check]:
    """Every check registered under the entry-point group, by id, in catalog order."""
    found: dict[str, Check] = {}
    for entry_point in sorted(importlib.metadata.entry_points(group=group), key=_entry_order):
        try:
            loaded = entry_point.load()
        except Exception as exc:
            raise RegistryError(
                f"plug-in {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
            ) from exc
        for item in _checks_in(loaded):
            if item.id in found and found[item.id] is not item:
                raise RegistryError(
                    f"check id {item.id!r} is registered twice "
                    f"({found[item.id].source} and {item.source})"
                )
            found[item.id] = item
    return found


def _entry_order(entry_point: importlib.metadata.EntryPoint) -> tuple[int, str]:
    # Built-in checks first, so a plug-in that reuses a built-in id is the one named in the error.
    builtin = entry_point.value.startswith("checks.")
    return (0 if builtin else 1, entry_point.name)


def select_checks(
    available: dict[str, Check],
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    platforms: Iterable[Platform] | None = None,
) -> list[Check]:
    """Checks to run; an unknown id in `only` or `skip` is an error (exit 2 at the CLI)."""
    only, skip = list(only), list(skip)
    unknown = [
        cid for cid in [*only, *skip] if cid not in available and not _is_prefix(cid, available)
    ]
    if unknown:
        raise KeyError(", ".join(unknown))
    chosen = [c for c in available.values() if not only or any(_matches(c.id, o) for o in only)]
    chosen = [c for c in chosen if not any(_matches(c.id, s) for s in skip)]
    if platforms is not None:
        allowed = set(platforms)
        chosen = [c for c in chosen if c.platform in allowed]
    return sorted(chosen, key=lambda c: c.id)


def _matches(check_id: str, selector: str) -> bool:
    # `linux.ssh` selects every `linux.ssh.*` check; a full id selects one.
    return check_id == selector or check_id.startswith(selector + ".")


def _is_prefix(selector: str, available: dict[str, Check]) -> bool:
    return any(_matches(cid, selector) for cid in available)
