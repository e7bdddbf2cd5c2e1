"""The SARIF 2.1.0 report, shaped for GitHub code scanning.

Mapping:

| amiscan      | SARIF result                                                                    |
|--------------|---------------------------------------------------------------------------------|
| fail         | `kind: "fail"`, `level: "error"`                                                |
| warn         | `kind: "fail"`, `level: "warning"`                                              |
| error        | `kind: "open"`, `level: "none"`, plus a tool execution notification (below)     |
| pass, skip   | not emitted (their checks still appear as rules, so the rule set is complete)   |
| waived       | emitted as its status says, with `suppressions: [{kind: "external", ...}]`      |

Why `open` for error: SARIF defines `open` as "the tool could not decide whether the rule is
satisfied", which is exactly a check whose facts could not be collected; and SARIF requires
`level: "none"` for any kind other than `fail` (3.27.9), so a `note` there would be invalid.
The error is also reported as a `toolExecutionNotification` of level `error` on the invocation,
where SARIF expects "the tool could not run this rule", along with the report's own errors;
`executionSuccessful` is false when the verdict is `error`.

Locations: GitHub drops a result without one. Evidence whose source is a guest file path
(`/etc/ssh/sshd_config:12`) becomes `uri: etc/ssh/sshd_config` with `startLine: 12`; otherwise
the location is the scanned target itself, its id percent-encoded into a relative URI (an
`ssh://…` id left absolute would make GitHub reject the upload for a scheme mismatch).
`partialFingerprints.primaryLocationLineHash` leaves the target id out, so an alert survives
rebuilding the AMI.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from reports.printable import encodable
from scanner.model import Report, Result, Severity, Status, Verdict

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
# TODO(lead): point at the project's home page once it has one.
INFORMATION_URI = "https://github.com/amiscan/amiscan"

# GitHub maps these to its own critical/high/medium/low; 0.0 means "no security severity".
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}

# (kind, level) per emitted status; statuses absent here produce no SARIF result.
_RESULT_SHAPE = {
    Status.FAIL: ("fail", "error"),
    Status.WARN: ("fail", "warning"),
    Status.ERROR: ("open", "none"),
}

# "/etc/ssh/sshd_config" or "/etc/ssh/sshd_config:12": an absolute guest path, optional line.
_GUEST_PATH = re.compile(r"^/(?P<path>[^\s:]+)(?::(?P<line>[1-9][0-9]*))?$")


def render_sarif(report: Report) -> str:
    """The report as a SARIF 2.1.0 log with one run."""
    return json.dumps(to_sarif(report), indent=2) + "\n"


def to_sarif(report: Report) -> dict[str, Any]:
    """The SARIF log as a JSON-ready dictionary."""
    report = encodable(report)
    rules = _rules(report)
    rule_index = {rule["id"]: index for index, rule in enumerate(rules)}
    results = [
        _result(result, report, rule_index[result.id])
        for result in report.results
        if result.status in _RESULT_SHAPE
    ]
    run = {
        "tool": {
            "driver": {
                "name": "amiscan",
                "version": report.amiscan_version,
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }
        },
        "invocations": [_invocation(report)],
        "results": results,
        "properties": {
            "target": {
                "kind": report.target.kind,
                "id": report.target.id,
                "platform": report.target.platform,
            },
            "verdict": report.verdict.value,
            "catalogVersion": report.catalog_version,
        },
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _rules(report: Report) -> list[dict[str, Any]]:
    """One rule per check in the report, first occurrence wins, in report order."""
    seen: dict[str, Result] = {}
    for result in report.results:
        seen.setdefault(result.id, result)
    return [_rule(result) for result in seen.values()]


def _rule(result: Result) -> dict[str, Any]:
    # GitHub rejects empty strings in required texts, so each falls back to the title.
    rule: dict[str, Any] = {
        "id": result.id,
        "name": _rule_name(result.id),
        "shortDescription": {"text": result.title},
        "fullDescription": {"text": result.rationale or result.title},
        "help": {
            "text": result.remediation or result.title,
            "markdown": _help_markdown(result),
        },
        "properties": {
            "severity": result.severity.value,
            "policy": result.policy.id,
            "security-severity": SECURITY_SEVERITY[result.severity],
            "tags": _tags(result),
        },
    }
    if _is_http_url(result.policy.url):
        rule["helpUri"] = result.policy.url
    return rule


def _rule_name(check_id: str) -> str:
    """SARIF wants an identifier-like name: `linux.ssh.root-login` -> `LinuxSshRootLogin`."""
    return "".join(word.capitalize() for word in re.split(r"[^A-Za-z0-9]+", check_id) if word)


def _help_markdown(result: Result) -> str:
    parts = [result.remediation or result.title]
    if result.policy.id:
        policy = f"Marketplace policy {result.policy.id}"
        if _is_http_url(result.policy.url):
            policy = f"[{policy}]({result.policy.url})"
        parts.append(f"{policy}: {result.policy.text}" if result.policy.text else policy)
    return "\n\n".join(parts)


def _tags(result: Result) -> list[str]:
    tags = ["security", "aws-marketplace", result.id.split(".", 1)[0], result.severity.value]
    if result.policy.id:
        tags.append(f"policy-{result.policy.id}")
    return list(dict.fromkeys(tags))  # SARIF requires distinct tags


def _result(result: Result, report: Report, rule_index: int) -> dict[str, Any]:
    kind, level = _RESULT_SHAPE[result.status]
    locations = _locations(result, report)
    sarif: dict[str, Any] = {
        "ruleId": result.id,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {"text": _message(result)},
        "locations": locations,
        "partialFingerprints": {"primaryLocationLineHash": _fingerprint(result, locations[0])},
        "properties": {"status": result.status.value, "severity": result.severity.value},
    }
    if result.waived:
        sarif["suppressions"] = [_suppression(result)]
    return sarif


def _message(result: Result) -> str:
    # GitHub shows the first sentence as the alert title: lead with the summary, then evidence.
    lines = [result.summary or result.title]
    lines += [f"{e.source}: {e.text}" if e.text else e.source for e in result.evidence]
    return "\n".join(lines)


def _locations(result: Result, report: Report) -> list[dict[str, Any]]:
    """File locations from the evidence (GitHub reads only the first), else the target."""
    locations: list[dict[str, Any]] = []
    for evidence in result.evidence:
        location = _file_location(evidence.source)
        if location is not None and location not in locations:
            locations.append(location)
    return locations[:10] or [_target_location(report)]


def _file_location(source: str) -> dict[str, Any] | None:
    match = _GUEST_PATH.match(source.strip())
    if match is None:
        return None
    line = int(match["line"]) if match["line"] else 1
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(match["path"], safe="/")},
            "region": {"startLine": line},
        }
    }


def _target_location(report: Report) -> dict[str, Any]:
    target = report.target
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": quote(target.id, safe="") or "target"},
            "region": {"startLine": 1},
        },
        "logicalLocations": [{"name": target.id, "kind": "resource"}],
        "message": {"text": f"{target.kind} {target.id}"},
    }


def _fingerprint(result: Result, location: dict[str, Any]) -> str:
    """The identity GitHub tracks an alert by (the only fingerprint it reads).

    Ours, because GitHub cannot compute one from a guest file that is not in the repository. A
    guest file path is stable across scans; the target id is not (each build is a new AMI), so
    every target location counts as the same place.
    """
    if "logicalLocations" in location:
        where = "target"
    else:
        where = location["physicalLocation"]["artifactLocation"]["uri"]
    digest = hashlib.sha256(f"{result.id}\0{where}".encode()).hexdigest()[:16]
    return f"{digest}:1"


def _suppression(result: Result) -> dict[str, Any]:
    waiver = result.waiver or {}
    justification = waiver.get("reason") or "waived"
    details = [f"expires {waiver['expires']}" if waiver.get("expires") else ""]
    details.append(f"approved by {waiver['approver']}" if waiver.get("approver") else "")
    extra = ", ".join(part for part in details if part)
    return {
        "kind": "external",
        "status": "accepted",
        "justification": f"{justification} ({extra})" if extra else justification,
    }


def _invocation(report: Report) -> dict[str, Any]:
    notifications = [{"level": "error", "message": {"text": error}} for error in report.errors]
    notifications += [
        {
            "level": "error",
            "message": {
                "text": f"could not judge {result.id}: "
                + (result.summary or "the check could not be evaluated")
            },
            "associatedRule": {"id": result.id},
        }
        for result in report.unjudged
    ]
    invocation: dict[str, Any] = {
        "executionSuccessful": report.verdict is not Verdict.ERROR,
        "toolExecutionNotifications": notifications,
    }
    for key, stamp in (("startTimeUtc", report.started_at), ("endTimeUtc", report.finished_at)):
        utc = _utc(stamp)
        if utc is not None:
            invocation[key] = utc
    return invocation


def _utc(stamp: str) -> str | None:
    """An ISO 8601 time as SARIF's UTC date-time, or None when it is not a zoned ISO time."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
