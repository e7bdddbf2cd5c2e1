"""Read-only views of a guest's files: an image root on disk, or a snapshot taken from a live host.

Checks judge files through `FileSource`, so the same code judges a mounted image (offline) and the
files a live scan copied back in its one round trip.
"""

from __future__ import annotations

import bz2
import errno
import fnmatch
import functools
import gzip
import io
import lzma
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol, cast

from scanner.cancel import NEVER, Cancel

# A symlink chain longer than this is a loop (Linux gives up at 40 as well).
_MAX_SYMLINKS = 40
# What a fact reads of one file unless it asks for more: configuration files are far smaller.
# The live script copies files back cut at the same size (scanner.collect.FILE_LIMIT), so a file
# is judged from the same bytes whichever path fed the scan.
READ_LIMIT = 1024 * 1024
# A directory listing larger than this is not loaded (a glob or a fact would have to judge it whole).
LIST_LIMIT = 100_000
# Walks stop descending below this depth and stop altogether after this many entries.
WALK_MAX_DEPTH = 256
WALK_MAX_ENTRIES = 1_000_000


class ReadRefused(Exception):
    """A file or directory could not be read within the scan's bounds, or its copy is not trusted.

    Never an OSError, so that no "absent file" handler swallows it: a fact that meets it errors
    (see `scanner.facts.base.Facts`), it never judges the file as missing or empty.
    """


class FileTooLarge(ReadRefused):
    """The file is larger than the read limit; only its beginning was read."""


class TooManyEntries(ReadRefused):
    """A directory holds more entries than a listing may load."""


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):g} MiB"


@dataclass(frozen=True)
class FileRead:
    """The beginning of a file: at most the bytes asked for, and whether that was all of it."""

    content: bytes
    # The file's full size as the source knows it (stat, or what the live script measured).
    size: int
    complete: bool


class WalkBounds:
    """Depth, entry-count and cancellation bounds of one walk (or several sharing a budget).

    A walk never raises for a bound; it records what it could not see in `hit`, and the caller
    decides (a search that did not see everything must not pass).
    """

    def __init__(
        self,
        max_depth: int = WALK_MAX_DEPTH,
        max_entries: int = WALK_MAX_ENTRIES,
        cancel: Cancel = NEVER,
    ) -> None:
        self.max_depth = max_depth
        self.max_entries = max_entries
        self.cancel = cancel
        self.entries = 0
        self.too_deep = 0
        self.first_too_deep = ""
        self.unreadable = 0
        self.first_unreadable = ""
        self.exhausted = False

    def count(self) -> bool:
        """Count one entry; False once the entry budget is spent (the walk must stop)."""
        self.cancel.check()
        self.entries += 1
        if self.entries > self.max_entries:
            self.exhausted = True
        return not self.exhausted

    @property
    def hit(self) -> list[str]:
        """Why the walk did not see everything, one reason a line; empty when it saw it all."""
        reasons = []
        if self.exhausted:
            reasons.append(f"stopped after {self.max_entries} entries")
        if self.too_deep:
            reasons.append(
                f"{self.too_deep} directories deeper than {self.max_depth} levels not searched "
                f"(first: {self.first_too_deep[:200]}…)"
            )
        if self.unreadable:
            reasons.append(
                f"{self.unreadable} entries could not be read (first: {self.first_unreadable[:200]})"
            )
        return reasons

    def skip_deep(self, path: str) -> None:
        self.too_deep += 1
        self.first_too_deep = self.first_too_deep or path

    def skip_unreadable(self, path: str) -> None:
        self.unreadable += 1
        self.first_unreadable = self.first_unreadable or path


