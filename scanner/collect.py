"""The batched collection script: every live Linux fact of a scan in ONE remote execution.

The script is POSIX sh, fed on standard input to `sh -s` (so the login shell's syntax never
matters). It runs the unprivileged probes, then the privileged ones through a single `sudo -n`
(or directly when already root), then copies back the guest files that facts asked for. Every
probe's output is bounded, time-limited and base64-encoded on one marker line, so hostile or
non-UTF-8 output can neither forge a marker nor break the parser.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from scanner.facts.base import Fact, ProbeOutput
from scanner.fs import MemoryTree
from scanner.records import (
    SAFE_NAME,
    RecordError,
    claim_probe,
    count_field,
    decode_field,
    read_records,
    repeated_session_record,
    spoil_probe,
)

# Each probe's stdout (and each copied file) is cut at this size; the check says so if it matters.
OUTPUT_LIMIT = 4 * 1024 * 1024
FILE_LIMIT = 1024 * 1024
# Guest path globs copied back; anything a shell would interpret other than globbing is refused.
_SAFE_PATTERN = re.compile(r"^/[A-Za-z0-9._/*?\[\]!+@%,:=~-]*$")
# Private host keys and other secrets are never copied off the guest, whatever a fact asks.
_NEVER_COPY = ("/etc/ssh/ssh_host_*_key", "/etc/shadow-", "/etc/gshadow*")

# The guest's clock in nanoseconds, as a shell function: the collection script times each probe
# with it, and a probe that times steps of its own (the package refresh) defines it again, since
# a probe runs in a shell of its own.
SHELL_CLOCK = r"""
amiscan_now() {
  # Nanoseconds where date has %N (GNU), else whole seconds, else 0 (no date at all).
  _n=$(date +%s%N 2>/dev/null)
  case "$_n" in ''|*[!0-9]*) _n=$(date +%s 2>/dev/null)000000000 ;; esac
  case "$_n" in *[!0-9]*) _n=0 ;; esac
  printf '%s' "$_n"
}
"""

_PRELUDE = r"""
export LC_ALL=C
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH; export PATH
umask 077
if command -v base64 >/dev/null 2>&1; then
  amiscan_enc() { base64 | tr -d '\n'; }; AMISCAN_ENC=b64
else
  amiscan_enc() { od -An -v -tx1 | tr -d ' \n'; }; AMISCAN_ENC=hex
fi
amiscan_field() { _v=$(amiscan_enc); [ -n "$_v" ] || _v=-; printf '%s' "$_v"; }
# Every record is cut by head and encoded: without them each probe would arrive empty, which
# must never read as "nothing found". The script stops before END instead (scan incomplete).
if [ "$(printf abc | head -c 2 2>/dev/null)" != ab ]; then
  echo "amiscan: the guest has no head that can cut at a byte count (head -c), which the collection needs" >&2
  exit 1
fi
case "$(printf ok | amiscan_enc 2>/dev/null)" in
  b2s=|6f6b) ;;
  *) echo "amiscan: the guest cannot encode the probes' output (it needs base64, or od, with tr)" >&2
     exit 1 ;;
