"""A guest whose system directories lack some commands, for tests of the collection script.

The script's prelude puts the system directories first on PATH; a test swaps that line for one
directory linking every command this host has but the ones taken away.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

SYSTEM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
# The prelude's PATH line, as the collection script prints it.
SYSTEM_PATH = f"PATH={':'.join(SYSTEM_DIRS)}:$PATH; export PATH"


@functools.cache
def system_commands() -> dict[str, str]:
    """This host's commands by name, each where the system directories' order finds it first."""
    commands: dict[str, str] = {}
    for directory in SYSTEM_DIRS:
        if os.path.isdir(directory):
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                if name not in commands and os.access(path, os.X_OK) and not os.path.isdir(path):
                    commands[name] = path
    return commands


def without(script_text: str, bin_dir: Path, *missing: str) -> str:
    """`script_text` run with bin_dir as its only PATH, bin_dir linking every command but
    `missing`."""
    bin_dir.mkdir()
    for name, path in system_commands().items():
        if name not in missing:
            (bin_dir / name).symlink_to(path)
    assert script_text.count(SYSTEM_PATH) == 2  # the user part's prelude and the root part's
    return script_text.replace(SYSTEM_PATH, f"PATH={bin_dir}; export PATH")
