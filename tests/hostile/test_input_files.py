"""Hostile input files: a report, a baseline or a configuration that is not what it claims.

Each is exit 2 with one line naming the file and the problem (no traceback, no raw control
byte), or, for text that is merely odd (a lone surrogate), rendered in every format with
replacement characters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import assert_failed_cleanly, error_lines, run_amiscan
from tests.imagetree import build_compliant

ALL_FORMATS = ("json", "html", "junit", "sarif", "markdown")
REPLACEMENT = "\ufffd"


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The JSON report of a compliant root (one scan shared by this module's tests)."""
    base = tmp_path_factory.mktemp("scanned")
    build_compliant(base / "root")
    document: dict[str, Any] = run_amiscan([f"dir:{base / 'root'}"], base / "scan").json_report()
    return document


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _assert_one_line_error(run: Any, path: Path, problem: str) -> None:
    assert_failed_cleanly(run, 2, reports=False)
    lines = error_lines(run)
    assert len(lines) == 1, run.err
    assert str(path) in lines[0] and problem in lines[0], lines[0]


@pytest.mark.parametrize("field", ["source", "id"])
def test_a_lone_surrogate_in_a_report_is_rendered_as_a_replacement_character(
    tmp_path: Path, scanned: dict[str, Any], field: str
) -> None:
    document = json.loads(json.dumps(scanned))
    result = document["results"][0]
    if field == "source":
        result["evidence"][0]["source"] = "/etc/\udcff\udcfe"
    else:
        result["id"] = "linux.\udcff"
    result["status"] = "fail"
    document["verdict"] = "fail"
    source = tmp_path / "report.json"
    # json.dumps writes the surrogates as \udcff escapes, as an older amiscan did.
    source.write_text(json.dumps(document), encoding="utf-8")

    run = run_amiscan(["report", str(source)], tmp_path / "out", reports=ALL_FORMATS)

    assert_failed_cleanly(run, 1)
    for kind, path in run.reports.items():
        text = path.read_text(encoding="utf-8")
        if kind in ("json", "sarif"):
            text = json.dumps(json.loads(text), ensure_ascii=False)
        assert REPLACEMENT in text, kind


@pytest.mark.parametrize(
    ("number", "problem"),
    [("1" + "0" * 400, "out of range"), ("1" + "0" * 5000, "out of range"), ("NaN", "range")],
    ids=["400-digits", "5000-digits", "nan"],
)
def test_a_number_out_of_range_is_a_one_line_error(
    tmp_path: Path, scanned: dict[str, Any], number: str, problem: str
) -> None:
    text = json.dumps(scanned).replace(
        f'"duration_s": {json.dumps(scanned["duration_s"])}', f'"duration_s": {number}', 1
    )
    source = tmp_path / "report.json"
    source.write_text(text, encoding="utf-8")

    run = run_amiscan(["report", str(source)], tmp_path / "out")

    _assert_one_line_error(run, source, problem)


@pytest.mark.parametrize("where", ["target", "collection"])
def test_a_report_nested_too_deeply_is_a_one_line_error(
    tmp_path: Path, scanned: dict[str, Any], where: str
) -> None:
    document = json.loads(json.dumps(scanned))
    document[where]["deep"] = _nested(900)
    source = tmp_path / "report.json"
    source.write_text(json.dumps(document), encoding="utf-8")

    run = run_amiscan(["report", str(source)], tmp_path / "out")

    _assert_one_line_error(run, source, "nested too deeply")


def test_a_baseline_nested_too_deeply_is_a_one_line_error(
    tmp_path: Path, scanned: dict[str, Any]
) -> None:
    build_compliant(tmp_path / "root")
    baseline = tmp_path / "baseline.json"
    baseline.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")

    run = run_amiscan([f"dir:{tmp_path / 'root'}", "--baseline", str(baseline)], tmp_path / "out")

    _assert_one_line_error(run, baseline, "nested too deeply")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply"),
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "nested too deeply"),
        ("region = " + "1" * 5000 + "\n", "invalid TOML"),
        ('region = "\\u001b]0;pwned\\u0007"\nbogus\x1b[2J = 1\n', "invalid TOML"),
    ],
    ids=["arrays", "tables", "long-integer", "escapes"],
)
def test_a_hostile_config_is_a_one_line_error(tmp_path: Path, text: str, problem: str) -> None:
    build_compliant(tmp_path / "root")
    config = tmp_path / "amiscan.toml"
    config.write_text(text, encoding="utf-8")

    run = run_amiscan([f"dir:{tmp_path / 'root'}", "--config", str(config)], tmp_path / "out")

    _assert_one_line_error(run, config, problem)


@pytest.mark.parametrize(
    "line",
    ["x" * 2_000_000, "password" * 250_000, "a " * 1_000_000],
    ids=["one-long-word", "a-keyword-repeated", "many-short-words"],
)
def test_a_huge_evidence_line_renders_every_format_in_linear_time(
    tmp_path: Path, scanned: dict[str, Any], line: str
) -> None:
    # Redaction and escaping run over every evidence line: a pattern that backtracks on a long
    # line would take hours here and be killed at the harness's bound.
    document = json.loads(json.dumps(scanned))
    document["results"][0]["evidence"][0]["text"] = line
    source = tmp_path / "report.json"
    source.write_text(json.dumps(document), encoding="utf-8")

    run = run_amiscan(["report", str(source)], tmp_path / "out", reports=ALL_FORMATS, timeout_s=60)

    assert_failed_cleanly(run, 0 if document["verdict"] == "pass" else 1)
