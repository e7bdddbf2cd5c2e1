"""Pending updates of an RPM image (Amazon Linux, RHEL and its rebuilds, Fedora) from its files.

The installed packages come from the rpm database; the available ones from the repository
metadata that dnf (4 or 5) or yum cached when the image was built. Nothing is fetched: the answer
is as fresh as that cache, whose date the result states.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import posixpath
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from scanner.facts.base import FactFailed, FactUnavailable
from scanner.facts.linux.system import PendingUpdates
from scanner.fs import STREAM_SUFFIXES, FileSource, ReadRefused, stream_lines
from scanner.parsers.rpm import (
    BadDatabase,
    BadHeader,
    Evr,
    HeaderPackage,
    bdb_hash_items,
    compare_evr,
    evr_from_parts,
    header_package,
)
from scanner.parsers.rpmmd import (
    BadMetadata,
    Repomd,
    RepoPackage,
    advisories,
    parse_repomd,
    primary_packages,
)

# rpm ≥ 4.16 (RHEL 9, Amazon Linux 2023, Fedora ≥ 33) keeps sqlite; older ones Berkeley DB;
# SUSE ndb. Newer Fedora moved the database to /usr/lib/sysimage (/var/lib/rpm links there).
RPMDB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
_SQLITE, _BDB, _NDB = "rpmdb.sqlite", "Packages", "Packages.db"
# A real database is tens of MiB (a full RHEL 8 server: ~100 MiB); it is copied whole to be read.
RPMDB_LIMIT = 256 * 1024 * 1024
# Decompressed metadata: a distribution's primary is a few hundred MiB at most.
METADATA_LIMIT = 1024 * 1024 * 1024
# sqlite virtual-machine steps allowed for one query (a hostile view could otherwise loop forever).
_SQLITE_STEPS = 50_000_000
_SQLITE_CHECK_EVERY = 10_000

DNF_CACHES = ("/var/cache/dnf", "/var/cache/libdnf5")
YUM_CACHE = "/var/cache/yum"
_CACHE_DIR = re.compile(r"^(?P<repo>.+)-[0-9a-f]{16}$")
_XML_SUFFIXES = ("", ".xml", *STREAM_SUFFIXES)

_NO_METADATA = (
    "pending updates cannot be judged: the image holds no dnf or yum repository metadata "
    "(no repomd.xml under /var/cache/dnf, /var/cache/libdnf5 or /var/cache/yum: `dnf clean all` "
    "ran, or the metadata was never fetched)"
)


def rpm_database(files: FileSource) -> str | None:
    """The path of the image's rpm database (sqlite, Berkeley DB or ndb), or None."""
    for directory in RPMDB_DIRS:
        for name in (_SQLITE, _BDB, _NDB):
            if files.is_file(f"{directory}/{name}"):
                return f"{directory}/{name}"
    return None


# --- installed packages -------------------------------------------------------------------------


def _copy_whole(files: FileSource, path: str, target: Path) -> None:
    head = files.read_head(path, RPMDB_LIMIT)
    if not head.complete:
        raise FactFailed(
            f"{path} is {head.size} bytes, over the {RPMDB_LIMIT // (1024 * 1024)} MiB amiscan "
            "copies to read an rpm database"
        )
    target.write_bytes(head.content)


def _sqlite_rows(database: Path, table: str, columns: str) -> list[tuple[object, ...]]:
    """Every row of a table of a private copy of an untrusted sqlite file, bounded in work."""
    steps = 0

    def budget() -> int:
        nonlocal steps
        steps += _SQLITE_CHECK_EVERY
        return 1 if steps > _SQLITE_STEPS else 0

    connection = sqlite3.connect(f"file:{database}?mode=rw", uri=True)
    try:
        connection.set_progress_handler(budget, _SQLITE_CHECK_EVERY)
        kind = connection.execute(
            "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE", (table,)
        ).fetchone()
        if kind is None or kind[0] != "table":
            raise sqlite3.DatabaseError(f"no table {table}")
        return list(connection.execute(f"SELECT {columns} FROM '{table}'"))  # noqa: S608
    finally:
        connection.close()


