"""Windows account checks: no enabled guest account, nobody in Remote Desktop Users."""

from __future__ import annotations

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.windows.accounts import LOCAL_ACCOUNTS, GroupMember, LocalAccounts
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check

_GUESTS = "Guests (S-1-5-32-546)"
_RDP_USERS = "Remote Desktop Users (S-1-5-32-555)"


def _enabled_guests(accounts: LocalAccounts) -> tuple[list[Evidence], list[Evidence]]:
    """Enabled guest accounts (failures) and Guests members that are not local users (warnings)."""
    enabled: list[Evidence] = []
    others: list[Evidence] = []
    for user in accounts.users:
        if user.is_builtin_guest and not user.disabled:
            enabled.append(line("Win32_UserAccount", f"{user.name} ({user.sid}): enabled"))
    for member in accounts.guests:
        local = accounts.user_by_sid(member.sid)
        if local is None:
            others.append(line(_GUESTS, f"member {member.name} ({member.kind}, {member.sid})"))
        elif not local.disabled and not local.is_builtin_guest:
            enabled.append(line(_GUESTS, f"member {local.name} ({local.sid}): enabled"))
    return enabled, others


@check(
    id="windows.accounts.guest",
    title="no enabled guest account",
    severity=Severity.CRITICAL,
    platform=Platform.WINDOWS,
    policy=policy("W1"),
    rationale="A guest account lets anyone log in without a password of their own; Marketplace "
    "rejects Windows AMIs that have one enabled.",
    remediation="Disable the built-in Guest account (`Disable-LocalUser -SID <SID ending in -501>` "
    "or `net user Guest /active:no`) and remove other accounts from the Guests group.",
    needs=[LOCAL_ACCOUNTS],
)
def guest_account(facts: Facts) -> Outcome:
    accounts = facts.get(LOCAL_ACCOUNTS)
    enabled, others = _enabled_guests(accounts)
    if enabled:
        return Outcome(
            Status.FAIL, f"{len(enabled)} enabled guest account(s)", tuple(enabled + others)
        )
    if others:
        return Outcome(
            Status.WARN,
            "no enabled local guest account, but the Guests group has other members",
            tuple(others),
        )
    guest = next((u for u in accounts.users if u.is_builtin_guest), None)
    evidence = (
        (line("Win32_UserAccount", f"{guest.name} ({guest.sid}): disabled"),) if guest else ()
    )
    return Outcome(Status.PASS, "the guest account is disabled", evidence)


def _member_line(member: GroupMember) -> Evidence:
    return line(_RDP_USERS, f"{member.name} ({member.kind}, {member.sid})")


@check(
    id="windows.accounts.rdp-users",
    title="the Remote Desktop Users group is empty",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("W2"),
    rationale="Members of Remote Desktop Users can log in over RDP without being administrators; "
    "an account the seller created there is a way into every buyer's instance.",
    remediation="Remove every member: `Get-LocalGroupMember -SID S-1-5-32-555 | "
    "Remove-LocalGroupMember -SID S-1-5-32-555` (administrators have RDP access already).",
    needs=[LOCAL_ACCOUNTS],
)
def remote_desktop_users(facts: Facts) -> Outcome:
    members = facts.get(LOCAL_ACCOUNTS).remote_desktop_users
    if members:
        return Outcome(
            Status.FAIL,
            f"Remote Desktop Users has {len(members)} member(s)",
            tuple(_member_line(m) for m in members),
        )
    return Outcome(Status.PASS, "Remote Desktop Users is empty", (line(_RDP_USERS, "no members"),))