esac
AMISCAN_T=$(mktemp -d 2>/dev/null) || { AMISCAN_T=/tmp/amiscan.$$; mkdir -m 700 "$AMISCAN_T"; }
trap 'rm -rf "$AMISCAN_T"' EXIT
# Probes keep their own scratch files here too (the secret search's greps), so that a probe
# stopped by its timeout leaves nothing behind.
export AMISCAN_T
export AMISCAN_FILES="$AMISCAN_T/files"; : >"$AMISCAN_FILES"
if command -v timeout >/dev/null 2>&1; then AMISCAN_TIMEOUT=timeout; else AMISCAN_TIMEOUT=; fi
@CLOCK@amiscan_probe() {
  # $1 name, $2 seconds, $3 snippet. Output bounded by head; rc kept through the pipe. The
  # probe's commands are the guest's: they never see the marker, so cannot forge records.
  # Each probe has its own files, so that probes run in the background cannot mix outputs.
  # A probe may time steps of its own (a package metadata refresh): it appends "STEP MS" lines
  # to $AMISCAN_STEPS, and each becomes a TIME record named PROBE.STEP.
  _t0=$(amiscan_now); _o="$AMISCAN_T/p.$1"; : >"$_o.steps"
  if [ -n "$AMISCAN_TIMEOUT" ]; then
    { AMISCAN_M= AMISCAN_STEPS="$_o.steps" timeout -k 5 "$2" sh -c "$3" </dev/null 2>"$_o.err"; echo $? >"$_o.rc"; } \
      | head -c @OUTPUT_LIMIT_PLUS_ONE@ >"$_o.out"
  else
    { AMISCAN_M= AMISCAN_STEPS="$_o.steps" sh -c "$3" </dev/null 2>"$_o.err"; echo $? >"$_o.rc"; } \
      | head -c @OUTPUT_LIMIT_PLUS_ONE@ >"$_o.out"
  fi
  _rc=$(cat "$_o.rc" 2>/dev/null); [ -n "$_rc" ] || _rc=141
  _to=0
  if [ -n "$AMISCAN_TIMEOUT" ] && { [ "$_rc" = 124 ] || [ "$_rc" = 137 ]; }; then _to=1; fi
  _osize=$(wc -c <"$_o.out" | tr -d ' ')
  printf '%s PROBE %s %s %s %s %s ' "$AMISCAN_M" "$1" "$_rc" "$_to" "$AMISCAN_PRIV" "$_osize"
  head -c @OUTPUT_LIMIT@ "$_o.out" | amiscan_field; printf ' '
  head -c 65536 "$_o.err" | amiscan_field; printf '\n'
  printf '%s TIME %s %s\n' "$AMISCAN_M" "$1" "$(( ($(amiscan_now) - _t0) / 1000000 ))"
  head -c 4096 "$_o.steps" | grep -E '^[a-z0-9-]{1,32} [0-9]{1,9}$' | head -n 8 \
    | while read -r _s _ms; do printf '%s TIME %s.%s %s\n' "$AMISCAN_M" "$1" "$_s" "$_ms"; done
  rm -f "$_o.out" "$_o.err" "$_o.rc" "$_o.steps"
}
amiscan_probe_bg() {
  # A slow probe started now, beside the others; its records are printed by amiscan_probe_fg.
  amiscan_probe "$@" >"$AMISCAN_T/bg.$1" 2>/dev/null &
}
amiscan_bg_records() {
  wait
  for _b in "$@"; do cat "$AMISCAN_T/bg.$_b" 2>/dev/null; done
}
amiscan_bounded() {
  if [ -n "$AMISCAN_TIMEOUT" ]; then timeout -k 2 30 "$@"; else "$@"; fi
}
amiscan_never_copy() {
  case "$1" in @NEVER_COPY@) return 0;; esac
  return 1
}
amiscan_copy() {
  for _f in "$@"; do
    [ -f "$_f" ] || continue
    amiscan_never_copy "$_f" && continue
    if [ -r "$_f" ]; then
      # The file is opened by wc and head, under a timeout, never by this shell: a FIFO or a
      # device swapped in after the -f test cannot block the collection. A size that cannot be
      # measured is sent as "-", and the copy is then judged as possibly cut.
      _s=$(amiscan_bounded wc -c "$_f" 2>/dev/null | awk 'NR==1{print $1}')
      case "$_s" in ''|*[!0-9]*) _s=- ;; esac
      printf '%s FILE %s %s ' "$AMISCAN_M" "$(printf '%s' "$_f" | amiscan_field)" "$_s"
      amiscan_bounded head -c @FILE_LIMIT@ "$_f" 2>/dev/null | amiscan_field; printf '\n'
    else
      printf '%s UNREADABLE %s\n' "$AMISCAN_M" "$(printf '%s' "$_f" | amiscan_field)"
    fi
  done
}
amiscan_copy_listed() {
  while IFS= read -r _f; do amiscan_copy "$_f"; done <"$AMISCAN_FILES"
}
"""


@dataclass(frozen=True)
class LiveSettings:
    """What the guest-side script needs to know about this scan."""

    login_user: str = ""
    scanner_address: str = ""
    scan_port: int = 22
    refresh_package_metadata: bool = False
    vetting_addresses: tuple[str, ...] = ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")


@dataclass
class CollectionScript:
    """A generated script and the marker that delimits its records."""

    text: str
    marker: str
    probe_names: tuple[str, ...]


def _probe_call(fact: Fact[Any]) -> str:
    assert fact.probe is not None
    function = "amiscan_probe_bg" if fact.probe.background else "amiscan_probe"
    timeout = max(1, round(fact.probe.timeout_s))
    return f"{function} {fact.name} {timeout} {shlex.quote(fact.probe.script)}"


def _part(facts: list[Fact[Any]], meanwhile: Sequence[str] = ()) -> list[str]:
    """One part's probe calls: the background ones start first, the others (and `meanwhile`,
    the file copies) run meanwhile one after another, and the background ones' records follow,
    in a fixed order."""
    background = [f for f in facts if f.probe is not None and f.probe.background]
    foreground = [f for f in facts if f not in background]
    calls = [*(_probe_call(f) for f in (*background, *foreground)), *meanwhile]
    if background:
        calls.append("amiscan_bg_records " + " ".join(f.name for f in background))
    return calls


def _copy_call(patterns: Iterable[str]) -> str:
    # Unquoted on purpose: the guest's shell expands the globs; a pattern matching nothing
    # stays literal and is skipped by `[ -f ]`.
    return "amiscan_copy " + " ".join(patterns) if patterns else ":"


def build_script(facts: Iterable[Fact[Any]], settings: LiveSettings) -> CollectionScript:
    """The one script that gathers every live probe and file the given facts need."""
    marker = "AMISCAN-" + secrets.token_hex(8)
    user_part: list[Fact[Any]] = []
    root_part: list[Fact[Any]] = []
    patterns: list[str] = []
    names: list[str] = []
    for fact in facts:
        if fact.probe is not None:
            if not SAFE_NAME.match(fact.name):
                raise ValueError(f"fact name {fact.name!r} is not safe as a probe name")
            (root_part if fact.probe.privileged else user_part).append(fact)
            names.append(fact.name)
        for pattern in fact.patterns:
            if not _SAFE_PATTERN.match(pattern):
                raise ValueError(f"file pattern {pattern!r} of {fact.name} is not a plain glob")
            if pattern not in patterns:
                patterns.append(pattern)

    prelude = (
        _PRELUDE.replace("@CLOCK@", SHELL_CLOCK.lstrip("\n"))
        .replace("@OUTPUT_LIMIT_PLUS_ONE@", str(OUTPUT_LIMIT + 1))
        .replace("@OUTPUT_LIMIT@", str(OUTPUT_LIMIT))
        .replace("@FILE_LIMIT@", str(FILE_LIMIT))
        .replace("@NEVER_COPY@", "|".join(_NEVER_COPY))
    )
    exports = "\n".join(
        f"export {key}={shlex.quote(value)}"
        for key, value in {
            "AMISCAN_M": marker,
            "AMISCAN_LOGIN_USER": settings.login_user,
            "AMISCAN_SCANNER_ADDR": settings.scanner_address,
            "AMISCAN_SCAN_PORT": str(settings.scan_port),
            "AMISCAN_REFRESH": "1" if settings.refresh_package_metadata else "0",
            "AMISCAN_VETTING_ADDRS": " ".join(settings.vetting_addresses),
        }.items()
    )
    root_script = "\n".join(
        [
            exports,
            prelude,
            "AMISCAN_PRIV=1",
            'printf \'%s ROOT %s\\n\' "$AMISCAN_M" "$(id -u)"',
            # The copies need only the foreground probes' lists: they overlap the slow search
            # and package query instead of waiting for them.
            *_part(root_part, meanwhile=(_copy_call(patterns), "amiscan_copy_listed")),
            "exit 0",
        ]
    )
    if "\nAMISCAN_ROOT_EOF\n" in f"\n{root_script}\n":
        raise ValueError("a probe contains the here-document delimiter of the collection script")
    text = "\n".join(
        [
            exports,
            prelude,
            "AMISCAN_PRIV=0",
            _ENV_RECORD,
            *_part(user_part),
            "amiscan_root_part() {",
            _FORWARD_SSH_CONNECTION,
            "cat <<'AMISCAN_ROOT_EOF'",
            root_script,
            "AMISCAN_ROOT_EOF",
            "}",
            _ESCALATE,
            "printf '%s END\\n' \"$AMISCAN_M\"",
        ]
    )
    return CollectionScript(text=text + "\n", marker=marker, probe_names=tuple(names))


# Facts about the session itself, gathered without a probe of their own.
_ENV_RECORD = r"""
amiscan_env() { printf '%s ENV %s %s\n' "$AMISCAN_M" "$1" "$(printf '%s' "$2" | amiscan_field)"; }
# The sshd that serves this session is an ancestor of this shell; its command line names the
# binary and any -f config file, which may not be the default /etc/ssh/sshd_config.
_p=$$; _i=0; AMISCAN_SSHD_CMD=
while [ "$_i" -lt 40 ] && [ -n "$_p" ] && [ "$_p" != 0 ] && [ "$_p" != 1 ]; do
  _c=$(tr '\0' ' ' <"/proc/$_p/cmdline" 2>/dev/null)
  case "$_c" in *sshd*) AMISCAN_SSHD_CMD=$_c ;; esac
  _p=$(awk '/^PPid:/{print $2}' "/proc/$_p/status" 2>/dev/null); _i=$((_i+1))
