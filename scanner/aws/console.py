"""SSH host key fingerprints from an instance's console output (cloud-init prints them at boot)."""

from __future__ import annotations

import re

_BEGIN = "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
_END = "-----END SSH HOST KEY FINGERPRINTS-----"
# "256 SHA256:abc… root@host (ED25519)" or the older "2048 aa:bb:… /etc/ssh/… (RSA)".
_LINE = re.compile(
    r"\b\d+\s+((?:SHA256:[A-Za-z0-9+/=]+)|(?:(?:MD5:)?[0-9a-f]{2}(?::[0-9a-f]{2}){15}))\s"
)


def host_key_fingerprints(console_output: str) -> list[str]:
    """Fingerprints in the console's fingerprint block ("SHA256:…" or "MD5:aa:bb:…")."""
    fingerprints: list[str] = []
    inside = False
    for raw in console_output.splitlines():
        line = raw.strip()
        if line.endswith(_BEGIN):
            inside, fingerprints = True, []
            continue
        if line.endswith(_END):
            inside = False
            continue
        if inside:
            match = _LINE.search(line + " ")
            if match:
                value = match.group(1)
                if not value.startswith("SHA256:") and not value.startswith("MD5:"):
                    value = "MD5:" + value
                fingerprints.append(value.rstrip("="))
    return fingerprints
