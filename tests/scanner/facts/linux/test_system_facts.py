"""System facts: os-release, pending updates, crypttab/lsblk, cloud-init state, listeners, firewall."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from scanner.facts.base import FactFailed, FactUnavailable
from scanner.facts.linux.system import (
    CLOUD_INIT_STATE,
    ENCRYPTED_FS,
    FIREWALL,
    LISTENERS,
    OS_RELEASE,
    PENDING_UPDATES,
    CloudInitState,
    FirewallDump,
    PendingUpdates,
    parse_firewall_dump,
    parse_updates,
)
from tests.factbuilders import LiveFacts, OfflineFacts, Symlink, probe_output

# --- OS_RELEASE -----------------------------------------------------------------------------

IMAGE_OS = 'ID=imageos\nVERSION_ID="7"\nPRETTY_NAME="Image OS 7"\n'


def test_os_release_prefers_etc_over_usr_lib(offline_facts: OfflineFacts) -> None:
    facts = offline_facts({"/etc/os-release": IMAGE_OS, "/usr/lib/os-release": "ID=other\n"})
    found = facts.get(OS_RELEASE)
    assert (found.path, found.release.id) == ("/etc/os-release", "imageos")


def test_os_release_falls_back_to_usr_lib(offline_facts: OfflineFacts) -> None:
    found = offline_facts({"/usr/lib/os-release": IMAGE_OS}).get(OS_RELEASE)
    assert (found.path, found.release.id) == ("/usr/lib/os-release", "imageos")


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("/usr/lib/os-release", id="absolute"),
        pytest.param("../usr/lib/os-release", id="relative"),
        pytest.param("../../../../../../../../usr/lib/os-release", id="climbing-above-the-root"),
    ],
)
def test_os_release_symlink_is_resolved_inside_the_image_root(
    offline_facts: OfflineFacts, target: str
) -> None:
    # Every machine that runs the tests has its own /usr/lib/os-release, with another ID.
    facts = offline_facts({"/etc/os-release": Symlink(target), "/usr/lib/os-release": IMAGE_OS})
    assert facts.get(OS_RELEASE).release.id == "imageos"


def test_os_release_fails_when_neither_file_exists(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactFailed):
        offline_facts({"/etc/hostname": "x"}).get(OS_RELEASE)


# --- parse_updates --------------------------------------------------------------------------

DNF = """\
### manager dnf
### security
Last metadata expiration check: 0:10:00 ago on Fri 27 Nov 2026.
ALAS2023-2024-612 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.14.x86_64
RHSA-2024:1234 Moderate/Sec.  curl-7.76.1-29.el9_4.x86_64
### rc 0
### all

openssl-libs.x86_64      1:3.0.8-1.amzn2023.0.14      amazonlinux
Obsoleting Packages
### rc 100
"""

APT = """\
### manager apt
### lists
4
### upgradable
libssl3/jammy-security 3.0.2-0ubuntu1.12 amd64 [upgradable from: 3.0.2-0ubuntu1.10]
vim/jammy-updates 2:8.3 amd64 [upgradable from: 2:8.2]
WARNING: not an upgrade line
### rc 0
"""

ZYPPER = """\
### manager zypper
### security
Repository | Name         | Category | Severity | Interactive | Status | Summary
-----------+--------------+----------+----------+-------------+--------+--------
Updates    | SUSE-2024-1  | security | critical | ---         | needed | openssl
### rc 101
### all
S | Repository | Name    | Current Version | Available Version | Arch
--+------------+---------+-----------------+-------------------+-------
v | Updates    | openssl | 1.1.1l          | 1.1.1w            | x86_64
### rc 0
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            DNF,
            PendingUpdates(
                "dnf",
                (
                    "ALAS2023-2024-612 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.14.x86_64",
                    "RHSA-2024:1234 Moderate/Sec.  curl-7.76.1-29.el9_4.x86_64",
                ),
                ("openssl-libs.x86_64",),
                False,
            ),
            id="dnf",
        ),
        pytest.param(
            APT,
            PendingUpdates(
                "apt",
                ("libssl3 3.0.2-0ubuntu1.10 -> 3.0.2-0ubuntu1.12 (jammy-security)",),
                ("vim 2:8.2 -> 2:8.3 (jammy-updates)",),
                False,
            ),
            id="apt",
        ),
        pytest.param(
            ZYPPER,
            PendingUpdates(
                "zypper",
                (
                    "Updates    | SUSE-2024-1  | security | critical | ---         | needed | openssl",
                ),
                ("v | Updates    | openssl | 1.1.1l          | 1.1.1w            | x86_64",),
                False,
            ),
            id="zypper",
        ),
    ],
)
def test_parse_updates_sorts_pending_updates_into_security_and_other(
    text: str, expected: PendingUpdates
) -> None:
    assert parse_updates(text, refreshed=False) == expected


