"""Small helpers that turn facts into evidence lines, shared by the built-in checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable

from scanner.eol import Support
from scanner.facts.linux.ssh import SshdView
from scanner.model import Evidence, Outcome, Status
from scanner.redact import clip, redact


def line(source: str, text: str = "") -> Evidence:
    """Evidence with its text redacted and clipped, as every report should show it."""
    return Evidence(source, clip(redact(text)))


def setting_evidence(views: Iterable[SshdView], keyword: str) -> list[Evidence]:
    """One evidence line per distinct (source, value) of a setting, naming the connections."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for view in views:
        setting = view.get(keyword)
        text = setting.line or f"{keyword} {' '.join(setting.values)}"
        grouped.setdefault((setting.source, text), []).append(view.label)
    return [
        line(source, f"{text}   (for {_summarise(labels)})")
        for (source, text), labels in grouped.items()
    ]


def _summarise(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{labels[0]} and {len(labels) - 1} more"


def key_fingerprint(blob: str) -> str:
    """OpenSSH SHA256 fingerprint of a base64 public key blob ("?" when it is not base64)."""
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError):
        return "?"
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


_SUPPORT_STATUS = {
    "supported": Status.PASS,
    "ending-soon": Status.WARN,
    # Past regular support, still patched for free by the distribution itself (Debian LTS).
    "extended": Status.WARN,
    "end-of-life": Status.FAIL,
    # Not in the bundled table: never a pass, since nothing says it is supported.
    "unknown": Status.WARN,
}


def support_outcome(support: Support, evidence: list[Evidence]) -> Outcome:
    """An OS check's outcome from its end-of-life judgement, naming the table's date."""
    if support.lifecycle is not None:
        evidence.append(
            line("bundled end-of-life table", f"end of support {support.lifecycle.eol.isoformat()}")
        )
    return Outcome(_SUPPORT_STATUS[support.status], support.summary, tuple(evidence))
