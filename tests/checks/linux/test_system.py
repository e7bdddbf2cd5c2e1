"""System checks, judged from fixture facts: OS support, updates, encryption, cloud-init state."""

from __future__ import annotations

import pytest

from checks.linux.system import (
    cloud_init_clean,
    filesystem_unencrypted,
    os_supported,
    packages_up_to_date,
)
from scanner.facts.linux.system import ENCRYPTED_FS, PENDING_UPDATES
from scanner.model import Status
from tests.factbuilders import (
    LiveFacts,
    OfflineFacts,
    Symlink,
    evidence_text,
    probe_output,
    run,
    with_evidence,
)

SCAN_DATE = "2026-11-27"

CENTOS_7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
"""
AL2 = """\
NAME="Amazon Linux"
VERSION="2"
ID="amzn"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
"""
AL2023 = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PRETTY_NAME="Amazon Linux 2023.6.20241212"
"""
UBUNTU_2404 = """\
PRETTY_NAME="Ubuntu 24.04.1 LTS"
NAME="Ubuntu"
VERSION_ID="24.04"
ID=ubuntu
ID_LIKE=debian
"""
UNKNOWN = """\
NAME="Hobby OS"
ID=hobbyos
VERSION_ID="1.0"
PRETTY_NAME="Hobby OS 1.0"
"""


# --- linux.os.supported -----------------------------------------------------------------------

OS_CASES = [
    pytest.param(
        CENTOS_7,
        SCAN_DATE,
        Status.FAIL,
        "bundled end-of-life table: end of support 2024-06-30",
        id="centos-7-is-end-of-life",
    ),
    pytest.param(
        AL2,
        SCAN_DATE,
        Status.FAIL,
        "/etc/os-release: ID=amzn VERSION_ID=2 (Amazon Linux 2)",
        id="amazon-linux-2-is-end-of-life",
    ),
    pytest.param(
        AL2023,
        SCAN_DATE,
        Status.PASS,
        "/etc/os-release: ID=amzn VERSION_ID=2023 (Amazon Linux 2023.6.20241212)",
        id="amazon-linux-2023-is-supported",
    ),
    pytest.param(
        UBUNTU_2404,
        SCAN_DATE,
        Status.PASS,
        "bundled end-of-life table: end of support 2029-05-31",
        id="ubuntu-24-04-is-supported",
    ),
    pytest.param(
        UBUNTU_2404,
        "2029-04-15",
        Status.WARN,
        "bundled end-of-life table: end of support 2029-05-31",
        id="ubuntu-24-04-six-weeks-before-its-end-warns",
    ),
    pytest.param(
        UNKNOWN,
        SCAN_DATE,
        Status.WARN,
        "/etc/os-release: ID=hobbyos VERSION_ID=1.0 (Hobby OS 1.0)",
        id="unknown-distribution-warns",
    ),
]


@pytest.mark.parametrize(("os_release", "scan_date", "status", "evidence"), OS_CASES)
def test_os_supported_status_on_the_scan_date(
    offline_facts: OfflineFacts, os_release: str, scan_date: str, status: Status, evidence: str
) -> None:
    facts = offline_facts({"/etc/os-release": os_release}, scan_date=scan_date)
    outcome = run(os_supported, facts)
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("os_release", "scan_date", "status", "evidence"), with_evidence(OS_CASES))
def test_os_supported_evidence_names_the_release_file_and_the_table(
    offline_facts: OfflineFacts, os_release: str, scan_date: str, status: Status, evidence: str
) -> None:
    facts = offline_facts({"/etc/os-release": os_release}, scan_date=scan_date)
    assert evidence in evidence_text(run(os_supported, facts))


