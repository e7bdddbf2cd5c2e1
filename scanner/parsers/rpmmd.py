"""rpm-md repository metadata (what dnf and yum cache): repomd.xml, primary.xml, updateinfo.xml.

Each file is parsed as a stream of chunks with expat, keeping only the fields amiscan needs, so a
primary of hundreds of MiB never sits in memory. The files come from an untrusted image: a
document type declaration (the only way to declare entities, hence to build an XML bomb or
reach an external entity) is refused outright, as rpm-md files never carry one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from xml.parsers import expat

from scanner.parsers.rpm import Evr, evr_from_parts

# A text field longer than this is cut: ids, names and versions are far shorter.
_TEXT_LIMIT = 4096


class BadMetadata(ValueError):
    """Not well-formed rpm-md metadata, or XML that amiscan refuses (a DOCTYPE, an entity)."""


@dataclass(frozen=True)
class RepomdData:
    """One <data> entry of repomd.xml: the file's path relative to the repository, its time."""

    href: str
    timestamp: int | None


@dataclass(frozen=True)
class Repomd:
    revision: str | None
    data: dict[str, RepomdData]

    def date(self) -> datetime | None:
        """When the metadata was generated: the newest <timestamp> of its files, else a
        revision that is a Unix time (createrepo's default); None when neither says."""
        stamps = [d.timestamp for d in self.data.values() if d.timestamp is not None]
        if not stamps and self.revision is not None and self.revision.isdigit():
            stamps = [int(self.revision)]
        valid = [s for s in stamps if 0 < s < 2**33]
        return datetime.fromtimestamp(max(valid), UTC) if valid else None


@dataclass(frozen=True)
class RepoPackage:
    name: str
    arch: str
    evr: Evr


@dataclass(frozen=True)
class Advisory:
    id: str
    type: str
    packages: tuple[RepoPackage, ...]


@dataclass
class _Element:
    name: str
    attrs: dict[str, str]
    text: list[str] = field(default_factory=list)


def _refuse(what: str) -> Callable[..., None]:
    def handler(*_args: object) -> None:
        raise BadMetadata(f"the XML declares {what}, which rpm-md metadata never does")

    return handler


class _Parser:
    """An expat parser that records the path of open elements and hands each closed element of
    interest (with its attributes, text, and the path above it) to `on_end`."""

    def __init__(
        self, wanted: frozenset[str], on_end: Callable[[_Element, tuple[str, ...]], None]
    ) -> None:
        self._parser = expat.ParserCreate()
        self._parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self._parser.StartDoctypeDeclHandler = _refuse("a document type (DOCTYPE)")
        self._parser.EntityDeclHandler = _refuse("an entity")
        self._parser.StartElementHandler = self._start
        self._parser.EndElementHandler = self._end
        self._parser.CharacterDataHandler = self._text
        self._wanted = wanted
        self._on_end = on_end
        self._path: list[str] = []
        self._open: list[_Element | None] = []

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        # Namespace processing is off: "rpm:entry" keeps its prefix, which tells it from <name>.
        self._path.append(name)
        self._open.append(_Element(name, attrs) if name in self._wanted else None)

    def _end(self, name: str) -> None:
        element = self._open.pop()
        self._path.pop()
        if element is not None:
            self._on_end(element, tuple(self._path))

    def _text(self, data: str) -> None:
        element = self._open[-1] if self._open else None
        if element is not None and sum(map(len, element.text)) < _TEXT_LIMIT:
            element.text.append(data)

    def feed(self, chunk: bytes, final: bool = False) -> None:
        try:
            self._parser.Parse(chunk, final)
        except expat.ExpatError as exc:
            raise BadMetadata(f"not well-formed XML: {exc}") from exc


def _text(element: _Element) -> str:
    return "".join(element.text).strip()[:_TEXT_LIMIT]


def _drive(chunks: Iterable[bytes], parser: _Parser, results: list[object]) -> Iterator[object]:
    """Feed the chunks, yielding what each one completed (so memory holds one chunk's worth)."""
    for chunk in chunks:
        parser.feed(chunk)
        yield from results
        results.clear()
    parser.feed(b"", final=True)
    yield from results
    results.clear()


