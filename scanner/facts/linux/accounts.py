"""Account facts: /etc/passwd, /etc/shadow, the login user, and whether sudo gives root."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from scanner.facts.base import Fact, FactFailed, Gathered, Mode
from scanner.fs import glob, read_text_or_none

# Shells with which no one logs in (any path ending so); an empty shell field means /bin/sh.
NO_LOGIN_SHELLS = (
    "nologin",
    "false",
    "/bin/sync",
    "/sbin/shutdown",
    "/sbin/halt",
    "/usr/sbin/halt",
)


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    uid: int
    gid: int
    home: str
    shell: str
    line_number: int

    @property
    def can_log_in(self) -> bool:
        """True when the account has a real shell, so a password or key would let someone in."""
        return not (self.shell or "/bin/sh").endswith(NO_LOGIN_SHELLS)


def parse_passwd(text: str) -> list[PasswdEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")):
            continue
        try:
            uid, gid = int(fields[2]), int(fields[3])
        except ValueError:
            continue
        entries.append(PasswdEntry(fields[0], uid, gid, fields[5], fields[6], number))
    return entries


def _derive_passwd(g: Gathered) -> list[PasswdEntry]:
    text = read_text_or_none(g.files, "/etc/passwd")
    if text is None:
        raise FactFailed("/etc/passwd could not be read")
    return parse_passwd(text)


PASSWD = Fact(
    name="linux.accounts.passwd",
    description="/etc/passwd",
    derive=_derive_passwd,
    patterns=("/etc/passwd",),
)


@dataclass(frozen=True)
class ShadowEntry:
    user: str
    password: str
    line_number: int

    @property
    def kind(self) -> str:
        """What the password field allows: empty, locked, locked-hash, hash, or disabled."""
        field = self.password
        if field == "":
            return "empty"
        if field.startswith("!") or field.startswith("*"):
            rest = field.lstrip("!*")
            # `!$6$...` keeps a real hash behind the lock: unlocking restores password login.
            return "locked-hash" if rest.startswith("$") or len(rest) == 13 else "locked"
        if field.startswith("$") or len(field) == 13:
            return "hash"
        # Values such as "x" or "NP" cannot match any password.
        return "disabled"


def parse_shadow(text: str) -> list[ShadowEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        # "+"/"-" lines are NIS compat entries, not accounts (as in parse_passwd).
        if not line.strip() or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) < 2:
            continue
        entries.append(ShadowEntry(fields[0], fields[1], number))
    return entries


@dataclass(frozen=True)
class Shadow:
    entries: tuple[ShadowEntry, ...]
    path: str = "/etc/shadow"

    def entry(self, user: str) -> ShadowEntry | None:
        return next((e for e in self.entries if e.user == user), None)


def _derive_shadow(g: Gathered) -> Shadow:
    text = read_text_or_none(g.files, "/etc/shadow")
    if text is None:
        if g.live and not g.context.privileged:
            # It applies on every Linux host; only our access is missing, so: could not judge.
            raise FactFailed(
                "/etc/shadow needs root and sudo was not available"
                + (f" ({g.context.sudo_error})" if g.context.sudo_error else "")
            )
        raise FactFailed("/etc/shadow is missing or unreadable")
    return Shadow(tuple(parse_shadow(text)))


SHADOW = Fact(
    name="linux.accounts.shadow",
    description="/etc/shadow",
    derive=_derive_shadow,
    patterns=("/etc/shadow",),
)


@dataclass(frozen=True)
class LoginUser:
    name: str
    source: str


_CLOUD_CFG = ("/etc/cloud/cloud.cfg", "/etc/cloud/cloud.cfg.d/*.cfg")


def _cloud_init_default_user(g: Gathered) -> LoginUser:
    """cloud-init's default user: cloud.cfg, then cloud.cfg.d/*.cfg in order, later wins."""
    found: LoginUser | None = None
    for pattern in _CLOUD_CFG:
        for path in glob(g.files, pattern):
            text = read_text_or_none(g.files, path)
            if text is None:
                continue
            try:
                document: Any = yaml.safe_load(text)
            except yaml.YAMLError:
                continue
            name = _default_user_name(document)
            if name:
                found = LoginUser(name, f"{path} (system_info.default_user.name)")
    if found is None:
        raise FactFailed(
            "no cloud-init default_user in the image (/etc/cloud/cloud.cfg, cloud.cfg.d), so "
            "the user buyers log in as cannot be told from its files"
        )
    return found


def _default_user_name(document: Any) -> str | None:
    if not isinstance(document, dict):
        return None
    system_info = document.get("system_info")
    if isinstance(system_info, dict):
        default_user = system_info.get("default_user")
        if isinstance(default_user, dict) and isinstance(default_user.get("name"), str):
            return str(default_user["name"])
    return None


def _derive_login_user(g: Gathered) -> LoginUser:
    if g.live:
        if not g.context.login_user:
            raise FactFailed("the login user is not known for this target")
        return LoginUser(g.context.login_user, f"logged in over {g.context.target_kind}")
    return _cloud_init_default_user(g)


LOGIN_USER = Fact(
    name="linux.accounts.login-user",
    description="the OS user that logs in",
    derive=_derive_login_user,
    patterns=_CLOUD_CFG,
)


@dataclass(frozen=True)
class Privilege:
    root: bool
    how: str


def _derive_privilege(g: Gathered) -> Privilege:
    context = g.context
    if context.privileged is None:
        raise FactFailed("the collection script did not report its privileges")
    if context.session.get("uid") == "0":
        return Privilege(True, "logged in as root")
    if context.privileged:
        return Privilege(True, "`sudo -n sh` ran the privileged probes as uid 0")
    return Privilege(False, context.sudo_error or "sudo -n did not give root")


PRIVILEGE = Fact(
    name="linux.accounts.privilege",
    description="whether the login user gets root through sudo",
    derive=_derive_privilege,
    modes=frozenset({Mode.LIVE}),
)
