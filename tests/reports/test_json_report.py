"""The JSON report is the machine contract: lossless, versioned, and strict when read back."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from reports.json_report import ReportFormatError, dumps, from_dict, loads, to_dict
from scanner.model import Report, Status, TargetInfo


def test_round_trip_through_dict_restores_an_equal_report(mixed_report: Report) -> None:
    assert from_dict(to_dict(mixed_report)) == mixed_report


def test_round_trip_through_text_keeps_hostile_strings_exactly(mixed_report: Report) -> None:
    text = dumps(mixed_report)

    assert loads(text) == mixed_report
    assert text.isascii()
    assert text.endswith("}\n")


def test_document_has_the_contract_fields(mixed_report: Report) -> None:
    document = json.loads(dumps(mixed_report))

    assert document["schema_version"] == 1
    assert document["amiscan_version"] == "0.1.0"
    assert document["verdict"] == "fail"
    assert document["summary"] == {"pass": 1, "fail": 2, "warn": 1, "skip": 1, "error": 1}
    assert document["started_at"] == "2024-05-01T12:00:00+00:00"
    assert document["duration_s"] == 90.5
    assert document["phases"][0] == {"name": "launch", "duration_s": 42.0}
    assert document["notes"] == ["SSH host key pinned from the console output."]
    assert document["errors"] == []
    assert document["collection"] == {"round_trips": 1, "transport": "ssh"}
    assert document["catalog_version"] == "2024.05"


def test_target_details_are_merged_beside_kind_id_and_platform(mixed_report: Report) -> None:
    target = to_dict(mixed_report)["target"]

    assert target["kind"] == "ec2"
    assert target["id"] == "ami-0123456789abcdef0"
    assert target["platform"] == "linux"
    assert target["instance_type"] == "t3.micro"
    assert target["ena_support"] is True


def test_target_details_cannot_shadow_the_target_id(make_report: Callable[..., Report]) -> None:
    target = TargetInfo("ec2", "ami-real", "linux", details={"id": "ami-fake", "region": "x"})

    document = to_dict(make_report((), target=target))

    assert document["target"]["id"] == "ami-real"
    assert document["target"]["region"] == "x"


def test_result_fields_follow_the_schema(mixed_report: Report) -> None:
    results = {r["id"]: r for r in to_dict(mixed_report)["results"]}
    failed = results["linux.ssh.root-login"]

    assert set(failed) == {
        "id",
        "title",
        "severity",
        "status",
        "summary",
        "evidence",
        "remediation",
        "policy",
        "rationale",
        "waived",
        "waiver",
        "duration_s",
    }
    assert failed["severity"] == "critical"
    assert failed["status"] == "fail"
    assert failed["evidence"][0] == {
        "source": "/etc/ssh/sshd_config:12",
        "text": "PermitRootLogin yes",
    }
    assert set(failed["policy"]) == {"id", "url", "text"}
    assert failed["waived"] is False
    assert failed["waiver"] is None
    assert results["image.region"]["waiver"] == {
        "reason": "copied at release",
        "expires": "2099-01-01",
        "approver": "alice",
    }


def test_a_non_json_detail_is_written_as_text_rather_than_lost(
    make_report: Callable[..., Report],
) -> None:
    target = TargetInfo("ec2", "ami-1", "linux", details={"launched": object})

    document = json.loads(dumps(make_report((), target=target)))

    assert document["target"]["launched"] == str(object)


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, True, None])
def test_rejects_a_schema_version_other_than_1(mixed_report: Report, version: object) -> None:
    document = to_dict(mixed_report)
    document["schema_version"] = version

    with pytest.raises(ReportFormatError, match="unsupported schema_version"):
        from_dict(document)


def test_rejects_a_document_without_schema_version(mixed_report: Report) -> None:
    document = to_dict(mixed_report)
    del document["schema_version"]

    with pytest.raises(ReportFormatError, match="no 'schema_version'"):
        from_dict(document)


def _set(path: tuple[Any, ...], value: object) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(document: dict[str, Any]) -> None:
        node: Any = document
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_set(("results",), {}), "report.results: expected an array, got an object"),
        (_set(("results", 1, "status"), "bogus"), 'report.results[1].status: "bogus" is not'),
        (_delete(("results", 0, "summary")), "report.results[0]: missing field 'summary'"),
        (_set(("results", 0, "waived"), 1), "report.results[0].waived: expected true or false"),
        (_set(("results", 0, "duration_s"), "fast"), "report.results[0].duration_s: expected a"),
        (_set(("results", 1, "evidence", 0), "text"), "report.results[1].evidence[0]: expected an"),
        (_set(("results", 5, "waiver", "expires"), 7), "report.results[5].waiver.expires"),
        (_set(("results", 2, "policy"), None), "report.results[2].policy: expected an object"),
        (_delete(("target", "id")), "report.target: missing field 'id'"),
        (_set(("verdict",), "maybe"), 'report.verdict: "maybe" is not one of pass, fail, error'),
        (_set(("duration_s",), True), "report.duration_s: expected a number, got a boolean"),
        (_set(("phases", 0), ["launch", 1]), "report.phases[0]: expected an object"),
        (_set(("errors",), [None]), "report.errors[0]: expected a string, got null"),
    ],
)
def test_rejects_a_malformed_document_with_one_line_naming_the_field(
    mixed_report: Report, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    document = to_dict(mixed_report)
    mutate(document)

    with pytest.raises(ReportFormatError) as caught:
        from_dict(document)

    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_quotes_a_huge_hostile_value_briefly(mixed_report: Report) -> None:
    document = to_dict(mixed_report)
    document["results"][0]["status"] = "x\n" * 10_000

    with pytest.raises(ReportFormatError) as caught:
        from_dict(document)

    assert len(str(caught.value)) < 200
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("data", [[], "report", None, 1])
def test_rejects_a_document_that_is_not_an_object(data: object) -> None:
    with pytest.raises(ReportFormatError, match="expected a JSON object"):
        from_dict(data)


def test_loads_reports_invalid_json_with_its_position() -> None:
    with pytest.raises(ReportFormatError, match=r"not valid JSON: .* line 2 column 1"):
        loads('{"schema_version": 1,\n}')


def test_report_format_error_is_a_value_error() -> None:
    assert issubclass(ReportFormatError, ValueError)


def test_reads_a_minimal_document_using_defaults_for_additive_fields() -> None:
    document = {
        "schema_version": 1,
        "amiscan_version": "0.1.0",
        "target": {"kind": "local", "id": "local", "platform": "linux"},
        "started_at": "a",
        "finished_at": "b",
        "duration_s": 1,
        "verdict": "pass",
        "summary": {"pass": 1},
        "results": [
            {
                "id": "linux.os.supported",
                "title": "t",
                "severity": "high",
                "status": "pass",
                "summary": "s",
                "evidence": [],
                "remediation": "r",
                "policy": {"id": "G2", "url": "https://example.com"},
                "waived": False,
            }
        ],
    }

    report = from_dict(document)

    assert report.results[0].status is Status.PASS
    assert report.results[0].waiver is None
    assert report.results[0].policy.text == ""
    assert report.phases == ()
    assert report.collection == {}
    assert report.catalog_version == ""


def test_ignores_fields_it_does_not_know(mixed_report: Report) -> None:
    document = to_dict(mixed_report)
    document["added_in_a_later_minor_version"] = {"x": 1}
    document["results"][0]["cvss"] = 9.1

    assert from_dict(document) == mixed_report


def test_unjudged_lists_every_unwaived_error_with_its_reason(mixed_report: Report) -> None:
    document = json.loads(dumps(mixed_report))

    assert [(u["id"], u["severity"]) for u in document["unjudged"]] == [
        ("linux.packages.up-to-date", "high")
    ]
    assert document["unjudged"][0]["reason"].startswith("dnf failed")
    # Derived data: reading the report back ignores it and recomputes nothing from it.
    assert loads(dumps(mixed_report)) == mixed_report


@pytest.mark.parametrize(
    "number", ["1" + "0" * 400, "1" + "0" * 5000, "NaN", "Infinity", "-1", "1e400"]
)
def test_rejects_a_duration_out_of_range_in_one_line(mixed_report: Report, number: str) -> None:
    text = json.dumps(to_dict(mixed_report)).replace(
        f'"duration_s": {json.dumps(mixed_report.duration_s)}', f'"duration_s": {number}', 1
    )
    with pytest.raises(ReportFormatError, match="out of range") as caught:
        loads(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("where", ["target", "collection"])
def test_rejects_details_nested_too_deeply(mixed_report: Report, where: str) -> None:
    document = to_dict(mixed_report)
    deep: list[Any] = []
    for _ in range(900):
        deep = [deep]
    document[where]["deep"] = deep
    with pytest.raises(ReportFormatError, match="nested too deeply"):
        loads(json.dumps(document))


def test_a_lone_surrogate_is_written_as_a_replacement_character(mixed_report: Report) -> None:
    document = to_dict(mixed_report)
    document["results"][0]["id"] = "linux.\udcff"
    document["results"][0]["evidence"] = [{"source": "/etc/\udcfe", "text": "x\ud800"}]
    document["target"]["odd\udcff"] = ["\udcff"]
    written = json.loads(dumps(from_dict(document)))
    assert written["results"][0]["id"] == "linux.\ufffd"
    assert written["results"][0]["evidence"] == [{"source": "/etc/\ufffd", "text": "x\ufffd"}]
    assert written["target"]["odd\ufffd"] == ["\ufffd"]
