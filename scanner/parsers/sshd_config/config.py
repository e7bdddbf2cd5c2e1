"""The parsed configuration (SshdConfig) and its effective values for one connection."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scanner.fs import FileSource
from scanner.parsers.sshd_config.defaults import ANY_V4, DEFAULTS
from scanner.parsers.sshd_config.keywords import KEYWORDS, Merge, canonical_keyword
from scanner.parsers.sshd_config.model import (
    BadValue,
    ConfigTooLarge,
    ConnectionInfo,
    Problem,
    Setting,
    Severity,
)
from scanner.parsers.sshd_config.patterns import parse_address
from scanner.parsers.sshd_config.reader import (
    Parsed,
    Reader,
    Store,
    Walk,
    criterion_matches,
    match_criteria,
)
from scanner.parsers.sshd_config.tokens import Line

DEFAULT_CONFIG = "/etc/ssh/sshd_config"

# Steps (a Match line judged for a user or an address, a line walked) one SshdConfig may spend
# on connections; past this, the judgement stops with ConfigTooLarge rather than run on.
MAX_WORK = 5_000_000

_USER_CRITERIA = ("user", "group")


@dataclass(frozen=True)
class _CompiledMatch:
    """A Match line's criteria, read once: split into what depends on the user and the rest."""

    always: bool  # "Match all"
    invalid: bool  # sshd rejects the line: it never matches
    user: tuple[tuple[str, str], ...]
    connection: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, parsed: Parsed) -> _CompiledMatch:
        try:
            pairs = list(match_criteria(parsed.line.rest))
        except BadValue:
            return cls(False, True, (), ())
        if pairs and pairs[0][0] == "all":
            return cls(True, False, (), ())
        user = tuple(p for p in pairs if p[0] in _USER_CRITERIA)
        return cls(False, False, user, tuple(p for p in pairs if p[0] not in _USER_CRITERIA))

    def without_connection(self) -> bool:
        return self.always

    def user_matches(self, ci: ConnectionInfo) -> bool:
        if self.invalid:
            return False
        return all(criterion_matches(name, arg, ci) for name, arg in self.user)

    def connection_matches(self, ci: ConnectionInfo) -> bool:
        if self.invalid:
            return False
        return all(criterion_matches(name, arg, ci) for name, arg in self.connection)


class EffectiveConfig:
    """The options sshd applies to one connection: what `sshd -T -C user=,host=,addr=` prints."""

    def __init__(self, global_store: Store, match_store: Store, ci: ConnectionInfo) -> None:
        self.connection = ci
        self._global = global_store.entries
        self._match = match_store.entries

    def sources(self, keyword: str) -> tuple[Setting, ...]:
        """The config lines that set a keyword for this connection (empty: compiled-in default)."""
        name = canonical_keyword(keyword)
        # copy_set_server_options: an option set in a matching Match block replaces the global.
        return tuple(self._match.get(name) or self._global.get(name) or ())

    def get(self, keyword: str) -> Setting:
        """The effective value of a keyword (any alias, any case); KeyError for a non-keyword."""
        name = canonical_keyword(keyword)
        if name == "listenaddress":
            return self._listen_addresses()
        if name == "rekeylimit":
            return self._rekey_limit()
        settings = self.sources(name)
        if not settings:
            return Setting(name, DEFAULTS.get(name, ()), "default")
        values = tuple(v for s in settings for v in s.values)
        return Setting(name, values, settings[0].source, settings[0].line)

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """Every keyword with its effective values, for comparing with `parse_sshd_t`."""
        names = {spec.name for spec in KEYWORDS.values() if spec.merge is not Merge.IGNORED}
        names -= {"match", "include"}
        return {name: self.get(name).values for name in sorted(names)}

    def _rekey_limit(self) -> Setting:
        # sshd keeps the byte limit and the interval as two options, each first-wins, and a
        # Match block overrides each one separately.
        lines = [*self._match.get("rekeylimit", ()), *self._global.get("rekeylimit", ())]
        if not lines:
            return Setting("rekeylimit", DEFAULTS["rekeylimit"], "default")
        interval = next((s.values[1] for s in lines if s.values[1]), "0")
        return Setting("rekeylimit", (lines[0].values[0], interval), lines[0].source, lines[0].line)

    def _listen_addresses(self) -> Setting:
        """ListenAddress as sshd -T lists it: every address with every Port it applies to."""
        ports = self.get("port").values
        family = self.get("addressfamily").values[0]
        settings = self._global.get("listenaddress", [])
        if not settings:
            wildcard = {"inet": [ANY_V4], "inet6": ["::"], "any": ["::", ANY_V4]}[family]
            values = tuple(_host_port_text(h, p, "") for p in ports for h in wildcard)
            return Setting("listenaddress", values, "default")
        values = tuple(
            _host_port_text(host, port, rdomain)
            for s in settings
            for host, entry_port, rdomain in [s.values]
            for port in (ports if entry_port == "0" else (entry_port,))
        )
        return Setting("listenaddress", values, settings[0].source, settings[0].line)


