"""SSH server checks: the server itself, password login, root login, baked-in keys, reachability,
host keys.

Every check but `linux.ssh.listening` applies offline too; when no OpenSSH server is there, the
checks of its configuration end in `error` naming what is missing, never `skip` or `pass`.
"""

from __future__ import annotations

from collections.abc import Callable

from checks.evidence import key_fingerprint, line, setting_evidence
from checks.policies import policy
from scanner.facts.base import FactFailed, Facts, FactUnavailable, Mode
from scanner.facts.linux.ssh import (
    AUTHORIZED_KEYS,
    HOST_KEYS,
    OFFERED_AUTH,
    SSHD_EFFECTIVE,
    OfferedAuth,
    SshdEffective,
    SshdView,
)
from scanner.facts.linux.ssh_server import BINARY_CANDIDATES, SSH_SERVER, SshServer
from scanner.facts.linux.system import FIREWALL, LISTENERS
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.parsers.firewall import (
    SCANNER_NETWORKS,
    FirewallVerdict,
    evaluate_firewalld,
    evaluate_iptables,
    evaluate_nftables,
    evaluate_ufw,
)
from scanner.parsers.listening import describe, listening_on_all_addresses
from scanner.registry import check

# The firewall must admit the whole vetting ranges (CHECKS.md, S4), not one address in each: a
# rule admitting part of a range leaves the verdict open.
VETTING_SOURCES = SCANNER_NETWORKS


def _offered(facts: Facts) -> OfferedAuth | None:
    """What the server offered from outside; None where no outside probe runs by design (offline,
    `local`). A probe that ran and broke is an error of the check, not a silent absence."""
    try:
        return facts.get(OFFERED_AUTH)
    except FactUnavailable:
        return None


def _where(facts: Facts) -> str:
    """Where what was found lives: the image (offline, or a freshly launched AMI) or the host."""
    offline = facts.context.mode is Mode.OFFLINE
    return "in the image" if offline or facts.context.target_kind == "ami" else "on the host"


@check(
    id="linux.ssh.server-installed",
    title="an OpenSSH server is installed and starts at boot",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S4"),
    rationale="Marketplace vetting logs in over SSH; an image whose SSH server is missing or does "
    "not start at boot cannot be scanned, and buyers cannot reach their instances.",
    remediation="Install OpenSSH's server (openssh-server) and enable it at boot: `systemctl "
    "enable sshd` (`ssh` on Debian and Ubuntu, or the ssh.socket unit), `rc-update add sshd "
    "default` on OpenRC, `update-rc.d ssh enable` on SysV init.",
    needs=[SSH_SERVER],
)
def server_installed(facts: Facts) -> Outcome:
    server = facts.get(SSH_SERVER)
    evidence = _server_evidence(server)
    if not server.installed:
        return Outcome(Status.FAIL, server.missing_reason, tuple(evidence))
    installed = f"sshd {server.binaries[0]} with {server.config}"
    if server.boot:
        started = server.boot[0]
        evidence += [line(o.source, o.text) for o in server.boot]
        evidence += [line(o.source, o.text) for o in server.running]
        return Outcome(
            Status.PASS,
            f"{installed}, started at boot ({started.text})",
            tuple(evidence),
        )
    evidence += [line(o.source, o.text) for o in (*server.looked_at, *server.running)]
    if server.running and facts.context.target_kind == "ami":
        # A freshly launched instance: what runs now came up at boot.
        return Outcome(
            Status.PASS,
            f"{installed}, running on the freshly launched instance (it started at boot)",
            tuple(evidence),
        )
    if server.undetermined:
        running = "; sshd runs now" if server.running else ""
        return Outcome(
            Status.ERROR, f"{installed}, but {server.undetermined}{running}", tuple(evidence)
        )
    running = " (it runs now, but was not started by anything that runs at boot)"
    return Outcome(
        Status.FAIL,
        f"{installed}, but nothing starts it at boot" + (running if server.running else ""),
        tuple(evidence),
    )


def _server_evidence(server: SshServer) -> list[Evidence]:
    binaries = ", ".join(server.binaries) or f"none ({', '.join(BINARY_CANDIDATES)} looked for)"
    config = "present" if server.config_present else "absent"
    return [line("sshd binary", binaries), line(server.config, config)]


