"""Boot 1: the clean Debian 12 guest, scanned live over SSH and offline from its root tree.

The guest's own tools (sshd -T, nft, apt-get) are the ground truth amiscan's verdicts are held
to. After the clean scans the running guest is broken on purpose (a firewall rule, a password
drop-in) and scanned again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.guest.conftest import CLEAN_VERDICTS, TIMINGS, SessionKey
from tests.guest.image import GuestImage
from tests.guest.scan import JUDGED, Scan, run_amiscan
from tests.guest.shell import GuestShell
from tests.guest.vm import GuestVM, boot

pytestmark = pytest.mark.guest

BOOT_TIMEOUT_S = 900
# A connection from Marketplace's vetting ranges, as sshd's own `-T -C` evaluates it.
VETTING_CONNECTION = "user=ec2-user,host=scanner.example,addr=10.0.0.5,lport=22"
PASSWORD_DROP_IN = "/etc/ssh/sshd_config.d/01-password.conf"
# "Inst pkg [old] (new Debian-Security:12/oldstable-security [amd64])": the origin names the suite.
_INST = re.compile(r"^Inst (\S+) (?:\[([^]]*)\] )?\((\S+) ([^)]*)\)", re.MULTILINE)


@pytest.fixture(scope="module")
def clean_guest(
    guest_image: GuestImage, guest_key: SessionKey, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GuestVM]:
    vm = boot(guest_image, tmp_path_factory.mktemp("clean-guest"), guest_key.public)
    try:
        TIMINGS["clean guest: boot to SSH"] = vm.wait_for_ssh(BOOT_TIMEOUT_S)
        yield vm
    finally:
        vm.stop()


@pytest.fixture(scope="module")
def shell(clean_guest: GuestVM, guest_key: SessionKey) -> Iterator[GuestShell]:
    session = GuestShell.connect(clean_guest.host, clean_guest.port, guest_key.path)
    try:
        yield session
    finally:
        session.close()


def scan_live(vm: GuestVM, key: SessionKey, workdir: Path, label: str) -> Scan:
    started = time.monotonic()
    scan = run_amiscan(f"ssh://ec2-user@{vm.host}:{vm.port}", "-i", str(key.path), workdir=workdir)
    TIMINGS[f"live scan ({label})"] = time.monotonic() - started
    return scan


@pytest.fixture(scope="module")
def live_clean(
    clean_guest: GuestVM, guest_key: SessionKey, tmp_path_factory: pytest.TempPathFactory
) -> Scan:
    scan = scan_live(clean_guest, guest_key, tmp_path_factory.mktemp("live-clean"), "clean")
    CLEAN_VERDICTS["live ssh://"] = _verdicts(scan)
    return scan


@pytest.fixture(scope="module")
def offline_clean(guest_image: GuestImage, tmp_path_factory: pytest.TempPathFactory) -> Scan:
    scan = run_amiscan(f"dir:{guest_image.root}", workdir=tmp_path_factory.mktemp("dir-clean"))
    CLEAN_VERDICTS["offline dir:"] = _verdicts(scan)
    return scan


def _verdicts(scan: Scan) -> dict[str, tuple[str, str]]:
    return {r["id"]: (r["status"], r["summary"]) for r in scan.report["results"]}


def security_updates(apt_output: str, upgrades_only: bool = False) -> set[str]:
    """Packages apt would take from a -security suite; with `upgrades_only`, only those already
    installed (an "Inst" line with the installed version in brackets), not new packages."""
    return {
        name
        for name, installed, _, origin in _INST.findall(apt_output)
        if "-security" in origin and (installed or not upgrades_only)
    }


@pytest.fixture(scope="module")
def apt_on_guest(shell: GuestShell) -> dict[str, set[str]]:
    """Security updates apt itself names on the clean guest (offline: its lists are baked in)."""
    simulate = "apt-get -s -o Debug::NoLocking=1 {}"
    dist_upgrade = shell.run(simulate.format("dist-upgrade"))
    return {
        "upgrade": security_updates(shell.run(simulate.format("upgrade"))),
        "dist-upgrade": security_updates(dist_upgrade),
        "dist-upgrade upgrades": security_updates(dist_upgrade, upgrades_only=True),
    }


@pytest.fixture(scope="module")
def live_broken(
    live_clean: Scan,
    apt_on_guest: dict[str, set[str]],
    shell: GuestShell,
    clean_guest: GuestVM,
    guest_key: SessionKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scan:
    """The running guest broken twice, then rescanned. It asks for the clean scan and apt's
    answer first, so they always see the guest before it was broken."""
    assert live_clean.report and apt_on_guest
    shell.run("sudo nft add rule inet filter input ip saddr 10.0.0.0/8 tcp dport 22 drop")
    shell.run(
        f"echo 'PasswordAuthentication yes' | sudo tee {PASSWORD_DROP_IN} >/dev/null"
        " && sudo systemctl reload ssh"
    )
    return scan_live(clean_guest, guest_key, tmp_path_factory.mktemp("live-broken"), "broken")


def sshd_effective(shell: GuestShell) -> dict[str, str]:
    output = shell.run(f"sudo sshd -T -C {VETTING_CONNECTION}")
    return dict(line.split(" ", 1) for line in output.splitlines() if " " in line)


def console_fingerprint(vm: GuestVM, key_type: str, timeout_s: float = 300) -> str:
    """The fingerprint cloud-init printed on the serial console (late in boot: wait for it)."""
    pattern = re.compile(rf"cloud-init: \d+ (SHA256:\S+) \S+ \({key_type}\)")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = pattern.search(vm.console_text())
        if match:
            return match.group(1)
        time.sleep(2)
    raise AssertionError(f"cloud-init printed no {key_type} fingerprint on the console")


def test_the_clean_guest_fails_live_only_on_its_pending_security_updates(
    live_clean: Scan, shell: GuestShell
) -> None:
    statuses = live_clean.linux_statuses()
    assert live_clean.returncode == 1, live_clean.stderr
    assert not [c for c, s in statuses.items() if s == "error"], live_clean.results
    assert [c for c, s in statuses.items() if s == "fail"] == ["linux.packages.up-to-date"]
    # The scan port is 22, whatever local port the forward reaching the guest has.
    assert live_clean.report["target"]["scan_port"] == 22
    assert statuses["linux.ssh.listening"] == "pass"
    assert ":22 " in shell.run("ss -Hltn 'sport = :22'")
    assert statuses["linux.accounts.sudo"] == "pass"
    assert "NOPASSWD: ALL" in shell.run("sudo -n -l")
    assert statuses["linux.accounts.default-user"] == "pass"
    assert live_clean.report["target"]["login_user"] == "ec2-user"


def test_live_sshd_verdicts_agree_with_the_guests_own_sshd(
    live_clean: Scan, shell: GuestShell
) -> None:
    effective = sshd_effective(shell)
    assert effective["passwordauthentication"] == "no"
    assert effective["permitrootlogin"] == "without-password"
    assert live_clean.statuses["linux.ssh.password-authentication"] == "pass"
    assert live_clean.statuses["linux.ssh.root-login"] == "pass"


def test_live_scan_reached_the_guest_whose_key_cloud_init_printed(
    live_clean: Scan, clean_guest: GuestVM
) -> None:
    """An ssh:// scan trusts on first use; the key it trusted is the one the guest made."""
    verification = live_clean.report["target"]["host_key_verification"]
    assert "trusted on first use" in verification
    assert console_fingerprint(clean_guest, "ED25519").rstrip("=") in verification