def test_parse_updates_records_whether_the_metadata_was_refreshed() -> None:
    assert parse_updates(APT, refreshed=True).refreshed is True


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("### manager none\n", FactFailed, id="no-package-manager"),
        pytest.param("", FactFailed, id="no-output"),
        pytest.param(
            "### manager apt\n### lists\n0\n### upgradable\n### rc 0\n",
            FactFailed,
            id="apt-no-lists",
        ),
        pytest.param(
            "### manager dnf\n### security\nError: no cache\n### rc 1\n### all\n### rc 1\n",
            FactFailed,
            id="dnf-updateinfo-failed",
        ),
        pytest.param(
            "### manager yum\n### security\n### rc 0\n### all\nError: rpmdb open failed\n### rc 1\n",
            FactFailed,
            id="yum-check-update-failed",
        ),
        pytest.param(
            "### manager zypper\n### security\nSystem management is locked\n### rc 7\n",
            FactFailed,
            id="zypper-locked",
        ),
    ],
)
def test_parse_updates_refuses_output_that_does_not_say_what_is_pending(
    text: str, error: type[Exception]
) -> None:
    with pytest.raises(error):
        parse_updates(text, refreshed=False)


def test_parse_updates_error_quotes_the_package_manager() -> None:
    text = "### manager dnf\n### security\nError: Cache-only enabled\n### rc 1\n"
    with pytest.raises(FactFailed, match="Cache-only enabled"):
        parse_updates(text, refreshed=False)


def test_pending_updates_live_pass_the_refresh_setting_through(live_facts: LiveFacts) -> None:
    facts = live_facts(outputs={PENDING_UPDATES: APT}, refresh_package_metadata=True)
    assert facts.get(PENDING_UPDATES).refreshed is True


def test_pending_updates_are_unavailable_offline(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactUnavailable):
        offline_facts({}).get(PENDING_UPDATES)


# --- ENCRYPTED_FS ---------------------------------------------------------------------------


def test_crypto_state_offline_numbers_the_active_crypttab_lines(
    offline_facts: OfflineFacts,
) -> None:
    crypttab = "# comment\n\n  data UUID=1 none luks  \n#old UUID=2 none luks\nswap /dev/x /dev/urandom swap\n"
    state = offline_facts({"/etc/crypttab": crypttab}).get(ENCRYPTED_FS)
    assert state.crypttab == ((3, "data UUID=1 none luks"), (5, "swap /dev/x /dev/urandom swap"))


def test_crypto_state_offline_inspects_no_devices(offline_facts: OfflineFacts) -> None:
    state = offline_facts({}).get(ENCRYPTED_FS)
    assert (state.encrypted_devices, state.inspected_devices) == ((), False)


def test_crypto_state_live_picks_encrypted_devices_from_lsblk(live_facts: LiveFacts) -> None:
    lsblk = (
        'NAME="xvda" TYPE="disk" FSTYPE="" MOUNTPOINT=""\n'
        'NAME="xvdb" TYPE="disk" FSTYPE="crypto_LUKS" MOUNTPOINT=""\n'
        'NAME="data" TYPE="crypt" FSTYPE="ext4" MOUNTPOINT="/data"\n'
        'NAME="xvdc" TYPE="disk" FSTYPE="BitLocker" MOUNTPOINT=""\n'
    )
    state = live_facts(outputs={ENCRYPTED_FS: lsblk}).get(ENCRYPTED_FS)
    assert [d.split()[0] for d in state.encrypted_devices] == [
        'NAME="xvdb"',
        'NAME="data"',
        'NAME="xvdc"',
    ]