class FileSource(Protocol):
    """Files of the guest, addressed by absolute guest paths ("/etc/shadow")."""

    description: str

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        """At most `limit` (default READ_LIMIT) bytes of a regular file; FileNotFoundError when
        absent. Never the whole of a file larger than that: use `read_head` to learn whether
        what was read is all of it."""
        ...

    def read_head(self, path: str, limit: int) -> FileRead:
        """At most `limit` bytes of a regular file, its size and whether that is all of it.

        FileNotFoundError when absent, IsADirectoryError when not a regular file (a FIFO or a
        device is never opened in a way that could block).
        """
        ...

    def open_binary(self, path: str) -> BinaryIO:
        """A regular file opened for streaming (the caller bounds what it reads, and closes it).

        FileNotFoundError when absent, IsADirectoryError when not a regular file, ReadRefused
        when this source cannot stream it whole. Use `stream_lines`, which bounds the reading.
        """
        ...

    def is_file(self, path: str) -> bool: ...

    def is_dir(self, path: str) -> bool: ...

    def size(self, path: str) -> int:
        """Size in bytes of a regular file; FileNotFoundError when absent."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names in a directory, sorted; empty when it does not exist; TooManyEntries when it
        holds more than LIST_LIMIT."""
        ...

    def walk_files(self, top: str, bounds: WalkBounds | None = None) -> Iterator[str]:
        """Regular files below `top`, iteratively, without following symlinks, within `bounds`
        (what a bound hid is recorded there)."""
        ...


@dataclass(frozen=True)
class WalkedFile:
    """A regular file a walk met: its guest path, its size, and how to open it for streaming
    without resolving its path again (a walk over a whole image visits every file once)."""

    path: str
    size: int
    open: Callable[[], BinaryIO]


def walk_entries(
    source: FileSource, top: str, bounds: WalkBounds | None = None
) -> Iterator[WalkedFile]:
    """`walk_files`, with each file's size and an opener; a source that can do it in one pass
    (an image root, a disk image) offers `walk_entries` itself."""
    bounds = bounds if bounds is not None else WalkBounds()
    own = getattr(source, "walk_entries", None)
    if own is not None:
        yield from own(top, bounds)
        return
    for path in source.walk_files(top, bounds):
        try:
            size = source.size(path)
        except FileNotFoundError:
            continue  # gone since it was listed
        except (OSError, ReadRefused):
            bounds.skip_unreadable(path)
            continue
        yield WalkedFile(path, size, functools.partial(source.open_binary, path))


def read_text(source: FileSource, path: str, limit: int | None = None) -> str:
    """A whole file (at most `limit`, default READ_LIMIT, bytes) decoded as UTF-8.

    Bytes that are not UTF-8 become U+FFFD. A file larger than the limit raises FileTooLarge
    rather than being judged from its beginning as if that were all of it.
    """
    limit = READ_LIMIT if limit is None else limit
    head = source.read_head(path, limit)
    if not head.complete:
        raise FileTooLarge(
            f"{path} is {head.size} bytes, over the {_mib(limit)} read limit; not judged from "
            "its first part"
        )
    return head.content.decode("utf-8", errors="replace")


def read_text_or_none(source: FileSource, path: str, limit: int | None = None) -> str | None:
    """Like `read_text`, or None when the file is absent, not a regular file or not readable."""
    try:
        return read_text(source, path, limit)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError):
        return None


# Decompressors `stream_lines` applies by file name suffix (the standard library's only).
_DECOMPRESSORS: dict[str, Callable[[BinaryIO], BinaryIO]] = {
    ".gz": lambda raw: cast(BinaryIO, gzip.GzipFile(fileobj=raw)),
    ".xz": lambda raw: cast(BinaryIO, lzma.LZMAFile(raw)),  # noqa: SIM115 (closed by stream_lines)
    ".bz2": lambda raw: cast(BinaryIO, bz2.BZ2File(raw)),
}
STREAM_SUFFIXES = tuple(_DECOMPRESSORS)


