"""A Windows system volume at rest: its registry hives and files, for the offline form of each fact.

The volume's root is C:\\. Hives are read whole (SOFTWARE is tens of MiB on a server) and parsed
once per scan: each hive is a fact of its own, which `Facts` remembers. Names are matched without
case, as Windows does, on every source (an NTFS image, or a `dir:` of a mounted volume whose
file system keeps case).
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.facts.base import Fact, FactFailed, Gathered, Mode
from scanner.fs import FileSource
from scanner.osdetect import find_case_insensitive
from scanner.parsers.regf import BadHive, Hive, RegistryKey, control_set

PLATFORM = "windows"
OFFLINE_ONLY = frozenset({Mode.OFFLINE})
CONFIG_DIRECTORY = r"C:\Windows\System32\config"
# A hive larger than this is not one Windows wrote (SOFTWARE on a busy server is ~150 MiB).
MAX_HIVE_BYTES = 512 * 1024 * 1024
# Where the environment variables the live probes use point on an image at rest. These are the
# defaults of every Windows Server release; a relocated Program Files is not followed.
KNOWN_FOLDERS = {
    "$env:SystemRoot": r"C:\Windows",
    "$env:SystemDrive": "C:",
    "$env:ProgramFiles": r"C:\Program Files",
    "$env:ProgramData": r"C:\ProgramData",
}


def volume_path(windows_path: str) -> str:
    """`C:\\Program Files\\X` as a path of the volume's FileSource (`/Program Files/X`)."""
    text = windows_path
    for variable, folder in KNOWN_FOLDERS.items():
        if text.lower().startswith(variable.lower()):
            text = folder + text[len(variable) :]
    if len(text) >= 2 and text[1] == ":":
        text = text[2:]
    return "/" + "/".join(part for part in text.replace("\\", "/").split("/") if part)


def expand(windows_path: str) -> str:
    """A probe's `$env:…` path as the path Windows would print (`C:\\Windows\\…`)."""
    for variable, folder in KNOWN_FOLDERS.items():
        if windows_path.lower().startswith(variable.lower()):
            return folder + windows_path[len(variable) :]
    return windows_path


def find_file(files: FileSource, windows_path: str) -> str | None:
    """The volume path of a regular file named by a Windows path, matched without case."""
    path = volume_path(windows_path)
    if files.is_file(path):
        return path
    found = find_case_insensitive(files, "/", path)
    return found if found is not None and files.is_file(found) else None


def decode_text(data: bytes) -> str:
    """A text file as .NET's StreamReader reads it: a BOM decides, UTF-8 otherwise."""
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if data.startswith(b"\xfe\xff"):
        return data[2:].decode("utf-16-be", errors="replace")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class TextFile:
    """A small text file of the volume: where Windows would name it, its size, its head."""

    path: str
    size: int
    text: str


def read_text(g: Gathered, windows_path: str, limit: int) -> TextFile | None:
    """The first `limit` bytes of a file as text, or None when the file is absent."""
    found = find_file(g.files, windows_path)
    if found is None:
        return None
    head = g.files.read_head(found, limit)
    return TextFile(expand(windows_path), head.size, decode_text(head.content))


def _load(g: Gathered, name: str) -> Hive:
    where = f"{CONFIG_DIRECTORY}\\{name}"
    path = find_file(g.files, where)
    if path is None:
        raise FactFailed(f"the {name} registry hive ({where}) is missing from the volume")
    try:
        hive = Hive(g.files.read_bytes(path, limit=MAX_HIVE_BYTES), name)
    except BadHive as exc:
        raise FactFailed(f"the {name} registry hive cannot be read: {exc}") from None
    if hive.dirty:
        primary, secondary = hive.sequence_numbers
        # Windows writes changes to the .LOG1/.LOG2 transaction logs first; until they are
        # folded back the hive file may lack the newest settings, which amiscan does not replay.
        raise FactFailed(
            f"the {name} registry hive was not cleanly written (sequence numbers {primary} and "
            f"{secondary}): its transaction logs hold changes amiscan does not replay; create the "
            "image from a cleanly shut-down instance"
        )
    return hive


def _hive_fact(name: str) -> Fact[Hive]:
    return Fact(
        name=f"windows.hive.{name.lower()}",
        description=f"the {name} registry hive",
        derive=lambda g: _load(g, name),
        modes=OFFLINE_ONLY,
        platform=PLATFORM,
    )


SYSTEM_HIVE = _hive_fact("SYSTEM")
SOFTWARE_HIVE = _hive_fact("SOFTWARE")
SAM_HIVE = _hive_fact("SAM")


def software_key(g: Gathered, path: str) -> RegistryKey | None:
    """A key of HKLM\\SOFTWARE, or None when it is absent."""
    try:
        return g.get(SOFTWARE_HIVE).key(path)
    except BadHive as exc:
        raise FactFailed(f"HKLM\\SOFTWARE\\{path}: {exc}") from None


def system_key(g: Gathered, path: str) -> RegistryKey | None:
    """A key of HKLM\\SYSTEM\\CurrentControlSet (the set Select\\Current names), or None."""
    try:
        return control_set(g.get(SYSTEM_HIVE)).key(path)
    except BadHive as exc:
        raise FactFailed(f"HKLM\\SYSTEM\\CurrentControlSet\\{path}: {exc}") from None
