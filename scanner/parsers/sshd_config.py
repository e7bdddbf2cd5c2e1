"""An OpenSSH-faithful reading of sshd_config, for judging an image offline.

The effective configuration is computed the way sshd (OpenSSH 9.x portable) computes it, reading
`servconf.c` as the reference:

* Start-up pass (`parse_server_config` without connection info): lines outside Match blocks, and
  lines after a `Match all`, set the global options; for most keywords the first value wins.
  Every line is also checked for syntax, which is where `problems` come from.
* Connection pass (`parse_server_match_config`): the files are read again from the top with no
  line active until a Match block matches the connection; the options set there (first value wins
  among them) replace the global ones (`copy_set_server_options`). This is what `sshd -T -C ...`
  prints, and what `SshdConfig.effective` returns.
* Include: globbed, sorted, relative to /etc/ssh; an include inside a Match block is conditional on
  that block, and whatever Match state the included file ends in is discarded afterwards.
* Compiled-in defaults fill whatever is still unset (`fill_default_server_options`).

Values are reported in the form `sshd -T` prints them, with one deliberate exception: sshd prints
PermitRootLogin prohibit-password as its older spelling "without-password"; both this parser and
`parse_sshd_t` report "prohibit-password" so checks compare one spelling.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import posixpath
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal

from scanner.fs import FileSource, glob, read_text_or_none

SSH_DIR = "/etc/ssh"
DEFAULT_CONFIG = "/etc/ssh/sshd_config"

# servconf.c SERVCONF_MAX_DEPTH: the main file is depth 0, an Include deeper than this is fatal.
_MAX_INCLUDE_DEPTH = 16
# match.c copies each sub-pattern into a 1024-byte buffer; a longer one never matches.
_MAX_SUBPATTERN = 1023
_INT_MAX = 2**31 - 1

# The address ranges the AWS Marketplace scanner connects from.
VETTING_NETWORKS = (
    ipaddress.IPv4Network("10.0.0.0/16"),
    ipaddress.IPv4Network("10.2.0.0/16"),
)
_MAX_VETTING_ADDRESSES = 32


# --------------------------------------------------------------------------------------------
# Public data types


@dataclass(frozen=True)
class ConnectionInfo:
    """What sshd knows about a connection when it evaluates Match blocks (`sshd -T -C`)."""

    user: str
    addr: str
    host: str | None = None  # None -> same as addr (UseDNS no, the default: sshd uses the IP)
    laddr: str | None = None
    lport: int | None = None
    rdomain: str | None = None
    groups: tuple[str, ...] = ()  # the user's groups, for Match Group


@dataclass(frozen=True)
class Setting:
    """One effective option: its values as `sshd -T` reports them, and where they came from."""

    keyword: str
    values: tuple[str, ...]
    source: str
    line: str = ""


class Severity(Enum):
    """How sshd reacts to a problem line."""

    FATAL = "error"  # sshd refuses to start (or `sshd -t` fails)
    WARNING = "warning"  # sshd logs it and carries on


@dataclass(frozen=True)
class Problem:
    """A line sshd would reject or warn about."""

    location: str  # "path:line"
    message: str
    kind: Severity = Severity.FATAL

    def __str__(self) -> str:
        return f"{self.location}: {self.kind.value}: {self.message}"


class _BadValue(Exception):
    """A line sshd would reject; the message says why."""


# --------------------------------------------------------------------------------------------
# Tokenising, as misc.c strdelim() and argv_split() do it

_WHITESPACE = " \t\r\n"


def _strdelim(text: str | None) -> tuple[str | None, str | None]:
    """Next token of a config line and the rest; tokens end at whitespace or at one '='.

    A token may be wrapped in double quotes. Returns (None, None) for an unterminated quote.
    """
    if text is None:
        return None, None
    index = next((i for i, ch in enumerate(text) if ch in _WHITESPACE + '"='), -1)
    if index < 0:
        return text, None
    if text[index] == '"':
        # sshd deletes the opening quote in place, so text before it joins the token.
        end = text.find('"', index + 1)
        if end < 0:
            return None, None
        token = text[:index] + text[index + 1 : end]
        return token, text[end + 1 :].lstrip(_WHITESPACE)
    token = text[:index]
    rest = text[index + 1 :].lstrip(_WHITESPACE)
    if text[index] != "=" and rest.startswith("="):
        # "Key = value": one '=' surrounded by whitespace is a separator too, but only one.
        rest = rest[1:].lstrip(_WHITESPACE)
    return token, rest


def _argv_split(text: str) -> list[str]:
    """Arguments of a line: whitespace-separated, ' and " quoting, backslash escapes, # comment.

    Raises _BadValue on an unterminated quote (sshd: "invalid quotes").
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
            raise _BadValue("invalid quotes")
        args.append("".join(arg))
    return args


@dataclass(frozen=True)
class _Line:
    """One non-blank, non-comment line of a config file, split the way sshd splits it."""

    path: str
    number: int
    text: str  # stripped
    keyword: str  # as written
    rest: str | None  # what follows the keyword and its separator, unsplit

    @property
    def location(self) -> str:
        return f"{self.path}:{self.number}"


def _split_lines(path: str, content: str) -> list[_Line]:
    """The meaningful lines of a file (load_server_config + the start of process_server_config)."""
    lines: list[_Line] = []
    for number, raw in enumerate(content.split("\n"), start=1):
        text = raw.lstrip(" \t\r").rstrip(" \t\r\n\f")
        keyword, rest = _strdelim(text)
        if keyword == "":
            keyword, rest = _strdelim(rest)
        if not keyword or keyword.startswith("#"):
            continue
        lines.append(_Line(path, number, text, keyword, rest))
    return lines


# --------------------------------------------------------------------------------------------
# Pattern matching (match.c, addrmatch.c)


@functools.lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, flags=re.DOTALL)


def match_pattern(string: str, pattern: str) -> bool:
    """`*` and `?` wildcard match of a whole string (no character classes, as in match.c)."""
    return _pattern_regex(pattern).fullmatch(string) is not None


def match_pattern_list(string: str, patterns: str, lowercase: bool = False) -> int:
    """A comma-separated pattern list: 1 on a match, -1 if a negated (`!`) entry matches, else 0."""
    positive = 0
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        sub = entry[1:] if negated else entry
        if len(sub) > _MAX_SUBPATTERN:
            return 0
        if lowercase:
            sub = sub.lower()
        if match_pattern(string, sub):
            if negated:
                return -1
            positive = 1
    return positive


