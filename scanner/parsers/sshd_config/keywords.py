"""The keyword table (servconf.c keywords[]) and the parsing of each keyword's value."""

from __future__ import annotations

import posixpath
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from scanner.parsers.sshd_config.model import BadValue
from scanner.parsers.sshd_config.patterns import addr_match_list
from scanner.parsers.sshd_config.tokens import WHITESPACE

_INT_MAX = 2**31 - 1


class Merge(Enum):
    FIRST = "first"  # the first active line sets it (most options)
    LAST = "last"  # every active line overwrites it (MaxStartups, IPQoS, FingerprintHash, ...)
    APPEND = "append"  # every active line adds to it (HostKey, AllowUsers, AcceptEnv, ...)
    REKEY = "rekey"  # RekeyLimit: the byte limit and the interval are set independently
    IGNORED = "ignored"  # deprecated or unsupported: accepted, logged, no effect


@dataclass(frozen=True)
class Context:
    """What a value parser needs besides the arguments."""

    keyword: str
    args: tuple[str, ...]
    rest: str
    home_of: Callable[[str], str | None]  # user -> home directory in the image


_Parser = Callable[[Context], tuple[str, ...]]


@dataclass(frozen=True)
class Keyword:
    name: str  # canonical, as sshd -T prints it
    in_match: bool  # SSHCFG_MATCH: allowed inside a Match block
    parse: _Parser
    merge: Merge = Merge.FIRST
    note: str = ""


def _one(ctx: Context) -> str:
    """The single argument of a one-argument keyword."""
    if not ctx.args or ctx.args[0] == "":
        raise BadValue(f"{ctx.keyword} missing argument")
    if len(ctx.args) > 1:
        raise BadValue(f"keyword {ctx.keyword} extra arguments at end of line")
    return ctx.args[0]


def _choices(table: dict[str, str], case_sensitive: bool = False) -> _Parser:
    """A keyword with a fixed set of values; `table` maps each accepted spelling to sshd's."""

    def parse(ctx: Context) -> tuple[str, ...]:
        arg = _one(ctx)
        value = table.get(arg if case_sensitive else arg.lower())
        if value is None:
            raise BadValue(f'unsupported option "{arg}"')
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


def _integer(ctx: Context) -> tuple[str, ...]:
    value = _strtonum(_one(ctx), 0, _INT_MAX)
    if value is None:
        raise BadValue(f"{ctx.keyword} integer value invalid")
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


def _time(ctx: Context) -> tuple[str, ...]:
    seconds = convtime(_one(ctx))
    if seconds is None:
        raise BadValue("invalid time value")
    return (str(seconds),)


def _time_or_none(ctx: Context) -> tuple[str, ...]:
    return ("none",) if _one(ctx).lower() == "none" else _time(ctx)


def _tilde_expand(ctx: Context, path: str) -> str:
    """misc.c tilde_expand_filename as sshd (running as root) applies it to file options."""
    if not path.startswith("~"):
        return path
    user, slash, tail = path[1:].partition("/")
    home = ctx.home_of(user or "root")
    if home is None:
        raise BadValue(f"tilde_expand: No such user {user or 'root'}")
    return posixpath.join(home, tail) if slash else home


def _absolute_path(ctx: Context, path: str) -> str:
    """servconf.c derelativise_path; sshd started by init runs in "/", so that is the base."""
    if path.lower() == "none":
        return "none"
    expanded = _tilde_expand(ctx, path)
    return expanded if expanded.startswith("/") else posixpath.join("/", expanded)


def _path(ctx: Context) -> tuple[str, ...]:
    return (_absolute_path(ctx, _one(ctx)),)


def _string(ctx: Context) -> tuple[str, ...]:
    return (_one(ctx),)


def _raw(ctx: Context) -> tuple[str, ...]:
    """Keywords sshd stores as the unsplit rest of the line (ForceCommand, VersionAddendum)."""
    return (ctx.rest.lstrip(WHITESPACE),)


def _command(ctx: Context) -> tuple[str, ...]:
    rest = ctx.rest.lstrip(WHITESPACE)
    if not rest.startswith("/") and rest.lower() != "none":
        raise BadValue(f"{ctx.keyword} must be an absolute path")
    return (rest,)


def _words(ctx: Context, check: Callable[[str], str | None] | None = None) -> tuple[str, ...]:
    """All arguments, each checked; `check` returns an error message or None."""
    for arg in ctx.args:
        if arg == "":
            raise BadValue(f"keyword {ctx.keyword} empty argument")
        problem = check(arg) if check else None
        if problem:
            raise BadValue(problem)
    return ctx.args


def _word_list(ctx: Context) -> tuple[str, ...]:
    return _words(ctx)


def _authorized_keys_file(ctx: Context) -> tuple[str, ...]:
    return tuple(_tilde_expand(ctx, arg) for arg in _words(ctx))


