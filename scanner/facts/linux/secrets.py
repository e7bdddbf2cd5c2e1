"""Secret facts: shell/tool histories, AWS credential files, and secret-looking file contents."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import BinaryIO

from scanner.collect import OUTPUT_LIMIT
from scanner.facts.base import Fact, FactFailed, FactUnavailable, Gathered, Probe
from scanner.facts.linux.accounts import PASSWD, PasswdEntry
from scanner.fs import (
    READ_LIMIT,
    WALK_MAX_DEPTH,
    WALK_MAX_ENTRIES,
    FileSource,
    ReadRefused,
    WalkBounds,
    glob,
    walk_entries,
)

HISTORY_NAMES = (
    ".*history",
    ".*_history",
    ".lesshst",
    ".viminfo",
    ".local/share/fish/fish_history",
)
HISTORY_PATTERNS = tuple(
    f"{home}/{name}" for home in ("/root", "/home/*") for name in HISTORY_NAMES
)


# Whether a history is empty is all the check needs; lines are counted in this much of it.
HISTORY_READ = 64 * 1024


@dataclass(frozen=True)
class HistoryFile:
    path: str
    size: int
    lines: int
    # False when `lines` counts only the first HISTORY_READ bytes (or what the live copy held).
    lines_complete: bool = True


def _derive_histories(g: Gathered) -> tuple[HistoryFile, ...]:
    found = []
    for pattern in HISTORY_PATTERNS:
        for path in glob(g.files, pattern):
            if not g.files.is_file(path):
                continue
            try:
                head = g.files.read_head(path, HISTORY_READ)
            except IsADirectoryError:
                continue  # a FIFO or a device named like a history is not one
            if not head.complete and not head.content and head.size == 0:
                raise FactFailed(f"the size of {path} could not be measured")
            lines = head.content.count(b"\n")
            found.append(HistoryFile(path, head.size, lines, head.complete))
    unique = {h.path: h for h in found}
    return tuple(unique[p] for p in sorted(unique))


HISTORIES = Fact(
    name="linux.secrets.histories",
    description="shell and tool history files",
    derive=_derive_histories,
    patterns=HISTORY_PATTERNS,
)

AWS_FILE_PATTERNS = tuple(
    f"{home}/.aws/{name}" for home in ("/root", "/home/*") for name in ("credentials", "config")
)


@dataclass(frozen=True)
class TextFile:
    path: str
    text: str
    # False when the file is larger than READ_LIMIT and `text` is only its beginning.
    complete: bool = True
    size: int | None = None


def _derive_aws_files(g: Gathered) -> tuple[TextFile, ...]:
    files = []
    for pattern in AWS_FILE_PATTERNS:
        for path in glob(g.files, pattern):
            if not g.files.is_file(path):
                continue
            try:
                head = g.files.read_head(path, READ_LIMIT)
            except IsADirectoryError:
                continue
            text = head.content.decode("utf-8", errors="replace")
            if head.complete:
                files.append(TextFile(path, text))
            else:
                files.append(TextFile(path, text, complete=False, size=head.size))
    return tuple(files)


AWS_FILES = Fact(
    name="linux.secrets.aws-files",
    description="AWS CLI credential and config files",
    derive=_derive_aws_files,
    patterns=AWS_FILE_PATTERNS,
)

# Where baked-in secrets are looked for (CHECKS.md: home directories, /etc, /opt, /srv).
SEARCH_DIRS = ("/root", "/home", "/etc", "/opt", "/srv", "/usr/local")
MAX_SEARCHED_FILE = 2 * 1024 * 1024
MAX_MATCHES_PER_FILE = 20
# Greps run side by side, one per core up to this many, each given files in batches of this
# many bytes of names (xargs' default, 128 KiB, makes more batches, each costing processes).
_MAX_GREPS = 8
_GREP_BATCH_BYTES = 1024 * 1024

_GREP_PATTERN = (
    r"(AKIA|ASIA)[A-Z0-9]{16}"
    r"|-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"
    r"|[Aa][Ww][Ss]_[Ss][Ee][Cc][Rr][Ee][Tt]_[Aa][Cc][Cc][Ee][Ss][Ss]_[Kk][Ee][Yy]"
)
_ACCESS_KEY = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
# PEM/OpenSSH private keys, and OpenPGP secret keys ("PGP PRIVATE KEY BLOCK").
_PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
# A secret access key is 40 base64 characters; the bare word appears in every SDK's source.
_SECRET_KEY = re.compile(
    r"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])"
)
_ANY = re.compile(_GREP_PATTERN)

# Home directories outside the searched trees (a service account's /var/lib/app, say) are
# searched too when their account can log in; system directories never are.
_SKIPPED_HOMES = (
    "/",
    "/bin",
    "/sbin",
    "/usr",
    "/lib",
    "/lib64",
    "/dev",
    "/proc",
    "/sys",
    "/run",
    "/var/empty",
    "/nonexistent",
)


def home_dirs_to_search(passwd: list[PasswdEntry]) -> tuple[str, ...]:
    """Homes of accounts that can log in, outside SEARCH_DIRS and system directories."""
    homes = []
    for entry in passwd:
        home = entry.home.rstrip("/") or "/"
        if not entry.can_log_in or not home.startswith("/") or _covered(home):
            continue
        homes.append(home)
    return tuple(dict.fromkeys(homes))


def _covered(home: str) -> bool:
    inside = any(home == d or home.startswith(d + "/") for d in SEARCH_DIRS)
    system = any(home == d or home.startswith(d + "/") for d in _SKIPPED_HOMES if d != "/")
    return inside or system or home == "/"


# The live search is bounded as the image walk is (scanner.fs.FileSystemRoot.walk_files): a
# top is depth 0, directories down to WALK_MAX_DEPTH are listed, so entries down to one level
# deeper are seen, and every directory at that level is one the walk did not enter. With GNU
# find one traversal does it all: files go (NUL-terminated) to grep, and every entry also
# leaves a line on fd 3 ("DEPTH PATH" for a directory, an empty line otherwise) that awk counts
# into the two marker lines below, printed after grep's records. Without -fprintf (BusyBox),
# a second find lists the too-deep directories and entries are not counted.
_FOUND_DEPTH = WALK_MAX_DEPTH + 1
# What of a matching line is kept, both ways. A grep record is cut at a path's longest (grep
# cannot open a longer one) plus that: cutting records at the line's length alone lost the NUL
# after a long path, and with it the match.
_LINE_LIMIT = 600
_RECORD_LIMIT = 4096 + 16 + _LINE_LIMIT
_TOO_DEEP = "#amiscan-too-deep"
_ENTRIES = "#amiscan-entries"
# The search needs find, xargs, awk and GNU grep's -I, -Z and -m. Without one of them it would
# find nothing, which must never read as "no secrets": BusyBox's grep (Alpine, minimal images)
# rejects -Z, and a minimal image may have no find at all.
_CANNOT_SEARCH = "#amiscan-cannot-search"
_SEARCH_TOOLS = ("find", "xargs", "awk")
_NO_GREP_REASON = (
    "the guest has no grep that can run the search (it needs GNU grep's -I, -Z and -m options, "
    "which BusyBox's grep lacks): nothing was searched"
)
# The search's last line when it got to its end: output without it is not a whole search (a
# probe that printed nothing at all is not "nothing found").
_SEARCH_DONE = "#amiscan-search-done"
# Greps side by side stopped starting batches once their records passed the output limit.
_OUTPUT_FULL = "#amiscan-output-full"
# A line every grep that can run the search finds.
_GREP_SELF_TEST = "AKIA" + "A" * 16
_BOUNDS_AWK = rf"""
$0 == "T" {{ top++; next }}
$0 == "" {{ n++; next }}
/^[0-9]+ / {{
  n++
  if ($1 != {_FOUND_DEPTH}) next
  deep++; p = substr($0, length($1) + 2); k = p; gsub(/\//, "\001", k)
  if (!ft) {{ ft = top; key = k; first = p }} else if (ft == top && k < key) {{ key = k; first = p }}
}}
END {{
  if (n > {WALK_MAX_ENTRIES}) print "{_ENTRIES} " n
  if (deep) print "{_TOO_DEEP} " deep " " substr(first, 1, 800)
}}
"""


def secret_search_script(
    dirs: tuple[str, ...] = SEARCH_DIRS,
    accounts_file: str = "/etc/passwd",
    *,
    batch_bytes: int = _GREP_BATCH_BYTES,
    output_limit: int = OUTPUT_LIMIT,
) -> str:
    """The live probe: grep records of the files below `dirs` and the homes in `accounts_file`,
    then a marker line for each bound the search hit (see `_parse_bounds`). Its records come
    in no particular order when greps run side by side."""
    size = f"-size -{MAX_SEARCHED_FILE // 1024}k"
    skipped = "|".join(f"{h}|{h}/*" for h in (*SEARCH_DIRS, *_SKIPPED_HOMES) if h != "/")
    return rf"""
for tool in {" ".join(_SEARCH_TOOLS)}; do
  command -v "$tool" >/dev/null 2>&1 || {{ echo "{_CANNOT_SEARCH} $tool"; exit 0; }}
done
if ! printf '%s\n' {_GREP_SELF_TEST} \
  | grep -IHnZE -m {MAX_MATCHES_PER_FILE} -e '{_GREP_PATTERN}' >/dev/null 2>&1; then
  echo "{_CANNOT_SEARCH} grep"
  exit 0
fi
homes=$(awk -F: '$7 !~ /(nologin|false|sync|shutdown|halt)$/ {{print $6}}' {accounts_file} 2>/dev/null)
if find / -maxdepth 0 -fprintf /dev/fd/3 '' 3>/dev/null >/dev/null 2>&1; then
  amiscan_search() {{
    find "$1" -xdev -mindepth 1 -maxdepth {_FOUND_DEPTH} \( -type d -fprintf /dev/fd/3 '%d %p\n' \) \
      -o -fprintf /dev/fd/3 '\n' -type f {size} -print0 2>/dev/null
  }}
else
  amiscan_search() {{
    find "$1" -xdev -maxdepth {_FOUND_DEPTH} -type f {size} -print0 2>/dev/null
    find "$1" -xdev -mindepth {_FOUND_DEPTH} -maxdepth {_FOUND_DEPTH} -type d 2>/dev/null \
      | sed 's/^/{_FOUND_DEPTH} /' >&3
  }}
fi
amiscan_tops() {{
  # The given tops (the self-test's), or by default the searched folders and homes.
  if [ $# -gt 0 ]; then
    for d; do echo T >&3; amiscan_search "$d"; done
    return
  fi
  for d in {" ".join(dirs)}; do [ -d "$d" ] && {{ echo T >&3; amiscan_search "$d"; }}; done
  for d in $homes; do
    case "$d" in
      {skipped}|/) continue ;;
    esac
    [ -d "$d" ] && {{ echo T >&3; amiscan_search "$d"; }}
  done
}}
# One grep per core (at most {_MAX_GREPS}): grep is the search's bottleneck, and a single one
# leaves the other cores idle while find feeds it. Greps writing to one pipe could interleave a
# long record with another's, so each batch appends its records, cut to size, to a file of its
# own (named by its shell's pid, which no two live batches share), and the files are joined
# once all have ended. The files are bounded as the pipe was: once they hold more than the
# probe's output limit, the batches still to come do not run, and the output is cut (the
# search is then incomplete, and says so).
cores=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)
case "$cores" in ''|*[!0-9]*) cores=1 ;; esac
[ "$cores" -le {_MAX_GREPS} ] || cores={_MAX_GREPS}
# The greps' files and the self-test's planted file go when the search ends, even by a signal.
greps= planted=
trap 'rm -rf ${{greps:+"$greps"}} ${{planted:+"$planted"}}' EXIT
trap 'exit 143' INT TERM
if [ "$cores" -gt 1 ] && printf 'x\0' | xargs -0 -r -P 2 true 2>/dev/null; then
  greps=$(mktemp -d "${{AMISCAN_T:-${{TMPDIR:-/tmp}}}}/grep.XXXXXX" 2>/dev/null) || greps=
