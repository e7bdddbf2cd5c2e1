"""Passwords left for Windows Setup: unattend answer files and the Winlogon auto-logon password.

Only the Winlogon value's presence and length leave the guest. Answer files come back whole
(they are small) so that the scanner, not the guest, decides what is a password; their values never
reach a report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scanner.facts.base import Gathered
from scanner.facts.windows.common import (
    as_dict,
    as_int,
    as_list,
    as_text,
    probe_json,
    require_fields,
    windows_fact,
)
from scanner.facts.windows.volume import expand, read_text, software_key
from scanner.parsers.regf import RegistryValue

_FILE_LIMIT = 262144

# Where Windows Setup, sysprep and the EC2 launch agents look for (or leave) answer files.
UNATTEND_PATHS = (
    r"$env:SystemRoot\Panther\Unattend.xml",
    r"$env:SystemRoot\Panther\Autounattend.xml",
    r"$env:SystemRoot\Panther\Unattend\Unattend.xml",
    r"$env:SystemRoot\Panther\Unattend\Autounattend.xml",
    r"$env:SystemRoot\System32\Sysprep\unattend.xml",
    r"$env:SystemRoot\System32\Sysprep\Autounattend.xml",
    r"$env:SystemRoot\System32\Sysprep\Panther\unattend.xml",
    r"$env:SystemDrive\unattend.xml",
    r"$env:SystemDrive\Autounattend.xml",
    r"$env:ProgramData\Amazon\EC2Launch\sysprep\unattend.xml",
    r"$env:ProgramData\Amazon\EC2-Windows\Launch\Sysprep\Unattend.xml",
    r"$env:ProgramFiles\Amazon\Ec2ConfigService\sysprep2008.xml",
)

_PROBE = (
    "$paths = @(\n"
    + ",\n".join(f'    "{path}"' for path in UNATTEND_PATHS)
    + rf"""
)
$seen = @{{}}
$files = @(foreach ($path in $paths) {{
    if ($seen.ContainsKey($path.ToLowerInvariant())) {{ continue }}
    $seen[$path.ToLowerInvariant()] = $true
    if (-not (Test-Path -LiteralPath $path -PathType Leaf)) {{ continue }}
    $reader = New-Object System.IO.StreamReader $path
    try {{
        $buffer = New-Object char[] {_FILE_LIMIT}
        $count = $reader.ReadBlock($buffer, 0, $buffer.Length)
        $content = New-Object string ($buffer, 0, $count)
    }} finally {{ $reader.Close() }}
    [ordered]@{{ path = $path; size = (Get-Item -LiteralPath $path).Length; content = $content }}
}})
$winlogon = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon'
$password = $winlogon.DefaultPassword
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{{
    files = $files
    winlogon = [ordered]@{{
        auto_admin_logon = [string]$winlogon.AutoAdminLogon
        default_user_name = [string]$winlogon.DefaultUserName
        default_password_present = ($null -ne $password)
        default_password_length = if ($null -ne $password) {{ ([string]$password).Length }} else {{ 0 }}
    }}
}})
"""
)

# Windows Setup scrubs the passwords of the answer file it caches in Panther with this value.
_SCRUBBED = "*SENSITIVE*DATA*DELETED*"
_PASSWORD_BLOCK = re.compile(
    r"<(?P<tag>(?:\w+:)?\w*Password)\b[^>]*>(?P<body>.*?)</(?P=tag)\s*>", re.IGNORECASE | re.DOTALL
)
_VALUE = re.compile(r"<(?:\w+:)?Value\b[^>]*>(?P<value>.*?)</(?:\w+:)?Value\s*>", re.I | re.DOTALL)
_PLAIN = re.compile(r"<(?:\w+:)?PlainText\b[^>]*>\s*(?P<flag>\w+)\s*<", re.IGNORECASE)


@dataclass(frozen=True)
class UnattendPassword:
    """A password element with a value in an answer file; the value itself is not kept."""

    path: str
    line_number: int
    element: str
    plaintext: bool
    length: int

    def describe(self) -> str:
        form = "plaintext" if self.plaintext else "base64-encoded (PlainText false)"
        return f"<{self.element}> holds a {form} password ({self.length} characters)"


@dataclass(frozen=True)
class UnattendFile:
    """An answer file found on the guest, with the passwords it holds."""

    path: str
    size: int
    passwords: tuple[UnattendPassword, ...]


@dataclass(frozen=True)
class Winlogon:
    """The auto-logon settings; only the password's length left the guest."""

    auto_admin_logon: bool
    default_user_name: str
    default_password_length: int | None


