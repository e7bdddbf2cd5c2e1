"""Where reports go: every format is written even when one path fails."""

from __future__ import annotations

import json
import os
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


def _run_with_shim(tmp_path: Path, shim_code: str, *args: str) -> subprocess.CompletedProcess[str]:
    image = tmp_path / "image"
    build_compliant(image)
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(shim_code)
    work = tmp_path / "work"
    work.mkdir()
    return subprocess.run(
        [sys.executable, "-m", "scanner", f"dir:{image}", *args],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(shim)},
    )


def test_an_interrupt_before_the_scan_is_exit_3_not_the_image_fails_code(tmp_path: Path) -> None:
    result = _run_with_shim(
        tmp_path,
        "import scanner.config\n"
        "def interrupted(*args, **kwargs):\n"
        "    raise KeyboardInterrupt\n"
        "scanner.config.load_config = interrupted\n",
        "--no-html",
    )
    assert result.returncode == 3, result.stderr
    assert result.stderr == "amiscan: interrupted\n"


def test_a_signal_while_the_reports_are_written_does_not_cut_them_short(tmp_path: Path) -> None:
    # SIGTERM arrives while the JSON report is being rendered (the first format written).
    result = _run_with_shim(
        tmp_path,
        "import os, signal\n"
        "import reports.json_report as j\n"
        "original = j.dumps\n"
        "def signalled(report):\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return original(report)\n"
        "j.dumps = signalled\n",
        "--no-html",
        "--json",
        "r.json",
        "--junit",
        "r.xml",
        "--sarif",
        "r.sarif",
    )
    work = tmp_path / "work"
    assert "finishing the reports first" in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    for name in ("r.json", "r.xml", "r.sarif"):
        assert (work / name).is_file(), name
    assert json.loads((work / "r.json").read_text())["verdict"] == "pass"
