"""Windows account checks, judged from recorded probe output: guest account, RDP users."""

from __future__ import annotations

from typing import Any

import pytest

from checks.windows.accounts import guest_account, remote_desktop_users
from scanner.model import Status
from tests.factbuilders import evidence_text, probe_output, run
from tests.fakes.windows_hosts import SID, windows_facts

ADMIN = {"name": "Administrator", "sid": f"{SID}-500", "disabled": False}


def accounts(
    users: list[dict[str, Any]],
    guests: list[dict[str, Any]] | None = None,
    rdp: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {"users": users, "guests": guests or [], "remote_desktop_users": rdp or []}


def guest(disabled: bool, name: str = "Guest") -> dict[str, Any]:
    return {"name": name, "sid": f"{SID}-501", "disabled": disabled}


def member(name: str, rid: str, kind: str = "User") -> dict[str, Any]:
    return {"name": f"EC2AMAZ-FAKE\\{name}", "sid": f"{SID}-{rid}", "class": kind}


GUEST_CASES = [
    pytest.param(
        accounts([ADMIN, guest(True)], [member("Guest", "501")]),
        Status.PASS,
        id="disabled-guest-passes",
    ),
    pytest.param(accounts([ADMIN]), Status.PASS, id="no-guest-passes"),
    pytest.param(
        accounts([ADMIN, guest(False)], [member("Guest", "501")]),
        Status.FAIL,
        id="enabled-guest-fails",
    ),
    pytest.param(accounts([ADMIN, guest(False, "Visitor")]), Status.FAIL, id="renamed-guest-fails"),
    pytest.param(
        accounts(
            [ADMIN, {"name": "kiosk", "sid": f"{SID}-1002", "disabled": False}],
            [member("kiosk", "1002")],
        ),
        Status.FAIL,
        id="enabled-member-of-guests-fails",
    ),
    pytest.param(
        accounts(
            [ADMIN, {"name": "kiosk", "sid": f"{SID}-1002", "disabled": True}],
            [member("kiosk", "1002")],
        ),
        Status.PASS,
        id="disabled-member-of-guests-passes",
    ),
    pytest.param(
        accounts(
            [ADMIN], [{"name": "NT AUTHORITY\\INTERACTIVE", "sid": "S-1-5-4", "class": "Group"}]
        ),
        Status.WARN,
        id="non-local-member-warns",
    ),
]


@pytest.mark.parametrize(("document", "status"), GUEST_CASES)
def test_guest_account_status(document: dict[str, Any], status: Status) -> None:
    outcome = run(guest_account, windows_facts(changes={"windows.accounts": document}))
    assert outcome.status is status, outcome.summary


def test_an_enabled_guest_is_named_in_the_evidence() -> None:
    document = accounts([ADMIN, guest(False, "Visitor")])
    outcome = run(guest_account, windows_facts(changes={"windows.accounts": document}))
    assert "Visitor" in evidence_text(outcome)


RDP_USERS_CASES = [
    pytest.param([], Status.PASS, id="empty-passes"),
    pytest.param([member("support", "1001")], Status.FAIL, id="local-user-fails"),
    pytest.param([member("Everyone", "1", "Group")], Status.FAIL, id="group-fails"),
]


@pytest.mark.parametrize(("members", "status"), RDP_USERS_CASES)
def test_remote_desktop_users_status(members: list[dict[str, Any]], status: Status) -> None:
    document = accounts([ADMIN], rdp=members)
    outcome = run(remote_desktop_users, windows_facts(changes={"windows.accounts": document}))
    assert outcome.status is status, outcome.summary
    for item in members:
        assert item["name"] in evidence_text(outcome)


def test_a_failed_accounts_probe_is_an_error_not_a_pass() -> None:
    broken = probe_output("", rc=1, stderr="Access is denied")
    outcome = run(guest_account, windows_facts(changes={"windows.accounts": broken}))
    assert outcome.status is Status.ERROR
    assert "Access is denied" in outcome.summary
