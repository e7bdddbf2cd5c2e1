"""Every PowerShell script amiscan sends to Windows parses, and only uses Windows PowerShell 5.1.

Nothing here runs PowerShell: tests/powershell.py parses with the tree-sitter PowerShell grammar
and lints for what PowerShell 6/7 has and 5.1 (what Windows Server ships) has not. The scripts
are built as amiscan builds them:

- the WinRM bootstrap command (`powershell.exe -EncodedCommand`), which reads the script;
- the collection script for the whole Windows catalog, for each Windows check on its own, and
  with no probe at all (the prelude and epilogue alone);
- every Windows fact's probe (each runs in a runspace of its own). In the collection script a
  probe is base64 text, which the collection script's parse cannot see into.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest

import scanner.facts.windows
from scanner.collect_windows import build_script
from scanner.facts.base import Fact, Mode
from scanner.linux import needed_facts
from scanner.model import Platform
from scanner.registry import Check, load_checks
from scanner.transports.winrm import BOOTSTRAP
from tests.powershell import ps51_findings, report, syntax_errors


def windows_checks() -> list[Check]:
    checks = (c for c in load_checks().values() if c.platform is Platform.WINDOWS)
    return sorted(checks, key=lambda c: c.id)


def catalog_facts() -> list[Fact[Any]]:
    """The facts with a probe that the Windows catalog needs, dependencies included."""
    return [f for f in needed_facts(windows_checks(), Mode.LIVE) if f.probe is not None]


def module_facts() -> list[Fact[Any]]:
    """Every Windows fact with a probe defined in scanner.facts.windows, used by a check or not."""
    found: dict[str, Fact[Any]] = {}
    prefix = scanner.facts.windows.__name__ + "."
    for info in pkgutil.iter_modules(scanner.facts.windows.__path__, prefix):
        for value in vars(importlib.import_module(info.name)).values():
            if isinstance(value, Fact) and value.probe is not None and value.platform == "windows":
                found[value.name] = value
    return list(found.values())


def probes() -> dict[str, str]:
    """Each probe's text by fact name, from the catalog and from the fact modules."""
    return {
        f.name: f.probe.script for f in [*module_facts(), *catalog_facts()] if f.probe is not None
    }


def collection_scripts() -> dict[str, str]:
    """The collection script for the catalog, for each Windows check alone, and for no probe."""
    scripts = {"every Windows check": build_script(catalog_facts()).text}
    for item in windows_checks():
        scripts[f"only {item.id}"] = build_script(needed_facts([item], Mode.LIVE)).text
    scripts["no probe"] = build_script([]).text
    return scripts


PROBES = probes()
COLLECTION_SCRIPTS = collection_scripts()


def assert_parses(name: str, text: str) -> None:
    errors = syntax_errors(text)
    assert not errors, f"{name} does not parse:\n{report(text, errors)}"


def assert_ps51(name: str, text: str) -> None:
    findings = ps51_findings(text)
    assert not findings, f"{name} uses what Windows PowerShell 5.1 lacks:\n{report(text, findings)}"


def test_the_probe_sweep_holds_every_probe_of_the_windows_catalog() -> None:
    # Guards the sweep itself: an empty or partial list would let the tests below pass on nothing.
    catalog = {f.name for f in catalog_facts()}
    assert len(catalog) >= 10
    assert catalog <= set(PROBES)


def test_a_real_probe_cut_short_is_a_syntax_error() -> None:
    # Guards the parse on real-sized text: the last line of a probe closes its brackets.
    name = "windows.os.release"
    cut = PROBES[name].rstrip().removesuffix(")")
    assert syntax_errors(cut)


def test_a_powershell_7_line_in_the_real_collection_script_is_found_on_its_line() -> None:
    # Guards the lint on real-sized text: the base64 probes and the prelude hide nothing.
    text = COLLECTION_SCRIPTS["every Windows check"]
    lines = text.splitlines()
    lines.insert(len(lines) - 1, "$AmiscanHost = $env:COMPUTERNAME ?? 'unknown'")
    findings = ps51_findings("\n".join(lines))
    assert [(f.rule, f.line) for f in findings] == [("null-coalescing", len(lines) - 1)]


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_probe_parses_without_error_nodes(name: str) -> None:
    assert_parses(f"the probe of {name}", PROBES[name])


@pytest.mark.parametrize("selection", list(COLLECTION_SCRIPTS))
def test_every_collection_script_parses_without_error_nodes(selection: str) -> None:
    assert_parses(f"the collection script for {selection}", COLLECTION_SCRIPTS[selection])


def test_the_winrm_bootstrap_parses_without_error_nodes() -> None:
    assert_parses("the WinRM bootstrap", BOOTSTRAP)


@pytest.mark.parametrize("name", sorted(PROBES))
def test_every_probe_uses_only_windows_powershell_51(name: str) -> None:
    assert_ps51(f"the probe of {name}", PROBES[name])


@pytest.mark.parametrize("selection", list(COLLECTION_SCRIPTS))
def test_every_collection_script_uses_only_windows_powershell_51(selection: str) -> None:
    assert_ps51(f"the collection script for {selection}", COLLECTION_SCRIPTS[selection])


def test_the_winrm_bootstrap_uses_only_windows_powershell_51() -> None:
    assert_ps51("the WinRM bootstrap", BOOTSTRAP)
