"""Start-up: a scan imports only what its target and its report formats need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.imagetree import build_compliant

PROBE = """
import sys
from scanner.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
heavy = ("jinja2", "paramiko", "boto3", "winrm", "pyfsxfs", "scanner.disk.ext")
print("loaded:" + ",".join(name for name in heavy if name in sys.modules))
"""


def _loaded(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True
    )
    (line,) = [ln for ln in done.stdout.splitlines() if ln.startswith("loaded:")]
    return set(line.removeprefix("loaded:").split(",")) - {""}


def test_a_directory_scan_without_html_loads_no_template_ssh_aws_or_disk_library(
    tmp_path: Path,
) -> None:
    root = build_compliant(tmp_path / "root").root
    assert _loaded(f"dir:{root}", "--no-html", "--json", str(tmp_path / "r.json")) == set()


def test_the_html_report_loads_jinja2_only_when_it_is_written(tmp_path: Path) -> None:
    root = build_compliant(tmp_path / "root").root
    html = tmp_path / "r.html"
    assert _loaded(f"dir:{root}", "--html", str(html)) == {"jinja2"}
    assert html.is_file()