def _host_port_text(host: str, port: str, rdomain: str) -> str:
    address = parse_address(host)
    text = (
        f"[{address}]:{port}" if address and address.version == 6 else f"{address or host}:{port}"
    )
    return f"{text} rdomain {rdomain}" if rdomain else text


class SshdConfig:
    """An sshd_config and everything it includes, parsed once; evaluate it per connection."""

    def __init__(self, reader: Reader, path: str) -> None:
        self.path = path
        self._reader = reader
        self.issues: list[Problem] = []
        self._global = Store()
        startup = Walk(None, self._collect, self._report)
        reader.walk(path, startup)
        self._match_lines = startup.matches
        self.files: list[str] = list(reader.files)
        self.problems: list[str] = [str(p) for p in self.issues]
        # Why the files were not read to the end (a bound of this scanner), if they were not.
        self.incomplete: str | None = startup.incomplete
        # Each distinct Match line, compiled once; a connection is judged by which of them match.
        self._index = {parsed: i for i, parsed in enumerate(dict.fromkeys(startup.matches))}
        self._compiled = [_CompiledMatch.of(parsed) for parsed in self._index]
        self._walk_cost = startup.lines
        # The image's groups are read only when a Match Group line needs them.
        self._needs_groups = any(n == "group" for m in self._compiled for n, _ in m.user)
        self._work = 0
        self._by_user: dict[tuple[str, tuple[str, ...]], tuple[bool, ...]] = {}
        self._by_connection: dict[tuple[object, ...], tuple[bool, ...]] = {}
        self._stores: dict[tuple[bool, ...], Store] = {}

    @property
    def rejected(self) -> bool:
        """True when sshd would refuse to start with this configuration."""
        return any(p.kind is Severity.FATAL for p in self.issues)

    def _collect(self, parsed: Parsed, active: bool) -> None:
        self._note_deprecated(parsed)
        conflict = self._global.conflict(parsed, active)
        if conflict:
            self._report(parsed.line, conflict)
        elif active:
            self._global.apply(parsed)

    def _note_deprecated(self, parsed: Parsed) -> None:
        spec = parsed.spec
        if spec is not None and spec.merge is Merge.IGNORED and spec.note:
            message = f"{spec.note} option {parsed.line.keyword} (sshd ignores it)"
            self._add(Problem(parsed.line.location, message, Severity.WARNING))

    def _report(self, line: Line, message: str) -> None:
        self._add(Problem(line.location, message))

    def _add(self, problem: Problem) -> None:
        if problem not in self.issues:
            self.issues.append(problem)

    def groups_of(self, user: str) -> tuple[str, ...]:
        """A user's groups in the image (passwd and group are indexed once per config)."""
        return self._reader.accounts.groups(user)

    def _spend(self, steps: int) -> None:
        self._work += steps
        if self._work > MAX_WORK:
            raise ConfigTooLarge(
                f"judging sshd's Match blocks for every account and address would take more than "
                f"{MAX_WORK} steps ({len(self._compiled)} distinct Match lines, "
                f"{self._walk_cost} lines read per pass; a bound of this scanner)"
            )

    def user_signature(self, user: str, groups: tuple[str, ...] | None = None) -> tuple[bool, ...]:
        """Which Match lines' User and Group criteria a user meets.

        Two users with the same signature get the same options from every address. Raises
        ConfigTooLarge past the work bound.
        """
        if not groups and self._needs_groups:
            groups = self.groups_of(user)
        groups = groups or ()
        key = (user, groups)
        found = self._by_user.get(key)
        if found is None:
            self._spend(len(self._compiled) + 1)
            ci = ConnectionInfo(user=user, addr="", groups=groups)
            found = tuple(m.user_matches(ci) for m in self._compiled)
            self._by_user[key] = found
        return found

    def _connection_signature(self, ci: ConnectionInfo) -> tuple[bool, ...]:
        key = (ci.addr, ci.host, ci.laddr, ci.lport, ci.rdomain)
        found = self._by_connection.get(key)
        if found is None:
            self._spend(len(self._compiled) + 1)
            found = tuple(m.connection_matches(ci) for m in self._compiled)
            self._by_connection[key] = found
        return found

    def effective(self, ci: ConnectionInfo) -> EffectiveConfig:
        """The options that apply to a connection (global, then matching Match blocks).

        When `ci.groups` is empty and a Match Group line needs them, the user's groups are read
        from the image, as sshd reads them from the system. Each Match line is judged once per user and once per
        address, and the files are walked once per distinct outcome; ConfigTooLarge past the
        work bound.
        """
        if not ci.groups and self._needs_groups:
            ci = dataclasses.replace(ci, groups=self.groups_of(ci.user))
        users = self.user_signature(ci.user, ci.groups)
        connections = self._connection_signature(ci)
        outcome = tuple(u and c for u, c in zip(users, connections, strict=True))
        matched = self._stores.get(outcome)
        if matched is None:
            self._spend(self._walk_cost + 1)
            matched = self._walk_connection(ci, outcome)
            self._stores[outcome] = matched
        return EffectiveConfig(self._global, matched, ci)

    def _walk_connection(self, ci: ConnectionInfo, outcome: tuple[bool, ...]) -> Store:
        matched = Store()

        def apply(parsed: Parsed, active: bool) -> None:
            if active:
                matched.apply(parsed)

        def decide(parsed: Parsed, connection: ConnectionInfo | None) -> bool:
            index = self._index.get(parsed)
            if index is None:  # not met at start-up (cannot happen: both passes read alike)
                compiled = _CompiledMatch.of(parsed)
                if connection is None:
                    return compiled.without_connection()
                return compiled.user_matches(ci) and compiled.connection_matches(ci)
            if connection is None:
                return self._compiled[index].without_connection()
            return outcome[index]

        self._reader.walk(self.path, Walk(ci, apply, lambda line, message: None, decide))
        return matched

    def match_addresses(self) -> list[str]:
        """Every entry of every Match Address / LocalAddress pattern list, in reading order."""
        found = (e for parsed in self._match_lines for e in _address_entries(parsed.line.rest))
        return list(dict.fromkeys(found))


def _address_entries(rest: str | None) -> list[str]:
    try:
        pairs = list(match_criteria(rest))
    except BadValue:
        return []
    return [e for name, arg in pairs if name in ("address", "localaddress") for e in arg.split(",")]


def parse_sshd_config(files: FileSource, path: str = DEFAULT_CONFIG) -> SshdConfig:
    """Parse an image's sshd_config (and its Includes); FileNotFoundError if it is absent."""
    reader = Reader(files)
    if reader.parsed(path) is None or not files.is_file(path):
        raise FileNotFoundError(path)
    return SshdConfig(reader, path)
