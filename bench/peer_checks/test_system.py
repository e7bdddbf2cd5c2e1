"""Peer of checks/linux/system.py: supported OS, pending updates, encryption, cloud-init."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

import pytest
import testinfra.host

# The end of regular (standard) support, as a seller would hard-code it: the dates amiscan's
# scanner/data/os_eol.json holds for the common Marketplace distributions.
END_OF_SUPPORT = {
    ("amzn", "2"): "2026-06-30",
    ("amzn", "2023"): "2029-06-30",
    ("debian", "11"): "2024-08-14",
    ("debian", "12"): "2026-07-11",
    ("debian", "13"): "2028-08-09",
    ("ubuntu", "20.04"): "2025-05-29",
    ("ubuntu", "22.04"): "2027-06-01",
    ("ubuntu", "24.04"): "2029-05-31",
    ("rhel", "8"): "2029-05-31",
    ("rhel", "9"): "2032-05-31",
}


def test_linux_os_supported(host: testinfra.host.Host) -> None:
    info = host.system_info
    key = (str(info.distribution), str(info.release))
    if key not in END_OF_SUPPORT:  # RHEL's 9.4 is supported as 9
        key = (key[0], key[1].split(".")[0])
    assert key in END_OF_SUPPORT, f"unknown release {key}"
    assert datetime.date.today().isoformat() <= END_OF_SUPPORT[key], f"{key} is out of support"


# Sections of the package managers' output that name security updates.
_ADVISORY = re.compile(r"^\S+\s+(?:\S*/Sec\.?|security)\s+\S+", re.IGNORECASE)


def test_linux_packages_up_to_date(host: testinfra.host.Host, as_root: Callable[[], Any]) -> None:
    # The same commands as amiscan's live probe (scanner/facts/linux/system.py _UPDATES_SCRIPT),
    # metadata not refreshed; the system's own manager first (a Debian host may have dnf).
    if host.file("/var/lib/dpkg/status").exists and host.exists("apt-get"):
        manager: str | None = "apt-get"
    else:
        manager = next((m for m in ("dnf", "yum", "apt-get", "zypper") if host.exists(m)), None)
    assert manager is not None, "no supported package manager"
    with as_root():
        if manager == "apt-get":
            lists = [n for n in host.file("/var/lib/apt/lists").listdir() if "_Packages" in n]
            assert lists, "apt has no package lists"
            out = host.run("apt list --upgradable 2>/dev/null").stdout
            pending = [ln for ln in out.splitlines() if "[upgradable from: " in ln]
            suites = [ln.split("/", 1)[1].split(" ", 1)[0] for ln in pending if "/" in ln]
            security = [s for s in suites if "-security" in s.lower()]
        elif manager in ("dnf", "yum"):
            command = (
                "dnf -q -C updateinfo list --security"
                if manager == "dnf"
                else "yum -q -C updateinfo list security"
            )
            result = host.run_expect([0, 100], command)
            security = [ln for ln in result.stdout.splitlines() if _ADVISORY.match(ln.strip())]
            pending = host.run_expect([0, 100], f"{manager} -q -C check-update").stdout.splitlines()
        else:
            out = host.run_expect(
                [0, 100, 101],
                "zypper --non-interactive --no-refresh list-patches --category security",
            ).stdout
            security = [ln for ln in out.splitlines() if "| needed" in ln.lower()]
            pending = host.run_expect(
                [0, 100, 101], "zypper --non-interactive --no-refresh list-updates"
            ).stdout.splitlines()
    assert not security, f"{len(security)} pending security update(s)"
    assert not [ln for ln in pending if ln.strip()], "pending non-security updates"


def test_linux_filesystem_unencrypted(host: testinfra.host.Host) -> None:
    crypttab = host.file("/etc/crypttab")
    entries = []
    if crypttab.exists:
        entries = [
            ln
            for ln in crypttab.content_string.splitlines()
            if ln.strip() and not ln.strip().startswith("#")
        ]
    assert not entries, f"/etc/crypttab: {entries}"
    lsblk = host.run("lsblk -P -o NAME,TYPE,FSTYPE,MOUNTPOINT")
    assert lsblk.rc == 0, "lsblk could not list the block devices"
    encrypted = [
        ln
        for ln in lsblk.stdout.splitlines()
        if 'TYPE="crypt"' in ln or 'FSTYPE="crypto_LUKS"' in ln or 'FSTYPE="BitLocker"' in ln
    ]
    assert not encrypted, f"encrypted devices: {encrypted}"


def test_linux_cloud_init_clean() -> None:
    # amiscan judges cloud-init state offline only (its fact is not gathered on a running host,
    # where cloud-init's own state is expected): skipped alike.
    pytest.skip("cloud-init state under /var/lib/cloud is judged on images, not running hosts")