@check(
    id="linux.ssh.password-authentication",
    title="SSH password authentication is disabled",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S1", "G4"),
    rationale="Marketplace vetting rejects images whose sshd accepts passwords: "
    "password login invites brute force against every buyer's instance.",
    remediation="Set `PasswordAuthentication no` in /etc/ssh/sshd_config (before any Include that "
    "sets it, and in every Match block that overrides it), and check files under "
    "/etc/ssh/sshd_config.d/, e.g. cloud-init's 50-cloud-init.conf.",
    needs=[SSHD_EFFECTIVE, OFFERED_AUTH],
)
def password_authentication(facts: Facts) -> Outcome:
    effective = facts.get(SSHD_EFFECTIVE)
    offered = _offered(facts)
    enabled = [v for v in effective.views if _first(v, "passwordauthentication") != "no"]
    outside = {u: m for u, m in (offered.by_user.items() if offered else []) if "password" in m}
    if enabled or outside:
        evidence = setting_evidence(enabled, "passwordauthentication")
        evidence += [
            line("SSH server, probed from the scanner", f"offers {', '.join(m)} to user {u}")
            for u, m in outside.items()
        ]
        said = []
        if enabled:
            said.append(
                f"PasswordAuthentication is on for {len(enabled)} of {len(effective.views)} "
                "vetting connections"
            )
        if outside:
            said.append(
                "the server offered password authentication to the scanner "
                f"(user {', '.join(outside)})"
            )
        return Outcome(Status.FAIL, "; ".join(said), tuple(evidence))
    notes = [line(effective.method, note) for note in effective.notes]
    kbd = [
        v
        for v in effective.views
        if _first(v, "kbdinteractiveauthentication") == "yes" and _first(v, "usepam") == "yes"
    ]
    kbd_outside = {
        u: m for u, m in (offered.by_user.items() if offered else []) if "keyboard-interactive" in m
    }
    if kbd or kbd_outside:
        evidence = setting_evidence(kbd, "kbdinteractiveauthentication")
        evidence += setting_evidence(kbd, "usepam")
        evidence += [
            line("SSH server, probed from the scanner", f"offers {', '.join(m)} to user {u}")
            for u, m in kbd_outside.items()
        ]
        return Outcome(
            Status.WARN,
            "PasswordAuthentication is off, but keyboard-interactive with PAM can still ask for a "
            "password; set KbdInteractiveAuthentication no",
            tuple(evidence + notes),
        )
    evidence = setting_evidence(effective.views, "passwordauthentication")
    if offered:
        evidence += [
            line(
                "SSH server, probed from the scanner",
                f"offers {', '.join(m) or 'nothing'} to user {u}",
            )
            for u, m in offered.by_user.items()
        ]
    outcome = Outcome(
        Status.PASS, "sshd refuses passwords for every vetting connection", tuple(evidence + notes)
    )
    return _unless_rejected(outcome, effective)


def _unless_rejected(outcome: Outcome, effective: SshdEffective) -> Outcome:
    """A pass becomes a warning when sshd would refuse to start with this configuration."""
    if outcome.status is not Status.PASS or not effective.fatal_problems:
        return outcome
    evidence = [line(p.split(": ", 1)[0], p.split(": ", 1)[-1]) for p in effective.fatal_problems]
    return Outcome(
        Status.WARN,
        f"{outcome.summary}, but sshd would refuse to start with this configuration: "
        "vetting could not log in at all",
        (*evidence, *outcome.evidence),
    )


def _first(view: SshdView, keyword: str) -> str:
    values = view.get(keyword).values
    return values[0].lower() if values else ""


_SAFE_ROOT_LOGIN = {"no", "prohibit-password", "without-password", "forced-commands-only"}


