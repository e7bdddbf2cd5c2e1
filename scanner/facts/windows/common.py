"""What every Windows probe shares: it prints one JSON document, read back here.

PowerShell's ConvertTo-Json unwraps a one-element array into the element and turns $null into
null, so readers go through `as_list` and `as_text` rather than trusting the shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from scanner.facts.base import Fact, FactFailed, Gathered, Mode, Probe
from scanner.parsers.regf import BadHive

T = TypeVar("T")

PLATFORM = "windows"
LIVE_ONLY = frozenset({Mode.LIVE})
LIVE_AND_OFFLINE = frozenset({Mode.LIVE, Mode.OFFLINE})


def probe_json(g: Gathered, what: str) -> Any:
    """The probe's JSON document, or FactFailed naming what went wrong."""
    output = g.require_output()
    text = output.require_success(what)
    if output.truncated:
        raise FactFailed(f"{what} printed more than the collector keeps; the output was cut")
    if not text.strip():
        raise FactFailed(f"{what} printed nothing")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactFailed(f"{what} did not print JSON: {exc}") from None


def require_fields(document: Any, what: str, *fields: str) -> dict[str, Any]:
    """The probe's JSON object holding every one of `fields`, or FactFailed naming those it
    lacks: a field the probe always prints that is missing is not read as its empty value."""
    if not isinstance(document, dict):
        raise FactFailed(f"{what} printed no data")
    missing = [f for f in fields if f not in document]
    if missing:
        raise FactFailed(f"{what} printed no {', '.join(missing)}")
    return document


def as_list(value: Any) -> list[Any]:
    """A JSON value that PowerShell may have unwrapped from a one-element array, as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object, or an empty one when the value is anything else."""
    return value if isinstance(value, dict) else {}


def as_text(value: Any) -> str:
    """A JSON scalar as text ("" for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def as_int(value: Any) -> int | None:
    """A JSON scalar as an integer, None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def windows_fact(
    name: str,
    description: str,
    script: str,
    derive: Callable[[Gathered], T],
    timeout_s: float = 60.0,
    offline: Callable[[Gathered], T] | None = None,
) -> Fact[T]:
    """A Windows fact: one PowerShell probe live, and `offline` (when given) on an image at rest.

    Both forms build the same value, so a check never knows which one ran.
    """

    def gather(g: Gathered) -> T:
        if g.live or offline is None:
            return derive(g)
        try:
            return offline(g)
        except BadHive as exc:
            # A hive damaged deep down is found only when a key is followed; the fact says so.
            raise FactFailed(f"{description}: {exc}") from None

    return Fact(
        name=name,
        description=description,
        derive=gather,
        probe=Probe(script.strip() + "\n", privileged=True, timeout_s=timeout_s),
        modes=LIVE_ONLY if offline is None else LIVE_AND_OFFLINE,
        platform=PLATFORM,
    )