def test_os_supported_reads_usr_lib_os_release_when_etc_has_none(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts({"/usr/lib/os-release": CENTOS_7}, scan_date=SCAN_DATE)
    assert evidence_text(run(os_supported, facts)).startswith("/usr/lib/os-release: ID=centos")


def test_os_supported_follows_an_absolute_os_release_link_inside_the_image(
    offline_facts: OfflineFacts,
) -> None:
    tree = {"/etc/os-release": Symlink("/usr/lib/os-release"), "/usr/lib/os-release": CENTOS_7}
    outcome = run(os_supported, offline_facts(tree, scan_date=SCAN_DATE))
    assert outcome.status is Status.FAIL


def test_os_supported_cannot_be_judged_without_os_release(offline_facts: OfflineFacts) -> None:
    outcome = run(os_supported, offline_facts({"/etc/hostname": "x\n"}, scan_date=SCAN_DATE))
    assert outcome.status is Status.ERROR
    assert "os-release" in outcome.summary


def test_os_supported_judges_os_release_copied_from_a_live_host(live_facts: LiveFacts) -> None:
    facts = live_facts(files={"/etc/os-release": CENTOS_7}, scan_date=SCAN_DATE)
    assert run(os_supported, facts).status is Status.FAIL


# --- linux.packages.up-to-date ----------------------------------------------------------------

DNF_SECURITY = """\
### manager dnf
### security
ALAS2023-2024-612 Important/Sec. openssl-libs-1:3.0.8-1.amzn2023.0.14.x86_64
ALAS2023-2024-640 Medium/Sec.    curl-8.5.0-1.amzn2023.0.4.x86_64
### rc 0
### all

openssl-libs.x86_64      1:3.0.8-1.amzn2023.0.14      amazonlinux
curl.x86_64              8.5.0-1.amzn2023.0.4         amazonlinux
### rc 100
"""

DNF_OTHER = """\
### manager dnf
### security
### rc 0
### all

vim-minimal.x86_64       2:9.0.2153-1.amzn2023        amazonlinux
### rc 100
"""

DNF_NONE = "### manager dnf\n### security\n### rc 0\n### all\n### rc 0\n"

DNF_BROKEN = """\
### manager dnf
### security
Error: Cache-only enabled but no cache for 'amazonlinux'
### rc 1
### all
Error: Cache-only enabled but no cache for 'amazonlinux'
### rc 1
"""

YUM_SECURITY = """\
### manager yum
### security
ALAS2-2024-2500 important/Sec. kernel-4.14.343-261.564.amzn2.x86_64
updateinfo list done
### rc 0
### all

kernel.x86_64            4.14.343-261.564.amzn2          amzn2-core
### rc 100
"""

APT_SECURITY = """\
### manager apt
### lists
6
### upgradable
libssl3/jammy-updates,jammy-security 3.0.2-0ubuntu1.12 amd64 [upgradable from: 3.0.2-0ubuntu1.10]
vim/jammy-updates 2:8.2.3995-1ubuntu2.15 amd64 [upgradable from: 2:8.2.3995-1ubuntu2.13]
### rc 0
"""

APT_OTHER = """\
### manager apt
### lists
6
### upgradable
vim/jammy-updates 2:8.2.3995-1ubuntu2.15 amd64 [upgradable from: 2:8.2.3995-1ubuntu2.13]
### rc 0
"""

APT_NONE = "### manager apt\n### lists\n6\n### upgradable\n### rc 0\n"
APT_NO_LISTS = "### manager apt\n### lists\n0\n### upgradable\n### rc 0\n"

ZYPPER_SECURITY = """\
### manager zypper
### security
Loading repository data...
Reading installed packages...
Repository                    | Name                  | Category | Severity  | Interactive | Status | Summary
------------------------------+-----------------------+----------+-----------+-------------+--------+----------------------------
SLE-Module-Basesystem-Updates | SUSE-SLE-Module-2024-1 | security | important | ---         | needed | Security update for openssl
SLE-Module-Basesystem-Updates | SUSE-SLE-Module-2024-2 | security | moderate  | ---         | applied | Security update for glibc
### rc 101
### all
S | Repository                    | Name    | Current Version | Available Version | Arch
--+-------------------------------+---------+-----------------+-------------------+-------
v | SLE-Module-Basesystem-Updates | openssl | 1.1.1l-150400.7 | 1.1.1l-150400.9   | x86_64
### rc 0
"""

ZYPPER_OTHER = """\
### manager zypper
### security
Loading repository data...
No updates found.
### rc 0
### all
S | Repository | Name | Current Version | Available Version | Arch
--+------------+------+-----------------+-------------------+-------
v | SLE-Updates | vim | 9.0.1 | 9.0.2 | x86_64
### rc 0
"""

UPDATE_CASES = [
    pytest.param(
        DNF_SECURITY,
        Status.FAIL,
        "dnf (security): ALAS2023-2024-612 Important/Sec. openssl-libs",
        id="dnf-security-advisories-fail",
    ),
    pytest.param(
        DNF_OTHER, Status.WARN, "dnf: vim-minimal.x86_64", id="dnf-non-security-updates-warn"
    ),
    pytest.param(DNF_NONE, Status.PASS, "", id="dnf-nothing-pending-passes"),
    pytest.param(
        YUM_SECURITY,
        Status.FAIL,
        "yum (security): ALAS2-2024-2500 important/Sec. kernel",
        id="yum-security-advisory-fails",
    ),
    pytest.param(
        APT_SECURITY,
        Status.FAIL,
        "apt (security): libssl3 3.0.2-0ubuntu1.10 -> 3.0.2-0ubuntu1.12 (jammy-updates, jammy-security)",
        id="apt-upgrade-from-a-security-pocket-fails",
    ),
    pytest.param(APT_OTHER, Status.WARN, "apt: vim", id="apt-upgrade-from-updates-only-warns"),
    pytest.param(APT_NONE, Status.PASS, "", id="apt-nothing-pending-passes"),
    pytest.param(
        ZYPPER_SECURITY,
        Status.FAIL,
        "zypper (security): SLE-Module-Basesystem-Updates | SUSE-SLE-Module-2024-1",
        id="zypper-needed-security-patch-fails",
    ),
    pytest.param(
        ZYPPER_OTHER, Status.WARN, "zypper: v | SLE-Updates | vim", id="zypper-updates-only-warn"
    ),
]


@pytest.mark.parametrize(("output", "status", "evidence"), UPDATE_CASES)
def test_packages_up_to_date_status(
    live_facts: LiveFacts, output: str, status: Status, evidence: str
) -> None:
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: output}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("output", "status", "evidence"), with_evidence(UPDATE_CASES))
def test_packages_up_to_date_evidence_names_the_package_manager_and_update(
    live_facts: LiveFacts, output: str, status: Status, evidence: str
) -> None:
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: output}))
    assert evidence in evidence_text(outcome)


