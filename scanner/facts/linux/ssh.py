"""SSH server facts: effective sshd settings, offered auth methods, authorized keys, host keys.

A fact that judges sshd's configuration applies to every Linux target: when no OpenSSH server is
there to configure, it fails (the check is `error`, naming what is missing), never `skip`.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass

from scanner.facts.base import Fact, FactFailed, FactUnavailable, Gathered, Mode, Probe
from scanner.facts.linux.accounts import LOGIN_USER, PASSWD, PasswdEntry
from scanner.facts.linux.ssh_server import SSH_SERVER, SSHD_CONFIG_PATH, SshServer
from scanner.fs import glob, read_text_or_none
from scanner.parsers.sshd_config import (
    ConfigTooLarge,
    ConnectionInfo,
    Setting,
    SshdConfig,
    parse_sshd_config,
    parse_sshd_t,
    vetting_addresses,
)
from scanner.parsers.sshd_config import Severity as ProblemSeverity


def _config_path(g: Gathered) -> str:
    # Live, the sshd serving the session may run with `-f` (the collection script finds out).
    return (g.context.session.get("sshd_config") if g.live else None) or SSHD_CONFIG_PATH


def _server(g: Gathered) -> SshServer | None:
    """The SSH server fact, or None when it could not be gathered (its own check says why)."""
    try:
        return g.get(SSH_SERVER)
    except (FactUnavailable, FactFailed):
        return None


def _no_server(g: Gathered, fallback: str) -> FactFailed:
    """The error for a missing sshd configuration, naming what of the server is missing."""
    server = _server(g)
    if server is not None and not server.installed:
        return FactFailed(server.missing_reason)
    return FactFailed(fallback)


def _derive_config(g: Gathered) -> SshdConfig:
    path = _config_path(g)
    try:
        config = parse_sshd_config(g.files, path)
    except FileNotFoundError:
        where = "on the host" if g.live else "in the image"
        raise _no_server(g, f"no OpenSSH server {where}: no {path}") from None
    if config.incomplete:
        raise FactFailed(f"sshd's configuration was not judged: {config.incomplete}")
    return config


SSHD_CONFIG = Fact(
    name="linux.sshd.config",
    description="the sshd configuration files",
    derive=_derive_config,
    # /etc/group: Match Group blocks are evaluated with the image's groups.
    patterns=(SSHD_CONFIG_PATH, "/etc/ssh/sshd_config.d/*", "/etc/ssh/*.conf", "/etc/group"),
    depends=(SSH_SERVER,),
)


@dataclass(frozen=True)
class SshdView:
    """sshd's effective settings for one connection (user, client address)."""

    user: str
    addr: str
    settings: Mapping[str, Setting]
    origin: str

    def get(self, keyword: str) -> Setting:
        setting = self.settings.get(keyword.lower())
        if setting is None:
            raise FactFailed(f"{self.origin} did not report {keyword}")
        return setting

    @property
    def label(self) -> str:
        return f"user={self.user} addr={self.addr}"


@dataclass(frozen=True)
class SshdEffective:
    """Effective settings for every connection the Marketplace scanner could make."""

    views: tuple[SshdView, ...]
    method: str
    notes: tuple[str, ...] = ()
    # Lines for which sshd would refuse to start ("path:line: fatal: …"), judged offline.
    fatal_problems: tuple[str, ...] = ()

    def for_user(self, user: str) -> list[SshdView]:
        return [v for v in self.views if v.user == user]


# `sshd -T -C` for root and the login user from each vetting address (and from the scanner's own
# address), with the server's local address and port from SSH_CONNECTION when there is one.
# Locates the serving sshd and its config; the config file is copied back for evidence.
_LOCATE_SSHD = r"""
sshd=${AMISCAN_SSHD_BIN:-$(command -v sshd 2>/dev/null || echo /usr/sbin/sshd)}
cfg=${AMISCAN_SSHD_CONFIG:-/etc/ssh/sshd_config}
[ -n "$AMISCAN_SSHD_CONFIG" ] && printf '%s\n' "$cfg" >>"$AMISCAN_FILES"
"""