fi
if [ -n "$greps" ]; then
  amiscan_grep() {{
    rm -f "$greps"/g.* "$greps/full"
    xargs -0 -r -P "$cores" -s {batch_bytes} sh -c '
      d=$0 p=$1; shift
      [ -e "$d/full" ] && exit 0
      grep -IHnZE -m {MAX_MATCHES_PER_FILE} -e "$p" -- "$@" 2>/dev/null \
        | cut -c1-{_RECORD_LIMIT} | head -c {output_limit + 1} >>"$d/g.$$"
      [ "$(cat "$d"/g.* | wc -c)" -le {output_limit} ] || : >"$d/full"' \
      "$greps" '{_GREP_PATTERN}' 2>/dev/null
    # A file that passed the limit ends inside a record: each is followed by a line break,
    # so that its cut record cannot run into the next file's first.
    for g in "$greps"/g.*; do [ ! -f "$g" ] || {{ cat "$g"; echo; }}; done
    # Said outright, not left to the cut: batches skipped are files not searched.
    [ ! -e "$greps/full" ] || echo "{_OUTPUT_FULL}"
  }}
else
  amiscan_grep() {{
    xargs -0 -r grep -IHnZE -m {MAX_MATCHES_PER_FILE} -e '{_GREP_PATTERN}' 2>/dev/null
  }}