@check(
    id="linux.ssh.root-login",
    title="root cannot log in with a password over SSH",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S2"),
    rationale="A superuser reachable by password is the first target of every SSH scanner; "
    "Marketplace requires that root cannot log in remotely with a password.",
    remediation="Set `PermitRootLogin prohibit-password` (or `no`) in /etc/ssh/sshd_config and in "
    "any Match block that applies to root.",
    needs=[SSHD_EFFECTIVE],
)
def root_login(facts: Facts) -> Outcome:
    effective = facts.get(SSHD_EFFECTIVE)
    views = effective.for_user("root")
    if not views:
        raise FactFailed("no effective configuration for user root")
    unsafe = [v for v in views if _first(v, "permitrootlogin") not in _SAFE_ROOT_LOGIN]
    if unsafe:
        return _root_login_failure(unsafe, len(views))
    value = _first(views[0], "permitrootlogin")
    outcome = Outcome(
        Status.PASS,
        f"PermitRootLogin is {value} for every vetting connection",
        tuple(setting_evidence(views, "permitrootlogin")),
    )
    return _unless_rejected(outcome, effective)


def _password_methods(view: SshdView) -> list[str]:
    """The ways this connection could ask for a password, as its settings stand now."""
    allowed = " ".join(view.get("authenticationmethods").values).lower()

    def permitted(method: str) -> bool:
        return allowed in ("", "any") or method in allowed

    methods = []
    if _first(view, "passwordauthentication") == "yes" and permitted("password"):
        methods.append("PasswordAuthentication yes")
    if (
        _first(view, "kbdinteractiveauthentication") == "yes"
        and _first(view, "usepam") == "yes"
        and permitted("keyboard-interactive")
    ):
        methods.append("keyboard-interactive with PAM")
    return methods


def _root_login_failure(unsafe: list[SshdView], total: int) -> Outcome:
    """A fail that says what the settings allow now, and no more."""
    values = sorted({_first(v, "permitrootlogin") for v in unsafe})
    setting = f"PermitRootLogin {'/'.join(values)}"
    share = f"{len(unsafe)} of {total} vetting connections"
    evidence = setting_evidence(unsafe, "permitrootlogin")
    with_password = [v for v in unsafe if _password_methods(v)]
    if with_password:
        methods = sorted({m for v in with_password for m in _password_methods(v)})
        evidence += setting_evidence(with_password, "passwordauthentication")
        if "keyboard-interactive with PAM" in methods:
            evidence += setting_evidence(with_password, "kbdinteractiveauthentication")
        return Outcome(
            Status.FAIL,
            f"{setting} with {' and '.join(methods)}: root can log in with a password "
            f"({len(with_password)} of {total} vetting connections)",
            tuple(evidence),
        )
    evidence += setting_evidence(unsafe, "passwordauthentication")
    return Outcome(
        Status.FAIL,
        f"{setting}: sshd allows root to log in ({share}; password login is off now, but "
        f"{'/'.join(values)} also permits it whenever PasswordAuthentication or "
        "keyboard-interactive is turned on)",
        tuple(evidence),
    )


@check(
    id="linux.ssh.authorized-keys",
    title="no SSH authorized keys are baked into the image",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S3", "CL"),
    rationale="A public key left in authorized_keys lets its owner (the seller, a build system) "
    "log in to every buyer's instance.",
    remediation="Delete every authorized_keys / authorized_keys2 file (root, every home, and "
    "AuthorizedKeysFile paths) before creating the AMI; EC2 injects the buyer's key at launch.",
    needs=[AUTHORIZED_KEYS],
)
def authorized_keys(facts: Facts) -> Outcome:
    found = facts.get(AUTHORIZED_KEYS)
    own = (facts.context.scanner_public_key or "").split()[:2]
    baked = [k for k in found.keys if [k.key_type, k.blob] != own]
    excluded = len(found.keys) - len(baked)
    entries = "1 entry" if excluded == 1 else f"{excluded} entries"
    note = f"; ignored the key amiscan logged in with ({entries})" if excluded else ""
    unexamined = [line("not examined", why) for why in found.unexamined]
    if baked:
        evidence = tuple(
            line(
                f"{k.path}:{k.line_number}",
                f"{k.key_type} {key_fingerprint(k.blob)} {k.comment}".strip()
                + (" (with options)" if k.options else ""),
            )
            for k in baked
        )
        return Outcome(
            Status.FAIL,
            f"{len(baked)} authorized key(s) {_where(facts)}{note}",
            (*evidence, *unexamined),
        )
    examined = Evidence("files examined", ", ".join(found.files_examined) or "none present")
    if found.unexamined:
        # No key in the files read, but the files sshd would read are not all known.
        return Outcome(
            Status.ERROR,
            f"no authorized keys in the files examined, but {found.unexamined[0]}",
            (examined, *unexamined),
        )
    return Outcome(Status.PASS, f"no authorized keys{note}", (examined,))