@dataclass(frozen=True)
class SetupSecrets:
    """Answer files and Winlogon, as the unattend probe found them."""

    files: tuple[UnattendFile, ...]
    winlogon: Winlogon


def find_passwords(path: str, text: str) -> tuple[UnattendPassword, ...]:
    """Password elements with a value in an answer file (a scrubbed or empty value is none).

    Read with regular expressions rather than an XML parser so that a file Windows Setup would
    reject, or one cut at the size limit, is still inspected.
    """
    found = []
    for block in _PASSWORD_BLOCK.finditer(text):
        value = _VALUE.search(block.group("body"))
        if value is None:
            continue
        secret = value.group("value").strip()
        if not secret or secret == _SCRUBBED:
            continue
        flag = _PLAIN.search(block.group("body"))
        # PlainText defaults to true when the element is absent.
        plaintext = flag is None or flag.group("flag").lower() != "false"
        line_number = text.count("\n", 0, block.start()) + 1
        element = block.group("tag").split(":")[-1]
        found.append(UnattendPassword(path, line_number, element, plaintext, len(secret)))
    return tuple(found)


def parse_setup_secrets(document: Any) -> SetupSecrets:
    """The unattend probe's JSON as SetupSecrets."""
    document = require_fields(document, "the unattend probe", "files", "winlogon")
    winlogon_fields = require_fields(
        document["winlogon"], "the unattend probe's winlogon", "default_password_present"
    )
    if winlogon_fields["default_password_present"]:
        require_fields(winlogon_fields, "the unattend probe's winlogon", "default_password_length")
    files = []
    for raw in as_list(document.get("files")):
        if not isinstance(raw, dict):
            continue
        path = as_text(raw.get("path"))
        content = as_text(raw.get("content"))
        files.append(
            UnattendFile(path, as_int(raw.get("size")) or 0, find_passwords(path, content))
        )
    raw_winlogon = as_dict(document.get("winlogon"))
    present = bool(raw_winlogon.get("default_password_present"))
    winlogon = Winlogon(
        auto_admin_logon=as_text(raw_winlogon.get("auto_admin_logon")).strip() == "1",
        default_user_name=as_text(raw_winlogon.get("default_user_name")),
        default_password_length=as_int(raw_winlogon.get("default_password_length"))
        if present
        else None,
    )
    return SetupSecrets(tuple(files), winlogon)


_WINLOGON = r"Microsoft\Windows NT\CurrentVersion\Winlogon"


def _password_length(value: RegistryValue | None) -> int | None:
    """DefaultPassword's length in characters (None when absent); its text never leaves here."""
    if value is None:
        return None
    text = value.as_text()
    # A DefaultPassword stored as another type is still a password: count its bytes' characters.
    return len(text) if text is not None else len(value.data.rstrip(b"\0").decode("latin-1"))


def secrets_at_rest(g: Gathered) -> SetupSecrets:
    """The offline form: the same answer files, and Winlogon from the SOFTWARE hive."""
    files = []
    seen: set[str] = set()
    for path in UNATTEND_PATHS:
        where = expand(path)
        if where.lower() in seen:
            continue
        seen.add(where.lower())
        found = read_text(g, path, _FILE_LIMIT)
        if found is not None:
            files.append(
                UnattendFile(found.path, found.size, find_passwords(found.path, found.text))
            )
    winlogon = software_key(g, _WINLOGON)
    password = winlogon.value("DefaultPassword") if winlogon is not None else None
    return SetupSecrets(
        tuple(files),
        Winlogon(
            auto_admin_logon=(winlogon.text_value("AutoAdminLogon") or "").strip() == "1"
            if winlogon
            else False,
            default_user_name=(winlogon.text_value("DefaultUserName") or "") if winlogon else "",
            # Only the length leaves the image, as live; a non-string value still counts.
            default_password_length=_password_length(password),
        ),
    )


SETUP_SECRETS = windows_fact(
    "windows.secrets.unattend",
    "unattend answer files and the Winlogon auto-logon password",
    _PROBE,
    lambda g: parse_setup_secrets(probe_json(g, "reading unattend files and Winlogon")),
    offline=secrets_at_rest,
)