def stream_lines(
    source: FileSource, path: str, max_bytes: int, line_limit: int = READ_LIMIT
) -> Iterator[bytes]:
    """A file's lines (with their line ends), read a line at a time, never the whole file at once.

    A file named *.gz, *.xz or *.bz2 is decompressed, and the bounds apply to what it
    decompresses to. A line longer than `line_limit`, or more than `max_bytes` in all, raises
    FileTooLarge; a corrupt compressed file raises ReadRefused: never a silently shorter file.
    """
    suffix = posixpath.splitext(path)[1]
    opener = _DECOMPRESSORS.get(suffix)
    total = 0
    with source.open_binary(path) as raw:
        handle: BinaryIO = opener(raw) if opener else raw
        try:
            while True:
                line = handle.readline(line_limit + 1)
                if not line:
                    return
                if len(line) > line_limit:
                    raise FileTooLarge(f"{path} has a line longer than {_mib(line_limit)}")
                total += len(line)
                if total > max_bytes:
                    raise FileTooLarge(
                        f"{path} is over the {_mib(max_bytes)} read limit; not judged from its "
                        "first part"
                    )
                yield line
        except (EOFError, lzma.LZMAError, gzip.BadGzipFile, OSError) as exc:
            if isinstance(exc, (FileNotFoundError, PermissionError)):
                raise
            raise ReadRefused(f"{path} could not be decompressed: {exc}") from exc
        finally:
            if handle is not raw:
                handle.close()


def _name_matches(name: str, pattern: str) -> bool:
    # As in the shell, a wildcard never matches a leading dot unless the pattern spells it.
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def glob(source: FileSource, pattern: str) -> list[str]:
    """Guest paths matching a shell-style pattern (`*`, `?`, `[..]` within one component)."""
    parts = [p for p in posixpath.normpath(pattern).split("/") if p]
    found = ["/"]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        next_found: list[str] = []
        for base in found:
            if any(ch in part for ch in "*?["):
                names = [n for n in source.list_dir(base) if _name_matches(n, part)]
            else:
                names = [part]
            for name in names:
                candidate = posixpath.join(base, name)
                if last:
                    if source.is_file(candidate) or source.is_dir(candidate):
                        next_found.append(candidate)
                elif source.is_dir(candidate):
                    next_found.append(candidate)
        found = next_found
    return sorted(set(found))


