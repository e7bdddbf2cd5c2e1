"""Splitting config lines into tokens, as misc.c strdelim() and argv_split() do."""

from __future__ import annotations

from dataclasses import dataclass

from scanner.parsers.sshd_config.model import BadValue

WHITESPACE = " \t\r\n"


def strdelim(text: str | None) -> tuple[str | None, str | None]:
    """Next token of a config line and the rest; tokens end at whitespace or at one '='.

    A token may be wrapped in double quotes. Returns (None, None) for an unterminated quote.
    """
    if text is None:
        return None, None
    index = next((i for i, ch in enumerate(text) if ch in WHITESPACE + '"='), -1)
    if index < 0:
        return text, None
    if text[index] == '"':
        # sshd deletes the opening quote in place, so text before it joins the token.
        end = text.find('"', index + 1)
        if end < 0:
            return None, None
        token = text[:index] + text[index + 1 : end]
        return token, text[end + 1 :].lstrip(WHITESPACE)
    token = text[:index]
    rest = text[index + 1 :].lstrip(WHITESPACE)
    if text[index] != "=" and rest.startswith("="):
        # "Key = value": one '=' surrounded by whitespace is a separator too, but only one.
        rest = rest[1:].lstrip(WHITESPACE)
    return token, rest


def argv_split(text: str) -> list[str]:
    """Arguments of a line: whitespace-separated, ' and " quoting, backslash escapes, # comment.

    Raises BadValue on an unterminated quote (sshd: "invalid quotes").
    """
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i] in " \t":
            i += 1
            continue
        if text[i] == "#":
            break
        arg: list[str] = []
        quote = ""
        while i < n:
            ch = text[i]
            nxt = text[i + 1] if i + 1 < n else ""
            if ch == "\\" and (nxt in ("'", '"', "\\") or (not quote and nxt == " ")):
                arg.append(nxt)
                i += 2
                continue
            if not quote and ch in " \t":
                break
            if not quote and ch in "'\"":
                quote = ch
            elif quote and ch == quote:
                quote = ""
            else:
                arg.append(ch)
            i += 1
        if quote:
            raise BadValue("invalid quotes")
        args.append("".join(arg))
    return args


@dataclass(frozen=True)
class Line:
    """One non-blank, non-comment line of a config file, split the way sshd splits it."""

    path: str
    number: int
    text: str  # stripped
    keyword: str  # as written
    rest: str | None  # what follows the keyword and its separator, unsplit

    @property
    def location(self) -> str:
        return f"{self.path}:{self.number}"


def split_lines(path: str, content: str) -> list[Line]:
    """The meaningful lines of a file (load_server_config + the start of process_server_config)."""
    lines: list[Line] = []
    for number, raw in enumerate(content.split("\n"), start=1):
        text = raw.lstrip(" \t\r").rstrip(" \t\r\n\f")
        keyword, rest = strdelim(text)
        if keyword == "":
            keyword, rest = strdelim(rest)
        if not keyword or keyword.startswith("#"):
            continue
        lines.append(Line(path, number, text, keyword, rest))
    return lines
