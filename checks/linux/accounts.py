"""Account checks: root's password, password hashes, sudo, and the default login user."""

from __future__ import annotations

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.linux.accounts import LOGIN_USER, PRIVILEGE, SHADOW, ShadowEntry
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.redact import MASK
from scanner.registry import check

# A summary names this many accounts and counts the rest; the evidence shows this many lines and
# says how many more there are. An image with 400k accounts still gets a one-line summary.
NAMED_USERS = 10
EVIDENCE_LINES = 50


def _shadow_line(entry: ShadowEntry) -> str:
    """The user and password field with any hash masked: `redact` only recognises `$id$` hashes,
    and a traditional 13-character crypt(3) hash has no prefix."""
    field = entry.password
    if entry.kind in {"hash", "locked-hash"}:
        hashed = field.lstrip("!*")
        lock = field[: len(field) - len(hashed)]
        scheme = hashed[: hashed.find("$", 1) + 1] if hashed.startswith("$") else ""
        field = f"{lock}{scheme}{MASK}"
    return f"{entry.user}:{field}"


@check(
    id="linux.accounts.root-password",
    title="root's password is locked",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S2", "G4"),
    rationale="A usable root password (or none at all) is a remote superuser login waiting to "
    "be guessed, and a hash baked into an image is a hardcoded secret.",
    remediation="Lock root's password: `passwd -l root` (or `usermod -p '*' root`), and make sure "
    "the shadow field is not empty.",
    needs=[SHADOW],
)
def root_password(facts: Facts) -> Outcome:
    shadow = facts.get(SHADOW)
    entry = shadow.entry("root")
    if entry is None:
        return Outcome(
            Status.WARN, "root has no entry in /etc/shadow", (line(shadow.path, "no root line"),)
        )
    evidence = (line(f"{shadow.path}:{entry.line_number}", _shadow_line(entry)),)
    kind = entry.kind
    if kind == "empty":
        return Outcome(
            Status.FAIL, "root has an empty password: anyone can log in as root", evidence
        )
    if kind == "hash":
        return Outcome(Status.FAIL, "root has a usable password hash", evidence)
    return Outcome(
        Status.PASS, f"root's password is locked ({entry.password[:1] or '?'}…)", evidence
    )


@check(
    id="linux.accounts.passwords",
    title="no account has an empty password or a password hash",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("G4", "G5"),
    rationale="Marketplace forbids password-based authentication and blank passwords; a hash in "
    "/etc/shadow is also a hardcoded secret that can be cracked offline.",
    remediation="Lock every account's password (`passwd -l USER`, or `usermod -p '*' USER`) and "
    "remove hashes left behind by the build (`!$6$…` still holds the hash: replace it with `*`).",
    needs=[SHADOW],
)
def passwords(facts: Facts) -> Outcome:
    shadow = facts.get(SHADOW)
    empty = [e for e in shadow.entries if e.kind == "empty"]
    hashed = [e for e in shadow.entries if e.kind == "hash"]
    locked_hash = [e for e in shadow.entries if e.kind == "locked-hash"]

    def evidence(entries: list[ShadowEntry]) -> tuple[Evidence, ...]:
        shown = [
            line(f"{shadow.path}:{e.line_number}", _shadow_line(e))
            for e in entries[:EVIDENCE_LINES]
        ]
        if len(entries) > EVIDENCE_LINES:
            shown.append(
                line(shadow.path, f"and {len(entries) - EVIDENCE_LINES} more such entries")
            )
        return tuple(shown)

    if empty or hashed:
        parts = []
        if empty:
            parts.append(f"empty password: {_names(empty)}")
        if hashed:
            parts.append(f"password hash: {_names(hashed)}")
        return Outcome(
            Status.FAIL,
            "; ".join(parts),
            evidence(empty) + evidence(hashed) + evidence(locked_hash),
        )
    if locked_hash:
        users = _names(locked_hash)
        return Outcome(
            Status.WARN,
            f"locked, but the hash is still stored: {users}",
            evidence(locked_hash),
        )
    return Outcome(
        Status.PASS,
        f"all {len(shadow.entries)} accounts are locked or have no password",
        (line(shadow.path, f"{len(shadow.entries)} entries examined"),),
    )


def _names(entries: list[ShadowEntry]) -> str:
    """The first few user names, and how many more: linear, and short whatever the count."""
    names = ", ".join(e.user for e in entries[:NAMED_USERS])
    more = len(entries) - NAMED_USERS
    return f"{names} and {more} more" if more > 0 else names


@check(
    id="linux.accounts.sudo",
    title="the login user has full sudo",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("L1"),
    rationale="Marketplace vetting (and buyers) need full privileged access through the login "
    "user, without a password.",
    remediation="Give the login user passwordless sudo, e.g. "
    "`echo 'ec2-user ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/90-ec2-user` (cloud-init does this "
    "for its default user).",
    needs=[PRIVILEGE],
)
def sudo(facts: Facts) -> Outcome:
    privilege = facts.get(PRIVILEGE)
    evidence = (line("sudo -n sh", privilege.how),)
    if privilege.root:
        return Outcome(Status.PASS, "the login user can run any command as root", evidence)
    return Outcome(Status.FAIL, "the login user cannot get root without a password", evidence)


@check(
    id="linux.accounts.default-user",
    title="the login user is ec2-user",
    severity=Severity.MEDIUM,
    platform=Platform.LINUX,
    policy=policy("BP"),
    rationale="Marketplace recommends ec2-user and requires the same OS user name across "
    "versions of a product, since buyers' automation depends on it.",
    remediation="Use ec2-user as cloud-init's default user (system_info.default_user.name), or "
    "keep the user name of the previous version.",
    needs=[LOGIN_USER],
)
def default_user(facts: Facts) -> Outcome:
    user = facts.get(LOGIN_USER)
    evidence = [line(user.source, user.name)]
    baseline = facts.context.baseline_login_user
    if baseline:
        evidence.append(line("baseline report", f"login user {baseline}"))
        if baseline != user.name:
            return Outcome(
                Status.FAIL,
                f"the login user changed from {baseline} (baseline) to {user.name}",
                tuple(evidence),
            )
    if user.name == "ec2-user":
        return Outcome(Status.PASS, "the login user is ec2-user", tuple(evidence))
    return Outcome(
        Status.WARN,
        f"the login user is {user.name}, not ec2-user; keep it the same in every version",
        tuple(evidence),
    )
