"""Simulating the scanner's first SYN against `ufw status verbose` rules.

Every table is judged for both scanner ranges' sample addresses, 10.0.0.1 (10.0.0.0/16) and
10.2.3.4 (10.2.0.0/16); expectations are (verdict for 10.0.0.1, verdict for 10.2.3.4).
"""

from __future__ import annotations

import pytest

from scanner.parsers.firewall.ufw import evaluate_ufw
from scanner.parsers.firewall.walk import FirewallVerdict

SOURCES = ("10.0.0.1", "10.2.3.4")
BOTH = (True, True)
NEITHER = (False, False)
ONLY_FIRST = (True, False)


def ufw_line(to: str, action: str, origin: str, extra: str = "") -> str:
    """One rule line, padded as ufw pads it ("%-26s %-12s%-26s%s")."""
    return f"{to:<26} {action:<12}{origin:<26}{extra}"


def ufw(*rules: str, default: str = "deny") -> str:
    """`ufw status verbose` with `rules` under the header."""
    return "\n".join(
        [
            "Status: active",
            "Logging: on (low)",
            f"Default: {default} (incoming), allow (outgoing), disabled (routed)",
            "New profiles: skip",
            "",
            "To                         Action      From",
            "--                         ------      ----",
            *rules,
            "",
        ]
    )


ALLOW_22 = ufw_line("22/tcp", "ALLOW IN", "Anywhere")
ALLOW_22_V6 = ufw_line("22/tcp (v6)", "ALLOW IN", "Anywhere (v6)")

UFW_CASES = [
    pytest.param(ufw(), NEITHER, id="no-rules-default-deny"),
    pytest.param(ufw(default="allow"), BOTH, id="no-rules-default-allow"),
    pytest.param(ufw(ALLOW_22, ALLOW_22_V6), BOTH, id="allow-22-tcp"),
    pytest.param(ufw(ufw_line("22", "ALLOW IN", "Anywhere")), BOTH, id="allow-22-any-protocol"),
    pytest.param(ufw(ufw_line("22/udp", "ALLOW IN", "Anywhere")), NEITHER, id="allow-22-udp"),
    pytest.param(ufw(ALLOW_22_V6), NEITHER, id="v6-rule-does-not-admit-ipv4"),
    pytest.param(
        ufw(
            ufw_line("22/tcp (OpenSSH)", "ALLOW IN", "Anywhere"),
            ufw_line("22/tcp (OpenSSH (v6))", "ALLOW IN", "Anywhere (v6)"),
        ),
        BOTH,
        id="verbose-application-profile",
    ),
    pytest.param(ufw(ufw_line("OpenSSH", "ALLOW", "Anywhere")), BOTH, id="profile-by-name"),
    pytest.param(ufw(ufw_line("Nginx Full", "ALLOW", "Anywhere")), NEITHER, id="other-profile"),
    pytest.param(ufw(ufw_line("22/tcp", "ALLOW IN", "10.0.0.0/16")), ONLY_FIRST, id="from-range"),
    pytest.param(
        ufw(ufw_line("Anywhere", "ALLOW IN", "10.0.0.0/8")), BOTH, id="everything-from-network"
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "DENY IN", "10.2.0.0/16"), ALLOW_22),
        ONLY_FIRST,
        id="deny-before-allow",
    ),
    pytest.param(
        ufw(ALLOW_22, ufw_line("22/tcp", "DENY IN", "10.2.0.0/16")),
        BOTH,
        id="allow-before-deny",
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "REJECT IN", "Anywhere"), default="allow"),
        NEITHER,
        id="reject",
    ),
    pytest.param(ufw(ufw_line("22/tcp on lo", "ALLOW IN", "Anywhere")), NEITHER, id="on-lo"),
    pytest.param(
        ufw(ufw_line("Anywhere on eth0", "ALLOW IN", "Anywhere")), BOTH, id="anything-on-eth0"
    ),
    pytest.param(ufw(ufw_line("80,443/tcp", "ALLOW IN", "Anywhere")), NEITHER, id="port-list"),
    pytest.param(ufw(ufw_line("20:30/tcp", "ALLOW IN", "Anywhere")), BOTH, id="port-range"),
    pytest.param(
        ufw(ufw_line("22/tcp", "ALLOW IN", "Anywhere", " (log) # ssh for vetting")),
        BOTH,
        id="log-attribute-and-comment",
    ),
    pytest.param(
        ufw("", ufw_line("Anywhere", "ALLOW OUT", "22/tcp")),
        NEITHER,
        id="outgoing-rule-ignored",
    ),
    pytest.param(
        ufw(ufw_line("22/tcp", "ALLOW FWD", "Anywhere on eth0")),
        NEITHER,
        id="routed-rule-ignored",
    ),
]


@pytest.mark.parametrize(("text", "expected"), UFW_CASES)
def test_ufw_admits_the_scanner_ranges(
    text: str, expected: tuple[bool | None, bool | None]
) -> None:
    got = tuple(evaluate_ufw(text, source, 22).admitted for source in SOURCES)
    assert got == expected


def test_ufw_reason_names_the_rule_line() -> None:
    verdict = evaluate_ufw(ufw(ALLOW_22), "10.0.0.1", 22)
    assert verdict == FirewallVerdict(True, "ufw accepts tcp/22 from 10.0.0.1", ALLOW_22.strip())


def test_ufw_reason_names_the_default_policy() -> None:
    verdict = evaluate_ufw(ufw(), "10.2.3.4", 22)
    expected = "ufw default incoming policy deny; no rule accepts tcp/22 from 10.2.3.4"
    assert verdict == FirewallVerdict(False, expected, "")


def test_ufw_limit_cannot_be_told() -> None:
    verdict = evaluate_ufw(ufw(ufw_line("22/tcp", "LIMIT IN", "Anywhere")), "10.0.0.1", 22)
    assert verdict.admitted is None
    assert "LIMIT" in verdict.reason


def test_ufw_numbered_status_is_read_too() -> None:
    text = "\n".join(
        [
            "Status: active",
            "Default: deny (incoming), allow (outgoing), disabled (routed)",
            "",
            "     To                         Action      From",
            "     --                         ------      ----",
            "[ 1] 22/tcp                     ALLOW IN    10.0.0.0/16",
            "[ 2] 22/tcp                     ALLOW IN    10.2.0.0/16",
        ]
    )
    assert [evaluate_ufw(text, s, 22).admitted for s in SOURCES] == [True, True]


def test_ufw_without_the_default_policy_cannot_tell_when_no_rule_decides() -> None:
    text = "Status: active\n\nTo                         Action      From\n--  ------  ----\n"
    verdict = evaluate_ufw(text, "10.0.0.1", 22)
    assert verdict.admitted is None
    assert "default incoming policy is not shown" in verdict.reason


def test_ufw_inactive_filters_nothing() -> None:
    verdict = evaluate_ufw("Status: inactive\n", "10.0.0.1", 22)
    assert verdict == FirewallVerdict(True, "ufw is inactive; it filters nothing", "")


def test_ufw_text_that_is_not_ufw_status_is_an_error() -> None:
    with pytest.raises(ValueError, match="Status"):
        evaluate_ufw("ERROR: You need to be root to run this script\n", "10.0.0.1", 22)