def _authorized_principals_file(ctx: Context) -> tuple[str, ...]:
    return (_tilde_expand(ctx, _one(ctx)),)


def _user_pattern(arg: str) -> str | None:
    # match_user() in test mode: only the host part after '@' can be invalid.
    _, at, host = arg.partition("@")
    if at and addr_match_list(None, host) == -2:
        return f'invalid pattern: "{arg}"'
    return None


def _users(ctx: Context) -> tuple[str, ...]:
    return _words(ctx, _user_pattern)


def _accept_env(ctx: Context) -> tuple[str, ...]:
    return _words(ctx, lambda arg: "Invalid environment name." if "=" in arg else None)


def _set_env(ctx: Context) -> tuple[str, ...]:
    _words(ctx, lambda arg: None if "=" in arg else "Invalid environment.")
    kept: dict[str, str] = {}
    for arg in ctx.args:
        kept.setdefault(arg.split("=", 1)[0], arg)  # a repeated name: the first one is kept
    return tuple(kept.values())


def _log_verbose(ctx: Context) -> tuple[str, ...]:
    args = _words(ctx)
    if any(a.lower() == "none" for a in args) and len(args) > 1:
        raise BadValue(f'keyword {ctx.keyword} "none" argument must appear alone.')
    return args


_AUTH_METHODS = {"publickey", "password", "keyboard-interactive", "hostbased", "gssapi-with-mic"}


def _authentication_methods(ctx: Context) -> tuple[str, ...]:
    args = _words(ctx)
    if "any" in args and len(args) > 1:
        raise BadValue(f'"any" must appear alone in {ctx.keyword}')
    for arg in args:
        if arg == "any":
            continue
        for method in arg.split(","):
            if method.split(":", 1)[0] not in _AUTH_METHODS | {"gssapi-keyex"}:
                raise BadValue(f"invalid {ctx.keyword} method list.")
    return args


def _channel_timeout(ctx: Context) -> tuple[str, ...]:
    def check(arg: str) -> str | None:
        if arg.lower() == "none":
            return None
        kind, eq, interval = arg.partition("=")
        return None if kind and eq and convtime(interval) is not None else f"invalid {arg}"

    return _words(ctx, check)


def a2port(text: str) -> int | None:
    """misc.c a2port: a number 0-65535 or a TCP service name."""
    number = _strtonum(text, 0, 65535)
    if number is not None:
        return number
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        return None


def _port(ctx: Context) -> tuple[str, ...]:
    port = a2port(_one(ctx))
    if port is None or port <= 0:
        raise BadValue("Badly formatted port number.")
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


def _listen_address(ctx: Context) -> tuple[str, ...]:
    """One ListenAddress as (host, port or "0" for every Port, rdomain or "")."""
    if not ctx.args:
        raise BadValue("missing address")
    arg, extra = ctx.args[0], ctx.args[1:]
    if "[" not in arg and arg.count(":") >= 2:
        host, port = arg, "0"  # a bare IPv6 address: no port in it
    else:
        parsed = _host_port(arg)
        if parsed is None:
            raise BadValue("bad address:port usage")
        host, port_text = parsed
        port_number = 0 if port_text is None else a2port(port_text)
        if port_number is None or (port_text is not None and port_number <= 0):
            raise BadValue("bad port number")
        port = str(port_number)
    if extra and (len(extra) != 2 or extra[0] != "rdomain"):
        raise BadValue("bad ListenAddress syntax")
    return host, port, extra[1] if extra else ""


def _subsystem(ctx: Context) -> tuple[str, ...]:
    if len(ctx.args) < 2 or not ctx.args[0] or not ctx.args[1]:
        raise BadValue("Missing subsystem command.")
    return (" ".join(ctx.args),)


def _max_startups(ctx: Context) -> tuple[str, ...]:
    arg = _one(ctx)
    full = re.fullmatch(r"([0-9]+):([0-9]+):([0-9]+)", arg)
    if full:
        begin, rate, most = (int(g) for g in full.groups())
        if begin > most or not 1 <= rate <= 100:
            raise BadValue(f"Invalid {ctx.keyword} spec.")
        return (f"{begin}:{rate}:{most}",)
    if re.fullmatch(r"[0-9]+", arg):
        return (f"{arg}:30:{arg}",)  # sshd fills the rate default, begin == max
    raise BadValue(f"Invalid {ctx.keyword} spec.")


def _per_source_max_startups(ctx: Context) -> tuple[str, ...]:
    return ("none",) if _one(ctx) == "none" else _integer(ctx)


def _per_source_net_block_size(ctx: Context) -> tuple[str, ...]:
    found = re.fullmatch(r"([0-9]+)(?::([0-9]+))?", _one(ctx))
    if not found or int(found[1]) > 32 or (found[2] is not None and int(found[2]) > 128):
        raise BadValue(f"Invalid {ctx.keyword} spec.")
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


