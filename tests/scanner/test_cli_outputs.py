"""Where reports go: every format is written even when one path fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.imagetree import build_compliant


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_an_unwritable_default_html_path_is_a_warning_and_the_json_still_prints(
    tmp_path: Path,
) -> None:
    image = tmp_path / "image"
    image.mkdir()
    build_compliant(image)
    work = tmp_path / "work"
    (work / "amiscan-report.html").mkdir(parents=True)  # the default path cannot be a file
    result = run(work, f"dir:{image}", "--json", "-")
    assert result.returncode == 0, result.stderr
    assert "warning: cannot write the html report to amiscan-report.html" in result.stderr
    assert json.loads(result.stdout)["verdict"] == "pass"


def test_an_unwritable_explicit_path_is_exit_2_after_the_other_formats_are_written(
    tmp_path: Path,
) -> None:
    image = tmp_path / "image"
    image.mkdir()
    build_compliant(image)
    result = run(
        tmp_path, f"dir:{image}", "--html", str(tmp_path / "missing" / "r.html"), "--json", "r.json"
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot write the html report" in result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["verdict"] == "pass"