@pytest.mark.parametrize("status", ["applied", "not needed"])
def test_zypper_security_patches_that_are_not_needed_are_not_pending(
    live_facts: LiveFacts, status: str
) -> None:
    output = ZYPPER_SECURITY.replace("| needed |", f"| {status} |")
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: output}))
    assert outcome.status is Status.WARN, outcome.summary


UNJUDGED_UPDATE_CASES = [
    pytest.param(APT_NO_LISTS, Status.ERROR, id="apt-without-package-lists-errs"),
    pytest.param("### manager none\n", Status.ERROR, id="no-package-manager-errs"),
    pytest.param(DNF_BROKEN, Status.ERROR, id="dnf-updateinfo-failing-is-an-error"),
    pytest.param(
        probe_output("### manager dnf\n### security\n", rc=124, timed_out=True),
        Status.ERROR,
        id="timed-out-query-is-an-error",
    ),
]


@pytest.mark.parametrize(("output", "status"), UNJUDGED_UPDATE_CASES)
def test_packages_up_to_date_errs_when_updates_cannot_be_known(
    live_facts: LiveFacts, output: object, status: Status
) -> None:
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: output}))
    assert outcome.status is status


def test_packages_up_to_date_error_quotes_the_package_manager(live_facts: LiveFacts) -> None:
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: DNF_BROKEN}))
    assert "Cache-only enabled but no cache" in outcome.summary


def test_packages_up_to_date_says_the_metadata_was_not_refreshed(live_facts: LiveFacts) -> None:
    outcome = run(packages_up_to_date, live_facts(outputs={PENDING_UPDATES: DNF_SECURITY}))
    assert "not refreshed" in outcome.summary


def test_packages_up_to_date_is_skipped_offline(offline_facts: OfflineFacts) -> None:
    outcome = run(packages_up_to_date, offline_facts({"/etc/os-release": AL2023}))
    assert outcome.status is Status.SKIP


# --- linux.filesystem.unencrypted -------------------------------------------------------------

CRYPTTAB_CASES = [
    pytest.param(
        "# <name> <device> <password> <options>\ncryptdata UUID=0b1c2d none luks,discard\n",
        Status.FAIL,
        "/etc/crypttab:2: cryptdata UUID=0b1c2d none luks,discard",
        id="crypttab-entry-fails",
    ),
    pytest.param(
        "# cryptdata UUID=0b1c2d none luks\n\n",
        Status.PASS,
        "",
        id="commented-crypttab-passes",
    ),
]


@pytest.mark.parametrize(("crypttab", "status", "evidence"), CRYPTTAB_CASES)
def test_filesystem_unencrypted_status_from_the_image_crypttab(
    offline_facts: OfflineFacts, crypttab: str, status: Status, evidence: str
) -> None:
    outcome = run(filesystem_unencrypted, offline_facts({"/etc/crypttab": crypttab}))
    assert outcome.status is status


