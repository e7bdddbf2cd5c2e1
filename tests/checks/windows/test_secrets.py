"""Windows secrets check: unattend answer files and the Winlogon auto-logon password."""

from __future__ import annotations

from typing import Any

import pytest

from checks.windows.secrets import unattend_passwords
from scanner.model import Status
from tests.factbuilders import evidence_text, run
from tests.fakes.windows_hosts import LEAKY_UNATTEND, SCRUBBED_UNATTEND, windows_facts

SECRETS = "windows.secrets.unattend"
PANTHER = "C:\\Windows\\Panther\\Unattend.xml"
NO_AUTOLOGON = {"auto_admin_logon": "0", "default_user_name": "", "default_password_present": False}
AUTOLOGON = {
    "auto_admin_logon": "1",
    "default_user_name": "Administrator",
    "default_password_present": True,
    "default_password_length": 12,
}
ENCODED_ONLY = """<unattend><AutoLogon><Password><Value>UABhAHMAcwA=</Value>
<PlainText>false</PlainText></Password></AutoLogon></unattend>"""


def document(content: str | None, winlogon: dict[str, Any] = NO_AUTOLOGON) -> dict[str, Any]:
    files = [] if content is None else [{"path": PANTHER, "size": len(content), "content": content}]
    return {"files": files, "winlogon": winlogon}


CASES = [
    pytest.param(document(None), Status.PASS, id="no-answer-file-passes"),
    pytest.param(document(SCRUBBED_UNATTEND), Status.PASS, id="scrubbed-by-setup-passes"),
    pytest.param(document(LEAKY_UNATTEND), Status.FAIL, id="plaintext-password-fails"),
    pytest.param(document(ENCODED_ONLY), Status.FAIL, id="base64-password-fails"),
    pytest.param(document(None, AUTOLOGON), Status.FAIL, id="winlogon-default-password-fails"),
    pytest.param(
        document(None, {**AUTOLOGON, "default_password_length": 0}),
        Status.PASS,
        id="empty-default-password-passes",
    ),
]


@pytest.mark.parametrize(("doc", "status"), CASES)
def test_unattend_status(doc: dict[str, Any], status: Status) -> None:
    outcome = run(unattend_passwords, windows_facts(changes={SECRETS: doc}))
    assert outcome.status is status, outcome.summary


def test_evidence_points_at_the_line_and_never_shows_the_password() -> None:
    outcome = run(
        unattend_passwords, windows_facts(changes={SECRETS: document(LEAKY_UNATTEND, AUTOLOGON)})
    )
    text = evidence_text(outcome)
    assert f"{PANTHER}:6" in text
    assert "DefaultPassword is set (12 characters)" in text
    assert "Build-Time-P@ssw0rd!" not in text
    assert "QgB1AGkAbABkAC0AVABpAG0AZQA=" not in text
