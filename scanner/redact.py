"""Mask what looks like a secret before it becomes evidence in a report.

Reports are shared (CI logs, pull requests, reviewers), so a finding shows where a secret is and
enough of it to recognise, never the secret itself.
"""

from __future__ import annotations

import re

# Bounded by anything but an upper-case letter or digit, so a key glued to a word
# ("key_AKIA…", "\\nAKIA…") is masked as well as found.
_AWS_KEY_ID = re.compile(
    r"(?<![A-Z0-9])((?:AKIA|ASIA|AIDA|AROA|ANPA|ANVA|AGPA)[A-Z0-9]{4})[A-Z0-9]{8}([A-Z0-9]{4})(?![A-Z0-9])"
)
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(\b\w*?(?:aws_secret_access_key|aws_session_token|secret_?key|password|passwd|pwd|token)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;]{4,})"
)
# A "password:" after a word that says there is no secret is prose, not a key: "empty password:
# root, admin" names the accounts a check found, not their passwords. `=` is always a key. Checked
# on the few characters before a match, not in the pattern: a look-around tried at every position
# of a long guest line made the search quadratic.
_NO_SECRET_BEFORE = re.compile(r"(?i)\b(?:empty|blank|no|null|missing) $")
_SECRET_KEY_SHAPE = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_PASSWORD_HASH = re.compile(r"(\$(?:1|2[abxy]?|5|6|y|gy|7|sha1|md5)\$)[^:\s]+")
_PRIVATE_KEY_BODY = re.compile(
    r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)(.*?)(-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)

MASK = "********"


def redact(text: str) -> str:
    """The text with AWS keys, secret assignments, password hashes and key bodies masked."""
    text = _PRIVATE_KEY_BODY.sub(lambda m: f"{m.group(1)}\n{MASK}\n{m.group(3)}", text)
    text = _AWS_KEY_ID.sub(lambda m: f"{m.group(1)}{MASK}{m.group(2)}", text)
    text = _SECRET_ASSIGNMENT.sub(_mask_assignment, text)
    text = _PASSWORD_HASH.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return _SECRET_KEY_SHAPE.sub(MASK, text)


def _mask_assignment(match: re.Match[str]) -> str:
    key = match.group(1)
    before = match.string[max(0, match.start() - 9) : match.start()]
    if "=" not in key and _NO_SECRET_BEFORE.search(before):
        return match.group(0)
    return f"{key}{MASK}"


def clip(text: str, limit: int = 400) -> str:
    """One line of evidence, cut to a readable length."""
    text = text.replace("\r", "")
    return text if len(text) <= limit else text[: limit - 1] + "…"
