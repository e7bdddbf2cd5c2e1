"""Builders of fixture facts for the check and fact tests: an image root or a live snapshot.

`offline_facts` writes a small tree into a directory and reads it through `ImageRoot`, as a
`dir:` scan does; `live_facts` puts copied files in a `MemoryTree` and probe outputs by fact, as
the collector hands them over after its one round trip.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.facts.base import Fact, Facts, Mode, ProbeOutput, ScanContext
from scanner.fs import ImageRoot, MemoryTree
from scanner.model import Outcome
from scanner.registry import Check


@dataclass(frozen=True)
class Symlink:
    """A symbolic link in an image tree, pointing at `target` as written (absolute or not)."""

    target: str


# A tree maps guest paths to contents; a path ending in "/" is an (empty) directory.
Tree = Mapping[str, str | bytes | Symlink]


def write_tree(root: Path, tree: Tree) -> ImageRoot:
    """Write `tree` below `root` and return the image root that reads it."""
    root.mkdir(parents=True, exist_ok=True)
    for guest_path, content in tree.items():
        host = root / guest_path.lstrip("/")
        if guest_path.endswith("/"):
            host.mkdir(parents=True, exist_ok=True)
            continue
        host.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Symlink):
            os.symlink(content.target, host)
        elif isinstance(content, bytes):
            host.write_bytes(content)
        else:
            host.write_text(content)
    return ImageRoot(root)


# An OpenSSH server as a package installs it and `systemctl enable sshd` leaves it: add these to a
# tree whose sshd configuration is judged (without them, those checks are `error`: no server).
OPENSSH_SERVER: dict[str, str | bytes | Symlink] = {
    "/usr/sbin/sshd": b"\x7fELF (a stand-in for sshd)\n",
    "/usr/lib/systemd/system/sshd.service": "[Service]\nExecStart=/usr/sbin/sshd -D\n",
    "/etc/systemd/system/multi-user.target.wants/sshd.service": Symlink(
        "/usr/lib/systemd/system/sshd.service"
    ),
}

# What makes a tree a Linux root (scanner.osdetect): an os-release and a passwd.
LINUX_ROOT: dict[str, str | bytes | Symlink] = {
    "/etc/os-release": 'ID=amzn\nVERSION_ID="2023"\nPRETTY_NAME="Amazon Linux 2023"\n',
    "/etc/passwd": "root:x:0:0:root:/root:/bin/bash\n"
    "ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n",
}


def offline_context(**overrides: Any) -> ScanContext:
    return ScanContext(**{"mode": Mode.OFFLINE, "target_kind": "dir", **overrides})


def live_context(**overrides: Any) -> ScanContext:
    """A freshly launched AMI, logged in as ec2-user, whose privileged probes ran as root."""
    defaults: dict[str, Any] = {
        "mode": Mode.LIVE,
        "target_kind": "ami",
        "login_user": "ec2-user",
        "privileged": True,
        "session": {"uid": "1000", "user": "ec2-user"},
    }
    return ScanContext(**{**defaults, **overrides})


def build_offline_facts(root: Path, tree: Tree, **context: Any) -> Facts:
    return Facts(write_tree(root, tree), offline_context(**context))


def probe_output(
    stdout: str | bytes = "",
    rc: int = 0,
    stderr: str | bytes = "",
    timed_out: bool = False,
    name: str = "probe",
) -> ProbeOutput:
    out = stdout.encode() if isinstance(stdout, str) else stdout
    err = stderr.encode() if isinstance(stderr, str) else stderr
    return ProbeOutput(name, rc, out, err, timed_out=timed_out)


def memory_tree(files: Mapping[str, str | bytes] | None = None) -> MemoryTree:
    tree = MemoryTree()
    for path, content in (files or {}).items():
        tree.add(path, content.encode() if isinstance(content, str) else content)
    return tree


def build_live_facts(
    files: Mapping[str, str | bytes] | None = None,
    outputs: Mapping[Fact[Any] | str, str | ProbeOutput] | None = None,
    collection_error: str | None = None,
    **context: Any,
) -> Facts:
    """Facts of a live host: copied `files`, probe `outputs` keyed by fact, context overrides."""
    by_name: dict[str, ProbeOutput] = {}
    for fact, output in (outputs or {}).items():
        name = fact if isinstance(fact, str) else fact.name
        if isinstance(output, str):
            output = probe_output(output, name=name)
        by_name[name] = dataclasses.replace(output, name=name)
    return Facts(memory_tree(files), live_context(**context), by_name, collection_error)


OfflineFacts = Callable[..., Facts]
LiveFacts = Callable[..., Facts]


@pytest.fixture
def offline_facts(tmp_path: Path) -> OfflineFacts:
    """`offline_facts(tree, **context)`: each call reads a fresh image root below tmp_path."""
    counter = itertools.count()

    def build(tree: Tree, **context: Any) -> Facts:
        return build_offline_facts(tmp_path / f"image{next(counter)}", tree, **context)

    return build


@pytest.fixture
def live_facts() -> LiveFacts:
    """`live_facts(files=, outputs=, **context)`: facts of a live host after collection."""
    return build_live_facts


def with_evidence(cases: list[Any]) -> list[Any]:
    """The rows of a table (pytest.param, expected evidence last) that expect some evidence."""
    return [case for case in cases if case.values[-1]]


def evidence_text(outcome: Outcome) -> str:
    """All evidence of an outcome, one `source: text` line each, for substring assertions."""
    return "\n".join(f"{e.source}: {e.text}" for e in outcome.evidence)


def run(check: Check, facts: Facts) -> Outcome:
    """Judge as the scan does: an unavailable fact is `skip`, a broken one is `error`."""
    return check.run(facts)