def _sqlite_blobs(files: FileSource, path: str) -> Iterator[tuple[object, bytes]]:
    with tempfile.TemporaryDirectory(prefix="amiscan-rpmdb-") as tmp:
        copy = Path(tmp) / "rpmdb.sqlite"
        _copy_whole(files, path, copy)
        # rpm runs sqlite in WAL mode: committed transactions not yet checkpointed are in -wal.
        if files.is_file(f"{path}-wal"):
            _copy_whole(files, f"{path}-wal", Path(tmp) / "rpmdb.sqlite-wal")
        try:
            rows = _sqlite_rows(copy, "Packages", "hnum, blob")
        except sqlite3.Error as exc:
            raise FactFailed(f"{path}: not a readable rpm sqlite database ({exc})") from exc
    for hnum, blob in rows:
        if not isinstance(blob, bytes):
            raise FactFailed(f"{path}: package record {hnum} is not a header blob")
        yield hnum, blob


def _bdb_blobs(files: FileSource, path: str) -> Iterator[tuple[object, bytes]]:
    head = files.read_head(path, RPMDB_LIMIT)
    if not head.complete:
        raise FactFailed(f"{path} is {head.size} bytes, over the read limit for an rpm database")
    try:
        for key, value in bdb_hash_items(head.content):
            # Key 0 holds the last instance number, not a package.
            if len(key) == 4 and key != b"\0\0\0\0":
                yield int.from_bytes(key, "little"), value
    except BadDatabase as exc:
        raise FactFailed(f"{path}: not a readable Berkeley DB rpm database ({exc})") from exc


def installed_packages(files: FileSource, path: str) -> dict[tuple[str, str], Evr]:
    """Installed packages by (name, arch), at their highest installed EVR (installonly
    packages such as the kernel are installed in several versions at once)."""
    if path.endswith(_NDB):
        raise FactFailed(f"{path} is an ndb rpm database (SUSE), which amiscan does not read yet")
    reader = _sqlite_blobs if path.endswith(_SQLITE) else _bdb_blobs
    installed: dict[tuple[str, str], Evr] = {}
    for hnum, blob in reader(files, path):
        try:
            package: HeaderPackage = header_package(blob)
        except BadHeader as exc:
            raise FactFailed(f"{path}: package record {hnum}: {exc}") from exc
        if package.arch is None:
            continue  # gpg-pubkey pseudo-packages: never in a repository
        key = (package.name, package.arch)
        have = installed.get(key)
        if have is None or compare_evr(package.evr, have) > 0:
            installed[key] = package.evr
    if not installed:
        raise FactFailed(f"{path} lists no installed package")
    return installed


# --- repository metadata ------------------------------------------------------------------------


@dataclass(frozen=True)
class RepoCache:
    """One repository's cached metadata: its id, the directory hrefs are relative to, and the
    directory repomd.xml is in (yum keeps both in one directory, dnf the files in repodata/)."""

    repo: str
    base: str
    repomd: str
    manager: str


def repo_caches(files: FileSource) -> list[RepoCache]:
    """Every repository with a cached repomd.xml: dnf 4 and 5, then yum."""
    found: list[RepoCache] = []
    for root in DNF_CACHES:
        for name in files.list_dir(root):
            base = f"{root}/{name}"
            if files.is_file(f"{base}/repodata/repomd.xml"):
                match = _CACHE_DIR.match(name)
                repo = match["repo"] if match else name
                found.append(RepoCache(repo, base, f"{base}/repodata", "dnf"))
    # yum 3: /var/cache/yum/<basearch>/<releasever>/<repoid>/repomd.xml.
    for arch in files.list_dir(YUM_CACHE):
        for release in files.list_dir(f"{YUM_CACHE}/{arch}"):
            for repo in files.list_dir(f"{YUM_CACHE}/{arch}/{release}"):
                base = f"{YUM_CACHE}/{arch}/{release}/{repo}"
                if files.is_file(f"{base}/repomd.xml"):
                    found.append(RepoCache(repo, base, base, "yum"))
    return found


def _suffix(path: str) -> str:
    return posixpath.splitext(path)[1]


def _cached_file(files: FileSource, cache: RepoCache, href: str) -> str | None:
    """Where the cache holds the file a repomd.xml href names: below the repository's base
    (dnf keeps the href's path), or by its name beside repomd.xml (yum)."""
    name = posixpath.basename(href)
    relative = posixpath.normpath(href)
    candidates = [f"{cache.repomd}/{name}"]
    if not relative.startswith(("/", "..")):
        candidates.insert(0, f"{cache.base}/{relative}")
    for candidate in candidates:
        if name and files.is_file(candidate):
            return candidate
    return None


