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


def test_a_format_that_fails_to_render_costs_only_itself(tmp_path: Path) -> None:
    """A bug in one renderer: the other formats are written, one line says which failed, exit 3."""
    image = tmp_path / "image"
    build_compliant(image)
    work = tmp_path / "work"
    work.mkdir()
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import reports.sarif\n"
        "def broken(report):\n"
        "    raise RuntimeError('boom')\n"
        "reports.sarif.render_sarif = broken\n"
    )
    formats = ["--json", "r.json", "--sarif", "r.sarif", "--junit", "r.xml", "--markdown", "r.md"]
    result = subprocess.run(
        [sys.executable, "-m", "scanner", f"dir:{image}", "--no-html", *formats],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": str(shim)},
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert "the sarif report was not written: internal error: RuntimeError: boom" in result.stderr
    assert not (work / "r.sarif").exists()
    for name in ("r.json", "r.xml", "r.md"):
        assert (work / name).is_file(), name


def test_an_internal_error_is_one_line_and_exit_3_never_a_traceback(tmp_path: Path) -> None:
    image = tmp_path / "image"
    build_compliant(image)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(
        "import scanner.terminal\n"
        "def broken(*args, **kwargs):\n"
        "    raise KeyError('\\x1b]0;pwned\\x07')\n"
        "scanner.terminal.print_summary = broken\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "scanner", f"dir:{image}", "--no-html"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
        env={**__import__("os").environ, "PYTHONPATH": str(shim)},
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr and "\x1b" not in result.stderr
    assert result.stderr.startswith("amiscan: internal error: KeyError:"), result.stderr
