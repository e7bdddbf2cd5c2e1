"""The HTML report: one self-contained file a reviewer opens offline, failures first.

Every string from the guest (evidence, summaries, target details) is untrusted. The template is
autoescaped, nothing from the report is ever marked safe, `data-*` attributes carry only enum
values, links are rendered only for http(s) URLs, and a Content-Security-Policy allows exactly
one script, the filter below, by its hash: even a missed escape could not run code.

Evidence and target details are passed through `scanner.redact` again when rendered: checks
redact their own evidence, but this page is also rendered from JSON files (`amiscan report`) that
a plug-in or a person may have written, and it is the file most widely shared.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from reports.printable import encodable
from scanner.baseline import new_failure_ids
from scanner.model import Evidence, Report, Result, Severity, Status, Verdict
from scanner.redact import redact

TEMPLATE = "report.html.j2"

# The page's only script: status/severity filters (the form stays hidden without scripts, and
# every result is visible by default) and opening collapsed evidence while printing. It must
# never contain "</", and must be plain text: its exact bytes are hashed into the CSP.
FILTER_SCRIPT = """
"use strict";
(() => {
  const form = document.getElementById("filters");
  const results = document.querySelectorAll("article[data-status]");
  const allowed = (name) => {
    const on = new Set();
    form.querySelectorAll(`input[name="${name}"]:checked`).forEach((box) => on.add(box.value));
    return on;
  };
  const apply = () => {
    const status = allowed("status");
    const severity = allowed("severity");
    results.forEach((el) => {
      el.hidden = !(status.has(el.dataset.status) && severity.has(el.dataset.severity));
    });
  };
  form.addEventListener("change", apply);
  form.addEventListener("reset", () => setTimeout(apply, 0));
  form.hidden = false;
  let opened = [];
  window.addEventListener("beforeprint", () => {
    opened = [...document.querySelectorAll("details:not([open])")];
    opened.forEach((d) => { d.open = true; });
  });
  window.addEventListener("afterprint", () => opened.forEach((d) => { d.open = false; }));
})();
"""

# Controls, lone surrogates and non-characters: invisible, or parse errors in HTML; show U+FFFD.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_URL_NOISE = re.compile(r"[\s\x00-\x1f\x7f]")
_ACRONYMS = {
    "ami": "AMI",
    "arn": "ARN",
    "aws": "AWS",
    "ebs": "EBS",
    "ena": "ENA",
    "id": "ID",
    "imds": "IMDS",
    "ip": "IP",
    "os": "OS",
    "sg": "SG",
    "ssh": "SSH",
    "url": "URL",
    "vpc": "VPC",
}
# Table columns in reading order (fail first), as the model ranks statuses.
_STATUS_ORDER = sorted(Status, key=lambda status: status.rank)
_WAIVED = "waived"
# The filterable states, in reading order: the model's statuses plus "waived" (a waived fail
# or error).
STATES = ("fail", "error", "warn", "skip", "pass", _WAIVED)
# The target facts reviewers look for first, in this order; other details follow as recorded.
_FIRST_FACTS = (
    "name",
    "region",
    "architecture",
    "os",
    "platform_details",
    "instance_type",
    "login_user",
    "host_key_verification",
)
# A value this long, or on several lines (e.g. console output), is folded under its label.
_LONG_VALUE_CHARS = 160
_VERDICT_SENTENCES = {
    Verdict.PASS: "Every check that applies was judged and none failed: the image meets every "
    "requirement that was checked.",
    Verdict.FAIL: "The image does not meet AWS Marketplace requirements: see the failures below.",
    Verdict.ERROR: "Could not judge: checks that apply to this image could not be judged, so "
    "this is not a pass.",
}


@dataclass(frozen=True)
class _ResultView:
    """A result with what the template should not compute: filter state and the safe link."""

    result: Result
    state: str
    evidence_open: bool
    policy_href: str | None
    evidence: tuple[Evidence, ...]
    new_since_baseline: bool


@dataclass(frozen=True)
class _Fact:
    """One row of a facts table; a long value is shown folded, in monospace."""

    label: str
    value: str
    long: bool


def render_html(report: Report) -> str:
    """The report as one self-contained HTML page."""
    return _environment().get_template(TEMPLATE).render(_context(encodable(report)))


def script_hash(script: str = FILTER_SCRIPT) -> str:
    """The CSP source expression (`'sha256-…'`) that allows exactly `script`."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@functools.cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        finalize=_printable,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["seconds"] = _seconds
    return environment


