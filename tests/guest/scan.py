"""Running `amiscan` as a user would (a subprocess), and reading what it reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What a check may end with when the target gave amiscan what it needed to judge.
JUDGED = {"pass", "fail", "warn"}


@dataclass(frozen=True)
class Scan:
    """One run of amiscan: its exit code and stderr, and its JSON report."""

    returncode: int
    stderr: str
    report: dict[str, Any]

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        return {r["id"]: r for r in self.report["results"]}

    @property
    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.report["results"]}

    def linux_statuses(self) -> dict[str, str]:
        return {k: v for k, v in self.statuses.items() if k.startswith("linux.")}


def run_amiscan(
    *args: str,
    workdir: Path,
    env: dict[str, str] | None = None,
    timeout_s: float = 900,
) -> Scan:
    """`amiscan ARGS --json REPORT` with a private HOME: no agent or keys of the developer's."""
    workdir.mkdir(parents=True, exist_ok=True)
    report = workdir / "report.json"
    environment = dict(env if env is not None else os.environ)
    environment["HOME"] = str(workdir)
    environment["NO_COLOR"] = "1"
    environment.pop("SSH_AUTH_SOCK", None)
    result = subprocess.run(
        [sys.executable, "-m", "scanner", *args, "--json", str(report), "--no-html"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=environment,
        check=False,
        cwd=workdir,
    )
    assert report.is_file(), f"amiscan wrote no report (exit {result.returncode}):\n{result.stderr}"
    return Scan(result.returncode, result.stderr, json.loads(report.read_text()))