_SSHD_T_SCRIPT = (
    _LOCATE_SSHD
    + r"""
[ -x "$sshd" ] || { echo "no sshd binary ($sshd)" >&2; exit 127; }
set -- $AMISCAN_SSH_CONNECTION
client=${1:-}; laddr=${3:-}; lport=${4:-$AMISCAN_SCAN_PORT}
users=root
[ -n "$AMISCAN_LOGIN_USER" ] && [ "$AMISCAN_LOGIN_USER" != root ] && users="root $AMISCAN_LOGIN_USER"
addrs="$AMISCAN_VETTING_ADDRS"
[ -n "$client" ] && addrs="$addrs $client"
failed=0
for u in $users; do
  for a in $addrs; do
    spec="user=$u,host=$a,addr=$a,lport=$lport"
    [ -n "$laddr" ] && spec="$spec,laddr=$laddr"
    printf '### user=%s addr=%s\n' "$u" "$a"
    "$sshd" -T -f "$cfg" -C "$spec" 2>&1 || { failed=$?; printf '### exit %s\n' "$failed"; }
  done
done
exit $failed
"""
)

# The probe's exit code when it finds no sshd binary to ask.
_SSHD_NOT_FOUND = 127

# The settings checks judge; other keywords stay available through the parsed configuration.
_JUDGED = (
    "passwordauthentication",
    "permitrootlogin",
    "kbdinteractiveauthentication",
    "usepam",
    "authorizedkeysfile",
    "pubkeyauthentication",
    "permitemptypasswords",
    "authenticationmethods",
    "port",
    "listenaddress",
    "hostkey",
)


def _parse_sshd_t_sections(text: str) -> dict[tuple[str, str], str]:
    sections: dict[tuple[str, str], list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("### user="):
            user_part, addr_part = line[4:].split(" ", 1)
            current = sections.setdefault((user_part[5:], addr_part[5:]), [])
        elif line.startswith("### exit"):
            current = None
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in sections.items()}


def _judged_users(g: Gathered, config: SshdConfig) -> list[str]:
    """root, the login user, then one account for each other way Match blocks treat accounts.

    A `Match User` block that enables passwords for any account that can log in (it has a real
    shell) lets a password in, so every such account is judged: accounts that meet the same
    Match User/Group criteria get the same settings from every address, so one of them stands
    for all (time linear in the accounts, however many).
    """
    try:
        login = g.get(LOGIN_USER).name
    except (FactUnavailable, FactFailed):
        login = "ec2-user"
    users = ["root", login]
    try:
        passwd = g.get(PASSWD)
    except (FactUnavailable, FactFailed) as exc:
        # Without the accounts, a Match User block for one of them would go unjudged.
        raise FactFailed(f"the accounts sshd's Match blocks may select are unknown: {exc}") from exc
    try:
        seen = {config.user_signature(user) for user in users}
        for entry in passwd:
            if not entry.can_log_in:
                continue
            signature = config.user_signature(entry.name)
            if signature not in seen:
                seen.add(signature)
                users.append(entry.name)
    except ConfigTooLarge as exc:
        raise _too_large(exc) from exc
    return list(dict.fromkeys(users))


def _too_large(exc: ConfigTooLarge) -> FactFailed:
    return FactFailed(f"sshd's configuration was not judged: {exc}")


def _vetting_addresses(config: SshdConfig) -> list[str]:
    try:
        return vetting_addresses(config)
    except ConfigTooLarge as exc:
        raise _too_large(exc) from exc


def _from_config(
    g: Gathered, config: SshdConfig, users: list[str], addrs: list[str]
) -> list[SshdView]:
    views = []
    try:
        for user in users:
            for addr in addrs:
                effective = config.effective(
                    ConnectionInfo(user=user, addr=addr, lport=g.context.scan_port)
                )
                settings = {key: effective.get(key) for key in _JUDGED}
                views.append(SshdView(user, addr, settings, "sshd_config"))
    except ConfigTooLarge as exc:
        raise _too_large(exc) from exc
    return views