@pytest.mark.parametrize(("crypttab", "status", "evidence"), with_evidence(CRYPTTAB_CASES))
def test_filesystem_unencrypted_evidence_names_the_crypttab_line(
    offline_facts: OfflineFacts, crypttab: str, status: Status, evidence: str
) -> None:
    outcome = run(filesystem_unencrypted, offline_facts({"/etc/crypttab": crypttab}))
    assert evidence in evidence_text(outcome)


def test_filesystem_unencrypted_passes_an_image_without_crypttab(
    offline_facts: OfflineFacts,
) -> None:
    outcome = run(filesystem_unencrypted, offline_facts({"/etc/fstab": "/dev/xvda1 / xfs 0 0\n"}))
    assert outcome.status is Status.PASS


PLAIN_LSBLK = (
    'NAME="nvme0n1" TYPE="disk" FSTYPE="" MOUNTPOINT=""\n'
    'NAME="nvme0n1p1" TYPE="part" FSTYPE="xfs" MOUNTPOINT="/"\n'
)

LSBLK_CASES = [
    pytest.param(
        PLAIN_LSBLK + 'NAME="luks-data" TYPE="crypt" FSTYPE="xfs" MOUNTPOINT="/data"\n',
        Status.FAIL,
        'lsblk: NAME="luks-data" TYPE="crypt"',
        id="dm-crypt-device-fails",
    ),
    pytest.param(
        PLAIN_LSBLK + 'NAME="nvme1n1" TYPE="disk" FSTYPE="crypto_LUKS" MOUNTPOINT=""\n',
        Status.FAIL,
        'lsblk: NAME="nvme1n1" TYPE="disk" FSTYPE="crypto_LUKS"',
        id="luks-formatted-disk-fails",
    ),
    pytest.param(PLAIN_LSBLK, Status.PASS, "", id="plain-devices-pass"),
]


@pytest.mark.parametrize(("lsblk", "status", "evidence"), LSBLK_CASES)
def test_filesystem_unencrypted_status_from_live_lsblk(
    live_facts: LiveFacts, lsblk: str, status: Status, evidence: str
) -> None:
    outcome = run(filesystem_unencrypted, live_facts(outputs={ENCRYPTED_FS: lsblk}))
    assert outcome.status is status


@pytest.mark.parametrize(("lsblk", "status", "evidence"), with_evidence(LSBLK_CASES))
def test_filesystem_unencrypted_evidence_names_the_lsblk_device(
    live_facts: LiveFacts, lsblk: str, status: Status, evidence: str
) -> None:
    outcome = run(filesystem_unencrypted, live_facts(outputs={ENCRYPTED_FS: lsblk}))
    assert evidence in evidence_text(outcome)


def test_filesystem_unencrypted_live_also_reads_the_copied_crypttab(live_facts: LiveFacts) -> None:
    facts = live_facts(
        files={"/etc/crypttab": "swap /dev/nvme0n1p3 /dev/urandom swap\n"},
        outputs={ENCRYPTED_FS: PLAIN_LSBLK},
    )
    assert run(filesystem_unencrypted, facts).status is Status.FAIL


# --- linux.cloud-init.clean -------------------------------------------------------------------

CLOUD_INIT_CASES = [
    pytest.param(
        {"/var/lib/cloud/instances/i-0123456789abcdef0/boot-finished": "x\n"},
        Status.FAIL,
        "/var/lib/cloud/instances/i-0123456789abcdef0",
        id="instance-state-fails",
    ),
    pytest.param(
        {"/var/lib/cloud/instances/i-123/": ""},
        Status.FAIL,
        "/var/lib/cloud/instances/i-123",
        id="empty-instance-directory-fails",
    ),
    pytest.param(
        {
            "/var/lib/cloud/instances/": "",
            "/var/lib/cloud/instance": Symlink("/var/lib/cloud/instances/i-123"),
        },
        Status.FAIL,
        "/var/lib/cloud/instance",
        id="dangling-instance-link-fails",
    ),
    pytest.param(
        {"/var/lib/cloud/instances/": "", "/var/lib/cloud/data/": ""},
        Status.PASS,
        "",
        id="empty-instances-directory-passes",
    ),
    pytest.param({"/etc/hostname": "x\n"}, Status.PASS, "", id="no-cloud-init-state-passes"),
]


