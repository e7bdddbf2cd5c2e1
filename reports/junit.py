"""The JUnit XML report: one test case per check, for CI systems that gate on test results.

Mapping (the status a CI system shows for each amiscan status):

| amiscan                 | JUnit                                                          |
|-------------------------|----------------------------------------------------------------|
| pass                    | passed test case                                               |
| fail                    | `<failure message=summary type=severity>`, body: evidence + fix |
| fail or error, waived   | `<skipped message="waived: reason">`, waiver in `<system-out>`  |
| warn                    | passed test case, the warning in `<system-out>`                |
| skip                    | `<skipped message=reason>`                                     |
| error                   | `<error message=summary type="error">`                         |

Suite counts follow from that table: `failures` = unwaived fails, `skipped` = skips + waived
fails and errors, `errors` = unwaived errors, `tests` = all results. Why the scan could not complete (report errors)
goes to the suite's `<system-err>`, its notes to `<system-out>`: a scan that never launched shows
zero tests, and its exit code (3) is what fails the CI job.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from reports.printable import encodable
from scanner.model import Report, Result, Status

# Characters XML 1.0 cannot carry at all, even escaped: C0 controls other than tab/LF/CR (guest
# output is full of ANSI escapes and NULs), lone surrogates (from surrogateescape-decoded bytes)
# and the two non-characters. They are shown as U+FFFD so a reader sees that something was there.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_REPLACEMENT = "\ufffd"


def render_junit(report: Report) -> str:
    """The report as a JUnit XML document (a `<testsuites>` holding one `<testsuite>`)."""
    report = encodable(report)
    counts = _counts(report)
    root = ET.Element(
        "testsuites", _attrs(name="amiscan", time=_seconds(report.duration_s), **counts)
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        _attrs(
            name="amiscan",
            timestamp=report.started_at,
            time=_seconds(report.duration_s),
            **counts,
        ),
    )
    _add_properties(suite, report)
    for result in report.results:
        _add_testcase(suite, result)
    if report.notes:
        _text_element(suite, "system-out", "\n".join(report.notes))
    if report.errors:
        _text_element(suite, "system-err", "\n".join(report.errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _xml_text(text: str) -> str:
    """`text` with the characters XML 1.0 forbids replaced by U+FFFD."""
    return _XML_ILLEGAL.sub(_REPLACEMENT, text)


def _counts(report: Report) -> dict[str, str]:
    results = report.results
    waived = sum(1 for r in results if r.accepted)
    return {
        "tests": str(len(results)),
        "failures": str(len(report.unwaived_failures)),
        "errors": str(sum(1 for r in results if r.status is Status.ERROR and not r.waived)),
        "skipped": str(sum(1 for r in results if r.status is Status.SKIP) + waived),
    }


def _add_properties(suite: ET.Element, report: Report) -> None:
    properties = ET.SubElement(suite, "properties")
    facts = {
        "amiscan.version": report.amiscan_version,
        "amiscan.catalog_version": report.catalog_version,
        "amiscan.verdict": report.verdict.value,
        "amiscan.unjudged": ",".join(r.id for r in report.unjudged),
        "target.kind": report.target.kind,
        "target.id": report.target.id,
        "target.platform": report.target.platform,
    }
    for name, value in facts.items():
        ET.SubElement(properties, "property", _attrs(name=name, value=value))


def _add_testcase(suite: ET.Element, result: Result) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        _attrs(
            classname=f"amiscan.{result.id.split('.', 1)[0]}",
            name=result.id,
            time=_seconds(result.duration_s),
        ),
    )
    if result.accepted:
        ET.SubElement(case, "skipped", _attrs(message=f"waived: {_waiver_reason(result)}"))
        _text_element(case, "system-out", _waived_note(result) + "\n\n" + _details(result))
    elif result.status is Status.FAIL:
        failure = ET.SubElement(
            case, "failure", _attrs(message=result.summary, type=result.severity.value)
        )
        failure.text = _xml_text(_details(result))
    elif result.status is Status.ERROR:
        error = ET.SubElement(case, "error", _attrs(message=result.summary, type="error"))
        error.text = _xml_text(_details(result))
    elif result.status is Status.SKIP:
        ET.SubElement(case, "skipped", _attrs(message=result.summary))
    elif result.status is Status.WARN:
        note = f"WARNING ({result.severity.value}): {result.summary}\n\n{_details(result)}"
        _text_element(case, "system-out", note)


def _details(result: Result) -> str:
    """What a CI log reader needs to act on a result: what, evidence, fix and policy."""
    lines = [f"{result.title} [{result.severity.value}]", result.summary, ""]
    for evidence in result.evidence:
        lines += [f"--- {evidence.source}", evidence.text, ""]
    if result.remediation:
        lines.append(f"Remediation: {result.remediation}")
    policy = " ".join(part for part in (result.policy.id, result.policy.url) if part)
    if policy:
        lines.append(f"Policy: {policy}")
    return "\n".join(lines).strip()


def _waiver_reason(result: Result) -> str:
    return (result.waiver or {}).get("reason", "") or "no reason given"


def _waived_note(result: Result) -> str:
    waiver = result.waiver or {}
    expires = waiver.get("expires") or "never"
    approver = waiver.get("approver") or "unknown"
    return f"WAIVED: {_waiver_reason(result)} (expires {expires}, approved by {approver})"


def _text_element(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, tag).text = _xml_text(text)


def _attrs(**values: str) -> dict[str, str]:
    return {name: _xml_text(value) for name, value in values.items()}


def _seconds(duration_s: float) -> str:
    return f"{duration_s:.3f}"