@pytest.mark.parametrize(("rc", "inspected"), [(0, True), (127, False)])
def test_crypto_state_live_says_whether_lsblk_ran(
    live_facts: LiveFacts, rc: int, inspected: bool
) -> None:
    facts = live_facts(outputs={ENCRYPTED_FS: probe_output("", rc=rc)})
    assert facts.get(ENCRYPTED_FS).inspected_devices is inspected


# --- CLOUD_INIT_STATE -----------------------------------------------------------------------


def test_cloud_init_state_lists_instances_and_the_instance_link(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {
            "/var/lib/cloud/instances/i-1/": "",
            "/var/lib/cloud/instances/i-2/obj.pkl": "x",
            "/var/lib/cloud/instance": Symlink("/var/lib/cloud/instances/i-2"),
        }
    )
    assert facts.get(CLOUD_INIT_STATE) == CloudInitState(
        ("/var/lib/cloud/instances/i-1", "/var/lib/cloud/instances/i-2"), True
    )


def test_cloud_init_state_is_unavailable_live(live_facts: LiveFacts) -> None:
    with pytest.raises(FactUnavailable):
        live_facts().get(CLOUD_INIT_STATE)


# --- LISTENERS and FIREWALL -----------------------------------------------------------------


def test_listeners_fail_when_proc_net_tcp_could_not_be_read(live_facts: LiveFacts) -> None:
    failed = probe_output("", rc=1, stderr="cat: /proc/net/tcp: No such file or directory")
    with pytest.raises(FactFailed, match="No such file or directory"):
        live_facts(outputs={LISTENERS: failed}).get(LISTENERS)


def test_parse_firewall_dump_keeps_each_front_ends_output_and_exit_code() -> None:
    text = (
        "### iptables\n-P INPUT ACCEPT\n-A INPUT -j DROP\n### rc 0\n"
        "### nft\n### rc absent\n"
        "### firewalld\n### rc inactive\n"
        "### ufw\nERROR: You need to be root to run this script\n### rc 1\n"
    )
    assert parse_firewall_dump(text) == FirewallDump(
        outputs={
            "iptables": "-P INPUT ACCEPT\n-A INPUT -j DROP",
            "nft": "",
            "firewalld": "",
            "ufw": "ERROR: You need to be root to run this script",
        },
        codes={"iptables": "0", "nft": "absent", "firewalld": "inactive", "ufw": "1"},
    )


def test_parse_firewall_dump_ignores_lines_before_the_first_section() -> None:
    text = "sudo: unable to resolve host\n### iptables\n-P INPUT DROP\n### rc 0\n"
    assert parse_firewall_dump(text) == FirewallDump(
        {"iptables": "-P INPUT DROP"}, {"iptables": "0"}
    )


def test_firewall_is_unavailable_offline(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactUnavailable):
        offline_facts({}).get(FIREWALL)


# --- the updates probe's refresh, run by a real shell against a stand-in apt-get -----------

_TOOLS = ("sh", "grep", "ls", "tail", "cat", "date", "sleep")


def _refresh_lines(
    tmp_path: Path, apt_get: str, refresh: bool, steps: Path | None = None
) -> list[str]:
    """What the real probe script says of its refresh, with only a stand-in apt-get (and basic
    tools) on PATH: the `### refresh` line and the log lines after it. `steps` is the file the
    collection script gives a probe for timing its own steps."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in _TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    stub = bin_dir / "apt-get"
    stub.write_text("#!/bin/sh\n" + apt_get)
    stub.chmod(0o755)
    assert PENDING_UPDATES.probe is not None
    done = subprocess.run(
        ["sh", "-c", PENDING_UPDATES.probe.script],
        env={
            "PATH": str(bin_dir),
            "AMISCAN_REFRESH": "1" if refresh else "0",
            **({"AMISCAN_STEPS": str(steps)} if steps else {}),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "### manager apt", done.stdout
    return lines[1 : lines.index("### lists")]


_APT_UPDATE_UNREACHABLE = """\
if [ "$1" = update ]; then
  echo "W: Failed to fetch http://mirror.invalid/dists/bookworm/InRelease  Temporary failure" >&2
  echo "W: Some index files failed to download. They have been ignored, or old ones used instead." >&2
  exit 0