def _judge_rules(evaluate: Callable[..., FirewallVerdict], *args: object) -> FirewallVerdict:
    """A verdict, or "cannot tell" when the rules are in a form the evaluator cannot read."""
    try:
        return evaluate(*args)
    except ValueError as exc:
        return FirewallVerdict(None, f"unreadable rules: {exc}")


# Each front end's command, and the exit codes the probe reports when there is nothing to read.
_FIREWALL_COMMANDS = {
    "iptables": "iptables -S",
    "nft": "nft -j list ruleset",
    "firewalld": "firewall-cmd --list-all",
    "ufw": "ufw status verbose",
}
_NOTHING_TO_READ = {"0", "absent", "inactive"}


def _firewall_verdicts(facts: Facts, port: int) -> list[tuple[str, FirewallVerdict]]:
    dump = facts.get(FIREWALL)
    verdicts: list[tuple[str, FirewallVerdict]] = []
    # A front end that is installed but could not be read (not root, say) may hold rules that
    # block the scanner: its verdict is unknown, never "no rules".
    for name, command in _FIREWALL_COMMANDS.items():
        code = dump.codes.get(name)
        if code is not None and code not in _NOTHING_TO_READ:
            said = dump.outputs.get(name, "").strip().splitlines()
            reason = f"{command} failed (exit {code})" + (f": {said[-1]}" if said else "")
            verdicts.append((command, FirewallVerdict(None, reason)))
    readable = {
        "iptables -S": dump.codes.get("iptables") == "0"
        and bool(dump.outputs.get("iptables", "").strip()),
        "nft -j list ruleset": dump.codes.get("nft") == "0"
        and bool(dump.outputs.get("nft", "").strip()),
        "ufw status verbose": dump.codes.get("ufw") == "0"
        and "status: active" in dump.outputs.get("ufw", "").lower(),
    }
    evaluators = {
        "iptables -S": (evaluate_iptables, dump.outputs.get("iptables", "")),
        "nft -j list ruleset": (evaluate_nftables, dump.outputs.get("nft", "")),
        "ufw status verbose": (evaluate_ufw, dump.outputs.get("ufw", "")),
    }
    for source in VETTING_SOURCES:
        for command, (evaluate, rules) in evaluators.items():
            if readable[command]:
                verdicts.append(
                    (f"{command} (from {source})", _judge_rules(evaluate, rules, source, port))
                )
    if dump.codes.get("firewalld") == "0":
        zone = dump.outputs.get("firewalld", "")
        verdicts.append(("firewall-cmd --list-all", _judge_rules(evaluate_firewalld, zone, port)))
    return verdicts