@pytest.mark.parametrize(("tree", "status", "evidence"), CLOUD_INIT_CASES)
def test_cloud_init_clean_status_in_an_image(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert run(cloud_init_clean, offline_facts(tree)).status is status


@pytest.mark.parametrize(("tree", "status", "evidence"), with_evidence(CLOUD_INIT_CASES))
def test_cloud_init_clean_evidence_names_the_leftover_path(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert evidence in evidence_text(run(cloud_init_clean, offline_facts(tree)))


def test_cloud_init_clean_is_skipped_on_a_live_host(live_facts: LiveFacts) -> None:
    outcome = run(cloud_init_clean, live_facts(files={"/var/lib/cloud/instances/i-1/x": "x"}))
    assert outcome.status is Status.SKIP


APT_REFRESH_FAILED = APT_NONE.replace(
    "### manager apt\n",
    "### manager apt\n### refresh failed\n### refreshlog\n"
    "W: Some index files failed to download. They have been ignored, or old ones used instead.\n",
)


def test_nothing_pending_on_metadata_that_could_not_be_refreshed_is_a_warning(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(outputs={PENDING_UPDATES: APT_REFRESH_FAILED}, refresh_package_metadata=True)
    outcome = run(packages_up_to_date, facts)
    assert outcome.status is Status.WARN
    assert "refreshing it failed" in outcome.summary
    assert "Some index files failed to download" in evidence_text(outcome)


def test_pending_security_updates_fail_whatever_the_refresh_did(live_facts: LiveFacts) -> None:
    output = APT_SECURITY.replace("### manager apt\n", "### manager apt\n### refresh failed\n")
    facts = live_facts(outputs={PENDING_UPDATES: output}, refresh_package_metadata=True)
    outcome = run(packages_up_to_date, facts)
    assert outcome.status is Status.FAIL
    assert "fresh metadata" not in outcome.summary
    assert "refreshing it failed" in outcome.summary


def test_a_refresh_that_worked_is_called_fresh(live_facts: LiveFacts) -> None:
    output = APT_SECURITY.replace("### manager apt\n", "### manager apt\n### refresh ok\n")
    facts = live_facts(outputs={PENDING_UPDATES: output}, refresh_package_metadata=True)
    assert "per fresh metadata" in run(packages_up_to_date, facts).summary


# --- linux.packages.up-to-date offline (the image's apt lists) ---------------------------------


def test_offline_pending_security_updates_fail_naming_the_lists_date(
    offline_facts: OfflineFacts,
) -> None:
    from tests.scanner.facts.linux.test_system_facts import apt_image

    outcome = run(packages_up_to_date, offline_facts(apt_image()))
    assert outcome.status is Status.FAIL
    assert outcome.summary == (
        "2 pending security update(s), and 1 security and 0 other upgrade(s) kept back, "
        "per the image's apt lists fetched on 2026-11-30"
    )
    sources = [(e.source, e.text.split()[0]) for e in outcome.evidence]
    assert sources == [
        ("apt (security)", "libssl3"),
        ("apt (security)", "tzdata"),
        ("apt (kept back)", "linux-image-cloud-amd64"),
    ]


def test_offline_only_other_updates_warn(offline_facts: OfflineFacts) -> None:
    from tests.scanner.facts.linux.test_system_facts import MAIN_BASE, MAIN_PACKAGES, apt_image

    tree = apt_image(**{f"{MAIN_BASE}_main_binary-amd64_Packages": MAIN_PACKAGES})
    tree = {k: v for k, v in tree.items() if "security" not in k}
    outcome = run(packages_up_to_date, offline_facts(tree))
    assert outcome.status is Status.WARN
    assert "1 pending non-security update(s)" in outcome.summary
    assert "fetched on 2026-01-10" in outcome.summary


def test_offline_nothing_newer_passes_naming_the_lists_date(offline_facts: OfflineFacts) -> None:
    from tests.scanner.facts.linux.test_system_facts import MAIN_BASE, apt_image

    tree = apt_image(**{f"{MAIN_BASE}_main_binary-amd64_Packages": ""})
    tree = {k: v for k, v in tree.items() if "security" not in k}
    outcome = run(packages_up_to_date, offline_facts(tree))
    assert outcome.status is Status.PASS
    assert (
        outcome.summary
        == "no pending updates (apt, per the image's apt lists fetched on 2026-01-10)"
    )


def test_offline_dpkg_image_without_lists_is_skipped(offline_facts: OfflineFacts) -> None:
    outcome = run(packages_up_to_date, offline_facts({"/var/lib/dpkg/status": ""}))
    assert outcome.status is Status.SKIP
    assert "no apt package lists" in outcome.summary
