"""Local accounts and the membership of the Guests and Remote Desktop Users groups.

Groups are looked up by their well-known SIDs because their names are localised, and members are
read through ADSI (WinNT://) because Get-LocalGroupMember fails outright on a group that holds an
orphaned SID.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.facts.base import FactFailed, Gathered
from scanner.facts.windows.common import as_list, as_text, probe_json, windows_fact
from scanner.facts.windows.sam import alias_members, sam_users
from scanner.facts.windows.volume import SAM_HIVE

GUESTS_SID = "S-1-5-32-546"
REMOTE_DESKTOP_USERS_SID = "S-1-5-32-555"
# The built-in guest account keeps relative id 501 even when renamed.
GUEST_RID = "501"

_PROBE = r"""
function Get-AmiscanGroupMembers([string]$Sid) {
    $name = (New-Object System.Security.Principal.SecurityIdentifier $Sid).Translate([System.Security.Principal.NTAccount]).Value.Split('\')[-1]
    $group = [ADSI]("WinNT://$env:COMPUTERNAME/$name,group")
    @($group.Invoke('Members') | ForEach-Object {
        $type = $_.GetType()
        $path = [string]$type.InvokeMember('ADsPath', 'GetProperty', $null, $_, $null)
        $class = [string]$type.InvokeMember('Class', 'GetProperty', $null, $_, $null)
        $bytes = $type.InvokeMember('objectSid', 'GetProperty', $null, $_, $null)
        [ordered]@{
            name = ($path -replace '^WinNT://', '') -replace '/', '\'
            sid = (New-Object System.Security.Principal.SecurityIdentifier ([byte[]]$bytes), 0).Value
            class = $class
        }
    })
}
$users = @(Get-CimInstance -ClassName Win32_UserAccount -Filter 'LocalAccount=True' | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; sid = [string]$_.SID; disabled = [bool]$_.Disabled }
})
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{
    users = $users
    guests = @(Get-AmiscanGroupMembers '@GUESTS_SID@')
    remote_desktop_users = @(Get-AmiscanGroupMembers '@REMOTE_DESKTOP_USERS_SID@')
})
""".replace("@GUESTS_SID@", GUESTS_SID).replace(
    "@REMOTE_DESKTOP_USERS_SID@", REMOTE_DESKTOP_USERS_SID
)


@dataclass(frozen=True)
class LocalUser:
    """A local account (Win32_UserAccount)."""

    name: str
    sid: str
    disabled: bool

    @property
    def is_builtin_guest(self) -> bool:
        return self.sid.startswith("S-1-5-21-") and self.sid.rsplit("-", 1)[-1] == GUEST_RID


@dataclass(frozen=True)
class GroupMember:
    """A member of a local group, as ADSI lists it (user or group, local or not)."""

    name: str
    sid: str
    kind: str


@dataclass(frozen=True)
class LocalAccounts:
    """Local accounts and the members of the two groups the checks judge."""

    users: tuple[LocalUser, ...]
    guests: tuple[GroupMember, ...]
    remote_desktop_users: tuple[GroupMember, ...]

    def user_by_sid(self, sid: str) -> LocalUser | None:
        return next((u for u in self.users if u.sid == sid), None)


def _members(raw: Any) -> tuple[GroupMember, ...]:
    return tuple(
        GroupMember(as_text(m.get("name")), as_text(m.get("sid")), as_text(m.get("class")))
        for m in as_list(raw)
        if isinstance(m, dict)
    )


def parse_accounts(document: Any) -> LocalAccounts:
    """The accounts probe's JSON as LocalAccounts."""
    if not isinstance(document, dict):
        raise FactFailed("the accounts probe printed no accounts")
    users = tuple(
        LocalUser(as_text(u.get("name")), as_text(u.get("sid")), bool(u.get("disabled")))
        for u in as_list(document.get("users"))
        if isinstance(u, dict)
    )
    if not users:
        # Every Windows host has at least the built-in Administrator: an empty list means the
        # query failed silently, and "no enabled guest" would be a pass without a judgement.
        raise FactFailed("the accounts probe listed no local accounts")
    return LocalAccounts(
        users, _members(document.get("guests")), _members(document.get("remote_desktop_users"))
    )


# Well-known SIDs that can sit in a local group, named as Windows (in English) names them.
_WELL_KNOWN = {
    "S-1-1-0": "Everyone",
    "S-1-5-4": "NT AUTHORITY\\INTERACTIVE",
    "S-1-5-7": "NT AUTHORITY\\ANONYMOUS LOGON",
    "S-1-5-11": "NT AUTHORITY\\Authenticated Users",
    "S-1-5-32-544": "BUILTIN\\Administrators",
    "S-1-5-32-545": "BUILTIN\\Users",
    "S-1-5-32-546": "BUILTIN\\Guests",
}


def accounts_at_rest(g: Gathered) -> LocalAccounts:
    """The offline form: accounts and the two groups' members from the SAM hive."""
    sam = g.get(SAM_HIVE)
    users = tuple(LocalUser(u.name, u.sid, u.disabled) for u in sam_users(sam))
    by_sid = {u.sid: u for u in users}

    def members(group_sid: str) -> tuple[GroupMember, ...]:
        found = []
        for sid in alias_members(sam, int(group_sid.rsplit("-", 1)[1])):
            local = by_sid.get(sid)
            name = local.name if local else _WELL_KNOWN.get(sid, sid)
            # ADSI says "User" or "Group"; the SAM alone knows only whether the SID is local.
            found.append(GroupMember(name, sid, "User" if local else "SID"))
        return tuple(found)

    return LocalAccounts(users, members(GUESTS_SID), members(REMOTE_DESKTOP_USERS_SID))


LOCAL_ACCOUNTS = windows_fact(
    "windows.accounts",
    "local accounts and the Guests and Remote Desktop Users groups",
    _PROBE,
    lambda g: parse_accounts(probe_json(g, "reading local accounts and groups")),
    offline=accounts_at_rest,
)