def _with_sources(
    values: dict[str, tuple[str, ...]], parsed: Mapping[str, Setting] | None, spec: str
) -> dict[str, Setting]:
    """sshd -T values, pointing at the config line that set each one when the parser agrees."""
    settings = {}
    for key in _JUDGED:
        value = values.get(key, ())
        located = parsed.get(key) if parsed else None
        if located is not None and located.values == value and located.source != "default":
            settings[key] = Setting(key, value, located.source, located.line)
        else:
            source = (
                "compiled-in default"
                if located is not None and located.source == "default"
                else spec
            )
            settings[key] = Setting(key, value, source, f"{key} {' '.join(value)}".strip())
    return settings


def _fatal(config: SshdConfig) -> tuple[str, ...]:
    return tuple(str(p) for p in config.issues if p.kind is ProblemSeverity.FATAL)


def _derive_effective(g: Gathered) -> SshdEffective:
    if not g.live:
        # Offline the configuration files are the only source; without a server they configure
        # nothing, and nothing can be judged.
        g.get(SSH_SERVER).require_installed()
        files = g.get(SSHD_CONFIG)
        addrs = _vetting_addresses(files)
        return SshdEffective(
            tuple(_from_config(g, files, _judged_users(g, files), addrs)),
            "parsed sshd_config with OpenSSH semantics",
            fatal_problems=_fatal(files),
        )
    # Live, sshd -T is the authority; the copied files add line numbers and a fallback.
    config: SshdConfig | None
    try:
        config = g.get(SSHD_CONFIG)
    except (FactUnavailable, FactFailed):
        config = None
    output = g.require_output()
    sections = _parse_sshd_t_sections(output.text)
    usable = {k: v for k, v in sections.items() if "passwordauthentication" in v.lower()}
    if not usable:
        reason = output.error_text or output.text.strip().splitlines()[-1:] or [f"exit {output.rc}"]
        why = reason if isinstance(reason, str) else reason[0]
        server = _server(g)
        if server is not None and not server.installed:
            raise FactFailed(server.missing_reason)
        if output.rc == _SSHD_NOT_FOUND:
            raise FactFailed(f"no OpenSSH server on the host: {why}")
        if config is None:
            raise FactFailed(
                f"`sshd -T` gave no configuration ({why}) and sshd_config was not readable"
            )
        addrs = _vetting_addresses(config)
        users = sorted({u for u, _ in sections} or {"root", g.context.login_user or "ec2-user"})
        return SshdEffective(
            tuple(_from_config(g, config, users, addrs)),
            "parsed sshd_config (sshd -T unavailable)",
            (f"`sshd -T` could not run: {why}",),
            fatal_problems=_fatal(config),
        )
    views = []
    for (user, addr), text in usable.items():
        parsed = None
        if config is not None:
            info = ConnectionInfo(user=user, addr=addr, lport=g.context.scan_port)
            try:
                effective = config.effective(info)
            except ConfigTooLarge as exc:
                raise _too_large(exc) from exc
            parsed = {key: effective.get(key) for key in _JUDGED}
        spec = f"sshd -T -C user={user},addr={addr}"
        views.append(
            SshdView(user, addr, _with_sources(parse_sshd_t(text), parsed, spec), "sshd -T")
        )
    notes: list[str] = []
    if config is not None:
        # sshd -T was asked for root and the login user at fixed addresses; Match blocks may
        # carve out other addresses and other accounts, judged from the configuration files.
        asked_users = sorted({u for u, _ in usable})
        asked_addrs = {addr for _, addr in usable}
        addresses = _vetting_addresses(config)
        extra_addrs = [a for a in addresses if a not in asked_addrs]
        if extra_addrs:
            views += _from_config(g, config, asked_users, extra_addrs)
            notes.append("addresses " + ", ".join(extra_addrs) + " judged from sshd_config")
        extra_users = [u for u in _judged_users(g, config) if u not in asked_users]
        if extra_users:
            views += _from_config(g, config, extra_users, addresses)
            notes.append("accounts " + ", ".join(extra_users) + " judged from sshd_config")
    return SshdEffective(tuple(views), "sshd -T (effective configuration)", tuple(notes))


