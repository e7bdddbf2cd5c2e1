"""The marker record stream both collection scripts print, and the rules for trusting it.

The Linux (`scanner.collect`) and Windows (`scanner.collect_windows`) scripts print one record per
line, `<marker> <KIND> <field> <field> ...`, and finish with `<marker> END`. Their record kinds
differ; how the stream is read does not:

- only records before the first END count; records after it are ignored (and counted, so that
  the scan can say so): they can only come from something on the guest, never from the script;
- a second END, or a session record printed twice, means the stream is forged: nothing in it is
  judged;
- a probe with two records errors, whichever of them came first (neither is trusted);
- a malformed record spoils only the probe (or file) it was about, never the whole collection.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from scanner.facts.base import ProbeOutput

# Probe names (fact names) as records carry them: nothing a shell or PowerShell would interpret.
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


class RecordError(ValueError):
    """One record of the collection output is malformed."""


@dataclass(frozen=True)
class RecordStream:
    """The marker records of one collection output, split at the first END."""

    # The fields of every record before the first END, kind first, in order.
    records: list[list[str]]
    # How many END records there were: 0 (the script stopped early), 1, or more (forged).
    ends: int
    # Marker records after the first END: ignored, never allowed to override what came before.
    ignored_after_end: int

    @property
    def complete(self) -> bool:
        """True when the script got to its END."""
        return self.ends > 0

    @property
    def forged(self) -> str | None:
        """Why the stream as a whole cannot be trusted, judged by its END records alone."""
        if self.ends > 1:
            return f"the collection output holds {self.ends} END records (forged output?)"
        return None


def read_records(stdout: bytes, marker: str, *, strip: str = "") -> RecordStream:
    """The records of this script's marker in `stdout`; any other line is ignored.

    The records are ASCII by construction: anything else on a line cannot be part of one. `strip`
    names characters dropped from the end of each line first (a transport's padding).
    """
    prefix = marker + " "
    records: list[list[str]] = []
    ends = after = 0
    for raw in stdout.decode("ascii", errors="replace").splitlines():
        line = raw.rstrip(strip) if strip else raw
        if not line.startswith(prefix):
            continue
        fields = line[len(prefix) :].split(" ")
        if fields == ["END"]:
            ends += 1
        elif ends:
            after += 1
        else:
            records.append(fields)
    return RecordStream(records, ends, after)


def decode_field(value: str, encoding: str = "b64") -> bytes:
    """One encoded field (base64, or hex when the guest had no base64); `-` is empty."""
    if value == "-":
        return b""
    try:
        if encoding == "hex":
            return binascii.unhexlify(value)
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"undecodable field: {exc}") from exc


def count_field(value: str, what: str) -> int:
    """A field that must be a plain non-negative number (an exit code, a size)."""
    if not value.isdigit() or len(value) > 18:
        raise RecordError(f"{what} {value[:40]!r} is not a number")
    return int(value)


def repeated_session_record(seen: set[str], key: str) -> str | None:
    """Why the stream is forged when the session record `key` was seen before; else remember it."""
    if key in seen:
        return f"the collection output repeats the {key} record (forged output?)"
    seen.add(key)
    return None


class ProbeLedger(Protocol):
    """What a parsed collection knows about its probes."""

    outputs: dict[str, ProbeOutput]
    # Probes whose record was malformed or repeated, and why: their facts error.
    probe_errors: dict[str, str]


def claim_probe(ledger: ProbeLedger, name: str) -> bool:
    """True for the first record of probe `name`; a second one errors the probe for good."""
    if name in ledger.outputs or name in ledger.probe_errors:
        ledger.outputs.pop(name, None)
        ledger.probe_errors[name] = (
            "the collection output holds two records for this probe (forged output?)"
        )
        return False
    return True


def spoil_probe(ledger: ProbeLedger, name: str, reason: str) -> None:
    """A malformed record of probe `name`: that probe errors, and no other."""
    ledger.outputs.pop(name, None)
    ledger.probe_errors[name] = f"its record in the collection output is malformed ({reason})"


def stream_notes(
    ignored_after_end: int, probe_errors: Mapping[str, str], files_error: str | None = None
) -> list[str]:
    """The report's notes on what was ignored or spoiled in a record stream."""
    notes: list[str] = []
    if ignored_after_end:
        notes.append(
            f"{ignored_after_end} collection record(s) after the end of the script's output were "
            "ignored (printed by something on the guest)"
        )
    notes.extend(f"probe {name}: {why}" for name, why in sorted(probe_errors.items()))
    if files_error:
        notes.append(files_error)
    return notes
