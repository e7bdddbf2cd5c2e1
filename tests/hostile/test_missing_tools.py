"""A guest without one of the commands the collection runs never turns a finding into a pass.

Minimal images (Alpine's BusyBox, distroless-like builds, a seller's stripped AMI) lack tools a
full Debian has. Each command the collection script names is taken away in turn, the script
runs on this host, and every Linux check is judged; a check that found something (warn, fail,
error) with every tool must not come out pass or skip without one. Found this way, before: no
`head` (every probe arrived empty), no `cut` (the secret search found nothing), no `apt` beside
apt-get (nothing to upgrade).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from scanner.collect import (
    Collected,
    CollectionScript,
    LiveSettings,
    build_script,
    parse_output,
)
from scanner.facts.base import Fact, Facts, Mode, Probe, ProbeOutput, ScanContext
from scanner.facts.linux.secrets import SECRET_MATCHES, secret_search_script
from scanner.linux import linux_checks, needed_facts
from scanner.model import Status
from scanner.registry import Check, load_checks
from tests.factbuilders import live_context
from tests.guestpath import system_commands, without
from tests.imagetree import PRIVATE_KEY

_CLEAN = {Status.PASS, Status.SKIP}
# The shell itself; shell builtins (taking the binary away changes nothing); and words of the
# script that are also command names but never run as one (login shells it reads in passwd,
# record names, words of comments).
_NOT_TAKEN = {
    *("sh", "dash", "bash", "echo", "printf", "test"),
    *("nologin", "false", "sync", "shutdown", "halt", "groups", "script"),
    *("as", "file", "size", "time", "top", "more", "install"),
}


def _facts_with_a_small_search(tree: Path) -> list[Fact[Any]]:
    """The live facts of every Linux check, the secret search pointed at `tree` (this host's
    own folders would make each run take seconds)."""
    checks = linux_checks(list(load_checks().values()))
    small = dataclasses.replace(
        SECRET_MATCHES,
        probe=Probe(secret_search_script((str(tree),), "/dev/null"), True, 60, background=True),
    )
    return [small if f is SECRET_MATCHES else f for f in needed_facts(checks, Mode.LIVE)]


def _run_without(
    script: CollectionScript, bin_dir: Path, missing: str | None, checks: list[Check]
) -> dict[str, Status]:
    """The checks' statuses after the script ran with every command but `missing` linked into
    bin_dir, and bin_dir as its only PATH."""
    text = without(script.text, bin_dir, *((missing,) if missing else ()))
    return _judge(text, script.marker, bin_dir, checks)


def _collect(text: str, marker: str, path: str) -> tuple[Collected, ScanContext]:
    """The collection script run by a real sh with `path` as PATH, and the scan's context."""
    done = subprocess.run(
        ["/bin/sh", "-s"], input=text.encode(), env={"PATH": path}, capture_output=True, timeout=300
    )
    collected = parse_output(done.stdout, marker)
    context = dataclasses.replace(
        live_context(),
        session=dict(collected.env),
        privileged=collected.privileged if collected.root_uid is not None else None,
        sudo_error=collected.sudo_error,
    )
    return collected, context


def _statuses(
    collected: Collected, context: ScanContext, checks: list[Check], **outputs: ProbeOutput
) -> dict[str, Status]:
    error = None if collected.complete else "the collection script stopped early"
    facts = Facts(collected.files, context, {**collected.outputs, **outputs}, error)
    return {check.id: check.run(facts).status for check in checks}


def _judge(text: str, marker: str, bin_dir: Path, checks: list[Check]) -> dict[str, Status]:
    collected, context = _collect(text, marker, str(bin_dir))
    return _statuses(collected, context, checks)


def test_no_missing_command_turns_a_finding_into_a_pass(tmp_path: Path) -> None:
    tree = tmp_path / "searched"
    tree.mkdir()
    (tree / "id_rsa").write_text(PRIVATE_KEY)
    (tree / "app.env").write_text("AWS_ACCESS_KEY_ID=AKIAZ7QWERTY5LKJH4GF\n")
    checks = linux_checks(list(load_checks().values()))
    script = build_script(_facts_with_a_small_search(tree), LiveSettings(login_user="root"))
    commands = system_commands()
    named = set(re.findall(r"(?<![\w/$.-])([a-z][a-z0-9_.-]{1,20})(?=[ \n;|)])", script.text))
    taken = sorted(named & commands.keys() - _NOT_TAKEN)
    # The script's words are found as commands (so the tools behind today's holes are taken).
    assert {"head", "grep", "find", "xargs", "awk", "cut", "base64", "tr"} <= set(taken)

    def run_without(missing: str | None) -> dict[str, Status]:
        bin_dir = tmp_path / f"bin-without-{missing or 'nothing'}"
        return _run_without(script, bin_dir, missing, checks)

    baseline = run_without(None)
    # The planted key and key id make both secret checks find something with every tool.
    assert baseline["linux.secrets.private-keys"] is Status.FAIL
    assert baseline["linux.secrets.aws-credentials"] is Status.FAIL
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = dict(zip(taken, pool.map(run_without, taken), strict=True))
    opened = [
        f"without {tool}: {check} {baseline[check].value} -> {status.value}"
        for tool, statuses in runs.items()
        for check, status in statuses.items()
        if baseline[check] not in _CLEAN and status in _CLEAN
    ]
    assert opened == []


@pytest.mark.parametrize("missing", ["head", "cut"])
def test_the_search_found_nothing_without_it_before(tmp_path: Path, missing: str) -> None:
    """The same run for the two tools whose absence passed the secret checks, on their own,
    so a failure names them."""
    tree = tmp_path / "searched"
    tree.mkdir()
    (tree / "id_rsa").write_text(PRIVATE_KEY)
    checks = [c for c in linux_checks(list(load_checks().values())) if "secrets" in c.id]
    script = build_script(_facts_with_a_small_search(tree), LiveSettings(login_user="root"))
    statuses = _run_without(script, tmp_path / "bin", missing, checks)
    assert statuses["linux.secrets.private-keys"] not in _CLEAN


def test_no_probe_printing_nothing_turns_a_finding_into_a_pass(tmp_path: Path) -> None:
    """Each probe's output replaced by nothing, a blank line or junk, exit code 0: the checks
    it feeds must not pass what they failed. (The secret search's silence passed both secret
    checks before it ended with a line saying it finished.)"""
    tree = tmp_path / "searched"
    tree.mkdir()
    (tree / "id_rsa").write_text(PRIVATE_KEY)
    checks = linux_checks(list(load_checks().values()))
    script = build_script(_facts_with_a_small_search(tree), LiveSettings(login_user="root"))
    collected, context = _collect(script.text, script.marker, os.environ["PATH"])
    baseline = _statuses(collected, context, checks)
    assert baseline["linux.secrets.private-keys"] is Status.FAIL
    opened = []
    for name, output in collected.outputs.items():
        for hollow in (b"", b"\n", b"junk\n", b"{}\n"):
            broken = dataclasses.replace(output, stdout=hollow, rc=0)
            for check, status in _statuses(collected, context, checks, **{name: broken}).items():
                if baseline[check] not in _CLEAN and status in _CLEAN:
                    opened.append(f"{name} printing {hollow!r}: {check} -> {status.value}")
    assert opened == []
