"""The parsed configuration (SshdConfig) and its effective values for one connection."""

from __future__ import annotations

import dataclasses

from scanner.fs import FileSource
from scanner.parsers.sshd_config.accounts import user_groups
from scanner.parsers.sshd_config.defaults import ANY_V4, DEFAULTS
from scanner.parsers.sshd_config.keywords import KEYWORDS, Merge, canonical_keyword
from scanner.parsers.sshd_config.model import BadValue, ConnectionInfo, Problem, Setting, Severity
from scanner.parsers.sshd_config.patterns import parse_address
from scanner.parsers.sshd_config.reader import Parsed, Reader, Store, Walk, match_criteria
from scanner.parsers.sshd_config.tokens import Line

DEFAULT_CONFIG = "/etc/ssh/sshd_config"


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

    def effective(self, ci: ConnectionInfo) -> EffectiveConfig:
        """The options that apply to a connection (global, then matching Match blocks).

        When `ci.groups` is empty the user's groups are read from the image, as sshd reads them
        from the system for Match Group.
        """
        if not ci.groups:
            ci = dataclasses.replace(ci, groups=user_groups(self._reader.source, ci.user))
        matched = Store()

        def apply(parsed: Parsed, active: bool) -> None:
            if active:
                matched.apply(parsed)

        self._reader.walk(self.path, Walk(ci, apply, lambda line, message: None))
        return EffectiveConfig(self._global, matched, ci)

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