def _find(files: FileSource, cache: RepoCache, repomd: Repomd, kinds: Iterable[str]) -> str | None:
    for kind in kinds:
        entry = repomd.data.get(kind)
        if entry is not None and (path := _cached_file(files, cache, entry.href)):
            return path
    return None


def _xml_chunks(files: FileSource, path: str) -> Iterator[bytes]:
    if _suffix(path) not in _XML_SUFFIXES:
        raise FactFailed(_unsupported(path))
    return stream_lines(files, path, METADATA_LIMIT)


def _unsupported(path: str) -> str:
    formats = {".zck": "zchunk", ".zst": "zstd"}
    suffix = _suffix(path)
    kind = formats.get(suffix, f"{suffix or 'unknown'}")
    return (
        f"{path} is {kind}-compressed repository metadata, which amiscan cannot read (plain, .gz, "
        ".xz and .bz2 only)"
    )


# yum fetches primary_db compressed, and keeps it so (its decompressed copy is in gen/).
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], io.BufferedIOBase]] = {
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw),
}


def _sqlite_primary(files: FileSource, path: str) -> Iterator[RepoPackage]:
    """The packages of yum's primary_db (sqlite, compressed as fetched or decompressed)."""
    suffix = _suffix(path)
    if suffix not in _DECOMPRESSORS and suffix != ".sqlite":
        raise FactFailed(_unsupported(path))
    with tempfile.TemporaryDirectory(prefix="amiscan-primary-") as tmp:
        copy = Path(tmp) / "primary.sqlite"
        _decompress_to(files, path, copy)
        try:
            rows = _sqlite_rows(copy, "packages", "name, arch, epoch, version, release")
        except sqlite3.Error as exc:
            raise FactFailed(f"{path}: not a readable yum primary database ({exc})") from exc
    for name, arch, epoch, version, release in rows:
        try:
            evr = evr_from_parts(None if epoch is None else str(epoch), str(version), str(release))
        except ValueError as exc:
            raise FactFailed(f"{path}: package {name}: {exc}") from exc
        yield RepoPackage(str(name), str(arch), evr)


def _copy_bounded(source: BinaryIO | io.BufferedIOBase, out: BinaryIO, path: str) -> None:
    written = 0
    while chunk := source.read(1024 * 1024):
        written += len(chunk)
        if written > METADATA_LIMIT:
            raise FactFailed(f"{path} decompresses to more than the metadata read limit")
        out.write(chunk)


def _decompress_to(files: FileSource, path: str, target: Path) -> None:
    opener = _DECOMPRESSORS.get(_suffix(path))
    with files.open_binary(path) as raw, target.open("wb") as out:
        try:
            if opener is None:
                _copy_bounded(raw, out, path)
            else:
                with opener(raw) as handle:
                    _copy_bounded(handle, out, path)
        except (EOFError, lzma.LZMAError, OSError) as exc:
            raise FactFailed(f"{path} could not be decompressed: {exc}") from exc


@dataclass
class _Candidate:
    evr: Evr
    repos: set[str] = field(default_factory=set)


@dataclass
class _Metadata:
    candidates: dict[tuple[str, str], _Candidate] = field(default_factory=dict)
    # Advisory ids of security advisories, per (name, arch), with the EVR each fixes in.
    security: dict[tuple[str, str], list[tuple[str, Evr]]] = field(default_factory=dict)
    # Repositories whose repomd.xml names an updateinfo the cache does not hold.
    missing_updateinfo: dict[str, str] = field(default_factory=dict)
    dates: list[str] = field(default_factory=list)