fi
amiscan_run() {{
  {{
    bounds=$(
      {{ {{ amiscan_tops "$@" 3>&1 1>&4 | LC_ALL=C awk '{_BOUNDS_AWK}' >&6; }} 4>&1 \
        | amiscan_grep | cut -c1-{_RECORD_LIMIT} >&5; }} 6>&1
    )
  }} 5>&1
  [ -z "$bounds" ] || printf '%s\n' "$bounds"
}}
# Silence means "no secrets" only once the search has found a file it planted: a tool of the
# pipeline missing or behaving differently (a head without -c, a cut that fails) would
# otherwise find nothing, everywhere.
planted=$(mktemp -d "${{AMISCAN_T:-${{TMPDIR:-/tmp}}}}/planted.XXXXXX" 2>/dev/null) || planted=
found=0
if [ -n "$planted" ] && printf '%s\n' {_GREP_SELF_TEST} >"$planted/key" 2>/dev/null; then
  found=$(amiscan_run "$planted" 2>/dev/null | grep -c -a -F "$planted/key")
fi
[ -z "$planted" ] || rm -rf "$planted"
case "$found" in ''|0|*[!0-9]*) echo "{_CANNOT_SEARCH} pipeline"; exit 0 ;; esac
amiscan_run
echo "{_SEARCH_DONE}"
exit 0
"""


_SECRET_SCRIPT = secret_search_script()


# Where bundled runtimes and packages keep documentation and test fixtures (Python's own test
# suite ships dozens of private keys): findings there are likely harmless and shown as warnings.
_BUNDLED = (
    "/site-packages/",
    "/dist-packages/",
    "/node_modules/",
    "/vendor/",
    "/test/",
    "/tests/",
    "/testdata/",
    "/.pyenv/",
    "/.rbenv/",
    "/.nvm/",
    "/.cargo/registry/",
    "/go/pkg/mod/",
)


def is_bundled(path: str) -> bool:
    """True for paths inside bundled packages' or runtimes' trees."""
    return any(part in path for part in _BUNDLED)


@dataclass(frozen=True)
class SecretMatch:
    path: str
    line_number: int
    kind: str
    text: str


def classify(path: str, line_number: int, line: str) -> list[SecretMatch]:
    """The secrets a matching line holds (a line may hold several kinds)."""
    matches = []
    for key in _ACCESS_KEY.findall(line):
        # AWS's documentation keys (AKIAIOSFODNN7EXAMPLE) ship inside SDKs and are harmless.
        if "EXAMPLE" not in key:
            matches.append(SecretMatch(path, line_number, "aws-access-key-id", line))
            break
    if _SECRET_KEY.search(line):
        matches.append(SecretMatch(path, line_number, "aws-secret-access-key", line))
    if _PRIVATE_KEY.search(line):
        matches.append(SecretMatch(path, line_number, "private-key", line))
    return matches


def _parse_grep(text: str) -> list[SecretMatch]:
    matches = []
    for record in text.splitlines():
        path, sep, rest = record.partition("\0")
        number, _, line = rest.partition(":")
        if sep and number.isdigit():
            matches += classify(path, int(number), line[:_LINE_LIMIT])
    return matches


def _cannot_search_line(text: str) -> bool:
    return any(line.startswith(_CANNOT_SEARCH + " ") for line in text.splitlines())


def _cannot_search(tool: str) -> str:
    if tool in _SEARCH_TOOLS:
        return f"the guest has no {tool}, which the search needs: nothing was searched"
    if tool == "grep":
        return _NO_GREP_REASON
    return (
        "the search did not find the file it planted to test itself (a tool it runs — find, "
        "xargs, grep, awk, cut, head, cat or wc — is missing or behaves differently, or no "
        "temporary directory could be made): nothing was searched"
    )


def _parse_bounds(text: str) -> tuple[str, ...]:
    """The bounds the live search hit, worded as the image walk words them (WalkBounds.hit).

    The probe prints its marker lines last (or only the one saying it cannot search); a
    file name holding a newline could forge one, but a forged marker can only make the search
    look less complete, never more: the last of each kind is used, and no marker at all means
    no bound was hit.
    """
    entries = too_deep = ""
    full = False
    for line in text.splitlines():
        if "\0" in line:
            continue  # a grep record
        if line.startswith(_CANNOT_SEARCH + " "):
            return (_cannot_search(line[len(_CANNOT_SEARCH) + 1 :]),)
        if line == _SEARCH_DONE:
            continue
        if line == _OUTPUT_FULL:
            full = True
        elif line.startswith(_ENTRIES + " "):
            entries = line
        elif line.startswith(_TOO_DEEP + " "):
            too_deep = line
    reasons: list[str] = []
    count = entries[len(_ENTRIES) + 1 :]
    if count.isdigit():
        # The live search saw them all, but an image search stops there: both say so alike.
        reasons.append(
            f"{count} entries, more than the {WALK_MAX_ENTRIES} a search walks; "
            "the search of an image stops there"
        )
    count, _, first = too_deep[len(_TOO_DEEP) + 1 :].partition(" ")
    if count.isdigit() and int(count) > 0:
        bounds = WalkBounds()
        bounds.too_deep = int(count)
        bounds.first_too_deep = first
        reasons += bounds.hit
    if full:
        reasons.append(
            "the search's records passed its output limit, and the files after them were not "
            "searched"
        )
    return tuple(reasons)


@dataclass(frozen=True)
class SecretSearch:
    """What the search for secrets found, and what (if anything) it could not search."""

    matches: tuple[SecretMatch, ...]
    # Why part of the guest was not searched (a depth or entry bound, unreadable files, output
    # cut at its limit): a search that did not see everything never passes.
    incomplete: tuple[str, ...] = ()


# grep -I calls a file binary when its start holds a NUL; only that much is read of binaries.
_BINARY_PROBE = 8192
# Every match of _GREP_PATTERN holds one of these: a file holding none cannot match, and is not
# decoded or split into lines at all. Each pattern starts with a literal character, so the
# regular expression engine skips ahead to it (faster here than `in` for two literals, or than
# upper-casing the file for the case-insensitive one).
_KEY_ID_LITERAL = re.compile(rb"A[KS]IA")
_PRIVATE_KEY_LITERAL = b"PRIVATE KEY"
_SECRET_NAME_LITERAL = re.compile(
    rb"_[Ss][Ee][Cc][Rr][Ee][Tt]_[Aa][Cc][Cc][Ee][Ss][Ss]_[Kk][Ee][Yy]"
)


def _read_into(handle: BinaryIO, into: memoryview) -> int:
    """Fill `into` from the file; fewer bytes only at its end (a raw read may return less)."""
    filled = 0
    while filled < len(into):
        count = handle.readinto(into[filled:])  # type: ignore[attr-defined]
        if not count:
            break
        filled += count
    return filled


def _may_hold_secret(content: bytearray, length: int) -> bool:
    return bool(
        _KEY_ID_LITERAL.search(content, 0, length)
        or content.find(_PRIVATE_KEY_LITERAL, 0, length) >= 0
        or _SECRET_NAME_LITERAL.search(content, 0, length)
    )


def search_files(
    files: FileSource, dirs: tuple[str, ...] = SEARCH_DIRS, bounds: WalkBounds | None = None
) -> list[SecretMatch]:
    """The offline twin of the grep probe: same directories, sizes and patterns.

    The walk is bounded (depth, entries, cancellation); what the bounds hid is in `bounds.hit`.
    Each file is opened once, from the walk (no path is resolved twice); a binary file is read
    no further than its start, and only files holding one of the patterns' literals are
    searched line by line.
    """
    bounds = bounds if bounds is not None else WalkBounds()
    matches = []
    # One buffer for every file: a fresh 2 MiB object per file costs page faults, not reads.
    buffer = bytearray(MAX_SEARCHED_FILE)
    view = memoryview(buffer)
    for top in dirs:
        for entry in walk_entries(files, top, bounds):
            if entry.size >= MAX_SEARCHED_FILE:
                continue
            try:
                with entry.open() as handle:
                    length = _read_into(handle, view[:_BINARY_PROBE])
                    if buffer.find(b"\0", 0, length) >= 0:
                        continue  # binary, as grep -I judges it
                    if length == _BINARY_PROBE:
                        length += _read_into(handle, view[_BINARY_PROBE:])
            except FileNotFoundError:
                continue  # gone since it was listed
            except (OSError, ReadRefused):
                bounds.skip_unreadable(entry.path)
                continue
            if _may_hold_secret(buffer, length):
                text = bytes(view[:length]).decode("utf-8", errors="replace")
                matches += _search_text(entry.path, text)
        if bounds.exhausted:
            break
    view.release()
    return matches


def _search_text(path: str, text: str) -> list[SecretMatch]:
    matches: list[SecretMatch] = []
    hits = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if _ANY.search(line):
            hits += 1
            matches += classify(path, number, line[:_LINE_LIMIT])
            if hits >= MAX_MATCHES_PER_FILE:
                break
    return matches


def _derive_secret_matches(g: Gathered) -> SecretSearch:
    if g.live:
        output = g.require_output()
        if output.timed_out:
            raise FactFailed("the search for secrets timed out")
        # Greps running side by side finish in any order: sorted, a report does not change
        # from one run to the next.
        records = sorted(_parse_grep(output.text), key=lambda m: (m.path, m.line_number))
        matches = tuple(records)
        incomplete = _parse_bounds(output.text)
        last_line = output.text.rstrip("\n").rsplit("\n", 1)[-1]
        if output.truncated:
            incomplete += (f"the search's output was cut at {len(output.stdout)} bytes",)
        elif output.rc != 0:
            # The script always exits 0 when it gets to its end: killed on the way (by the
            # guest's OOM killer, say), what it printed is only part of the search. (A cut
            # output stops it too, by SIGPIPE; the cut is the reason then.)
            incomplete += (f"the search stopped before it finished (exit code {output.rc})",)
        elif last_line != _SEARCH_DONE and not _cannot_search_line(output.text):
            # Its last line, so that no file name printed before it can stand in for it.
            incomplete += ("the search did not say it finished: its output is not the whole",)
        return SecretSearch(matches, incomplete)
    try:
        homes = home_dirs_to_search(g.get(PASSWD))
    except (FactUnavailable, FactFailed):
        homes = ()
    bounds = WalkBounds(cancel=g.cancel)
    matches = tuple(search_files(g.files, SEARCH_DIRS + homes, bounds))
    return SecretSearch(matches, tuple(bounds.hit))


SECRET_MATCHES = Fact(
    name="linux.secrets.matches",
    description="files containing AWS keys or private keys",
    derive=_derive_secret_matches,
    probe=Probe(_SECRET_SCRIPT, privileged=True, timeout_s=180, background=True),
    depends=(PASSWD,),
)