def _ipqos(ctx: Context) -> tuple[str, ...]:
    if not 1 <= len(ctx.args) <= 2:
        raise BadValue(f"{ctx.keyword} missing argument.")
    values = []
    for arg in ctx.args:
        value = _IPQOS.get(arg.lower())
        if value is None:
            value = _c_integer(arg)
        if value is not None and not 0 <= value <= 255:
            value = None
        if value is None:
            raise BadValue(f"Bad {ctx.keyword} value: {arg}")
        values.append(_ipqos_name(value))
    return values[0], values[-1]


_SCALE = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50, "e": 2**60}


def _rekey_limit(ctx: Context) -> tuple[str, ...]:
    """(limit bytes, interval seconds or "" when not given)."""
    if not 1 <= len(ctx.args) <= 2:
        raise BadValue(f"{ctx.keyword} missing argument.")
    limit_text = ctx.args[0]
    if limit_text == "default":
        limit = 0
    else:
        found = re.fullmatch(r"([0-9]+)([bBkKmMgGtTpPeE]?)", limit_text)
        if not found:
            raise BadValue(f"Bad {ctx.keyword} number '{limit_text}'")
        limit = int(found[1]) * _SCALE[found[2].lower()]
        if 0 < limit < 16:
            raise BadValue(f"{ctx.keyword} too small")
    interval = ""
    if len(ctx.args) == 2 and ctx.args[1] != "none":
        seconds = convtime(ctx.args[1])
        if seconds is None:
            raise BadValue("invalid time value")
        interval = str(seconds)
    return str(limit), interval


def _pubkey_auth_options(ctx: Context) -> tuple[str, ...]:
    chosen = set()
    for arg in ctx.args:
        if arg.lower() not in ("none", "touch-required", "verify-required"):
            raise BadValue(f"unsupported {ctx.keyword} option {arg}")
        chosen.add(arg.lower())
    ordered = tuple(o for o in ("touch-required", "verify-required") if o in chosen)
    return ordered or ("none",)


def _permit_user_environment(ctx: Context) -> tuple[str, ...]:
    return (_one(ctx),)  # "yes", "no" (case-sensitive) or a pattern list, printed as given


def _permit_open(ctx: Context) -> tuple[str, ...]:
    args = _words(ctx)
    if args[0] in ("any", "none"):
        return (args[0],)
    listen = ctx.keyword.lower() == "permitlisten"
    result = []
    for arg in args:
        spec = f"*:{arg}" if listen and ":" not in arg else arg
        parsed = _host_port(spec)
        port = parsed[1] if parsed else None
        if parsed is None or port is None or (port != "*" and not (a2port(port) or 0) > 0):
            raise BadValue(f"{ctx.keyword} bad port number")
        result.append(spec)
    return tuple(result)


def _stream_local_bind_mask(ctx: Context) -> tuple[str, ...]:
    arg = _one(ctx)
    found = re.match(r"[ \t]*\+?([0-7]+)", arg)
    if not found or int(found[1], 8) > 0o777:
        raise BadValue(f"Invalid {ctx.keyword}.")
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


def _host_key_agent(ctx: Context) -> tuple[str, ...]:
    arg = _one(ctx)
    return (arg,) if arg == "SSH_AUTH_SOCK" else (_absolute_path(ctx, arg),)


def _security_key_provider(ctx: Context) -> tuple[str, ...]:
    arg = _one(ctx)
    return (arg,) if arg.lower() == "internal" else (_absolute_path(ctx, arg),)


def _ignored(ctx: Context) -> tuple[str, ...]:
    return ()


def _table() -> dict[str, Keyword]:
    """Every keyword sshd accepts, by lowercase spelling (servconf.c keywords[], OpenSSH 9.x)."""
    g, a = False, True  # SSHCFG_GLOBAL only / SSHCFG_ALL
    first, last, append = Merge.FIRST, Merge.LAST, Merge.APPEND
    rows: list[tuple[str, str, bool, _Parser, Merge]] = [
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
        ("rekeylimit", "rekeylimit", a, _rekey_limit, Merge.REKEY),
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
    table = {row[0]: Keyword(*row[1:]) for row in rows}
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
        table[spelling] = Keyword(spelling, scope, _ignored, Merge.IGNORED, note)
    return table


KEYWORDS = _table()


def canonical_keyword(keyword: str) -> str:
    """The name `sshd -T` uses for a keyword or any alias of it; KeyError if sshd has none."""
    spec = KEYWORDS.get(keyword.lower())
    if spec is None or spec.merge is Merge.IGNORED or spec.name in ("match", "include"):
        raise KeyError(f"not an sshd_config keyword with a value: {keyword}")
    return spec.name
