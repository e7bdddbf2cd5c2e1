"""Windows secrets check: no passwords left in unattend answer files or for auto-logon."""

from __future__ import annotations

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts
from scanner.facts.windows.secrets import SETUP_SECRETS
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check

_WINLOGON = r"HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon"


@check(
    id="windows.secrets.unattend",
    title="no password in unattend files or Winlogon",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("G5"),
    rationale="Answer files used to build the image and the auto-logon DefaultPassword keep an "
    "administrator password in clear text (PlainText false is only base64) for anyone who "
    "launches the AMI to read.",
    remediation="Delete answer files left by the build (Panther, Sysprep, C:\\) or remove their "
    "<Password> values; remove the Winlogon `DefaultPassword` value and set AutoAdminLogon to 0; "
    "then change the affected passwords.",
    needs=[SETUP_SECRETS],
)
def unattend_passwords(facts: Facts) -> Outcome:
    secrets = facts.get(SETUP_SECRETS)
    plain: list[Evidence] = []
    encoded: list[Evidence] = []
    for found in secrets.files:
        for password in found.passwords:
            target = plain if password.plaintext else encoded
            target.append(line(f"{password.path}:{password.line_number}", password.describe()))
    winlogon = secrets.winlogon
    if winlogon.default_password_length:
        plain.append(
            line(
                _WINLOGON,
                f"DefaultPassword is set ({winlogon.default_password_length} characters) for "
                f"{winlogon.default_user_name or '(no DefaultUserName)'}, "
                f"AutoAdminLogon={'1' if winlogon.auto_admin_logon else '0'}",
            )
        )
    files = [
        line(f.path, f"{f.size} bytes, no password values")
        for f in secrets.files
        if not f.passwords
    ]
    if plain:
        return Outcome(
            Status.FAIL,
            f"{len(plain)} plaintext password(s) left for Windows Setup",
            tuple(plain + encoded),
        )
    if encoded:
        return Outcome(
            Status.FAIL,
            f"{len(encoded)} base64-encoded password(s) in answer files (trivially decoded)",
            tuple(encoded),
        )
    checked = f"{len(secrets.files)} answer file(s) and Winlogon checked"
    return Outcome(Status.PASS, f"no passwords left for Windows Setup ({checked})", tuple(files))
