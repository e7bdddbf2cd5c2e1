"""Reading the config files and walking them the way sshd does: Include, Match, merging."""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum

from scanner.fs import FileSource, glob, read_text_or_none
from scanner.parsers.sshd_config.accounts import Accounts
from scanner.parsers.sshd_config.keywords import KEYWORDS, Context, Keyword, Merge, a2port
from scanner.parsers.sshd_config.model import BadValue, ConnectionInfo, Setting
from scanner.parsers.sshd_config.patterns import addr_match_list, match_pattern_list
from scanner.parsers.sshd_config.tokens import Line, argv_split, split_lines, strdelim

SSH_DIR = "/etc/ssh"

# servconf.c SERVCONF_MAX_DEPTH: the main file is depth 0, an Include deeper than this is fatal.
# sshd exits there; we read the rest of the files already open but follow no further Include,
# which keeps a loop of files including each other linear instead of exponential.
_MAX_INCLUDE_DEPTH = 16
# Our own bound on top: files read in one pass over the configuration. sshd has none (a tree of
# includes 16 deep can name exponentially many), so past this the configuration is not judged.
MAX_FILE_VISITS = 1000


@dataclass(frozen=True)
class Parsed:
    """A line with its keyword looked up and its arguments checked (independent of Match)."""

    line: Line
    spec: Keyword | None  # None: sshd does not know the keyword
    args: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    error: str | None = None  # sshd rejects the line


def _parse_line(line: Line, home_of: Callable[[str], str | None]) -> Parsed:
    """Check one line as process_server_config_line_depth does before acting on it."""
    if not line.rest:
        return Parsed(line, None, error=f'no argument after keyword "{line.keyword}"')
    spec = KEYWORDS.get(line.keyword.lower())
    if spec is None:
        return Parsed(line, None, error=f"Bad configuration option: {line.keyword}")
    try:
        args = tuple(argv_split(line.rest))
    except BadValue as exc:
        return Parsed(line, spec, error=str(exc))
    if spec.name in ("match", "include"):
        return Parsed(line, spec, args)
    ctx = Context(line.keyword, args, line.rest, home_of)
    try:
        return Parsed(line, spec, args, spec.parse(ctx))
    except BadValue as exc:
        return Parsed(line, spec, args, error=str(exc))


_MATCH_CRITERIA = ("user", "group", "host", "address", "localaddress", "localport", "rdomain")


def match_criteria(rest: str | None) -> Iterator[tuple[str, str]]:
    """The (criterion, pattern list) pairs of a Match line, checked as match_cfg_line does.

    "all" is yielded as ("all", ""). Raises BadValue where sshd reports a bad Match condition.
    """
    attributes = 0
    cursor = rest
    while True:
        attrib, cursor = strdelim(cursor)
        if not attrib or attrib.startswith("#"):
            break
        attributes += 1
        if attrib.lower() == "all":
            following, _ = strdelim(cursor)
            if attributes > 1 or (following and not following.startswith("#")):
                raise BadValue("'all' cannot be combined with other Match attributes")
            yield "all", ""
            return
        arg, cursor = strdelim(cursor)
        if not arg or arg.startswith("#"):
            raise BadValue(f"Missing Match criteria for {attrib}")
        name = attrib.lower()
        if name not in _MATCH_CRITERIA:
            raise BadValue(f"Unsupported Match attribute {attrib}")
        if name in ("address", "localaddress") and addr_match_list(None, arg) != 0:
            raise BadValue(f"Invalid Match {name} argument '{arg}'")
        if name == "localport" and a2port(arg) is None:
            raise BadValue(f"Invalid LocalPort '{arg}' on Match line")
        yield name, arg
    if attributes == 0:
        raise BadValue("One or more attributes required for Match")


