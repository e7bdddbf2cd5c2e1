"""JUnit XML: one test case per check, counts a CI system can trust, and always parseable."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from reports.junit import render_junit
from scanner.model import Evidence, Report, Result, Status, Verdict


def _suite(report: Report) -> ET.Element:
    # Parsing our own output, not untrusted XML.
    root = ET.fromstring(render_junit(report))  # noqa: S314
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    return suites[0]


def _case(report: Report, check_id: str) -> ET.Element:
    cases = [c for c in _suite(report).iter("testcase") if c.get("name") == check_id]
    assert len(cases) == 1
    return cases[0]


def test_one_suite_named_amiscan_with_one_case_per_result(mixed_report: Report) -> None:
    suite = _suite(mixed_report)

    assert suite.get("name") == "amiscan"
    assert [c.get("name") for c in suite.iter("testcase")] == [r.id for r in mixed_report.results]


def test_suite_counts_match_the_report_summary(mixed_report: Report) -> None:
    suite = _suite(mixed_report)
    summary = mixed_report.summary
    waived = sum(1 for r in mixed_report.results if r.waived and r.status is Status.FAIL)

    assert int(suite.get("tests", "")) == sum(summary.values())
    assert int(suite.get("failures", "")) == summary["fail"] - waived == 1
    assert int(suite.get("errors", "")) == summary["error"] == 1
    assert int(suite.get("skipped", "")) == summary["skip"] + waived == 2
    assert len(suite.findall("testcase/failure")) == 1
    assert len(suite.findall("testcase/skipped")) == 2


def test_classname_is_the_first_part_of_the_check_id(mixed_report: Report) -> None:
    assert _case(mixed_report, "image.architecture").get("classname") == "amiscan.image"
    assert _case(mixed_report, "linux.ssh.root-login").get("classname") == "amiscan.linux"


def test_a_fail_carries_summary_severity_evidence_and_remediation(mixed_report: Report) -> None:
    failure = _case(mixed_report, "linux.ssh.root-login").find("failure")

    assert failure is not None
    assert failure.get("type") == "critical"
    assert failure.get("message", "").startswith("PermitRootLogin yes <script>")
    body = failure.text or ""
    assert "--- /etc/ssh/sshd_config:12\nPermitRootLogin yes" in body
    assert "<script>alert(1)</script>" in body  # escaped in the file, literal once parsed
    assert "Remediation: Fix linux.ssh.root-login." in body
    assert "Policy: S2 https://docs.aws.amazon.com/" in body


def test_an_error_is_a_junit_error(mixed_report: Report) -> None:
    case = _case(mixed_report, "linux.packages.up-to-date")

    error = case.find("error")
    assert error is not None
    assert error.get("message", "").startswith("dnf failed")
    assert case.find("failure") is None


def test_a_skip_is_skipped_with_its_reason(mixed_report: Report) -> None:
    skipped = _case(mixed_report, "linux.accounts.sudo").find("skipped")

    assert skipped is not None
    assert skipped.get("message") == "offline target"


def test_a_warning_passes_and_says_so_in_system_out(mixed_report: Report) -> None:
    case = _case(mixed_report, "linux.accounts.passwords")

    assert [child.tag for child in case] == ["system-out"]
    assert (case.findtext("system-out") or "").startswith("WARNING (high): locked hash for")


def test_a_waived_fail_is_skipped_with_the_waiver(mixed_report: Report) -> None:
    case = _case(mixed_report, "image.region")

    skipped = case.find("skipped")
    assert skipped is not None
    assert skipped.get("message") == "waived: copied at release"
    assert case.find("failure") is None
    assert "expires 2099-01-01, approved by alice" in (case.findtext("system-out") or "")


def test_a_pass_is_an_empty_test_case(mixed_report: Report) -> None:
    assert list(_case(mixed_report, "image.architecture")) == []


def test_characters_illegal_in_xml_are_replaced_so_the_file_parses(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    hostile = "nul\x00 esc\x1b[0m bell\x07 surrogate\udcff end"
    result = make_result(
        status=Status.FAIL, summary=hostile, evidence=(Evidence(f"/tmp/{hostile}", hostile),)
    )

    xml = render_junit(make_report((result,), notes=(hostile,), errors=(hostile,)))

    assert not any(ch in xml for ch in "\x00\x1b\x07\udcff")
    failure = ET.fromstring(xml).find("testsuite/testcase/failure")  # noqa: S314
    assert failure is not None
    assert failure.get("message") == "nul\ufffd esc\ufffd[0m bell\ufffd surrogate\ufffd end"


def test_why_the_scan_could_not_complete_goes_to_system_err(
    make_report: Callable[..., Report],
) -> None:
    report = make_report((), verdict=Verdict.ERROR, errors=("launch failed: InsufficientCapacity",))

    suite = _suite(report)

    assert suite.findtext("system-err") == "launch failed: InsufficientCapacity"
    assert suite.get("tests") == "0"


def test_suite_properties_name_the_target_and_verdict(mixed_report: Report) -> None:
    properties = {p.get("name"): p.get("value") for p in _suite(mixed_report).iter("property")}

    assert properties["target.id"] == "ami-0123456789abcdef0"
    assert properties["amiscan.verdict"] == "fail"
    assert properties["amiscan.version"] == "0.1.0"


def test_unjudged_checks_are_a_suite_property_and_a_waived_error_is_skipped(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    waiver = {"reason": "needs ELS", "expires": "2099-01-01", "approver": "bob"}
    results = (
        make_result("linux.os.supported", Status.ERROR, waived=True, waiver=waiver),
        make_result("linux.accounts.passwords", Status.ERROR),
    )
    report = make_report(results, verdict=Verdict.ERROR)
    suite = _suite(report)
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}

    assert properties["amiscan.unjudged"] == "linux.accounts.passwords"
    assert (suite.get("errors"), suite.get("skipped")) == ("1", "1")
    assert _case(report, "linux.os.supported").find("skipped") is not None