class ImageRoot:
    """An image's root file system mounted on this machine, read strictly inside that root.

    Every path is resolved component by component; a symlink's target, absolute or relative,
    is resolved against the image root, so a link to /etc/shadow reads the image's shadow file,
    never this machine's, and `..` cannot climb above the root.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.realpath(root))
        if not self.root.is_dir():
            raise NotADirectoryError(f"{root} is not a directory")
        self.description = f"image root {self.root}"

    def _resolve(self, path: str) -> Path:
        """The host path for a guest path, after resolving every symlink inside the root."""
        pending = [p for p in path.split("/") if p]
        resolved: list[str] = []
        links = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            host = self.root.joinpath(*resolved, part)
            try:
                mode = host.lstat().st_mode
            except (FileNotFoundError, NotADirectoryError):
                # The rest cannot exist; return a path that is inside the root and absent.
                return self.root.joinpath(*resolved, part, *pending)
            if stat.S_ISLNK(mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise FileNotFoundError(f"too many levels of symbolic links: {path}")
                target = os.readlink(host)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            resolved.append(part)
        return self.root.joinpath(*resolved)

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        return self.read_head(path, READ_LIMIT if limit is None else limit).content

    def open_binary(self, path: str) -> BinaryIO:
        handle = self._open_regular(path)
        return io.BufferedReader(handle)

    def _open_regular(self, path: str) -> io.FileIO:
        """`path` opened for reading, resolved inside the root, refused unless a regular file."""
        host = self._resolve(path)
        try:
            mode = host.lstat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            raise FileNotFoundError(path) from None
        if not stat.S_ISREG(mode):
            raise IsADirectoryError(f"{path} is not a regular file")
        return self._open_host(host, path)

    @staticmethod
    def _open_host(host: Path | str, path: str) -> io.FileIO:
        """A host path already resolved inside the root, opened; refused unless regular."""
        # O_NONBLOCK: a FIFO swapped in after the caller's check still cannot block the open;
        # O_NOFOLLOW: the path was resolved inside the root, a link appearing now is refused.
        flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(host, flags)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise IsADirectoryError(f"{path} is not a regular file") from None
            raise
        handle = io.FileIO(fd, "rb")
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise IsADirectoryError(f"{path} is not a regular file")
        except BaseException:
            handle.close()
            raise
        return handle

    def read_head(self, path: str, limit: int) -> FileRead:
        with self._open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            chunks: list[bytes] = []
            # One byte more than `limit` tells a file of exactly `limit` bytes from a larger one.
            wanted = limit + 1
            while wanted > 0:
                chunk = handle.read(min(wanted, 1024 * 1024))
                if not chunk:
                    break
                chunks.append(chunk)
                wanted -= len(chunk)
        data = b"".join(chunks)
        complete = len(data) <= limit
        return FileRead(data[:limit], max(size, len(data)), complete)

    def is_file(self, path: str) -> bool:
        try:
            return self._resolve(path).is_file()
        except OSError:
            return False

    def is_dir(self, path: str) -> bool:
        try:
            return self._resolve(path).is_dir()
        except OSError:
            return False

    def size(self, path: str) -> int:
        host = self._resolve(path)
        if not host.is_file():
            raise FileNotFoundError(path)
        return host.stat().st_size

    def list_dir(self, path: str) -> list[str]:
        try:
            host = self._resolve(path)
            if not host.is_dir():
                return []
            names: list[str] = []
            with os.scandir(host) as entries:
                for entry in entries:
                    names.append(entry.name)
                    if len(names) > LIST_LIMIT:
                        raise TooManyEntries(
                            f"{path} holds more than {LIST_LIMIT} entries; not listed"
                        )
            return sorted(names)
        except OSError:
            return []

    def walk_files(self, top: str, bounds: WalkBounds | None = None) -> Iterator[str]:
        for guest, _ in self._walk(top, bounds if bounds is not None else WalkBounds()):
            yield guest

    def walk_entries(self, top: str, bounds: WalkBounds) -> Iterator[WalkedFile]:
        for guest, entry in self._walk(top, bounds):
            try:
                size = entry.stat(follow_symlinks=False).st_size
            except OSError:
                bounds.skip_unreadable(guest)
                continue
            # Unbuffered: a walk reads each file in one or two large reads, and a buffer per
            # file of a whole image costs more than it saves.
            opener = functools.partial(self._open_host, entry.path, guest)
            yield WalkedFile(guest, size, cast(Callable[[], BinaryIO], opener))

    def _walk(self, top: str, bounds: WalkBounds) -> Iterator[tuple[str, os.DirEntry[str]]]:
        """(guest path, directory entry) of each regular file below `top`."""
        try:
            start = self._resolve(top)
            if not stat.S_ISDIR(start.lstat().st_mode):
                return
        except OSError:
            return
        guest_top = "/" + "/".join(start.relative_to(self.root).parts)
        # Iterative, depth-first in sorted order; symlinks (to files or directories) are never
        # followed, so the walk cannot leave the image or loop.
        stack: list[tuple[str, int]] = [(guest_top, 0)]
        while stack:
            guest_dir, depth = stack.pop()
            host_dir = self.root / guest_dir.lstrip("/")
            try:
                with os.scandir(host_dir) as scan:
                    entries = []
                    for entry in scan:
                        if not bounds.count():
                            return
                        entries.append(entry)
            except OSError:
                bounds.skip_unreadable(guest_dir)
                continue
            entries.sort(key=lambda e: e.name)
            subdirs = []
            for entry in entries:
                guest = posixpath.join(guest_dir, entry.name)
                try:
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(guest)
                    elif entry.is_file(follow_symlinks=False):
                        yield guest, entry
                except OSError:
                    bounds.skip_unreadable(guest)
            if subdirs and depth + 1 > bounds.max_depth:
                for directory in subdirs:
                    bounds.skip_deep(directory)
                continue
            stack.extend((d, depth + 1) for d in reversed(subdirs))


@dataclass
class SnapshotFile:
    content: bytes
    size: int
    truncated: bool = False


@dataclass
class MemoryTree:
    """Files copied back from a live host by the collection script (see `scanner.collect`).

    A file the script cut at its size limit is `truncated`: it is judged as too large, never as
    if its first part were all of it. A path the script's output holds two different copies of is
    `refused`: reading it raises ReadRefused, so no fact judges a copy that may be forged.
    """

    description: str = "live host"
    files: dict[str, SnapshotFile] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    _dir_cache: set[str] | None = field(default=None, repr=False, compare=False)

    @staticmethod
    def _key(path: str) -> str:
        return posixpath.normpath("/" + path.lstrip("/"))

    def add(
        self, path: str, content: bytes, size: int | None = None, truncated: bool = False
    ) -> None:
        path = self._key(path)
        full = len(content) if size is None else max(size, len(content))
        self.files[path] = SnapshotFile(content, full, truncated=truncated or full > len(content))
        self._dir_cache = None

    def refuse(self, path: str, reason: str) -> None:
        """Never let a fact read this path's copy (e.g. the output held two different ones)."""
        path = self._key(path)
        self.refused[path] = reason
        self.files.setdefault(path, SnapshotFile(b"", 0, truncated=True))
        self._dir_cache = None

    def _dirs(self) -> set[str]:
        if self._dir_cache is not None:
            return self._dir_cache
        dirs = {"/"}
        for path in self.files:
            parent = posixpath.dirname(path)
            while parent not in dirs:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        self._dir_cache = dirs
        return dirs

    def read_bytes(self, path: str, limit: int | None = None) -> bytes:
        return self.read_head(path, READ_LIMIT if limit is None else limit).content

    def read_head(self, path: str, limit: int) -> FileRead:
        key = self._key(path)
        if key in self.refused:
            raise ReadRefused(self.refused[key])
        entry = self.files.get(key)
        if entry is None:
            raise FileNotFoundError(path)
        complete = not entry.truncated and len(entry.content) <= limit
        return FileRead(entry.content[:limit], entry.size, complete)

    def open_binary(self, path: str) -> BinaryIO:
        # Only a copy the script brought back whole can be streamed; a cut one is too large.
        head = self.read_head(path, self.size(path))
        if not head.complete:
            raise FileTooLarge(f"{path} was cut at the copy limit; not judged from its first part")
        return io.BytesIO(head.content)

    def is_file(self, path: str) -> bool:
        return self._key(path) in self.files

    def is_dir(self, path: str) -> bool:
        return self._key(path) in self._dirs()

    def size(self, path: str) -> int:
        key = self._key(path)
        if key in self.refused:
            raise ReadRefused(self.refused[key])
        entry = self.files.get(key)
        if entry is None:
            raise FileNotFoundError(path)
        return entry.size

    def list_dir(self, path: str) -> list[str]:
        base = self._key(path)
        prefix = base.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self.files if p.startswith(prefix)}
        if len(names) > LIST_LIMIT:
            raise TooManyEntries(f"{path} holds more than {LIST_LIMIT} entries; not listed")
        return sorted(n for n in names if n)

    def walk_files(self, top: str, bounds: WalkBounds | None = None) -> Iterator[str]:
        bounds = bounds if bounds is not None else WalkBounds()
        prefix = self._key(top).rstrip("/") + "/"
        for path in sorted(p for p in self.files if p.startswith(prefix)):
            if not bounds.count():
                return
            if path[len(prefix) :].count("/") > bounds.max_depth:
                bounds.skip_deep(posixpath.dirname(path))
                continue
            yield path