def _context(report: Report) -> dict[str, Any]:
    waived = sum(1 for r in report.results if r.accepted)
    return {
        "report": report,
        "verdict": report.verdict.value,
        "verdict_sentence": _VERDICT_SENTENCES[report.verdict],
        "unwaived_failures": len(report.unwaived_failures),
        "waived_failures": waived,
        "unjudged": report.unjudged_by_reason(),
        "target_facts": _target_facts(report),
        "collection_facts": [_fact(_label(k), v) for k, v in report.collection.items()],
        "statuses": [status.value for status in _STATUS_ORDER],
        "severity_rows": _severity_rows(report),
        "status_totals": [report.summary[status.value] for status in _STATUS_ORDER],
        "states": STATES,
        "severities": [severity.value for severity in Severity],
        "results": [_view(result, new_failure_ids(report)) for result in report.ordered_results()],
        # The one place Markup is used: our own constant, never report data.
        "script": Markup(FILTER_SCRIPT),  # noqa: S704
        "csp": _content_security_policy(),
    }


def _content_security_policy() -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {script_hash()}",
            "style-src 'unsafe-inline'",
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def _view(result: Result, new_ids: frozenset[str]) -> _ResultView:
    state = _WAIVED if result.accepted else result.status.value
    return _ResultView(
        result=result,
        state=state,
        evidence_open=state in ("fail", "error", "warn"),
        policy_href=result.policy.url if _is_http_url(result.policy.url) else None,
        evidence=tuple(Evidence(e.source, redact(e.text)) for e in result.evidence),
        new_since_baseline=result.status is Status.FAIL and result.id in new_ids,
    )


def _target_facts(report: Report) -> list[_Fact]:
    target = report.target
    details = dict(target.details)
    if details.get("ami_id") == target.id:
        del details["ami_id"]  # the first row names it already
    ordered = [key for key in _FIRST_FACTS if key in details]
    ordered += [key for key in details if key not in _FIRST_FACTS]
    facts = [
        _Fact("AMI ID" if target.kind == "ami" else "Target", target.id, False),
        _Fact("Kind", target.kind, False),
        _Fact("Platform", target.platform, False),
    ]
    return facts + [_fact(_label(key), details[key]) for key in ordered]


def _fact(label: str, value: object) -> _Fact:
    text = _display(value)
    return _Fact(label, redact(text), len(text) > _LONG_VALUE_CHARS or "\n" in text)


def _severity_rows(report: Report) -> list[tuple[str, list[int], int]]:
    rows = []
    for severity in Severity:
        counts = [
            sum(1 for r in report.results if r.severity is severity and r.status is status)
            for status in _STATUS_ORDER
        ]
        rows.append((severity.value, counts, sum(counts)))
    return rows


def _label(key: str) -> str:
    """A details key as a table label: `ami_id` -> `AMI ID`, `instance_type` -> `Instance type`."""
    words = [_ACRONYMS.get(word.lower(), word) for word in re.split(r"[_\-\s]+", key) if word]
    if not words:
        return key
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def _display(value: object) -> str:
    """A details value as text: lists joined, booleans as yes/no, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_display(item) for item in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{key}: {_display(item)}" for key, item in value.items())
    return str(value)


def _printable(value: object) -> object:
    """Jinja `finalize`: every printed string loses the characters HTML cannot show."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _UNPRINTABLE.sub("\ufffd", value)
    return value


def _seconds(duration_s: float) -> str:
    return f"{duration_s:.2f} s"


def _is_http_url(url: str) -> bool:
    # Whitespace and controls are refused outright: browsers and urlsplit each strip some of
    # them, and a link should not depend on which one is right.
    if _URL_NOISE.search(url):
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
