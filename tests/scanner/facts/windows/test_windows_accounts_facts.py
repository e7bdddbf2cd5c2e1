"""Local accounts and groups, read from what the accounts probe prints."""

from __future__ import annotations

import pytest

from scanner.facts.base import FactFailed
from scanner.facts.windows.accounts import parse_accounts

ADMINISTRATOR = {"name": "Administrator", "sid": "S-1-5-21-1-2-3-500", "disabled": False}
GUEST = {"name": "Guest", "sid": "S-1-5-21-1-2-3-501", "disabled": True}


def test_accounts_and_group_members_are_read() -> None:
    accounts = parse_accounts(
        {"users": [ADMINISTRATOR, GUEST], "guests": [], "remote_desktop_users": []}
    )

    assert [u.name for u in accounts.users] == ["Administrator", "Guest"]
    guest = accounts.user_by_sid(GUEST["sid"])
    assert guest is not None and guest.disabled


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"users": [], "guests": []}, id="no-accounts"),
        pytest.param({"users": ["not an object"]}, id="no-readable-accounts"),
        pytest.param(None, id="no-document"),
    ],
)
def test_an_account_list_without_any_account_cannot_be_judged(document: object) -> None:
    # Windows always has a built-in Administrator: nothing listed means the query failed.
    with pytest.raises(FactFailed):
        parse_accounts(document)