def criterion_matches(name: str, patterns: str, ci: ConnectionInfo) -> bool:
    """One Match criterion against a connection; an attribute the connection lacks never matches."""
    if name == "user":
        return match_pattern_list(ci.user, patterns) == 1
    if name == "group":
        outcomes = {match_pattern_list(group, patterns) for group in ci.groups}
        return 1 in outcomes and -1 not in outcomes  # a negated group match wins (groupaccess.c)
    if name == "host":
        return match_pattern_list((ci.host or ci.addr).lower(), patterns, lowercase=True) == 1
    if name == "address":
        return addr_match_list(ci.addr, patterns) == 1
    if name == "localaddress":
        return ci.laddr is not None and addr_match_list(ci.laddr, patterns) == 1
    if name == "localport":
        return ci.lport is not None and a2port(patterns) == ci.lport
    return ci.rdomain is not None and match_pattern_list(ci.rdomain, patterns) == 1


def _match_result(rest: str | None, ci: ConnectionInfo | None) -> bool:
    """match_cfg_line: all criteria are ANDed; without a connection only "all" matches."""
    result = True
    for name, patterns in match_criteria(rest):
        if name == "all":
            return True
        if ci is None or not criterion_matches(name, patterns, ci):
            result = False  # keep going: later criteria must still be well-formed
    return result


class _Flags(Enum):
    NORMAL = 0
    NEVER_MATCH = 1  # SSHCFG_NEVERMATCH: an include inside a Match block that does not apply
    MATCH_ONLY = 2  # SSHCFG_MATCH_ONLY: connection pass, before the file's first Match


def _decide(parsed: Parsed, ci: ConnectionInfo | None) -> bool:
    return _match_result(parsed.line.rest, ci)


class _Stop(Exception):
    """The pass ends here: our bound on files read was hit."""


@dataclass
class Walk:
    """One pass over the configuration: for start-up (ci None) or for a connection."""

    ci: ConnectionInfo | None
    emit: Callable[[Parsed, bool], None]  # every option line sshd acts on, and whether active
    report: Callable[[Line, str], None]
    # Whether a Match line matches (ci None: no connection); raises BadValue for a bad line.
    decide: Callable[[Parsed, ConnectionInfo | None], bool] = _decide
    active: bool = True
    matches: list[Parsed] = dataclasses.field(default_factory=list)  # Match lines, in order
    lines: int = 0  # lines visited: the cost of one more pass like this one
    files: int = 0  # files visited
    incomplete: str | None = None  # why the pass stopped before sshd would have
    too_deep: bool = False  # an Include went deeper than sshd allows


