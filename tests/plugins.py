"""A third-party check package, installed the way pip would (a dist-info with entry points)."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

PLUGIN_MODULE = '''
"""A third-party plug-in: checks /etc/motd for an internal host name."""

from scanner.facts.base import Fact, Facts, Probe
from scanner.fs import read_text_or_none
from scanner.model import Outcome, Platform, Policy, Severity, Status
from scanner.registry import check

MOTD = Fact(
    name="acme.motd",
    description="/etc/motd",
    patterns=("/etc/motd",),
    derive=lambda g: read_text_or_none(g.files, "/etc/motd") or "",
)

SLOW = Fact(
    name="acme.slow",
    description="a probe that hangs",
    probe=Probe("sleep 600", privileged=False, timeout_s=2),
    derive=lambda g: g.require_output().require_success("the slow probe"),
)


@check(
    id="acme.motd.internal-hosts",
    title="the MOTD names no internal host",
    severity=Severity.LOW,
    platform=Platform.LINUX,
    policy=Policy("ACME-7", "https://wiki.example.com/acme-7"),
    rationale="Internal names leak the seller's network layout.",
    remediation="Remove internal host names from /etc/motd.",
    needs=[MOTD],
)
def internal_hosts(facts: Facts) -> Outcome:
    if ".corp.example.com" in facts.get(MOTD):
        return Outcome(Status.FAIL, "the MOTD names an internal host")
    return Outcome(Status.PASS, "no internal host names in the MOTD")
'''

SLOW_CHECK = """

@check(
    id="acme.slow.probe",
    title="a check whose probe hangs",
    severity=Severity.LOW,
    platform=Platform.LINUX,
    policy=Policy("ACME-8", "https://wiki.example.com/acme-8"),
    rationale="Shows that one hung probe only affects its own check.",
    remediation="None.",
    needs=[SLOW],
)
def slow(facts: Facts) -> Outcome:
    facts.get(SLOW)
    return Outcome(Status.PASS, "the slow probe finished")
"""


def install_plugin(
    site: Path, body: str = PLUGIN_MODULE, name: str = "acme_checks", entry: str | None = None
) -> Path:
    """Write a module and its dist-info (entry point group amiscan.checks) into `site`."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(body))
    info = site / f"{name.replace('_', '-')}-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[amiscan.checks]\nacme = {entry or name}\n")
    return site


def plugin_env(site: Path, base: dict[str, str]) -> dict[str, str]:
    """An environment for a subprocess that sees the plug-in as installed."""
    env = dict(base)
    env["PYTHONPATH"] = str(site) + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def add_to_path(site: Path) -> None:
    sys.path.insert(0, str(site))
