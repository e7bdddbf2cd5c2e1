"""SARIF 2.1.0 for GitHub code scanning: one rule per check, a located result per finding."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reports.sarif import render_sarif
from scanner.model import Evidence, Policy, Report, Result, Severity, Status, TargetInfo, Verdict


def _run(report: Report) -> dict[str, Any]:
    log = json.loads(render_sarif(report))
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run: dict[str, Any] = log["runs"][0]
    return run


def _results_by_rule(report: Report) -> dict[str, dict[str, Any]]:
    return {r["ruleId"]: r for r in _run(report)["results"]}


def test_driver_names_the_tool_and_its_version(mixed_report: Report) -> None:
    driver = _run(mixed_report)["tool"]["driver"]

    assert driver["name"] == "amiscan"
    assert driver["version"] == "0.1.0"
    assert driver["informationUri"].startswith("https://")


def test_one_rule_per_check_in_the_report(mixed_report: Report) -> None:
    rules = _run(mixed_report)["tool"]["driver"]["rules"]

    assert [rule["id"] for rule in rules] == [r.id for r in mixed_report.results]


def test_a_rule_carries_the_check_metadata(mixed_report: Report) -> None:
    rule = _run(mixed_report)["tool"]["driver"]["rules"][1]

    assert rule["id"] == "linux.ssh.root-login"
    assert rule["name"] == "LinuxSshRootLogin"
    assert rule["shortDescription"]["text"] == "Title of linux.ssh.root-login"
    assert rule["fullDescription"]["text"] == "Why linux.ssh.root-login matters."
    assert rule["help"]["text"] == "Fix linux.ssh.root-login."
    assert "[Marketplace policy S2](https://docs.aws.amazon.com/" in rule["help"]["markdown"]
    assert rule["helpUri"].startswith("https://docs.aws.amazon.com/")
    assert rule["properties"]["severity"] == "critical"
    assert rule["properties"]["policy"] == "S2"
    assert "security" in rule["properties"]["tags"]


@pytest.mark.parametrize(
    ("severity", "score"),
    [
        (Severity.CRITICAL, "9.5"),
        (Severity.HIGH, "8.0"),
        (Severity.MEDIUM, "5.5"),
        (Severity.LOW, "3.0"),
        (Severity.INFO, "0.0"),
    ],
)
def test_security_severity_follows_the_check_severity(
    make_result: Callable[..., Result],
    make_report: Callable[..., Report],
    severity: Severity,
    score: str,
) -> None:
    report = make_report((make_result(severity=severity),))

    rule = _run(report)["tool"]["driver"]["rules"][0]

    assert rule["properties"]["security-severity"] == score


def test_empty_rationale_and_remediation_fall_back_to_the_title(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    report = make_report((make_result(rationale="", remediation=""),))

    rule = _run(report)["tool"]["driver"]["rules"][0]

    assert rule["fullDescription"]["text"] == rule["shortDescription"]["text"] != ""
    assert rule["help"]["text"] != ""


def test_results_are_fails_warnings_and_errors_only(mixed_report: Report) -> None:
    results = _run(mixed_report)["results"]
    summary = mixed_report.summary

    assert len(results) == summary["fail"] + summary["warn"] + summary["error"] == 4
    assert {r["ruleId"] for r in results} == {
        "linux.ssh.root-login",
        "linux.accounts.passwords",
        "linux.packages.up-to-date",
        "image.region",
    }


def test_kind_and_level_follow_the_status(mixed_report: Report) -> None:
    results = _results_by_rule(mixed_report)

    assert (results["linux.ssh.root-login"]["kind"], results["linux.ssh.root-login"]["level"]) == (
        "fail",
        "error",
    )
    assert results["linux.accounts.passwords"]["level"] == "warning"
    error = results["linux.packages.up-to-date"]
    assert (error["kind"], error["level"]) == ("open", "none")
    # SARIF 3.27.9: any level other than "none" requires kind "fail".
    assert all(r["kind"] == "fail" for r in results.values() if r["level"] != "none")


def test_rule_index_points_at_the_rule_of_the_result(mixed_report: Report) -> None:
    run = _run(mixed_report)
    rules = run["tool"]["driver"]["rules"]

    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]


def test_a_waived_fail_is_reported_as_an_external_suppression(mixed_report: Report) -> None:
    results = _results_by_rule(mixed_report)

    (suppression,) = results["image.region"]["suppressions"]
    assert suppression["kind"] == "external"
    assert suppression["justification"].startswith("copied at release")
    assert "suppressions" not in results["linux.ssh.root-login"]


def test_a_guest_file_in_the_evidence_is_the_location(mixed_report: Report) -> None:
    result = _results_by_rule(mixed_report)["linux.ssh.root-login"]

    (location,) = result["locations"]
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "etc/ssh/sshd_config"},
        "region": {"startLine": 12},
    }


def test_without_a_file_the_location_is_the_target(mixed_report: Report) -> None:
    result = _results_by_rule(mixed_report)["linux.packages.up-to-date"]

    (location,) = result["locations"]
    assert location["physicalLocation"]["artifactLocation"]["uri"] == "ami-0123456789abcdef0"
    assert location["logicalLocations"][0]["name"] == "ami-0123456789abcdef0"


def test_an_ssh_target_id_becomes_a_relative_uri(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    target = TargetInfo("ssh", "ssh://ec2-user@10.0.0.5:22", "linux")
    report = make_report((make_result(status=Status.FAIL),), target=target)

    (result,) = _run(report)["results"]

    uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert ":" not in uri
    assert "/" not in uri


def test_every_result_has_a_location_github_can_show(mixed_report: Report) -> None:
    for result in _run(mixed_report)["results"]:
        assert result["locations"]
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert result["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1


def test_fingerprints_survive_a_rebuilt_ami(
    make_report: Callable[..., Report], mixed_report: Report
) -> None:
    rebuilt = make_report(
        mixed_report.results, target=TargetInfo("ec2", "ami-0fffffffffffffff0", "linux")
    )

    def fingerprints(report: Report) -> list[str]:
        return [
            r["partialFingerprints"]["primaryLocationLineHash"] for r in _run(report)["results"]
        ]

    assert fingerprints(rebuilt) == fingerprints(mixed_report)
    assert len(set(fingerprints(mixed_report))) == 4


def test_the_message_leads_with_the_summary_then_the_evidence(mixed_report: Report) -> None:
    text = _results_by_rule(mixed_report)["linux.ssh.root-login"]["message"]["text"]

    assert text.startswith("PermitRootLogin yes <script>alert(1)</script> a | b\n")
    assert "/etc/ssh/sshd_config:12: PermitRootLogin yes" in text


def test_a_non_http_policy_url_is_not_a_help_uri(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    policy = Policy("X1", "javascript:alert(1)")
    report = make_report((make_result(policy=policy),))

    rule = _run(report)["tool"]["driver"]["rules"][0]

    assert "helpUri" not in rule
    assert "javascript:" not in rule["help"]["markdown"]


def test_scan_errors_and_check_errors_are_execution_notifications(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    broken = make_result("linux.packages.up-to-date", Status.ERROR, summary="dnf timed out")
    report = make_report((broken,), verdict=Verdict.ERROR, errors=("connection reset",))

    (invocation,) = _run(report)["invocations"]

    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["message"]["text"] for n in notes] == [
        "connection reset",
        "could not judge linux.packages.up-to-date: dnf timed out",
    ]
    assert notes[1]["associatedRule"] == {"id": "linux.packages.up-to-date"}
    assert invocation["startTimeUtc"] == "2024-05-01T12:00:00.000Z"


def test_a_completed_scan_is_a_successful_execution(mixed_report: Report) -> None:
    assert _run(mixed_report)["invocations"][0]["executionSuccessful"] is True


def test_file_paths_among_the_evidence_sources_become_locations(
    make_result: Callable[..., Result], make_report: Callable[..., Report]
) -> None:
    evidence = (
        Evidence("sshd -T", "permitrootlogin yes"),
        Evidence("/home/ec2-user/.bash_history", "aws configure"),
        Evidence("/usr/sbin/sshd -T", "a command, not a file"),
        Evidence("/root/100%#.txt:3", "x"),
    )
    report = make_report((make_result(status=Status.FAIL, evidence=evidence),))

    (result,) = _run(report)["results"]

    assert [loc["physicalLocation"]["artifactLocation"]["uri"] for loc in result["locations"]] == [
        "home/ec2-user/.bash_history",
        "root/100%25%23.txt",
    ]
    assert result["locations"][1]["physicalLocation"]["region"] == {"startLine": 3}