@check(
    id="linux.ssh.listening",
    title="sshd listens on the scanning port and the host firewall admits the vetting ranges",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("S4"),
    rationale="Marketplace vetting logs in over SSH from 10.0.0.0/16 and 10.2.0.0/16; an image "
    "it cannot reach fails the scan.",
    remediation="Make sshd listen on all addresses on port 22 (no ListenAddress restricted to "
    "one address) and allow TCP/22 from 10.0.0.0/16 and 10.2.0.0/16 in iptables/nftables, "
    "firewalld or ufw.",
    needs=[LISTENERS, FIREWALL],
)
def listening(facts: Facts) -> Outcome:
    if facts.context.mode is not Mode.LIVE:
        raise FactUnavailable("reachability can only be judged on a running instance")
    port = facts.context.scan_port
    listeners = facts.get(LISTENERS)
    evidence = [line("/proc/net/tcp, /proc/net/tcp6", describe(listeners, port))]
    if facts.context.reached_from_scanner:
        evidence.append(line("scanner", f"reached TCP/{port} and logged in"))
    if not listening_on_all_addresses(listeners, port):
        # The socket table shows a port, not which program holds it: say only what it shows.
        summary = (
            f"port {port} is open on some addresses only, not on all"
            if any(listener.port == port for listener in listeners)
            else f"nothing listens on port {port}"
        )
        return Outcome(Status.FAIL, summary, tuple(evidence))
    try:
        verdicts = _firewall_verdicts(facts, port)
    except (FactFailed, FactUnavailable) as exc:
        evidence.append(line("firewall", str(exc)))
        return Outcome(
            Status.WARN,
            f"listening on port {port}; the firewall could not be read",
            tuple(evidence),
        )
    evidence += [line(src, v.deciding_rule or v.reason) for src, v in verdicts]
    blocked = [v for _, v in verdicts if v.admitted is False]
    unsure = [v for _, v in verdicts if v.admitted is None]
    if blocked:
        return Outcome(
            Status.FAIL,
            f"the host firewall blocks TCP/{port} from the vetting ranges: {blocked[0].reason}",
            tuple(evidence),
        )
    if unsure:
        return Outcome(
            Status.WARN,
            f"cannot tell whether the firewall admits TCP/{port}: {unsure[0].reason}",
            tuple(evidence),
        )
    if not verdicts:
        evidence.append(line("firewall", "no active iptables, nftables, firewalld or ufw rules"))
    return Outcome(
        Status.PASS,
        f"sshd listens on all addresses on port {port} and the firewall admits the vetting ranges",
        tuple(evidence),
    )


@check(
    id="linux.ssh.host-keys",
    title="no SSH host keys are baked into the image",
    severity=Severity.MEDIUM,
    platform=Platform.LINUX,
    policy=policy("SH"),
    rationale="Host keys shipped in an image are shared by every instance launched from it, so "
    "one buyer can impersonate another's server.",
    remediation="Delete /etc/ssh/ssh_host_* before creating the AMI; sshd (or cloud-init) "
    "generates fresh keys at first boot.",
    needs=[HOST_KEYS],
)
def host_keys(facts: Facts) -> Outcome:
    keys = facts.get(HOST_KEYS)
    unknown = (line("not examined", keys.unknown_paths),) if keys.unknown_paths else ()
    looked = "/etc/ssh" + ("" if keys.unknown_paths else " and sshd's HostKey paths")
    if not keys.files:
        if keys.unknown_paths:
            return Outcome(
                Status.ERROR,
                f"no host key files under /etc/ssh, but {keys.unknown_paths}",
                (line("/etc/ssh", "no ssh_host_* files"), *unknown),
            )
        return Outcome(
            Status.PASS,
            f"no host key files in {looked}",
            (line(looked, "no host key files"),),
        )
    if facts.context.mode is Mode.OFFLINE:
        return Outcome(
            Status.FAIL,
            f"{len(keys.files)} host key file(s) in the image",
            (*(line(k.path) for k in keys.files), *unknown),
        )
    if keys.boot_time is None:
        raise FactFailed("the boot time (/proc/stat btime) was not reported")
    older = [k for k in keys.files if k.mtime is not None and k.mtime < keys.boot_time]
    evidence = tuple(
        line(
            k.path,
            f"modified {k.mtime} ({'before' if k in older else 'after'} boot at {keys.boot_time})",
        )
        for k in keys.files
    )
    if not older:
        if keys.unknown_paths:
            return Outcome(
                Status.ERROR,
                f"the host keys under /etc/ssh were created after this boot, but "
                f"{keys.unknown_paths}",
                (*evidence, *unknown),
            )
        return Outcome(Status.PASS, "every host key was created after this boot", evidence)
    if facts.context.target_kind == "ami":
        return Outcome(
            Status.FAIL,
            f"{len(older)} host key file(s) predate the first boot: baked into the image",
            (*evidence, *unknown),
        )
    # The check applies, but on a host that has booted more than once the file times cannot
    # tell keys baked into its image from keys made at its first boot.
    return Outcome(
        Status.ERROR,
        f"{len(older)} host key file(s) predate this boot: on a host that has rebooted, keys "
        "baked into the image and keys made at its first boot look alike; scan the AMI or its "
        "image offline to judge",
        (*evidence, *unknown),
    )
