"""Secret checks: histories, AWS credentials and private keys left in the image."""

from __future__ import annotations

import fnmatch
import re

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.linux.secrets import (
    AWS_FILE_PATTERNS,
    AWS_FILES,
    HISTORIES,
    HISTORY_PATTERNS,
    SEARCH_DIRS,
    SECRET_MATCHES,
    SecretMatch,
    is_bundled,
)
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check


@check(
    id="linux.secrets.shell-history",
    title="no shell or tool history is left in the image",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("G5", "SH"),
    rationale="Histories from the build record commands, passwords typed on command lines and "
    "tokens; every buyer would receive them.",
    remediation="Delete the histories before creating the AMI, e.g. "
    "`find /root /home -name '.*history' -delete; rm -f /root/.lesshst /root/.viminfo`, and end "
    "the build shell with `unset HISTFILE`.",
    needs=[HISTORIES],
)
def shell_history(facts: Facts) -> Outcome:
    histories = facts.get(HISTORIES)
    non_empty = [h for h in histories if h.size > 0]
    if non_empty:
        evidence = tuple(
            line(
                h.path,
                f"{h.size} bytes, {h.lines} lines"
                if h.lines_complete
                else f"{h.size} bytes, {h.lines}+ lines in its first part",
            )
            for h in non_empty
        )
        return Outcome(Status.FAIL, f"{len(non_empty)} non-empty history file(s)", evidence)
    if histories:
        return Outcome(
            Status.PASS,
            "history files exist but are empty",
            tuple(line(h.path, "0 bytes") for h in histories),
        )
    return Outcome(
        Status.PASS,
        "no history files in /root or /home/*",
        (line("searched", ", ".join(HISTORY_PATTERNS)),),
    )


def _match_line(match: SecretMatch) -> Evidence:
    return line(f"{match.path}:{match.line_number}", match.text)


_CREDENTIAL_KEY = re.compile(
    r"(?im)^\s*(aws_access_key_id|aws_secret_access_key|aws_session_token)\s*="
)


def _credential_lines(path: str, text: str) -> list[Evidence]:
    return [
        line(f"{path}:{n}", raw.strip())
        for n, raw in enumerate(text.splitlines(), start=1)
        if _CREDENTIAL_KEY.match(raw)
    ]


@check(
    id="linux.secrets.aws-credentials",
    title="no AWS credentials are baked into the image",
    severity=Severity.CRITICAL,
    platform=Platform.LINUX,
    policy=policy("G5", "G6"),
    rationale="AWS keys in an image give every buyer the seller's (or the build's) AWS access; "
    "instances must use IAM roles instead.",
    remediation="Remove ~/.aws/credentials and every file holding an AWS access key id or secret "
    "key; rotate the exposed keys in IAM; use an instance profile (IAM role) at run time.",
    needs=[AWS_FILES, SECRET_MATCHES],
)
def aws_credentials(facts: Facts) -> Outcome:
    evidence: list[Evidence] = []
    unread: list[str] = []
    aws_files = facts.get(AWS_FILES)
    for file in aws_files:
        evidence += _credential_lines(file.path, file.text)
        if not file.complete:
            unread.append(f"{file.path} is {file.size} bytes; only its first part was read")
    search = facts.get(SECRET_MATCHES)
    unread += search.incomplete
    matches = [m for m in search.matches if m.kind.startswith("aws-")]
    seen = {e.source for e in evidence}
    fresh = [m for m in matches if f"{m.path}:{m.line_number}" not in seen]
    evidence += [_match_line(m) for m in fresh if not is_bundled(m.path)]
    bundled = [_match_line(m) for m in fresh if is_bundled(m.path)]
    if evidence:
        files = sorted({e.source.rsplit(":", 1)[0] for e in evidence})
        return Outcome(
            Status.FAIL,
            f"AWS credentials in {len(files)} file(s): {', '.join(files[:5])}",
            (*evidence, *bundled, *_not_searched(unread)),
        )
    if unread:
        return _incomplete("AWS credentials", unread, bundled)
    if bundled:
        files = sorted({e.source.rsplit(":", 1)[0] for e in bundled})
        return Outcome(
            Status.WARN,
            f"AWS key ids only inside bundled packages' documentation or tests ({len(files)} "
            "file(s)); confirm none is a real key",
            tuple(bundled),
        )
    return Outcome(
        Status.PASS,
        "no AWS credential files or access keys found",
        (
            line("searched", ", ".join(AWS_FILE_PATTERNS)),
            line("searched for AWS key ids", ", ".join(SEARCH_DIRS)),
        ),
    )


_HOST_KEY = "/etc/ssh/ssh_host_*_key"


def _not_searched(reasons: list[str] | tuple[str, ...]) -> tuple[Evidence, ...]:
    return tuple(line("not searched", reason) for reason in reasons)


def _incomplete(what: str, reasons: list[str] | tuple[str, ...], seen: list[Evidence]) -> Outcome:
    """Nothing found, but not everything was searched: that is not a pass."""
    return Outcome(
        Status.ERROR,
        f"no {what} found, but the search was incomplete: {reasons[0]}",
        tuple(seen) + _not_searched(reasons),
    )


def _is_host_key(match: SecretMatch) -> bool:
    return fnmatch.fnmatchcase(match.path, _HOST_KEY)


@check(
    id="linux.secrets.private-keys",
    title="no private keys are baked into the image",
    severity=Severity.HIGH,
    platform=Platform.LINUX,
    policy=policy("G5"),
    rationale="A private key shipped in an image is known to every buyer: whatever it unlocks "
    "(servers, TLS identities, Git repositories) is exposed.",
    remediation="Remove private keys from the image (home directories, /etc, /opt, /srv, "
    "/usr/local); generate them at first boot instead, and revoke the exposed ones.",
    needs=[SECRET_MATCHES],
)
def private_keys(facts: Facts) -> Outcome:
    search = facts.get(SECRET_MATCHES)
    matches = [m for m in search.matches if m.kind == "private-key" and not _is_host_key(m)]
    own = [m for m in matches if not is_bundled(m.path)]
    bundled = [m for m in matches if is_bundled(m.path)]
    if own:
        files = sorted({m.path for m in own})
        evidence = tuple(_match_line(m) for m in own + bundled)
        return Outcome(
            Status.FAIL,
            f"private key material in {len(files)} file(s): {', '.join(files[:5])}",
            evidence + _not_searched(search.incomplete),
        )
    if search.incomplete:
        return _incomplete("private keys", search.incomplete, [_match_line(m) for m in bundled])
    if bundled:
        files = sorted({m.path for m in bundled})
        return Outcome(
            Status.WARN,
            f"private keys only inside bundled packages or test data ({len(files)} file(s)); "
            "confirm none is used",
            tuple(_match_line(m) for m in bundled),
        )
    return Outcome(
        Status.PASS,
        "no private keys outside the SSH host keys",
        (line("searched for private key headers", ", ".join(SEARCH_DIRS)),),
    )
