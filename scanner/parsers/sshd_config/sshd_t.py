"""Parsing `sshd -T` output into keyword -> values, the form EffectiveConfig.as_dict() has."""

from __future__ import annotations

# The keywords `sshd -T` prints with the rest of the line as one value, or one line per entry.
_MULTI_VALUE = {
    "authorizedkeysfile",
    "authenticationmethods",
    "ipqos",
    "rekeylimit",
    "permitopen",
    "permitlisten",
    "pubkeyauthoptions",
    "logverbose",
    "channeltimeout",
    "persourcepenalties",
}
_REPEATED = {
    "port",
    "listenaddress",
    "hostkey",
    "hostcertificate",
    "allowusers",
    "denyusers",
    "allowgroups",
    "denygroups",
    "acceptenv",
    "setenv",
    "subsystem",
}


def parse_sshd_t(text: str) -> dict[str, tuple[str, ...]]:
    """Parse `sshd -T` output: lowercase keyword -> values.

    Keywords sshd prints once per entry (hostkey, listenaddress, port, acceptenv, subsystem, ...)
    accumulate one value per line; list keywords (authorizedkeysfile, ipqos, ...) split on
    whitespace; every other keyword is one value, the rest of its line.
    """
    result: dict[str, tuple[str, ...]] = {}
    for raw in text.splitlines():
        keyword, _, rest = raw.strip().partition(" ")
        if not keyword:
            continue
        keyword, rest = keyword.lower(), rest.strip()
        if keyword == "permitrootlogin" and rest == "without-password":
            rest = "prohibit-password"  # see the package docstring
        if keyword in _REPEATED:
            result[keyword] = (*result.get(keyword, ()), rest)
        elif keyword in _MULTI_VALUE:
            result[keyword] = tuple(rest.split())
        else:
            result[keyword] = (rest,)
    return result