SSHD_EFFECTIVE = Fact(
    name="linux.sshd.effective",
    description="sshd's effective configuration for the vetting addresses",
    derive=_derive_effective,
    probe=Probe(_SSHD_T_SCRIPT, privileged=True, timeout_s=60),
    depends=(SSH_SERVER, SSHD_CONFIG, LOGIN_USER, PASSWD),
)


@dataclass(frozen=True)
class OfferedAuth:
    """Authentication methods the server offered an unauthenticated client, by user."""

    by_user: Mapping[str, tuple[str, ...]]


def _derive_offered(g: Gathered) -> OfferedAuth:
    offered = g.context.offered_auth_methods
    if offered is None:
        raise FactUnavailable(
            g.context.offered_auth_error
            or f"no outside-in SSH probe on a {g.context.target_kind} target"
        )
    return OfferedAuth(dict(offered))


OFFERED_AUTH = Fact(
    name="linux.sshd.offered-auth",
    description="the SSH authentication methods offered from outside",
    derive=_derive_offered,
    modes=frozenset({Mode.LIVE}),
)


@dataclass(frozen=True)
class AuthorizedKey:
    path: str
    line_number: int
    key_type: str
    blob: str
    comment: str
    options: str

    @property
    def public_key(self) -> str:
        return f"{self.key_type} {self.blob}"