done
AMISCAN_SSHD_CONFIG=$(printf '%s\n' "$AMISCAN_SSHD_CMD" | sed -n 's/.* -f *\([^ ]*\).*/\1/p' | tr -cd 'A-Za-z0-9/._+-')
AMISCAN_SSHD_BIN=$(printf '%s\n' "$AMISCAN_SSHD_CMD" | sed -e 's/^sshd: //' | awk '{print $1}' | tr -cd 'A-Za-z0-9/._+-')
case "$AMISCAN_SSHD_BIN" in /*sshd) ;; *) AMISCAN_SSHD_BIN= ;; esac
amiscan_env user "$(id -un 2>/dev/null)"
amiscan_env uid "$(id -u 2>/dev/null)"
amiscan_env groups "$(id -Gn 2>/dev/null)"
amiscan_env hostname "$(hostname 2>/dev/null || cat /etc/hostname 2>/dev/null)"
amiscan_env kernel "$(uname -srm 2>/dev/null)"
amiscan_env now "$(date +%s 2>/dev/null)"
amiscan_env btime "$(awk '$1=="btime"{print $2}' /proc/stat 2>/dev/null)"
amiscan_env ssh_connection "${SSH_CONNECTION:-}"
amiscan_env sshd_config "$AMISCAN_SSHD_CONFIG"
amiscan_env sshd_bin "$AMISCAN_SSHD_BIN"
amiscan_env encoding "$AMISCAN_ENC"
"""

# sudo clears the environment; the server's view of the connection (client and local address,
# port) and the serving sshd are passed on, reduced to the characters they can hold.
_FORWARD_SSH_CONNECTION = r"""
printf 'export AMISCAN_SSH_CONNECTION="%s"\n' "$(printf '%s' "${SSH_CONNECTION:-}" | tr -cd '0-9A-Fa-f.: ')"
printf 'export AMISCAN_SSHD_CONFIG="%s" AMISCAN_SSHD_BIN="%s"\n' "$AMISCAN_SSHD_CONFIG" "$AMISCAN_SSHD_BIN"
"""

# One sudo for every privileged probe. `sudo -n` never prompts; when it cannot run, the same
# part runs unprivileged so that facts which need no root are still gathered.
_ESCALATE = r"""
if [ "$(id -u)" = 0 ]; then
  amiscan_root_part | sh -s
elif command -v sudo >/dev/null 2>&1 && amiscan_root_part | sudo -n sh -s 2>"$AMISCAN_T/sudo.err"; then
  :
else
  if command -v sudo >/dev/null 2>&1; then _why=$(head -c 2000 "$AMISCAN_T/sudo.err"); else _why="sudo is not installed"; fi
  printf '%s NOSUDO %s\n' "$AMISCAN_M" "$(printf '%s' "${_why:-sudo -n failed}" | amiscan_field)"
  amiscan_root_part | sed 's/^AMISCAN_PRIV=1$/AMISCAN_PRIV=0/' | sh -s
fi
"""


@dataclass
class Collected:
    """The parsed output of one run of the collection script."""

    outputs: dict[str, ProbeOutput] = field(default_factory=dict)
    files: MemoryTree = field(default_factory=MemoryTree)
    unreadable: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    root_uid: str | None = None
    sudo_error: str | None = None
    complete: bool = False
    # Probes whose record was malformed or repeated: their facts error, the others stand.
    probe_errors: dict[str, str] = field(default_factory=dict)
    # A file record that could not be attributed to a path: no copied file can be trusted to
    # be complete (a file that seems absent may be the damaged one).
    files_error: str | None = None
    # The record stream itself is forged (a second END, a repeated session record): nothing in
    # it is trusted, and the whole collection errors.
    forged: str | None = None
    # Marker records after END: ignored, never allowed to override what came before.
    ignored_after_end: int = 0
    # How long each probe ran on the guest, in milliseconds (for the report's collection).
    timings: dict[str, int] = field(default_factory=dict)

    @property
    def privileged(self) -> bool:
        """True when the privileged part really ran as root."""
        return self.root_uid == "0"


class CollectionError(Exception):
    """The script's output could not be understood at all."""


def parse_output(stdout: bytes, marker: str) -> Collected:
    """Turn the script's stdout into probe outputs, copied files and session facts.

    One record stream: only records before END count; a record is never overridden by a later
    one (a repeated probe or file with different contents is refused, a repeated session record
    or a second END marks the stream forged); a malformed record marks only its own probe or file.
    """
    collected = Collected()
    stream = read_records(stdout, marker)
    records, collected.ignored_after_end = stream.records, stream.ignored_after_end
    collected.complete, collected.forged = stream.complete, stream.forged
    # The encoding record comes before any probe, but read it first to be order-proof.
    encoding = "b64"
    encodings = [r for r in records if r[:2] == ["ENV", "encoding"]]
    if encodings:
        try:
            encoding = decode_field(
                encodings[0][2] if len(encodings[0]) == 3 else "", "b64"
            ).decode()
        except (RecordError, UnicodeDecodeError):
            encoding = "hex"
        if encoding not in {"b64", "hex"}:
            encoding = "hex"
    seen_session: set[str] = set()
    for fields in records:
        kind, args = fields[0], fields[1:]
        try:
            _apply_record(collected, kind, args, encoding, seen_session)
        except RecordError as exc:
            _blame(collected, kind, args, str(exc))
    return collected


def _blame(collected: Collected, kind: str, args: list[str], reason: str) -> None:
    """A malformed record spoils what it was about, and nothing else."""
    if kind == "PROBE" and args and SAFE_NAME.match(args[0]):
        spoil_probe(collected, args[0], reason)
    elif kind in ("PROBE", "ENV", "ROOT", "NOSUDO", "TIME"):
        # A probe record whose name is unreadable leaves that probe without output (its fact
        # errors as unreached); a damaged session record leaves that session fact unknown; a
        # damaged timing is only not reported.
        return
    else:
        collected.files_error = (
            f"a {kind[:20]!r} record of the collection output is malformed ({reason}); the copied "
            "files may be incomplete"
        )


def _apply_record(
    collected: Collected, kind: str, args: list[str], encoding: str, seen: set[str]
) -> None:
    if kind in ("ENV", "ROOT", "NOSUDO"):
        key = kind + (" " + args[0] if kind == "ENV" and args else "")
        repeated = repeated_session_record(seen, key)
        if repeated:
            collected.forged = repeated
            return
    if kind == "ENV" and len(args) == 2:
        value = (
            decode_field(args[1], encoding)
            if args[0] != "encoding"
            else decode_field(args[1], "b64")
        )
        collected.env[args[0]] = value.decode("utf-8", errors="replace")
    elif kind == "PROBE" and len(args) == 7:
        name, rc, timed_out, privileged, size, out, err = args
        if not SAFE_NAME.match(name):
            raise RecordError("the probe name is not a name")
        if not claim_probe(collected, name):
            return
        stdout = decode_field(out, encoding)
        collected.outputs[name] = ProbeOutput(
            name=name,
            rc=count_field(rc, "exit code"),
            stdout=stdout,
            stderr=decode_field(err, encoding),
            truncated=count_field(size, "output size") > len(stdout),
            timed_out=timed_out == "1",
            privileged=privileged == "1",
        )
    elif kind == "FILE" and len(args) == 3:
        path = decode_field(args[0], encoding).decode("utf-8", errors="replace")
        if not path.startswith("/"):
            raise RecordError("the file path is not absolute")
        try:
            content = decode_field(args[2], encoding)
            measured = count_field(args[1], "file size") if args[1] != "-" else None
        except RecordError as exc:
            collected.files.refuse(path, f"its copy in the collection output is malformed ({exc})")
            return
        _add_file(collected.files, path, content, measured)
    elif kind == "UNREADABLE" and len(args) == 1:
        collected.unreadable.append(
            decode_field(args[0], encoding).decode("utf-8", errors="replace")
        )
    elif kind == "TIME" and len(args) == 2:
        if SAFE_NAME.match(args[0]) and args[0] not in collected.timings:
            collected.timings[args[0]] = count_field(args[1], "duration")
    elif kind == "ROOT" and len(args) == 1:
        collected.root_uid = args[0]
    elif kind == "NOSUDO" and len(args) == 1:
        collected.sudo_error = (
            decode_field(args[0], encoding).decode("utf-8", errors="replace").strip()
        )
    elif kind in ("ENV", "PROBE", "FILE", "UNREADABLE", "ROOT", "NOSUDO", "TIME"):
        raise RecordError(f"{len(args)} fields")
    else:
        raise RecordError(f"unknown record kind {kind[:20]!r}")


def _add_file(files: MemoryTree, path: str, content: bytes, size: int | None) -> None:
    key = posixpath.normpath(path)
    if key in files.refused:
        return
    existing = files.files.get(key)
    # Overlapping patterns copy the same file twice, identically; two different copies mean
    # one of them is forged, and neither is judged.
    if existing is not None:
        if existing.content != content or (size is not None and existing.size != size):
            files.refuse(path, f"the collection output holds two different copies of {path}")
        return
    # A size the script could not measure: what was copied may be only the beginning.
    files.add(path, content, size, truncated=size is None or len(content) >= FILE_LIMIT)
