"""A Windows probe that prints an empty or hollow document never turns a finding into a pass.

Every live Windows fact is read from the JSON its PowerShell probe prints. A guest can break a
probe (a policy that blocks a cmdlet, a tampered module, a profile that writes to the output):
the probe then prints nothing, `{}`, `[]` or `null`. For each known-bad image of
tests/windowsystem.py (each fails its own checks) and each probe, the probe's document is
replaced by each of those, and no check that did not pass may come out pass or skip. Found this
way, before: `{}` from the unattend probe passed windows.secrets.unattend with a plaintext
password in Unattend.xml, and `{}` from the BitLocker probe passed windows.filesystem.bitlocker
("BitLocker is not installed") on an encrypted volume.
"""

from __future__ import annotations

import pytest

from scanner.model import Status
from tests.fakes.windows_hosts import windows_facts
from tests.test_windowsystem import SCAN_DATE, windows_checks
from tests.windowsystem import KNOWN_BAD, probe_outputs

_CLEAN = {Status.PASS, Status.SKIP}
_HOLLOW = ("", "{}", "[]", "null", '""', "0")


@pytest.mark.parametrize("variant", list(KNOWN_BAD))
def test_a_hollow_probe_document_never_passes_what_the_image_fails(variant: str) -> None:
    outputs = probe_outputs(KNOWN_BAD[variant][0]())
    checks = windows_checks()
    facts = windows_facts(host=outputs, scan_date=SCAN_DATE)
    found = {c.id: c.run(facts).status for c in checks}
    assert {i for i, status in found.items() if status not in _CLEAN}  # it does fail something
    opened = []
    for probe in outputs:
        for hollow in _HOLLOW:
            broken = windows_facts(host={**outputs, probe: hollow}, scan_date=SCAN_DATE)
            for check in checks:
                status = check.run(broken).status
                if found[check.id] not in _CLEAN and status in _CLEAN:
                    opened.append(f"{probe} printing {hollow!r}: {check.id} -> {status.value}")
    assert opened == []