_KEY_TYPES = (
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ssh-ed448",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


def _is_key_type(token: str) -> bool:
    return token in _KEY_TYPES or token.endswith("-cert-v01@openssh.com")


def _split_options(line: str) -> tuple[str, str]:
    """Split a leading options field (which may hold quoted spaces) from the rest of the line."""
    in_quotes = False
    for index, char in enumerate(line):
        if char == '"' and (index == 0 or line[index - 1] != "\\"):
            in_quotes = not in_quotes
        elif char in " \t" and not in_quotes:
            return line[:index], line[index:].strip()
    return line, ""


def parse_authorized_keys(path: str, text: str) -> list[AuthorizedKey]:
    """Key entries of an authorized_keys file, as sshd reads them (options, type, key, comment)."""
    keys = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        options = ""
        first = line.split(None, 1)[0]
        if not _is_key_type(first):
            options, line = _split_options(line)
        parts = line.split(None, 2)
        if len(parts) < 2 or not _is_key_type(parts[0]):
            # sshd ignores lines it cannot parse; report them anyway, they may be a key.
            keys.append(AuthorizedKey(path, number, "unparsed", raw.strip()[:80], "", options))
            continue
        comment = parts[2] if len(parts) > 2 else ""
        keys.append(AuthorizedKey(path, number, parts[0], parts[1], comment, options))
    return keys


_STANDARD_KEY_FILES = (
    "/root/.ssh/authorized_keys",
    "/root/.ssh/authorized_keys2",
    "/home/*/.ssh/authorized_keys",
    "/home/*/.ssh/authorized_keys2",
)

# Live, the AuthorizedKeysFile of the running sshd is expanded for every account in /etc/passwd
# and those files are copied back too.
_KEY_FILES_SCRIPT = (
    _LOCATE_SSHD
    + r"""
akf=$("$sshd" -T -f "$cfg" -C user=root,host=10.0.0.1,addr=10.0.0.1 2>/dev/null | awk '$1=="authorizedkeysfile"{$1=""; print}')
if [ -n "$akf" ]; then echo "#authorizedkeysfile from sshd -T"; else
  echo "#authorizedkeysfile unknown"; akf=".ssh/authorized_keys .ssh/authorized_keys2"; fi
while IFS=: read -r u _ uid _ _ home _; do
  [ -n "$home" ] || continue
  for p in $akf; do
    [ "$p" = none ] && continue
    p=$(printf '%s' "$p" | sed -e "s|%h|$home|g" -e "s|%u|$u|g" -e "s|%U|$uid|g" -e 's|%%|%|g')
    case "$p" in /*) ;; *) p="$home/$p" ;; esac
    printf '%s\n' "$p"
    printf '%s\n' "$p" >>"$AMISCAN_FILES"
  done
done </etc/passwd
"""
)


def _expand_key_file(token: str, entry: PasswdEntry) -> str:
    expanded = token.replace("%%", "\0").replace("%h", entry.home).replace("%u", entry.name)
    expanded = expanded.replace("%U", str(entry.uid)).replace("\0", "%")
    return expanded if expanded.startswith("/") else posixpath.join(entry.home, expanded)


# What the live probe prints when `sshd -T` named the AuthorizedKeysFile (or HostKey) paths.
_FROM_SSHD_T = ("#authorizedkeysfile from sshd -T", "#hostkey from sshd -T")


def _unknown_config(g: Gathered, what: str) -> str:
    """Why `what` (sshd's key file paths) is unknown: the server is missing, or sshd -T failed."""
    server = _server(g)
    if server is not None and not server.installed:
        return f"{what} unknown: {server.missing_reason}"
    return f"{what} unknown: `sshd -T` named none (see linux.ssh.server-installed)"


def _configured_key_files(g: Gathered) -> tuple[list[str], list[str]]:
    """AuthorizedKeysFile paths expanded for every account, and why some could not be known."""
    if g.live:
        output = g.require_output()
        if output.timed_out:
            raise FactFailed("listing the AuthorizedKeysFile paths timed out")
        lines = output.text.splitlines()
        paths = [line for line in lines if line.startswith("/")]
        if _FROM_SSHD_T[0] in lines:
            return paths, []
        return paths, [_unknown_config(g, "AuthorizedKeysFile paths")]
    unknown: list[str] = []
    server = _server(g)
    if server is not None and not server.installed:
        unknown.append(f"AuthorizedKeysFile paths unknown: {server.missing_reason}")
    try:
        config = g.get(SSHD_CONFIG)
        passwd = g.get(PASSWD)
    except (FactUnavailable, FactFailed) as exc:
        return [], unknown or [f"AuthorizedKeysFile paths unknown: {exc}"]
    try:
        return _key_files_from_config(g, config, passwd), unknown
    except ConfigTooLarge as exc:
        return [], [*unknown, f"AuthorizedKeysFile paths unknown: {exc}"]


def _key_files_from_config(g: Gathered, config: SshdConfig, passwd: list[PasswdEntry]) -> list[str]:
    """AuthorizedKeysFile for every account from every vetting address.

    Match blocks may point AuthorizedKeysFile elsewhere for some addresses or users. Accounts
    that meet the same Match User/Group criteria get the same tokens, so each distinct set is
    worked out once (linear in the accounts, not accounts x addresses x config).
    """
    addresses = vetting_addresses(config)
    by_signature: dict[tuple[bool, ...], list[str]] = {}
    paths = []
    for entry in passwd:
        if not entry.home:
            continue
        signature = config.user_signature(entry.name)
        tokens = by_signature.get(signature)
        if tokens is None:
            found: dict[str, None] = {}
            for addr in addresses:
                info = ConnectionInfo(user=entry.name, addr=addr, lport=g.context.scan_port)
                found.update(dict.fromkeys(config.effective(info).get("authorizedkeysfile").values))
            tokens = by_signature[signature] = [t for t in found if t.lower() != "none"]
        paths += [_expand_key_file(t, entry) for t in tokens]
    return paths


@dataclass(frozen=True)
class AuthorizedKeys:
    keys: tuple[AuthorizedKey, ...]
    files_examined: tuple[str, ...]
    # Why some key files may not have been examined (no server to name them, no root to read).
    unexamined: tuple[str, ...] = ()


def _derive_authorized_keys(g: Gathered) -> AuthorizedKeys:
    candidates: list[str] = []
    for pattern in _STANDARD_KEY_FILES:
        candidates += glob(g.files, pattern)
    configured, unexamined = _configured_key_files(g)
    candidates += configured
    if g.live and g.context.privileged is False:
        why = f" ({g.context.sudo_error})" if g.context.sudo_error else ""
        unexamined.append(f"the probes ran without root{why}: other accounts' key files are unread")
    examined: list[str] = []
    keys: list[AuthorizedKey] = []
    for path in dict.fromkeys(candidates):
        text = read_text_or_none(g.files, path)
        if text is None:
            continue
        examined.append(path)
        keys += parse_authorized_keys(path, text)
    return AuthorizedKeys(tuple(keys), tuple(examined), tuple(unexamined))


AUTHORIZED_KEYS = Fact(
    name="linux.ssh.authorized-keys",
    description="authorized_keys entries",
    derive=_derive_authorized_keys,
    probe=Probe(_KEY_FILES_SCRIPT, privileged=True, timeout_s=30),
    patterns=_STANDARD_KEY_FILES,
    depends=(SSHD_CONFIG, PASSWD),
)


@dataclass(frozen=True)
class HostKeyFile:
    path: str
    mtime: int | None = None


@dataclass(frozen=True)
class HostKeys:
    files: tuple[HostKeyFile, ...]
    boot_time: int | None = None
    # Why the HostKey paths are unknown (only /etc/ssh/ssh_host_* was looked at), if they are.
    unknown_paths: str | None = None


_HOST_KEYS_SCRIPT = (
    _LOCATE_SSHD
    + r"""
keys=$("$sshd" -T -f "$cfg" -C user=root,host=10.0.0.1,addr=10.0.0.1 2>/dev/null | awk '$1=="hostkey"{print $2}')
if [ -n "$keys" ]; then echo "#hostkey from sshd -T"; else
  echo "#hostkey unknown"; keys=$(ls /etc/ssh/ssh_host_*key 2>/dev/null); fi
for k in $keys; do
 for f in "$k" "$k.pub"; do
  [ -e "$f" ] || continue
  printf '%s %s\n' "$(stat -c %Y "$f" 2>/dev/null || date -r "$f" +%s)" "$f"
 done
done
exit 0
"""
)


def _derive_host_keys(g: Gathered) -> HostKeys:
    if g.live:
        output = g.require_output()
        lines = output.require_success("listing host keys").splitlines()
        listed = []
        for line in lines:
            if line.startswith("#"):
                continue
            stamp, _, path = line.partition(" ")
            listed.append(HostKeyFile(path, int(stamp) if stamp.isdigit() else None))
        btime = g.context.session.get("btime", "")
        unknown = None if _FROM_SSHD_T[1] in lines else _unknown_config(g, "HostKey paths")
        return HostKeys(tuple(listed), int(btime) if btime.isdigit() else None, unknown)
    names = [n for n in g.files.list_dir("/etc/ssh") if n.startswith("ssh_host_") and "key" in n]
    paths = [posixpath.join("/etc/ssh", n) for n in names]
    configured, unknown = _configured_host_keys(g)
    for key in configured:
        paths += [p for p in (key, f"{key}.pub") if g.files.is_file(p)]
    files = tuple(HostKeyFile(p) for p in dict.fromkeys(paths))
    return HostKeys(files, unknown_paths=unknown)


def _configured_host_keys(g: Gathered) -> tuple[list[str], str | None]:
    """The HostKey paths sshd_config names (OpenSSH's defaults when it names none)."""
    server = _server(g)
    if server is not None and not server.installed:
        return [], f"HostKey paths unknown: {server.missing_reason}"
    try:
        config = g.get(SSHD_CONFIG)
    except (FactUnavailable, FactFailed) as exc:
        return [], f"HostKey paths unknown: {exc}"
    # HostKey is a global keyword: any connection sees the same list.
    info = ConnectionInfo(user="root", addr="10.0.0.1", lport=g.context.scan_port)
    try:
        return list(config.effective(info).get("hostkey").values), None
    except ConfigTooLarge as exc:
        return [], f"HostKey paths unknown: {exc}"


HOST_KEYS = Fact(
    name="linux.ssh.host-keys",
    description="SSH host key files",
    derive=_derive_host_keys,
    probe=Probe(_HOST_KEYS_SCRIPT, privileged=True, timeout_s=15),
    depends=(SSHD_CONFIG,),
)


__all__ = [
    "AUTHORIZED_KEYS",
    "HOST_KEYS",
    "OFFERED_AUTH",
    "SSHD_CONFIG",
    "SSHD_EFFECTIVE",
    "SSH_SERVER",
    "AuthorizedKey",
    "SshServer",
    "SshdEffective",
    "SshdView",
    "parse_authorized_keys",
]
