"""os-release(5): the file (/etc/os-release, /usr/lib/os-release) that names a Linux release.

The format is a list of shell variable assignments that a Bourne shell could source, minus every
shell feature but assignment: no expansion, no commands. This parser gives the value a shell
would assign, and ignores (rather than guesses at) any line a shell would not read as exactly one
assignment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# A shell variable name.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# "\r" counts as blank so that a file saved with CRLF line ends still parses.
_BLANK = " \t\r"
# Shell operators: unquoted, they would end the assignment and start something else.
_OPERATORS = frozenset(";&|<>()")
# The only characters a backslash escapes inside double quotes (POSIX shell).
_DOUBLE_QUOTE_ESCAPES = frozenset('"\\$`')


class _InvalidLine(ValueError):
    """The line is not a single shell assignment; os-release(5) says to ignore it."""


def parse_os_release(text: str) -> dict[str, str]:
    """All assignments in `text`, in shell semantics; a later assignment wins, as in a shell."""
    fields: dict[str, str] = {}
    # Split on "\n" only: str.splitlines() would also split inside values at U+2028 and friends.
    for line in text.removeprefix("\ufeff").split("\n"):
        assignment = _parse_line(line)
        if assignment is not None:
            key, value = assignment
            fields[key] = value
    return fields


def _parse_line(line: str) -> tuple[str, str] | None:
    body = line.lstrip(_BLANK)
    if not body.rstrip(_BLANK) or body.startswith("#"):
        return None
    key, equals, raw_value = body.partition("=")
    # No blanks around "=": "KEY = value" runs a command named KEY in a shell.
    if not equals or not _KEY.fullmatch(key):
        return None
    try:
        return key, _parse_value(raw_value)
    except _InvalidLine:
        return None


def _parse_value(raw: str) -> str:
    """The word a shell reads from `raw`: quoted and unquoted parts concatenated, then at most a
    comment. Values are single-line: an unclosed quote or a trailing backslash invalidates the
    line, so one bad line cannot swallow the rest of the file."""
    chars: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char in _BLANK:
            _require_only_comment(raw[i:])
            break
        if char == "'":
            i = _read_single_quoted(raw, i + 1, chars)
        elif char == '"':
            i = _read_double_quoted(raw, i + 1, chars)
        elif char == "\\":
            if i + 1 == len(raw):
                raise _InvalidLine("line continuation")
            chars.append(raw[i + 1])
            i += 2
        elif char in _OPERATORS:
            raise _InvalidLine(f"unquoted {char!r}")
        else:
            # "$" and "`" are taken literally: os-release files are never expanded.
            chars.append(char)
            i += 1
    return "".join(chars)


def _require_only_comment(rest: str) -> None:
    # After the word, a shell allows only blanks and a "#" comment; anything else is a command.
    rest = rest.lstrip(_BLANK)
    if rest and not rest.startswith("#"):
        raise _InvalidLine("text after the value")


def _read_single_quoted(raw: str, start: int, chars: list[str]) -> int:
    end = raw.find("'", start)
    if end < 0:
        raise _InvalidLine("unclosed single quote")
    chars.append(raw[start:end])
    return end + 1


def _read_double_quoted(raw: str, start: int, chars: list[str]) -> int:
    i = start
    while i < len(raw):
        char = raw[i]
        if char == '"':
            return i + 1
        if char == "\\" and i + 1 < len(raw) and raw[i + 1] in _DOUBLE_QUOTE_ESCAPES:
            chars.append(raw[i + 1])
            i += 2
            continue
        # Any other backslash stays, as in a shell: "a\b" is a, backslash, b.
        chars.append(char)
        i += 1
    raise _InvalidLine("unclosed double quote")


@dataclass(frozen=True)
class OsRelease:
    """The fields of os-release that identify a release, with the defaults os-release(5) gives
    for absent ones (ID=linux, NAME=Linux, PRETTY_NAME=Linux; no VERSION_ID)."""

    id: str
    version_id: str
    name: str
    pretty_name: str
    id_like: tuple[str, ...] = ()
    # SUPPORT_END= (YYYY-MM-DD) as the image itself declares it; "" when absent.
    support_end: str = ""

    @classmethod
    def from_text(cls, text: str) -> OsRelease:
        return cls.from_fields(parse_os_release(text))

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> OsRelease:
        return cls(
            id=fields.get("ID") or "linux",
            version_id=fields.get("VERSION_ID", ""),
            name=fields.get("NAME") or "Linux",
            pretty_name=fields.get("PRETTY_NAME") or "Linux",
            id_like=tuple(fields.get("ID_LIKE", "").split()),
            support_end=fields.get("SUPPORT_END", ""),
        )