_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _parse_address(text: str) -> _Address | None:
    """A numeric address as getaddrinfo(AI_NUMERICHOST) reads it, shorthand IPv4 included."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    # glibc takes inet_aton forms too: "10.1" is 10.0.0.1, "0x0a.0.0.1" is 10.0.0.1.
    if re.fullmatch(r"[0-9a-fA-FxX.]+", text) and not text.endswith("."):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(text))
        except OSError:
            return None
    return None


_INCONSISTENT: Final = "inconsistent"


def _parse_cidr(text: str) -> _Network | Literal["inconsistent"] | None:
    """addr_pton_cidr: a network; None when not an address (so a wildcard); or _INCONSISTENT.

    Inconsistent (host bits set, mask too long for the family) makes sshd reject the list.
    """
    addr_text, slash, mask_text = text.partition("/")
    if slash and (not mask_text.isdigit() or not mask_text.isascii() or int(mask_text) > 128):
        return None
    address = _parse_address(addr_text)
    if address is None:
        return None
    masklen = int(mask_text) if slash else address.max_prefixlen
    if masklen > address.max_prefixlen:
        return _INCONSISTENT
    try:
        return ipaddress.ip_network(f"{address}/{masklen}", strict=True)
    except ValueError:
        return _INCONSISTENT  # host bits set


def addr_match_list(addr: str | None, patterns: str) -> int:
    """addrmatch.c addr_match_list: 1 match, 0 none, -1 negated match, -2 invalid list.

    Entries are CIDR networks or, when they do not parse as one, wildcard patterns matched
    against the address text. With `addr` None the list is only checked.
    """
    address = _parse_address(addr) if addr is not None else None
    if addr is not None and address is None:
        return 0
    result = 0
    for entry in patterns.split(","):
        negated = entry.startswith("!")
        body = entry[1:] if negated else entry
        if not body:
            return -2
        network = _parse_cidr(body)
        if network == _INCONSISTENT:
            return -2
        if addr is None:
            continue
        if isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
            found = address is not None and address.version == network.version
            found = found and address in network
        else:
            found = match_pattern(addr, body)
        if found:
            if negated:
                return -1
            result = 1
    return result


# --------------------------------------------------------------------------------------------
# Keyword table (servconf.c keywords[]) and value parsing


class _Merge(Enum):
    FIRST = "first"  # the first active line sets it (most options)
    LAST = "last"  # every active line overwrites it (MaxStartups, IPQoS, FingerprintHash, ...)
    APPEND = "append"  # every active line adds to it (HostKey, AllowUsers, AcceptEnv, ...)
    REKEY = "rekey"  # RekeyLimit: the byte limit and the interval are set independently
    IGNORED = "ignored"  # deprecated or unsupported: accepted, logged, no effect


@dataclass(frozen=True)
class _Context:
    """What a value parser needs besides the arguments."""

    keyword: str
    args: tuple[str, ...]
    rest: str
    home_of: Callable[[str], str | None]  # user -> home directory in the image


_Parser = Callable[[_Context], tuple[str, ...]]


@dataclass(frozen=True)
class _Keyword:
    name: str  # canonical, as sshd -T prints it
    in_match: bool  # SSHCFG_MATCH: allowed inside a Match block
    parse: _Parser
    merge: _Merge = _Merge.FIRST
    note: str = ""


def _one(ctx: _Context) -> str:
    """The single argument of a one-argument keyword."""
    if not ctx.args or ctx.args[0] == "":
        raise _BadValue(f"{ctx.keyword} missing argument")
    if len(ctx.args) > 1:
        raise _BadValue(f"keyword {ctx.keyword} extra arguments at end of line")
    return ctx.args[0]


def _choices(table: dict[str, str], case_sensitive: bool = False) -> _Parser:
    """A keyword with a fixed set of values; `table` maps each accepted spelling to sshd's."""

    def parse(ctx: _Context) -> tuple[str, ...]:
        arg = _one(ctx)
        value = table.get(arg if case_sensitive else arg.lower())
        if value is None:
            raise _BadValue(f'unsupported option "{arg}"')
        return (value,)

    return parse


_flag = _choices({"yes": "yes", "no": "no"})
_ROOT_LOGIN = {
    "yes": "yes",
    "no": "no",
    "prohibit-password": "prohibit-password",
    "without-password": "prohibit-password",
    "forced-commands-only": "forced-commands-only",
}
_TCP_FORWARDING = {"yes": "yes", "all": "yes", "no": "no", "remote": "remote", "local": "local"}
_tcp_forwarding = _choices(_TCP_FORWARDING)
_ADDRESS_FAMILY = {"inet": "inet", "inet6": "inet6", "any": "any"}
_IGNORE_RHOSTS = {"yes": "yes", "no": "no", "shosts-only": "shosts-only"}
_COMPRESSION = {"yes": "yes", "delayed": "yes", "no": "no"}  # sshd prints "delayed" as "yes"
_GATEWAY_PORTS = {"clientspecified": "clientspecified", "yes": "yes", "no": "no"}
_TUNNEL = {v: v for v in ("no", "point-to-point", "ethernet", "yes")}  # matched case-sensitively


def _strtonum(text: str, low: int, high: int) -> int | None:
    """OpenBSD strtonum: a decimal integer in [low, high], else None."""
    if not re.fullmatch(r"[ \t\n\v\f\r]*[+-]?[0-9]+", text):
        return None
    value = int(text.strip())
    return value if low <= value <= high else None


def _integer(ctx: _Context) -> tuple[str, ...]:
    value = _strtonum(_one(ctx), 0, _INT_MAX)
    if value is None:
        raise _BadValue(f"{ctx.keyword} integer value invalid")
    return (str(value),)


_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def convtime(text: str) -> int | None:
    """misc.c convtime: "1h30m" -> 5400 seconds; None when invalid."""
    if not re.fullmatch(r"(?:[0-9]+[smhdwSMHDW]?)+", text):
        return None
    total = 0
    for number, unit in re.findall(r"([0-9]+)([smhdwSMHDW]?)", text):
        total += int(number) * _TIME_UNITS[unit.lower()]
        if total > _INT_MAX:
            return None
    return total


def _time(ctx: _Context) -> tuple[str, ...]:
    seconds = convtime(_one(ctx))
    if seconds is None:
        raise _BadValue("invalid time value")
    return (str(seconds),)


def _time_or_none(ctx: _Context) -> tuple[str, ...]:
    return ("none",) if _one(ctx).lower() == "none" else _time(ctx)


def _tilde_expand(ctx: _Context, path: str) -> str:
    """misc.c tilde_expand_filename as sshd (running as root) applies it to file options."""
    if not path.startswith("~"):
        return path
    user, slash, tail = path[1:].partition("/")
    home = ctx.home_of(user or "root")
    if home is None:
        raise _BadValue(f"tilde_expand: No such user {user or 'root'}")
    return posixpath.join(home, tail) if slash else home


def _absolute_path(ctx: _Context, path: str) -> str:
    """servconf.c derelativise_path; sshd started by init runs in "/", so that is the base."""
    if path.lower() == "none":
        return "none"
    expanded = _tilde_expand(ctx, path)
    return expanded if expanded.startswith("/") else posixpath.join("/", expanded)


def _path(ctx: _Context) -> tuple[str, ...]:
    return (_absolute_path(ctx, _one(ctx)),)


def _string(ctx: _Context) -> tuple[str, ...]:
    return (_one(ctx),)


def _raw(ctx: _Context) -> tuple[str, ...]:
    """Keywords sshd stores as the unsplit rest of the line (ForceCommand, VersionAddendum)."""
    return (ctx.rest.lstrip(_WHITESPACE),)


def _command(ctx: _Context) -> tuple[str, ...]:
    rest = ctx.rest.lstrip(_WHITESPACE)
    if not rest.startswith("/") and rest.lower() != "none":
        raise _BadValue(f"{ctx.keyword} must be an absolute path")
    return (rest,)