def _read_repo(
    files: FileSource, cache: RepoCache, installed: dict[tuple[str, str], Evr], into: _Metadata
) -> None:
    repomd = parse_repomd(_xml_chunks(files, f"{cache.repomd}/repomd.xml"))
    date = repomd.date()
    if date is not None:
        into.dates.append(date.date().isoformat())
    primary = _find(files, cache, repomd, ("primary", "primary_zck"))
    if primary is None:
        primary = _find(files, cache, repomd, ("primary_db",))
        if primary is None and files.is_file(f"{cache.base}/gen/primary_db.sqlite"):
            primary = f"{cache.base}/gen/primary_db.sqlite"
        if primary is None:
            raise FactFailed(
                f"{cache.repomd}/repomd.xml names a primary package list that is not in the "
                "image (the cache was partly cleaned)"
            )
        packages: Iterable[RepoPackage] = _sqlite_primary(files, primary)
    else:
        packages = primary_packages(_xml_chunks(files, primary))
    for package in packages:
        key = (package.name, package.arch)
        if key not in installed:
            continue
        best = into.candidates.get(key)
        order = 1 if best is None else compare_evr(package.evr, best.evr)
        if best is None or order > 0:
            into.candidates[key] = _Candidate(package.evr, {cache.repo})
        elif order == 0:
            best.repos.add(cache.repo)
    _read_updateinfo(files, cache, repomd, installed, into)


def _read_updateinfo(
    files: FileSource,
    cache: RepoCache,
    repomd: Repomd,
    installed: dict[tuple[str, str], Evr],
    into: _Metadata,
) -> None:
    path = _find(files, cache, repomd, ("updateinfo", "updateinfo_zck"))
    if path is None and files.is_file(f"{cache.base}/gen/updateinfo.xml"):
        path = f"{cache.base}/gen/updateinfo.xml"
    if path is None:
        if "updateinfo" in repomd.data:
            into.missing_updateinfo[cache.repo] = f"{cache.repomd}/repomd.xml"
        return
    for advisory in advisories(_xml_chunks(files, path)):
        if advisory.type != "security":
            continue
        for package in advisory.packages:
            key = (package.name, package.arch)
            if key in installed:
                into.security.setdefault(key, []).append((advisory.id, package.evr))


def _metadata(
    files: FileSource, caches: list[RepoCache], installed: dict[tuple[str, str], Evr]
) -> _Metadata:
    metadata = _Metadata()
    for cache in caches:
        try:
            _read_repo(files, cache, installed, metadata)
        except BadMetadata as exc:
            raise FactFailed(f"{cache.base}: {exc}") from exc
        except ReadRefused as exc:
            raise FactFailed(f"{cache.base}: {exc}") from exc
    return metadata


def derive_rpm_offline(files: FileSource, database: str) -> PendingUpdates:
    """What `dnf upgrade` would upgrade, from the image's rpm database and cached repodata.

    The candidate of an installed (name, arch) is the highest EVR (rpm's order) of the same name
    and arch in any cached repository's primary list; obsoletes (a package replaced by another
    name) and arch changes (noarch to x86_64) are not followed, so an upgrade that only those
    would bring is not reported. It is a security update when a security advisory of the
    updateinfo lists the (name, arch) at an EVR newer than the installed one and no newer than
    the candidate, as `dnf updateinfo list --security` lists it.
    """
    caches = repo_caches(files)
    if not caches:
        raise FactUnavailable(_NO_METADATA)
    installed = installed_packages(files, database)
    metadata = _metadata(files, caches, installed)
    security: list[str] = []
    other: list[str] = []
    unclassified: set[str] = set()
    for key, have in sorted(installed.items()):
        candidate = metadata.candidates.get(key)
        if candidate is None or compare_evr(candidate.evr, have) <= 0:
            continue
        ids = sorted(
            {
                ident
                for ident, fixed in metadata.security.get(key, [])
                if compare_evr(fixed, have) > 0 and compare_evr(fixed, candidate.evr) <= 0
            }
        )
        text = f"{key[0]} {have} -> {candidate.evr}"
        if ids:
            security.append(f"{text} ({', '.join(ids)})")
        else:
            other.append(f"{text} ({', '.join(sorted(candidate.repos))})")
            unclassified.update(candidate.repos & set(metadata.missing_updateinfo))
    if unclassified:
        repo = sorted(unclassified)[0]
        raise FactFailed(
            f"{metadata.missing_updateinfo[repo]} names an updateinfo (the advisories) that is not "
            f"in the image, so which of the updates from {', '.join(sorted(unclassified))} are "
            "security updates cannot be told"
        )
    manager = "dnf" if any(c.manager == "dnf" for c in caches) else "yum"
    return PendingUpdates(
        manager,
        tuple(security),
        tuple(other),
        refreshed=False,
        lists_date=max(metadata.dates) if metadata.dates else "an unknown date",
    )