class Reader:
    """The image's files, read once, with sshd's Include and Match logic on top."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.files: list[str] = []
        self._parsed: dict[str, list[Parsed] | None] = {}
        self._globs: dict[str, list[str]] = {}
        self._accounts: Accounts | None = None

    @property
    def accounts(self) -> Accounts:
        """The image's passwd and group, indexed on first use."""
        if self._accounts is None:
            self._accounts = Accounts(self.source)
        return self._accounts

    def home_of(self, user: str) -> str | None:
        home = self.accounts.home(user)
        return "/root" if home is None and user == "root" else home

    def parsed(self, path: str) -> list[Parsed] | None:
        """A file's lines, parsed; None when sshd could not read it."""
        if path not in self._parsed:
            text = read_text_or_none(self.source, path)
            if text is None and self.source.is_dir(path):
                text = ""  # fopen() of a directory works on Linux; reading it yields nothing
            if text is not None:
                self.files.append(path)
            lines = None if text is None else split_lines(path, text)
            self._parsed[path] = (
                None if lines is None else [_parse_line(line, self.home_of) for line in lines]
            )
        return self._parsed[path]

    def expand(self, pattern: str) -> list[str]:
        """The files an Include pattern names: glob(3), sorted; none is not an error."""
        if pattern not in self._globs:
            self._globs[pattern] = glob(self.source, pattern)
        return self._globs[pattern]

    def walk(self, path: str, walk: Walk) -> None:
        flags = _Flags.NORMAL if walk.ci is None else _Flags.MATCH_ONLY
        walk.active = walk.ci is None
        with contextlib.suppress(_Stop):  # walk.incomplete says why
            self._walk_file(path, walk, flags, 0)

    def _walk_file(self, path: str, walk: Walk, flags: _Flags, depth: int) -> None:
        walk.files += 1
        if walk.files > MAX_FILE_VISITS:
            walk.incomplete = (
                f"the configuration includes more than {MAX_FILE_VISITS} files in all "
                "(a bound of this scanner); it was not read to the end"
            )
            raise _Stop
        for parsed in self.parsed(path) or ():
            walk.lines += 1
            flags = self._walk_line(parsed, walk, flags, depth)

    def _walk_line(self, parsed: Parsed, walk: Walk, flags: _Flags, depth: int) -> _Flags:
        """Act on one line; returns the file's flags, which the first Match line changes."""
        line, spec = parsed.line, parsed.spec
        if spec is None or (parsed.error and spec.name not in ("match", "include")):
            walk.report(line, parsed.error or "")
            return flags
        if not walk.active and not spec.in_match:
            # The start-up pass rejects this; the connection pass skips what it already did.
            walk.report(line, f"Directive '{line.keyword}' is not allowed within a Match block")
            return flags
        if parsed.error:
            walk.report(line, parsed.error)
            return flags
        if spec.name == "match":
            return self._walk_match(parsed, walk, flags)
        if spec.name == "include":
            self._walk_include(parsed, walk, flags, depth)
        else:
            walk.emit(parsed, walk.active)
        return flags

    def _walk_match(self, parsed: Parsed, walk: Walk, flags: _Flags) -> _Flags:
        walk.matches.append(parsed)
        ci = None if flags is _Flags.NEVER_MATCH else walk.ci
        try:
            result = walk.decide(parsed, ci)
        except BadValue as exc:
            walk.report(parsed.line, f"Bad Match condition: {exc}")
            result = False
        walk.active = result and flags is not _Flags.NEVER_MATCH
        return _Flags.NORMAL if flags is _Flags.MATCH_ONLY else flags

    def _walk_include(self, parsed: Parsed, walk: Walk, flags: _Flags, depth: int) -> None:
        if walk.too_deep:
            return  # sshd has already exited (fatal)
        for arg in parsed.args:
            if arg == "":
                walk.report(parsed.line, "keyword Include empty argument")
                return
            pattern = arg if arg[0] in "/~" else posixpath.join(SSH_DIR, arg)
            # An included file must not change the includer's Match state.
            saved = walk.active
            if flags is _Flags.MATCH_ONLY:
                inner = _Flags.MATCH_ONLY
            else:
                inner = _Flags.NORMAL if saved else _Flags.NEVER_MATCH
            for path in self.expand(pattern):
                if depth + 1 > _MAX_INCLUDE_DEPTH:
                    walk.report(parsed.line, "Too many recursive configuration includes")
                    walk.too_deep = True
                    return
                if self.parsed(path) is None:
                    walk.report(parsed.line, f"cannot read included file {path}")
                    continue
                self._walk_file(path, walk, inner, depth + 1)
                walk.active = saved


class Store:
    """Options set by one pass, with sshd's rule for each keyword (first wins, appends, ...)."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Setting]] = {}

    def apply(self, parsed: Parsed) -> None:
        spec = parsed.spec
        if spec is None or spec.merge is Merge.IGNORED:
            return
        setting = Setting(spec.name, parsed.values, parsed.line.location, parsed.line.text)
        current = self.entries.setdefault(spec.name, [])
        if spec.merge is Merge.FIRST and current:
            return
        if spec.merge is Merge.LAST:
            current.clear()
        current.append(setting)

    def conflict(self, parsed: Parsed, active: bool) -> str | None:
        """Errors sshd raises from what earlier lines set, not from the line alone."""
        name = parsed.spec.name if parsed.spec else ""
        if name == "authenticationmethods" and "any" in parsed.values and self.entries.get(name):
            # Checked even inside a Match block that does not apply (OpenSSH 9.2 behaviour).
            return '"any" must appear alone in AuthenticationMethods'
        if name == "subsystem" and active:
            defined = {s.values[0].split(" ")[0] for s in self.entries.get(name, ())}
            subsystem = parsed.values[0].split(" ")[0]
            if subsystem in defined:
                return f"Subsystem '{subsystem}' already defined."
        return None