def _words(ctx: _Context, check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
    """All arguments, each checked; `check` returns an error message or None."""
    for arg in ctx.args:
        if arg == "":
            raise _BadValue(f"keyword {ctx.keyword} empty argument")
        problem = check(arg) if check else None
        if problem:
            raise _BadValue(problem)
    return ctx.args


def _word_list(ctx: _Context) -> tuple[str, ...]:
    return _words(ctx)


def _authorized_keys_file(ctx: _Context) -> tuple[str, ...]:
    return tuple(_tilde_expand(ctx, arg) for arg in _words(ctx))


def _authorized_principals_file(ctx: _Context) -> tuple[str, ...]:
    return (_tilde_expand(ctx, _one(ctx)),)


def _user_pattern(arg: str) -> str | None:
    # match_user() in test mode: only the host part after '@' can be invalid.
    _, at, host = arg.partition("@")
    if at and addr_match_list(None, host) == -2:
        return f'invalid pattern: "{arg}"'
    return None


def _users(ctx: _Context) -> tuple[str, ...]:
    return _words(ctx, _user_pattern)


def _accept_env(ctx: _Context) -> tuple[str, ...]:
    return _words(ctx, lambda arg: "Invalid environment name." if "=" in arg else None)


def _set_env(ctx: _Context) -> tuple[str, ...]:
    _words(ctx, lambda arg: None if "=" in arg else "Invalid environment.")
    kept: dict[str, str] = {}
    for arg in ctx.args:
        kept.setdefault(arg.split("=", 1)[0], arg)  # a repeated name: the first one is kept
    return tuple(kept.values())


def _log_verbose(ctx: _Context) -> tuple[str, ...]:
    args = _words(ctx)
    if any(a.lower() == "none" for a in args) and len(args) > 1:
        raise _BadValue(f'keyword {ctx.keyword} "none" argument must appear alone.')
    return args


_AUTH_METHODS = {"publickey", "password", "keyboard-interactive", "hostbased", "gssapi-with-mic"}


def _authentication_methods(ctx: _Context) -> tuple[str, ...]:
    args = _words(ctx)
    if "any" in args and len(args) > 1:
        raise _BadValue(f'"any" must appear alone in {ctx.keyword}')
    for arg in args:
        if arg == "any":
            continue
        for method in arg.split(","):
            if method.split(":", 1)[0] not in _AUTH_METHODS | {"gssapi-keyex"}:
                raise _BadValue(f"invalid {ctx.keyword} method list.")
    return args


def _channel_timeout(ctx: _Context) -> tuple[str, ...]:
    def check(arg: str) -> str | None:
        if arg.lower() == "none":
            return None
        kind, eq, interval = arg.partition("=")
        return None if kind and eq and convtime(interval) is not None else f"invalid {arg}"

    return _words(ctx, check)


def _port_number(text: str) -> int | None:
    """misc.c a2port: a number 0-65535 or a TCP service name."""
    number = _strtonum(text, 0, 65535)
    if number is not None:
        return number
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        return None


def _port(ctx: _Context) -> tuple[str, ...]:
    port = _port_number(_one(ctx))
    if port is None or port <= 0:
        raise _BadValue("Badly formatted port number.")
    return (str(port),)


def _host_port(text: str) -> tuple[str, str | None] | None:
    """misc.c hpdelim + cleanhostname: "[v6]:port", "host:port" or "host"."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        host, tail = text[1:end], text[end + 1 :]
        if tail and tail[0] not in ":/":
            return None
        return host, tail[1:] if tail else None
    split = re.search(r"[:/]", text)
    if split is None:
        return text, None
    return text[: split.start()], text[split.end() :]


def _listen_address(ctx: _Context) -> tuple[str, ...]:
    """One ListenAddress as (host, port or "0" for every Port, rdomain or "")."""
    if not ctx.args:
        raise _BadValue("missing address")
    arg, extra = ctx.args[0], ctx.args[1:]
    if "[" not in arg and arg.count(":") >= 2:
        host, port = arg, "0"  # a bare IPv6 address: no port in it
    else:
        parsed = _host_port(arg)
        if parsed is None:
            raise _BadValue("bad address:port usage")
        host, port_text = parsed
        port_number = 0 if port_text is None else _port_number(port_text)
        if port_number is None or (port_text is not None and port_number <= 0):
            raise _BadValue("bad port number")
        port = str(port_number)
    if extra and (len(extra) != 2 or extra[0] != "rdomain"):
        raise _BadValue("bad ListenAddress syntax")
    return host, port, extra[1] if extra else ""


def _subsystem(ctx: _Context) -> tuple[str, ...]:
    if len(ctx.args) < 2 or not ctx.args[0] or not ctx.args[1]:
        raise _BadValue("Missing subsystem command.")
    return (" ".join(ctx.args),)


def _max_startups(ctx: _Context) -> tuple[str, ...]:
    arg = _one(ctx)
    full = re.fullmatch(r"([0-9]+):([0-9]+):([0-9]+)", arg)
    if full:
        begin, rate, most = (int(g) for g in full.groups())
        if begin > most or not 1 <= rate <= 100:
            raise _BadValue(f"Invalid {ctx.keyword} spec.")
        return (f"{begin}:{rate}:{most}",)
    if re.fullmatch(r"[0-9]+", arg):
        return (f"{arg}:30:{arg}",)  # sshd fills the rate default, begin == max
    raise _BadValue(f"Invalid {ctx.keyword} spec.")


def _per_source_max_startups(ctx: _Context) -> tuple[str, ...]:
    return ("none",) if _one(ctx) == "none" else _integer(ctx)


def _per_source_net_block_size(ctx: _Context) -> tuple[str, ...]:
    found = re.fullmatch(r"([0-9]+)(?::([0-9]+))?", _one(ctx))
    if not found or int(found[1]) > 32 or (found[2] is not None and int(found[2]) > 128):
        raise _BadValue(f"Invalid {ctx.keyword} spec.")
    return (f"{int(found[1])}:{int(found[2] or 128)}",)


# misc.c ipqos[] as of OpenSSH 9.2; sshd prints the first name that has the value.
_IPQOS = {
    **{f"af{c}{d}": (8 * c + 2 * d) << 2 for c in range(1, 5) for d in range(1, 4)},
    **{f"cs{n}": n << 5 for n in range(8)},
    "ef": 0xB8,
    "le": 0x04,
    "lowdelay": 0x10,
    "throughput": 0x08,
    "reliability": 0x04,
}


def _c_integer(text: str) -> int | None:
    """strtol(text, &end, 0) consuming the whole string: decimal, 0x hex or 0 octal."""
    found = re.fullmatch(r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not found:
        return None
    digits = found[2]
    base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") else 10
    value = int(digits, base)
    return -value if found[1] == "-" else value


def _ipqos_name(value: int) -> str:
    return next((name for name, v in _IPQOS.items() if v == value), f"0x{value:02x}")


def _ipqos(ctx: _Context) -> tuple[str, ...]:
    if not 1 <= len(ctx.args) <= 2:
        raise _BadValue(f"{ctx.keyword} missing argument.")
    values = []
    for arg in ctx.args:
        value = _IPQOS.get(arg.lower())
        if value is None:
            value = _c_integer(arg)
        if value is not None and not 0 <= value <= 255:
            value = None
        if value is None:
            raise _BadValue(f"Bad {ctx.keyword} value: {arg}")
        values.append(_ipqos_name(value))
    return values[0], values[-1]


_SCALE = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50, "e": 2**60}


def _rekey_limit(ctx: _Context) -> tuple[str, ...]:
    """(limit bytes, interval seconds or "" when not given)."""
    if not 1 <= len(ctx.args) <= 2:
        raise _BadValue(f"{ctx.keyword} missing argument.")
    limit_text = ctx.args[0]
    if limit_text == "default":
        limit = 0
    else:
        found = re.fullmatch(r"([0-9]+)([bBkKmMgGtTpPeE]?)", limit_text)
        if not found:
            raise _BadValue(f"Bad {ctx.keyword} number '{limit_text}'")
        limit = int(found[1]) * _SCALE[found[2].lower()]
        if 0 < limit < 16:
            raise _BadValue(f"{ctx.keyword} too small")
    interval = ""
    if len(ctx.args) == 2 and ctx.args[1] != "none":
        seconds = convtime(ctx.args[1])
        if seconds is None:
            raise _BadValue("invalid time value")
        interval = str(seconds)
    return str(limit), interval


def _pubkey_auth_options(ctx: _Context) -> tuple[str, ...]:
    chosen = set()
    for arg in ctx.args:
        if arg.lower() not in ("none", "touch-required", "verify-required"):
            raise _BadValue(f"unsupported {ctx.keyword} option {arg}")
        chosen.add(arg.lower())
    ordered = tuple(o for o in ("touch-required", "verify-required") if o in chosen)
    return ordered or ("none",)


def _permit_user_environment(ctx: _Context) -> tuple[str, ...]:
    return (_one(ctx),)  # "yes", "no" (case-sensitive) or a pattern list, printed as given


def _permit_open(ctx: _Context) -> tuple[str, ...]:
    args = _words(ctx)
    if args[0] in ("any", "none"):
        return (args[0],)
    listen = ctx.keyword.lower() == "permitlisten"
    result = []
    for arg in args:
        spec = f"*:{arg}" if listen and ":" not in arg else arg
        parsed = _host_port(spec)
        port = parsed[1] if parsed else None
        if parsed is None or port is None or (port != "*" and not (_port_number(port) or 0) > 0):
            raise _BadValue(f"{ctx.keyword} bad port number")
        result.append(spec)
    return tuple(result)


def _stream_local_bind_mask(ctx: _Context) -> tuple[str, ...]:
    arg = _one(ctx)
    found = re.match(r"[ \t]*\+?([0-7]+)", arg)
    if not found or int(found[1], 8) > 0o777:
        raise _BadValue(f"Invalid {ctx.keyword}.")
    return (f"0{int(found[1], 8):o}",)


_LOG_LEVELS = {
    "quiet": "QUIET",
    "fatal": "FATAL",
    "error": "ERROR",
    "info": "INFO",
    "verbose": "VERBOSE",
    "debug": "DEBUG",
    "debug1": "DEBUG",
    "debug2": "DEBUG2",
    "debug3": "DEBUG3",
}
_FACILITIES = {n: n.upper() for n in ("daemon", "user", "auth", "authpriv")} | {
    f"local{n}": f"LOCAL{n}" for n in range(8)
}
_DIGESTS = {n.lower(): n for n in ("MD5", "SHA1", "SHA256", "SHA384", "SHA512")}


def _host_key_agent(ctx: _Context) -> tuple[str, ...]:
    arg = _one(ctx)
    return (arg,) if arg == "SSH_AUTH_SOCK" else (_absolute_path(ctx, arg),)


def _security_key_provider(ctx: _Context) -> tuple[str, ...]:
    arg = _one(ctx)
    return (arg,) if arg.lower() == "internal" else (_absolute_path(ctx, arg),)


def _ignored(ctx: _Context) -> tuple[str, ...]:
    return ()


def _table() -> dict[str, _Keyword]:
    """Every keyword sshd accepts, by lowercase spelling (servconf.c keywords[], OpenSSH 9.x)."""
    g, a = False, True  # SSHCFG_GLOBAL only / SSHCFG_ALL
    first, last, append = _Merge.FIRST, _Merge.LAST, _Merge.APPEND
    rows: list[tuple[str, str, bool, _Parser, _Merge]] = [
        ("usepam", "usepam", g, _flag, first),
        ("port", "port", g, _port, append),
        ("hostkey", "hostkey", g, _path, append),
        ("hostdsakey", "hostkey", g, _path, append),
        ("hostkeyagent", "hostkeyagent", g, _host_key_agent, first),
        ("pidfile", "pidfile", g, _path, first),
        ("modulifile", "modulifile", g, _path, first),
        ("logingracetime", "logingracetime", g, _time, first),
        ("permitrootlogin", "permitrootlogin", a, _choices(_ROOT_LOGIN), first),
        ("syslogfacility", "syslogfacility", g, _choices(_FACILITIES), first),
        ("loglevel", "loglevel", a, _choices(_LOG_LEVELS), first),
        ("logverbose", "logverbose", a, _log_verbose, first),
        ("hostbasedauthentication", "hostbasedauthentication", a, _flag, first),
        ("hostbasedusesnamefrompacketonly", "hostbasedusesnamefrompacketonly", a, _flag, first),
        ("hostbasedacceptedalgorithms", "hostbasedacceptedalgorithms", a, _string, first),
        ("hostbasedacceptedkeytypes", "hostbasedacceptedalgorithms", a, _string, first),
        ("hostkeyalgorithms", "hostkeyalgorithms", g, _string, first),
        ("pubkeyauthentication", "pubkeyauthentication", a, _flag, first),
        ("dsaauthentication", "pubkeyauthentication", g, _flag, first),
        ("pubkeyacceptedalgorithms", "pubkeyacceptedalgorithms", a, _string, first),
        ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms", a, _string, first),
        ("pubkeyauthoptions", "pubkeyauthoptions", a, _pubkey_auth_options, first),
        ("kerberosauthentication", "kerberosauthentication", a, _flag, first),
        ("kerberosorlocalpasswd", "kerberosorlocalpasswd", g, _flag, first),
        ("kerberosticketcleanup", "kerberosticketcleanup", g, _flag, first),
        ("gssapiauthentication", "gssapiauthentication", a, _flag, first),
        ("gssapicleanupcredentials", "gssapicleanupcredentials", g, _flag, first),
        ("gssapistrictacceptorcheck", "gssapistrictacceptorcheck", g, _flag, first),
        ("passwordauthentication", "passwordauthentication", a, _flag, first),
        ("kbdinteractiveauthentication", "kbdinteractiveauthentication", a, _flag, first),
        ("challengeresponseauthentication", "kbdinteractiveauthentication", a, _flag, first),
        ("skeyauthentication", "kbdinteractiveauthentication", a, _flag, first),
        ("listenaddress", "listenaddress", g, _listen_address, append),
        ("addressfamily", "addressfamily", g, _choices(_ADDRESS_FAMILY), first),
        ("printmotd", "printmotd", g, _flag, first),
        ("printlastlog", "printlastlog", g, _flag, first),
        ("ignorerhosts", "ignorerhosts", a, _choices(_IGNORE_RHOSTS), first),
        ("ignoreuserknownhosts", "ignoreuserknownhosts", g, _flag, first),
        ("x11forwarding", "x11forwarding", a, _flag, first),
        ("x11displayoffset", "x11displayoffset", a, _integer, first),
        ("x11uselocalhost", "x11uselocalhost", a, _flag, first),
        ("xauthlocation", "xauthlocation", g, _path, first),
        ("strictmodes", "strictmodes", g, _flag, first),
        ("permitemptypasswords", "permitemptypasswords", a, _flag, first),
        ("permituserenvironment", "permituserenvironment", g, _permit_user_environment, first),
        ("compression", "compression", g, _choices(_COMPRESSION), first),
        ("rekeylimit", "rekeylimit", a, _rekey_limit, _Merge.REKEY),
        ("tcpkeepalive", "tcpkeepalive", g, _flag, first),
        ("keepalive", "tcpkeepalive", g, _flag, first),
        ("allowtcpforwarding", "allowtcpforwarding", a, _tcp_forwarding, first),
        ("allowagentforwarding", "allowagentforwarding", a, _flag, first),
        ("allowusers", "allowusers", a, _users, append),
        ("denyusers", "denyusers", a, _users, append),
        ("allowgroups", "allowgroups", a, _word_list, append),
        ("denygroups", "denygroups", a, _word_list, append),
        ("ciphers", "ciphers", g, _string, first),
        ("macs", "macs", g, _string, first),
        ("gatewayports", "gatewayports", a, _choices(_GATEWAY_PORTS), first),
        ("subsystem", "subsystem", g, _subsystem, append),
        ("maxstartups", "maxstartups", g, _max_startups, last),
        ("persourcemaxstartups", "persourcemaxstartups", g, _per_source_max_startups, last),
        ("persourcenetblocksize", "persourcenetblocksize", g, _per_source_net_block_size, last),
        ("maxauthtries", "maxauthtries", a, _integer, first),
        ("maxsessions", "maxsessions", a, _integer, first),
        ("banner", "banner", a, _path, first),
        ("usedns", "usedns", g, _flag, first),
        ("clientaliveinterval", "clientaliveinterval", a, _time, first),
        ("clientalivecountmax", "clientalivecountmax", a, _integer, first),
        ("authorizedkeysfile", "authorizedkeysfile", a, _authorized_keys_file, first),
        ("acceptenv", "acceptenv", a, _accept_env, append),
        ("setenv", "setenv", a, _set_env, first),
        ("permittunnel", "permittunnel", a, _choices(_TUNNEL, case_sensitive=True), first),
        ("permittty", "permittty", a, _flag, first),
        ("permituserrc", "permituserrc", a, _flag, first),
        ("permitopen", "permitopen", a, _permit_open, first),
        ("permitlisten", "permitlisten", a, _permit_open, first),
        ("forcecommand", "forcecommand", a, _raw, first),
        ("chrootdirectory", "chrootdirectory", a, _string, first),
        ("hostcertificate", "hostcertificate", g, _path, append),
        ("revokedkeys", "revokedkeys", a, _path, first),
        ("trustedusercakeys", "trustedusercakeys", a, _path, first),
        (
            "authorizedprincipalsfile",
            "authorizedprincipalsfile",
            a,
            _authorized_principals_file,
            first,
        ),
        ("kexalgorithms", "kexalgorithms", g, _string, first),
        ("ipqos", "ipqos", a, _ipqos, last),
        ("authorizedkeyscommand", "authorizedkeyscommand", a, _command, first),
        ("authorizedkeyscommanduser", "authorizedkeyscommanduser", a, _string, first),
        # servconf.c tests AuthorizedKeysCommand, not this option, before setting it, so with
        # no AuthorizedKeysCommand every line overwrites it (sshd -T confirms: the last wins).
        ("authorizedprincipalscommand", "authorizedprincipalscommand", a, _command, last),
        ("authorizedprincipalscommanduser", "authorizedprincipalscommanduser", a, _string, first),
        ("versionaddendum", "versionaddendum", g, _raw, first),
        ("authenticationmethods", "authenticationmethods", a, _authentication_methods, first),
        ("streamlocalbindmask", "streamlocalbindmask", a, _stream_local_bind_mask, last),
        ("streamlocalbindunlink", "streamlocalbindunlink", a, _flag, first),
        ("allowstreamlocalforwarding", "allowstreamlocalforwarding", a, _tcp_forwarding, first),
        ("fingerprinthash", "fingerprinthash", g, _choices(_DIGESTS), last),
        ("disableforwarding", "disableforwarding", a, _flag, first),
        ("exposeauthinfo", "exposeauthinfo", a, _flag, first),
        ("rdomain", "rdomain", a, _string, first),
        ("casignaturealgorithms", "casignaturealgorithms", a, _string, first),
        ("securitykeyprovider", "securitykeyprovider", g, _security_key_provider, first),
        ("requiredrsasize", "requiredrsasize", a, _integer, first),
        ("channeltimeout", "channeltimeout", a, _channel_timeout, first),
        ("unusedconnectiontimeout", "unusedconnectiontimeout", a, _time_or_none, first),
        # Distribution patches (GSSAPI key exchange: Debian, Ubuntu, Fedora, RHEL; Debian banner).
        ("gssapikeyexchange", "gssapikeyexchange", g, _flag, first),
        ("gssapistorecredentialsonrekey", "gssapistorecredentialsonrekey", g, _flag, first),
        ("gssapikexalgorithms", "gssapikexalgorithms", g, _string, first),
        ("gssapienablek5users", "gssapienablek5users", a, _flag, first),
        ("kerberosusekuserok", "kerberosusekuserok", a, _flag, first),
        ("debianbanner", "debianbanner", g, _flag, first),
        # Newer OpenSSH releases (9.8+); accepted so an image with a newer sshd is not misjudged.
        ("persourcepenalties", "persourcepenalties", g, _word_list, first),
        ("persourcepenaltyexemptlist", "persourcepenaltyexemptlist", g, _string, first),
        ("sshdsessionpath", "sshdsessionpath", g, _path, first),
        ("sshdauthpath", "sshdauthpath", g, _path, first),
        ("refuseconnection", "refuseconnection", a, _flag, first),
        # Handled while walking the files, never stored.
        ("match", "match", a, _ignored, first),
        ("include", "include", a, _ignored, first),
    ]
    table = {row[0]: _Keyword(*row[1:]) for row in rows}
    ignored = [
        ("pamauthenticationviakbdint", g, "Deprecated"),
        ("serverkeybits", g, "Deprecated"),
        ("keyregenerationinterval", g, "Deprecated"),
        ("rhostsauthentication", g, "Deprecated"),
        ("rhostsrsaauthentication", a, "Deprecated"),
        ("rsaauthentication", a, "Deprecated"),
        ("kerberosgetafstoken", g, "Unsupported"),
        ("kerberostgtpassing", g, "Unsupported"),
        ("afstokenpassing", g, "Unsupported"),
        ("checkmail", g, "Deprecated"),
        ("uselogin", g, "Deprecated"),
        ("verifyreversemapping", g, "Deprecated"),
        ("reversemappingcheck", g, "Deprecated"),
        ("authorizedkeysfile2", a, "Deprecated"),
        ("useprivilegeseparation", g, "Deprecated"),
        ("protocol", g, ""),  # sIgnore: logged at debug level only
    ]
    for spelling, scope, note in ignored:
        table[spelling] = _Keyword(spelling, scope, _ignored, _Merge.IGNORED, note)
    return table


_KEYWORDS = _table()
# The keywords `sshd -T` prints with the rest of the line as one value, or one line per entry.
_MULTI_VALUE = {
    "authorizedkeysfile",
    "authenticationmethods",
    "ipqos",
    "rekeylimit",
    "permitopen",
    "permitlisten",
    "pubkeyauthoptions",
    "logverbose",
    "channeltimeout",
    "persourcepenalties",
}
_REPEATED = {
    "port",
    "listenaddress",
    "hostkey",
    "hostcertificate",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "acceptenv",
    "setenv",
    "subsystem",
}


def canonical_keyword(keyword: str) -> str:
    """The name `sshd -T` uses for a keyword or any alias of it; KeyError if sshd has none."""
    spec = _KEYWORDS.get(keyword.lower())
    if spec is None or spec.merge is _Merge.IGNORED or spec.name in ("match", "include"):
        raise KeyError(f"not an sshd_config keyword with a value: {keyword}")
    return spec.name


# --------------------------------------------------------------------------------------------
# Compiled-in defaults (servconf.c fill_default_server_options, OpenSSH 9.2 portable)

_ANY_V4 = "0.0.0.0"  # noqa: S104 - how sshd -T prints the IPv4 wildcard; nothing binds here
_DEFAULT_HOST_KEYS = (
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
)
_ALL_KEY_ALGORITHMS = (
    "ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,"
    "sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,"
    "rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,"
    "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
    "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256"
)
_DEFAULTS: dict[str, tuple[str, ...]] = {
    "port": ("22",),
    "addressfamily": ("any",),
    "usepam": ("no",),
    "logingracetime": ("120",),
    "x11displayoffset": ("10",),
    "maxauthtries": ("6",),
    "maxsessions": ("10",),
    "clientaliveinterval": ("0",),
    "clientalivecountmax": ("3",),
    "requiredrsasize": ("1024",),
    "streamlocalbindmask": ("0177",),
    "unusedconnectiontimeout": ("none",),
    "permitrootlogin": ("prohibit-password",),
    "ignorerhosts": ("yes",),
    "ignoreuserknownhosts": ("no",),
    "hostbasedauthentication": ("no",),
    "hostbasedusesnamefrompacketonly": ("no",),
    "pubkeyauthentication": ("yes",),
    "kerberosauthentication": ("no",),
    "kerberosorlocalpasswd": ("yes",),
    "kerberosticketcleanup": ("yes",),
    "gssapiauthentication": ("no",),
    "gssapicleanupcredentials": ("yes",),
    "gssapistrictacceptorcheck": ("yes",),
    "passwordauthentication": ("yes",),
    "kbdinteractiveauthentication": ("yes",),
    "printmotd": ("yes",),
    "printlastlog": ("yes",),
    "x11forwarding": ("no",),
    "x11uselocalhost": ("yes",),
    "permittty": ("yes",),
    "permituserrc": ("yes",),
    "strictmodes": ("yes",),
    "tcpkeepalive": ("yes",),
    "permitemptypasswords": ("no",),
    "compression": ("yes",),
    "gatewayports": ("no",),
    "usedns": ("no",),
    "allowtcpforwarding": ("yes",),
    "allowagentforwarding": ("yes",),
    "disableforwarding": ("no",),
    "allowstreamlocalforwarding": ("yes",),
    "streamlocalbindunlink": ("no",),
    "fingerprinthash": ("SHA256",),
    "exposeauthinfo": ("no",),
    # Build-dependent paths: the values of the common Linux distribution packages.
    "pidfile": ("/run/sshd.pid",),
    "modulifile": ("/etc/ssh/moduli",),
    "xauthlocation": ("/usr/bin/xauth",),
    "ciphers": (
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
        "aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ),
    "macs": (
        "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
        "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,"
        "umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    ),
    "banner": ("none",),
    "forcecommand": ("none",),
    "chrootdirectory": ("none",),
    "trustedusercakeys": ("none",),
    "revokedkeys": ("none",),
    "securitykeyprovider": ("internal",),
    "authorizedprincipalsfile": ("none",),
    "versionaddendum": ("none",),
    "authorizedkeyscommand": ("none",),
    "authorizedkeyscommanduser": ("none",),
    "authorizedprincipalscommand": ("none",),
    "authorizedprincipalscommanduser": ("none",),
    "hostkeyagent": ("none",),
    "kexalgorithms": (
        "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
        "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,"
        "diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,"
        "diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    ),
    "casignaturealgorithms": (
        "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,"
        "sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256",
    ),
    "hostbasedacceptedalgorithms": (_ALL_KEY_ALGORITHMS,),
    "hostkeyalgorithms": (_ALL_KEY_ALGORITHMS,),
    "pubkeyacceptedalgorithms": (_ALL_KEY_ALGORITHMS,),
    "rdomain": ("none",),
    "loglevel": ("INFO",),
    "syslogfacility": ("AUTH",),
    "authorizedkeysfile": (".ssh/authorized_keys", ".ssh/authorized_keys2"),
    "hostkey": _DEFAULT_HOST_KEYS,
    "authenticationmethods": ("any",),
    "maxstartups": ("10:30:100",),
    "persourcemaxstartups": ("none",),
    "persourcenetblocksize": ("32:128",),
    "permittunnel": ("no",),
    "ipqos": ("af21", "cs1"),
    "rekeylimit": ("0", "0"),
    "permitopen": ("any",),
    "permitlisten": ("any",),
    "permituserenvironment": ("no",),
    "pubkeyauthoptions": ("none",),
    "gssapikeyexchange": ("no",),
    "gssapistorecredentialsonrekey": ("no",),
    "gssapienablek5users": ("no",),
    "kerberosusekuserok": ("yes",),
    "debianbanner": ("yes",),
    "refuseconnection": ("no",),
}


# --------------------------------------------------------------------------------------------
# Reading files and walking them the way sshd does


@dataclass(frozen=True)
class _Parsed:
    """A line with its keyword looked up and its arguments checked (independent of Match)."""

    line: _Line
    spec: _Keyword | None  # None: sshd does not know the keyword
    args: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    error: str | None = None  # sshd rejects the line


def _parse_line(line: _Line, home_of: Callable[[str], str | None]) -> _Parsed:
    """Check one line as process_server_config_line_depth does before acting on it."""
    if not line.rest:
        return _Parsed(line, None, error=f'no argument after keyword "{line.keyword}"')
    spec = _KEYWORDS.get(line.keyword.lower())
    if spec is None:
        return _Parsed(line, None, error=f"Bad configuration option: {line.keyword}")
    try:
        args = tuple(_argv_split(line.rest))
    except _BadValue as exc:
        return _Parsed(line, spec, error=str(exc))
    if spec.name in ("match", "include"):
        return _Parsed(line, spec, args)
    ctx = _Context(line.keyword, args, line.rest, home_of)
    try:
        return _Parsed(line, spec, args, spec.parse(ctx))
    except _BadValue as exc:
        return _Parsed(line, spec, args, error=str(exc))


_MATCH_CRITERIA = ("user", "group", "host", "address", "localaddress", "localport", "rdomain")


def _match_criteria(rest: str | None) -> Iterator[tuple[str, str]]:
    """The (criterion, pattern list) pairs of a Match line, checked as match_cfg_line does.

    "all" is yielded as ("all", ""). Raises _BadValue where sshd reports a bad Match condition.
    """
    attributes = 0
    cursor = rest
    while True:
        attrib, cursor = _strdelim(cursor)
        if not attrib or attrib.startswith("#"):
            break
        attributes += 1
        if attrib.lower() == "all":
            following, _ = _strdelim(cursor)
            if attributes > 1 or (following and not following.startswith("#")):
                raise _BadValue("'all' cannot be combined with other Match attributes")
            yield "all", ""
            return
        arg, cursor = _strdelim(cursor)
        if not arg or arg.startswith("#"):
            raise _BadValue(f"Missing Match criteria for {attrib}")
        name = attrib.lower()
        if name not in _MATCH_CRITERIA:
            raise _BadValue(f"Unsupported Match attribute {attrib}")
        if name in ("address", "localaddress") and addr_match_list(None, arg) != 0:
            raise _BadValue(f"Invalid Match {name} argument '{arg}'")
        if name == "localport" and _port_number(arg) is None:
            raise _BadValue(f"Invalid LocalPort '{arg}' on Match line")
        yield name, arg
    if attributes == 0:
        raise _BadValue("One or more attributes required for Match")


def _criterion_matches(name: str, patterns: str, ci: ConnectionInfo) -> bool:
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
        return ci.lport is not None and _port_number(patterns) == ci.lport
    return ci.rdomain is not None and match_pattern_list(ci.rdomain, patterns) == 1


def _match_result(rest: str | None, ci: ConnectionInfo | None) -> bool:
    """match_cfg_line: all criteria are ANDed; without a connection only "all" matches."""
    result = True
    for name, patterns in _match_criteria(rest):
        if name == "all":
            return True
        if ci is None or not _criterion_matches(name, patterns, ci):
            result = False  # keep going: later criteria must still be well-formed
    return result


class _Flags(Enum):
    NORMAL = 0
    NEVER_MATCH = 1  # SSHCFG_NEVERMATCH: an include inside a Match block that does not apply
    MATCH_ONLY = 2  # SSHCFG_MATCH_ONLY: connection pass, before the file's first Match


@dataclass
class _Walk:
    """One pass over the configuration: for start-up (ci None) or for a connection."""

    ci: ConnectionInfo | None
    emit: Callable[[_Parsed, bool], None]  # every option line sshd acts on, and whether active
    report: Callable[[_Line, str], None]
    active: bool = True
    matches: list[_Parsed] = dataclasses.field(default_factory=list)  # Match lines, in order


class _Reader:
    """The image's files, read once, with sshd's Include and Match logic on top."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        self.files: list[str] = []
        self._parsed: dict[str, list[_Parsed] | None] = {}
        self._globs: dict[str, list[str]] = {}
        self._homes: dict[str, str] | None = None

    def home_of(self, user: str) -> str | None:
        if self._homes is None:
            self._homes = {e[0]: e[5] for e in _passwd_entries(self.source)}
        home = self._homes.get(user)
        return "/root" if home is None and user == "root" else home

    def parsed(self, path: str) -> list[_Parsed] | None:
        """A file's lines, parsed; None when sshd could not read it."""
        if path not in self._parsed:
            text = read_text_or_none(self.source, path)
            if text is None and self.source.is_dir(path):
                text = ""  # fopen() of a directory works on Linux; reading it yields nothing
            if text is not None:
                self.files.append(path)
            lines = None if text is None else _split_lines(path, text)
            self._parsed[path] = (
                None if lines is None else [_parse_line(line, self.home_of) for line in lines]
            )
        return self._parsed[path]

    def expand(self, pattern: str) -> list[str]:
        """The files an Include pattern names: glob(3), sorted; none is not an error."""
        if pattern not in self._globs:
            self._globs[pattern] = glob(self.source, pattern)
        return self._globs[pattern]

    def walk(self, path: str, walk: _Walk) -> None:
        flags = _Flags.NORMAL if walk.ci is None else _Flags.MATCH_ONLY
        walk.active = walk.ci is None
        self._walk_file(path, walk, flags, 0)

    def _walk_file(self, path: str, walk: _Walk, flags: _Flags, depth: int) -> None:
        for parsed in self.parsed(path) or ():
            flags = self._walk_line(parsed, walk, flags, depth)

    def _walk_line(self, parsed: _Parsed, walk: _Walk, flags: _Flags, depth: int) -> _Flags:
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

    def _walk_match(self, parsed: _Parsed, walk: _Walk, flags: _Flags) -> _Flags:
        walk.matches.append(parsed)
        ci = None if flags is _Flags.NEVER_MATCH else walk.ci
        try:
            result = _match_result(parsed.line.rest, ci)
        except _BadValue as exc:
            walk.report(parsed.line, f"Bad Match condition: {exc}")
            result = False
        walk.active = result and flags is not _Flags.NEVER_MATCH
        return _Flags.NORMAL if flags is _Flags.MATCH_ONLY else flags

    def _walk_include(self, parsed: _Parsed, walk: _Walk, flags: _Flags, depth: int) -> None:
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
                    return
                if self.parsed(path) is None:
                    walk.report(parsed.line, f"cannot read included file {path}")
                    continue
                self._walk_file(path, walk, inner, depth + 1)
                walk.active = saved


class _Store:
    """Options set by one pass, with sshd's rule for each keyword (first wins, appends, ...)."""

    def __init__(self) -> None:
        self.entries: dict[str, list[Setting]] = {}

    def apply(self, parsed: _Parsed) -> None:
        spec = parsed.spec
        if spec is None or spec.merge is _Merge.IGNORED:
            return
        setting = Setting(spec.name, parsed.values, parsed.line.location, parsed.line.text)
        current = self.entries.setdefault(spec.name, [])
        if spec.merge is _Merge.FIRST and current:
            return
        if spec.merge is _Merge.LAST:
            current.clear()
        current.append(setting)

    def conflict(self, parsed: _Parsed, active: bool) -> str | None:
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


# --------------------------------------------------------------------------------------------
# The parsed configuration and its effective values for one connection


class EffectiveConfig:
    """The options sshd applies to one connection: what `sshd -T -C user=,host=,addr=` prints."""

    def __init__(self, global_store: _Store, match_store: _Store, ci: ConnectionInfo) -> None:
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
            return Setting(name, _DEFAULTS.get(name, ()), "default")
        values = tuple(v for s in settings for v in s.values)
        return Setting(name, values, settings[0].source, settings[0].line)

    def as_dict(self) -> dict[str, tuple[str, ...]]:
        """Every keyword with its effective values, for comparing with `parse_sshd_t`."""
        names = {spec.name for spec in _KEYWORDS.values() if spec.merge is not _Merge.IGNORED}
        names -= {"match", "include"}
        return {name: self.get(name).values for name in sorted(names)}

    def _rekey_limit(self) -> Setting:
        # sshd keeps the byte limit and the interval as two options, each first-wins, and a
        # Match block overrides each one separately.
        lines = [*self._match.get("rekeylimit", ()), *self._global.get("rekeylimit", ())]
        if not lines:
            return Setting("rekeylimit", _DEFAULTS["rekeylimit"], "default")
        interval = next((s.values[1] for s in lines if s.values[1]), "0")
        return Setting("rekeylimit", (lines[0].values[0], interval), lines[0].source, lines[0].line)

    def _listen_addresses(self) -> Setting:
        """ListenAddress as sshd -T lists it: every address with every Port it applies to."""
        ports = self.get("port").values
        family = self.get("addressfamily").values[0]
        settings = self._global.get("listenaddress", [])
        if not settings:
            wildcard = {"inet": [_ANY_V4], "inet6": ["::"], "any": ["::", _ANY_V4]}[family]
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
    address = _parse_address(host)
    text = (
        f"[{address}]:{port}" if address and address.version == 6 else f"{address or host}:{port}"
    )
    return f"{text} rdomain {rdomain}" if rdomain else text


class SshdConfig:
    """An sshd_config and everything it includes, parsed once; evaluate it per connection."""

    def __init__(self, reader: _Reader, path: str) -> None:
        self.path = path
        self._reader = reader
        self.issues: list[Problem] = []
        self._global = _Store()
        startup = _Walk(None, self._collect, self._report)
        reader.walk(path, startup)
        self._match_lines = startup.matches
        self.files: list[str] = list(reader.files)
        self.problems: list[str] = [str(p) for p in self.issues]

    @property
    def rejected(self) -> bool:
        """True when sshd would refuse to start with this configuration."""
        return any(p.kind is Severity.FATAL for p in self.issues)

    def _collect(self, parsed: _Parsed, active: bool) -> None:
        self._note_deprecated(parsed)
        conflict = self._global.conflict(parsed, active)
        if conflict:
            self._report(parsed.line, conflict)
        elif active:
            self._global.apply(parsed)

    def _note_deprecated(self, parsed: _Parsed) -> None:
        spec = parsed.spec
        if spec is not None and spec.merge is _Merge.IGNORED and spec.note:
            message = f"{spec.note} option {parsed.line.keyword} (sshd ignores it)"
            self._add(Problem(parsed.line.location, message, Severity.WARNING))

    def _report(self, line: _Line, message: str) -> None:
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
        matched = _Store()

        def apply(parsed: _Parsed, active: bool) -> None:
            if active:
                matched.apply(parsed)

        self._reader.walk(self.path, _Walk(ci, apply, lambda line, message: None))
        return EffectiveConfig(self._global, matched, ci)

    def match_addresses(self) -> list[str]:
        """Every entry of every Match Address / LocalAddress pattern list, in reading order."""
        found = (e for parsed in self._match_lines for e in _address_entries(parsed.line.rest))
        return list(dict.fromkeys(found))


def _address_entries(rest: str | None) -> list[str]:
    try:
        pairs = list(_match_criteria(rest))
    except _BadValue:
        return []
    return [e for name, arg in pairs if name in ("address", "localaddress") for e in arg.split(",")]


# --------------------------------------------------------------------------------------------
# Public entry points


def parse_sshd_config(files: FileSource, path: str = DEFAULT_CONFIG) -> SshdConfig:
    """Parse an image's sshd_config (and its Includes); FileNotFoundError if it is absent."""
    reader = _Reader(files)
    if reader.parsed(path) is None or not files.is_file(path):
        raise FileNotFoundError(path)
    return SshdConfig(reader, path)


def parse_sshd_t(text: str) -> dict[str, tuple[str, ...]]:
    """Parse `sshd -T` output: lowercase keyword -> values.

    Keywords sshd prints once per entry (hostkey, listenaddress, port, acceptenv, subsystem, ...)
    accumulate one value per line; list keywords (authorizedkeysfile, ipqos, ...) split on
    whitespace; every other keyword is one value, the rest of its line.
    """
    result: dict[str, tuple[str, ...]] = {}
    for raw in text.splitlines():
        keyword, _, rest = raw.strip().partition(" ")
        if not keyword:
            continue
        keyword, rest = keyword.lower(), rest.strip()
        if keyword == "permitrootlogin" and rest == "without-password":
            rest = "prohibit-password"  # see the module docstring
        if keyword in _REPEATED:
            result[keyword] = (*result.get(keyword, ()), rest)
        elif keyword in _MULTI_VALUE:
            result[keyword] = tuple(rest.split())
        else:
            result[keyword] = (rest,)
    return result


def _passwd_entries(files: FileSource) -> list[list[str]]:
    text = read_text_or_none(files, "/etc/passwd") or ""
    return [f for f in (line.split(":") for line in text.splitlines()) if len(f) >= 7]


def user_groups(files: FileSource, user: str) -> tuple[str, ...]:
    """A user's primary and supplementary group names, from the image's /etc/passwd and /etc/group.

    Empty when the user does not exist (sshd's Match Group then never matches).
    """
    entry = next((e for e in _passwd_entries(files) if e[0] == user), None)
    if entry is None:
        return ()
    text = read_text_or_none(files, "/etc/group") or ""
    groups = [g for g in (line.split(":") for line in text.splitlines()) if len(g) >= 4]
    names = [g[0] for g in groups if g[2] == entry[3]][:1]  # getgrgid: the first entry wins
    names += [g[0] for g in groups if user in g[3].split(",")]
    return tuple(dict.fromkeys(names))


def vetting_addresses(config: SshdConfig) -> list[str]:
    """Scanner addresses that exercise every outcome of the config's Match Address patterns.

    The four fixed corners of 10.0.0.0/16 and 10.2.0.0/16, plus for every network or wildcard
    in a Match Address/LocalAddress pattern that overlaps them, the addresses on each side of
    its edges. At most 32, sorted.
    """
    candidates = {
        int(ipaddress.IPv4Address(a))
        for a in ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")
    }
    entries = [e.removeprefix("!") for e in config.match_addresses()]
    for entry in entries:
        candidates |= _edges(entry)
    ordered = sorted(candidates)
    if len(ordered) > _MAX_VETTING_ADDRESSES:
        ordered = _representatives(ordered, entries)
    return [str(ipaddress.IPv4Address(a)) for a in ordered]


def _in_vetting_ranges(address: int) -> bool:
    return any(
        int(n.network_address) <= address <= int(n.broadcast_address) for n in VETTING_NETWORKS
    )


def _edges(entry: str) -> set[int]:
    """Addresses in the vetting ranges on both sides of where `entry` starts or stops matching."""
    network = _parse_cidr(entry)
    if isinstance(network, ipaddress.IPv6Network) or network == _INCONSISTENT:
        return set()
    if isinstance(network, ipaddress.IPv4Network):
        first, last = int(network.network_address), int(network.broadcast_address)
        # Where the network's edges fall outside the ranges, the range corners already cover it.
        return {a for a in (first - 1, first, last, last + 1) if _in_vetting_ranges(a)}
    return _wildcard_edges(entry)


def _wildcard_edges(pattern: str) -> set[int]:
    """For a wildcard entry ("10.0.*"), the addresses where matching changes, by scanning."""
    edges: set[int] = set()
    regex = _pattern_regex(pattern)
    for vetting in VETTING_NETWORKS:
        previous: bool | None = None
        for address in range(int(vetting.network_address), int(vetting.broadcast_address) + 1):
            text = f"{address >> 24}.{address >> 16 & 255}.{address >> 8 & 255}.{address & 255}"
            matched = regex.fullmatch(text) is not None
            if previous is not None and matched != previous:
                edges |= {address - 1, address}
            previous = matched
    return edges


def _representatives(addresses: list[int], entries: list[str]) -> list[int]:
    """Too many candidates: keep one address per distinct set of matching entries, then fill."""
    seen: dict[tuple[bool, ...], int] = {}
    for address in addresses:
        text = str(ipaddress.IPv4Address(address))
        signature = tuple(addr_match_list(text, entry) == 1 for entry in entries)
        seen.setdefault(signature, address)
    chosen = set(list(seen.values())[:_MAX_VETTING_ADDRESSES])
    for address in addresses:
        if len(chosen) >= _MAX_VETTING_ADDRESSES:
            break
        chosen.add(address)
    return sorted(chosen)