fi
"""


def test_an_apt_update_that_reached_no_mirror_is_reported_as_a_failed_refresh(
    tmp_path: Path,
) -> None:
    said = _refresh_lines(tmp_path, _APT_UPDATE_UNREACHABLE, refresh=True)
    assert said[:2] == ["### refresh failed", "### refreshlog"]
    assert "W: Some index files failed to download." in said[-1]
    pending = parse_updates("### manager apt\n" + "\n".join(said) + APT_LISTS, refreshed=True)
    assert pending.refreshed is False
    assert pending.refresh_error is not None and "failed to download" in pending.refresh_error


def test_an_apt_update_that_worked_is_a_refresh(tmp_path: Path) -> None:
    said = _refresh_lines(tmp_path, "exit 0\n", refresh=True)
    assert said == ["### refresh ok"]
    pending = parse_updates("### manager apt\n### refresh ok\n" + APT_LISTS, refreshed=True)
    assert (pending.refreshed, pending.refresh_error) == (True, None)


def test_an_apt_update_that_exits_non_zero_is_a_failed_refresh(tmp_path: Path) -> None:
    said = _refresh_lines(tmp_path, 'echo "E: Could not get lock" >&2; exit 100\n', refresh=True)
    assert said == ["### refresh failed", "### refreshlog", "E: Could not get lock"]


def test_the_refresh_is_timed_as_a_step_of_its_own(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.write_text("")
    said = _refresh_lines(tmp_path, '[ "$1" = update ] && sleep 0.3\nexit 0\n', True, steps)
    assert said == ["### refresh ok"]
    step, _, ms = steps.read_text().strip().partition(" ")
    # No less than the stand-in slept; the collection script reports it beside the probe's time.
    assert step == "refresh" and int(ms) >= 300


def test_nothing_is_timed_without_a_refresh_or_outside_a_collection(tmp_path: Path) -> None:
    steps = tmp_path / "steps"
    steps.write_text("")
    assert _refresh_lines(tmp_path / "a", "exit 0\n", refresh=False, steps=steps) == []
    assert steps.read_text() == ""
    # Run alone (no $AMISCAN_STEPS), the probe still refreshes and says so.
    assert _refresh_lines(tmp_path / "b", "exit 0\n", refresh=True) == ["### refresh ok"]


def test_no_refresh_is_attempted_unless_asked(tmp_path: Path) -> None:
    marker = tmp_path / "updated"
    said = _refresh_lines(tmp_path, f'[ "$1" = update ] && : > {marker}\nexit 0\n', refresh=False)
    assert said == []
    assert not marker.exists()


APT_LISTS = "\n### lists\n4\n### upgradable\n### rc 0\n"


def _probe_stdout(tmp_path: Path, stubs: dict[str, str]) -> str:
    """The whole probe's output with stand-ins for the package tools (and basic tools)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(parents=True)
    for tool in (*_TOOLS, "printf"):
        found = shutil.which(tool)
        assert found, tool
        if tool not in stubs:  # a stub written through a link would overwrite the real tool
            (bin_dir / tool).symlink_to(found)
    for name, body in stubs.items():
        stub = bin_dir / name
        assert not stub.exists() and not stub.is_symlink()
        stub.write_text("#!/bin/sh\n" + body)
        stub.chmod(0o755)
    assert PENDING_UPDATES.probe is not None
    return subprocess.run(
        ["sh", "-c", PENDING_UPDATES.probe.script],
        env={"PATH": str(bin_dir), "AMISCAN_REFRESH": "0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout


_LISTS_STUB = {"ls": "echo a_Packages; echo b_Packages\n"}


def test_apt_get_without_apt_is_an_error_not_nothing_to_upgrade(tmp_path: Path) -> None:
    # Before, the missing `apt` printed no upgradable line, read as "no pending updates".
    out = _probe_stdout(tmp_path, {"apt-get": "exit 0\n", **_LISTS_STUB})
    with pytest.raises(FactFailed, match=r"apt list --upgradable failed \(exit 127\)"):
        parse_updates(out, refreshed=False)


def test_a_failing_apt_list_is_an_error_with_its_last_words(tmp_path: Path) -> None:
    apt = 'echo "E: The package cache file is corrupted" >&2; exit 100\n'
    out = _probe_stdout(tmp_path, {"apt-get": "exit 0\n", "apt": apt, **_LISTS_STUB})
    with pytest.raises(FactFailed, match=r"exit 100.*package cache file is corrupted"):
        parse_updates(out, refreshed=False)


def test_apt_list_upgradable_lines_are_read_through_the_real_probe(tmp_path: Path) -> None:
    apt = (
        'echo "WARNING: apt does not have a stable CLI interface." >&2\n'
        "echo Listing...\n"
        'echo "libssl3/stable-security 3.0.22-1~deb12u2 amd64 [upgradable from: 3.0.20-1]"\n'
        'echo "nano/stable 7.2-1+deb12u1 amd64 [upgradable from: 7.2-1]"\n'
    )
    out = _probe_stdout(tmp_path, {"apt-get": "exit 0\n", "apt": apt, **_LISTS_STUB})
    pending = parse_updates(out, refreshed=False)
    assert pending.security == ("libssl3 3.0.20-1 -> 3.0.22-1~deb12u2 (stable-security)",)
    assert pending.other == ("nano 7.2-1 -> 7.2-1+deb12u1 (stable)",)


def test_an_apt_probe_cut_before_its_exit_code_is_an_error() -> None:
    with pytest.raises(FactFailed, match="exit none"):
        parse_updates("### manager apt\n### lists\n4\n### upgradable\n", refreshed=False)


# --- pending updates offline: apt's lists and dpkg's status -------------------------------------

LISTS = "/var/lib/apt/lists"
SECURITY_BASE = f"{LISTS}/deb.debian.org_debian-security_dists_bookworm-security"
MAIN_BASE = f"{LISTS}/deb.debian.org_debian_dists_bookworm"
DPKG_STATUS_TEXT = (
    "Package: libssl3\nStatus: install ok installed\nArchitecture: amd64\n"
    "Version: 3.0.20-1~deb12u2\n\n"
    "Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2026b-0+deb12u1\n\n"
    "Package: nano\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.2-1\n\n"
    "Package: linux-image-cloud-amd64\nStatus: install ok installed\nArchitecture: amd64\n"
    "Version: 6.1.176-1\n\n"
    "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n"
)
SECURITY_PACKAGES = (
    "Package: libssl3\nArchitecture: amd64\nVersion: 3.0.22-1~deb12u2\nDepends: tzdata | nano\n\n"
    "Package: libssl3\nArchitecture: i386\nVersion: 9.9\n\n"
    "Package: tzdata\nArchitecture: all\nVersion: 2026f-0+deb12u1\n\n"
    "Package: linux-image-cloud-amd64\nArchitecture: amd64\nVersion: 6.1.192-3\n"
    "Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)\n\n"
    "Package: gone\nArchitecture: amd64\nVersion: 2.0\n"
)
MAIN_PACKAGES = (
    "Package: libssl3\nArchitecture: amd64\nVersion: 3.0.11-1~deb12u2\n\n"
    "Package: nano\nArchitecture: amd64\nVersion: 7.2-1+deb12u1\n"
)


def _release(suite: str, date: str) -> str:
    return (
        f"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nSuite: {suite}\n"
        f"Codename: {suite}\nDate: {date}\nSHA256:\n 0 1 main/binary-amd64/Packages\n"
    )


def apt_image(**replace: str | bytes | None) -> dict[str, str | bytes]:
    tree: dict[str, str | bytes | None] = {
        "/var/lib/dpkg/status": DPKG_STATUS_TEXT,
        f"{SECURITY_BASE}_InRelease": _release(
            "bookworm-security", "Mon, 30 Nov 2026 00:22:33 UTC"
        ),
        f"{SECURITY_BASE}_main_binary-amd64_Packages": SECURITY_PACKAGES,
        f"{MAIN_BASE}_InRelease": _release("bookworm", "Sat, 10 Jan 2026 10:00:00 UTC"),
        f"{MAIN_BASE}_main_binary-amd64_Packages": MAIN_PACKAGES,
    }
    tree.update(replace)
    return {k: v for k, v in tree.items() if v is not None}


def test_offline_apt_updates_come_from_the_images_lists(offline_facts: OfflineFacts) -> None:
    pending = offline_facts(apt_image()).get(PENDING_UPDATES)
    assert pending.security == (
        "libssl3 3.0.20-1~deb12u2 -> 3.0.22-1~deb12u2 (bookworm-security)",
        "tzdata 2026b-0+deb12u1 -> 2026f-0+deb12u1 (bookworm-security)",
    )
    assert pending.other == ("nano 7.2-1 -> 7.2-1+deb12u1 (bookworm)",)
    # A new package would have to be installed: `apt-get upgrade` keeps it back.
    assert pending.kept_back_security == (
        "linux-image-cloud-amd64 6.1.176-1 -> 6.1.192-3 (bookworm-security): kept back, "
        "needs linux-image-6.1.0-57-cloud-amd64",
    )
    assert pending.lists_date == "2026-11-30"
    assert pending.refreshed is False


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2"])
def test_offline_apt_lists_may_be_compressed(offline_facts: OfflineFacts, compression: str) -> None:
    import bz2
    import gzip
    import lzma

    compressors: dict[str, Callable[[bytes], bytes]] = {
        "gz": gzip.compress,
        "xz": lzma.compress,
        "bz2": bz2.compress,
    }
    compress = compressors[compression]
    name = f"{SECURITY_BASE}_main_binary-amd64_Packages"
    tree = apt_image(**{name: None, f"{name}.{compression}": compress(SECURITY_PACKAGES.encode())})
    pending = offline_facts(tree).get(PENDING_UPDATES)
    assert [s.split()[0] for s in pending.security] == ["libssl3", "tzdata"]


def test_offline_apt_lists_in_an_unreadable_compression_are_an_error(
    offline_facts: OfflineFacts,
) -> None:
    name = f"{SECURITY_BASE}_main_binary-amd64_Packages"
    tree = apt_image(**{name: None, f"{name}.lz4": b"\x04\x22\x4d\x18"})
    with pytest.raises(FactFailed, match=r"cannot read.*_Packages\.lz4"):
        offline_facts(tree).get(PENDING_UPDATES)


def test_offline_corrupt_compressed_lists_are_an_error(offline_facts: OfflineFacts) -> None:
    name = f"{SECURITY_BASE}_main_binary-amd64_Packages"
    tree = apt_image(**{name: None, f"{name}.gz": b"\x1f\x8bnot gzip at all"})
    with pytest.raises(FactFailed, match="could not be decompressed"):
        offline_facts(tree).get(PENDING_UPDATES)


def test_offline_lists_over_the_stream_bound_are_an_error(
    offline_facts: OfflineFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scanner.facts.linux import system

    monkeypatch.setattr(system, "APT_STREAM_LIMIT", 100)
    with pytest.raises(FactFailed, match="read limit"):
        offline_facts(apt_image()).get(PENDING_UPDATES)


def test_offline_dpkg_image_without_lists_is_skipped_with_that_reason(
    offline_facts: OfflineFacts,
) -> None:
    tree = {"/var/lib/dpkg/status": DPKG_STATUS_TEXT, f"{LISTS}/lock": ""}
    with pytest.raises(FactUnavailable, match="no apt package lists"):
        offline_facts(tree).get(PENDING_UPDATES)


def test_offline_nothing_newer_in_the_lists_is_nothing_pending(
    offline_facts: OfflineFacts,
) -> None:
    tree = apt_image(**{f"{SECURITY_BASE}_main_binary-amd64_Packages": MAIN_PACKAGES})
    tree["/var/lib/dpkg/status"] = "Package: libssl3\nStatus: install ok installed\n" + (
        "Architecture: amd64\nVersion: 3.0.20-1~deb12u2\n"
    )
    pending = offline_facts(tree).get(PENDING_UPDATES)
    assert (pending.security, pending.other, pending.kept_back_security) == ((), (), ())