def test_live_and_offline_agree_on_every_check_both_can_judge(
    live_clean: Scan, offline_clean: Scan
) -> None:
    live, offline = live_clean.linux_statuses(), offline_clean.linux_statuses()
    assert set(live) == set(offline)
    both = sorted(c for c in live if live[c] != "skip" and offline[c] != "skip")
    assert len(both) >= 12, both
    assert all(live[c] in JUDGED for c in both), live
    assert {c: live[c] for c in both} == {c: offline[c] for c in both}


def test_pending_security_updates_are_the_ones_apt_names_on_the_guest(
    live_clean: Scan, apt_on_guest: dict[str, set[str]]
) -> None:
    result = live_clean.results["linux.packages.up-to-date"]
    assert result["status"] == "fail"
    named = {e["text"].split()[0] for e in result["evidence"] if "security" in e["source"]}
    # The point release lacks real security updates (this fails if Debian ever stops issuing
    # them for bookworm-security: the image would then have nothing pending).
    assert apt_on_guest["upgrade"], "apt-get -s upgrade lists no security updates on the guest"
    assert apt_on_guest["upgrade"] <= named, apt_on_guest["upgrade"] - named
    # amiscan names every installed package a dist-upgrade would upgrade from a security
    # suite; the new kernel package it would also install is not an update of the image.
    assert named == apt_on_guest["dist-upgrade upgrades"], (
        named ^ apt_on_guest["dist-upgrade upgrades"]
    )
    assert apt_on_guest["dist-upgrade upgrades"] <= apt_on_guest["dist-upgrade"]
    assert str(len(named)) in result["summary"]


def test_offline_pending_security_updates_are_the_ones_apt_get_upgrade_names(
    offline_clean: Scan, apt_on_guest: dict[str, set[str]]
) -> None:
    """Offline, the image's own lists are judged as `apt-get -s upgrade` judges them: upgrades
    of installed packages; one that needs a new package (the kernel) is kept back, and named."""
    result = offline_clean.results["linux.packages.up-to-date"]
    assert result["status"] == "fail", result
    named = {e["text"].split()[0] for e in result["evidence"] if e["source"] == "apt (security)"}
    assert apt_on_guest["upgrade"], "apt-get -s upgrade lists no security updates on the guest"
    assert named == apt_on_guest["upgrade"], named ^ apt_on_guest["upgrade"]
    assert result["summary"].startswith(f"{len(named)} pending security update(s)")
    assert "per the image's apt lists fetched on " in result["summary"]
    kept = {e["text"].split()[0] for e in result["evidence"] if e["source"] == "apt (kept back)"}
    # What dist-upgrade upgrades beyond upgrade is kept back (new packages are not named).
    assert kept <= apt_on_guest["dist-upgrade"] - apt_on_guest["upgrade"]


def test_a_firewall_rule_and_a_password_drop_in_fail_live(
    live_clean: Scan, live_broken: Scan, shell: GuestShell
) -> None:
    assert "ip saddr 10.0.0.0/8 tcp dport 22 drop" in shell.run("sudo nft list ruleset")
    assert sshd_effective(shell)["passwordauthentication"] == "yes"
    before, after = live_clean.linux_statuses(), live_broken.linux_statuses()
    changed = {c: s for c, s in after.items() if s != before[c]}
    assert changed == {
        "linux.ssh.listening": "fail",
        "linux.ssh.password-authentication": "fail",
    }, live_broken.results
    listening = live_broken.results["linux.ssh.listening"]
    assert "10.0.0.0" in listening["summary"] + str(listening["evidence"])
    password = live_broken.results["linux.ssh.password-authentication"]
    assert any(PASSWORD_DROP_IN in e["source"] for e in password["evidence"]), password