def parse_repomd(chunks: Iterable[bytes]) -> Repomd:
    """repomd.xml: its <revision> and, per <data type=…>, the <location href> and <timestamp>."""
    revision: list[str] = []
    entries: dict[str, RepomdData] = {}
    current: dict[str, str] = {}

    def on_end(element: _Element, path: tuple[str, ...]) -> None:
        if element.name == "revision" and len(path) == 1:
            revision.append(_text(element))
        elif element.name == "location" and path[-1:] == ("data",):
            current["href"] = element.attrs.get("href", "")
        elif element.name == "timestamp" and path[-1:] == ("data",):
            current["timestamp"] = _text(element)
        elif element.name == "data":
            kind = element.attrs.get("type", "")
            stamp = current.get("timestamp", "")
            if kind and current.get("href"):
                entries.setdefault(
                    kind,
                    RepomdData(current["href"], int(stamp) if stamp.isdigit() else None),
                )
            current.clear()

    wanted = frozenset({"revision", "data", "location", "timestamp"})
    for _ in _drive(chunks, _Parser(wanted, on_end), []):
        pass
    return Repomd(revision[0] if revision else None, entries)


def _package(attrs: dict[str, str], name: str, arch: str) -> RepoPackage:
    try:
        evr = evr_from_parts(attrs.get("epoch"), attrs.get("ver", ""), attrs.get("rel", ""))
    except ValueError as exc:
        raise BadMetadata(f"package {name}: bad epoch: {exc}") from exc
    return RepoPackage(name, arch, evr)


def primary_packages(chunks: Iterable[bytes]) -> Iterator[RepoPackage]:
    """The packages of a primary.xml: each <package>'s <name>, <arch> and <version>."""
    results: list[object] = []
    fields: dict[str, str] = {}
    version: dict[str, dict[str, str]] = {}

    def on_end(element: _Element, path: tuple[str, ...]) -> None:
        if path[-1:] == ("package",) and element.name in {"name", "arch"}:
            fields[element.name] = _text(element)
        elif path[-1:] == ("package",) and element.name == "version":
            version["v"] = element.attrs
        elif element.name == "package":
            name, arch = fields.get("name", ""), fields.get("arch", "")
            if name and arch and "v" in version and element.attrs.get("type", "rpm") == "rpm":
                results.append(_package(version["v"], name, arch))
            fields.clear()
            version.clear()

    parser = _Parser(frozenset({"package", "name", "arch", "version"}), on_end)
    for item in _drive(chunks, parser, results):
        assert isinstance(item, RepoPackage)
        yield item


def advisories(chunks: Iterable[bytes]) -> Iterator[Advisory]:
    """The advisories of an updateinfo.xml: each <update>'s <id>, type and listed packages."""
    results: list[object] = []
    ident: list[str] = []
    packages: list[RepoPackage] = []

    def on_end(element: _Element, path: tuple[str, ...]) -> None:
        if element.name == "id" and path[-1:] == ("update",):
            ident.append(_text(element))
        elif element.name == "package" and "update" in path:
            attrs = element.attrs
            name, arch = attrs.get("name", ""), attrs.get("arch", "")
            if name and arch:
                try:
                    evr = evr_from_parts(
                        attrs.get("epoch"), attrs.get("version", ""), attrs.get("release", "")
                    )
                except ValueError as exc:
                    raise BadMetadata(f"advisory package {name}: bad epoch: {exc}") from exc
                packages.append(RepoPackage(name, arch, evr))
        elif element.name == "update":
            kind = element.attrs.get("type", "")
            results.append(Advisory(ident[0] if ident else "", kind, tuple(packages)))
            ident.clear()
            packages.clear()

    parser = _Parser(frozenset({"update", "id", "package"}), on_end)
    for item in _drive(chunks, parser, results):
        assert isinstance(item, Advisory)
        yield item
