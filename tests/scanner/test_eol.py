"""The bundled end-of-life table, its lookup rules, and support judgements on fixed days."""

from __future__ import annotations

import json
from datetime import date, timedelta
from importlib import resources
from typing import Any

import pytest

from scanner.eol import EolTable, load_table, support_on, windows_support_on
from scanner.parsers.os_release import OsRelease

# The fixed day the judgements below are made on (the day the table was last checked).
TABLE_DAY = date(2026, 11, 27)

# os-release files as the images ship them (trimmed to the identifying lines).
AMAZON_LINUX_2 = """\
NAME="Amazon Linux"
VERSION="2"
ID="amzn"
ID_LIKE="centos rhel fedora"
VERSION_ID="2"
PRETTY_NAME="Amazon Linux 2"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2"
HOME_URL="https://amazonlinux.com/"
SUPPORT_END="2026-06-30"
"""
AMAZON_LINUX_2023 = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023.6.20241212"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
SUPPORT_END="2029-06-30"
"""
UBUNTU_22_04 = """\
PRETTY_NAME="Ubuntu 22.04.5 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
VERSION="22.04.5 LTS (Jammy Jellyfish)"
VERSION_CODENAME=jammy
ID=ubuntu
ID_LIKE=debian
UBUNTU_CODENAME=jammy
"""
UBUNTU_18_04 = """\
NAME="Ubuntu"
VERSION="18.04.6 LTS (Bionic Beaver)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 18.04.6 LTS"
VERSION_ID="18.04"
VERSION_CODENAME=bionic
UBUNTU_CODENAME=bionic
"""
DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
DEBIAN_SID = """\
PRETTY_NAME="Debian GNU/Linux forky/sid"
NAME="Debian GNU/Linux"
VERSION_CODENAME=forky
ID=debian
"""
RHEL_9_4 = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
REDHAT_SUPPORT_PRODUCT_VERSION="9.4"
"""
CENTOS_STREAM_9 = """\
NAME="CentOS Stream"
VERSION="9"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="9"
PLATFORM_ID="platform:el9"
PRETTY_NAME="CentOS Stream 9"
CPE_NAME="cpe:/o:centos:centos:9"
"""
CENTOS_STREAM_8 = """\
NAME="CentOS Stream"
VERSION="8"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="8"
PLATFORM_ID="platform:el8"
PRETTY_NAME="CentOS Stream 8"
CPE_NAME="cpe:/o:centos:centos:8"
"""
CENTOS_LINUX_8 = """\
NAME="CentOS Linux"
VERSION="8"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="8"
PLATFORM_ID="platform:el8"
PRETTY_NAME="CentOS Linux 8"
CPE_NAME="cpe:/o:centos:centos:8"
"""
CENTOS_7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
CPE_NAME="cpe:/o:centos:centos:7"
"""
ROCKY_8_10 = """\
NAME="Rocky Linux"
VERSION="8.10 (Green Obsidian)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.10"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Rocky Linux 8.10 (Green Obsidian)"
SUPPORT_END="2029-05-31"
"""
SLES_15_SP6 = """\
NAME="SLES"
VERSION="15-SP6"
VERSION_ID="15.6"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP6"
ID="sles"
ID_LIKE="suse"
CPE_NAME="cpe:/o:suse:sles:15:sp6"
"""
FEDORA_40 = """\
NAME="Fedora Linux"
VERSION="40 (Cloud Edition)"
ID=fedora
VERSION_ID=40
PRETTY_NAME="Fedora Linux 40 (Cloud Edition)"
CPE_NAME="cpe:/o:fedoraproject:fedora:40"
SUPPORT_END=2025-05-13
VARIANT_ID=cloud
"""
FEDORA_43 = """\
NAME="Fedora Linux"
VERSION="43 (Cloud Edition)"
ID=fedora
VERSION_ID=43
PRETTY_NAME="Fedora Linux 43 (Cloud Edition)"
SUPPORT_END=2026-12-09
VARIANT_ID=cloud
"""
ALPINE_3_20 = """\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
"""

KNOWN_IDS = {
    "amzn",
    "rhel",
    "centos",
    "rocky",
    "almalinux",
    "ol",
    "ubuntu",
    "debian",
    "sles",
    "opensuse-leap",
    "fedora",
    "windows",
}


def bundled_document() -> dict[str, Any]:
    text = resources.files("scanner").joinpath("data/os_eol.json").read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def small_table(**release: Any) -> EolTable:
    entry = {"os": "ubuntu", "version": "22.04", "name": "Ubuntu 22.04 LTS", "eol": "2027-06-01"}
    entry.update(release)
    return EolTable.from_json(
        {
            "updated": "2026-11-27",
            "terms": {"ubuntu": {"eol": "standard support", "extended": "ESM"}},
            "releases": [entry],
        }
    )


UBUNTU = OsRelease(id="ubuntu", version_id="22.04", name="Ubuntu", pretty_name="Ubuntu 22.04 LTS")

# --- the table itself -------------------------------------------------------------------------


def test_the_bundled_table_is_dated_no_earlier_than_its_newest_confirmed_release() -> None:
    table = load_table()
    confirmed = [r.released for r in table.releases if r.released and not r.projected]

    assert table.updated >= max(confirmed)
    assert table.updated <= date.today(), "the table claims to have been checked in the future"


def test_the_table_is_not_stale() -> None:
    # End dates move (AL2 was extended twice); a year-old table gives wrong verdicts.
    age = date.today() - load_table().updated
    assert age <= timedelta(days=366), "re-check scanner/data/os_eol.json against `sources`"


def test_every_release_ends_after_it_was_released() -> None:
    for release in load_table().releases:
        if release.released is not None:
            assert release.released < release.eol, release
        if release.extended_eol is not None:
            assert release.eol <= release.extended_eol, release


def test_a_release_after_the_table_date_is_marked_projected() -> None:
    for release in load_table().releases:
        if release.released is not None and release.released > TABLE_DAY:
            assert release.projected, release


def test_every_distribution_in_the_table_names_its_vendor_source() -> None:
    document = bundled_document()
    sources = document["sources"]

    assert {release["os"] for release in document["releases"]} == KNOWN_IDS
    for os_id in KNOWN_IDS:
        assert sources[os_id].startswith("https://"), os_id


def test_the_table_explains_its_projected_dates() -> None:
    notes = " ".join(bundled_document()["notes"])

    assert "projected" in notes
    assert "Fedora" in notes


@pytest.mark.parametrize(
    ("os_id", "versions"),
    [
        ("amzn", ["2018.03", "2", "2023"]),
        ("rhel", ["6", "7", "8", "9", "10"]),
        ("centos", ["6", "7", "8", "9", "10"]),
        ("rocky", ["8", "9", "10"]),
        ("almalinux", ["8", "9", "10"]),
        ("ol", ["6", "7", "8", "9", "10"]),
        ("ubuntu", [f"{year}.{month}" for year in range(14, 27) for month in ("04", "10")]),
        ("debian", ["8", "9", "10", "11", "12", "13"]),
        ("sles", ["12.5", "15.1", "15.2", "15.3", "15.4", "15.5", "15.6", "15.7", "16.0"]),
        ("opensuse-leap", ["15.0", "15.1", "15.2", "15.3", "15.4", "15.5", "15.6", "16.0"]),
        ("fedora", [str(version) for version in range(36, 46)]),
        ("windows", ["9200", "9600", "14393", "17763", "20348", "26100"]),
    ],
)
def test_the_table_covers_every_release_amiscan_promises(os_id: str, versions: list[str]) -> None:
    table = load_table()

    missing = [version for version in versions if table.lookup(os_id, version) is None]

    assert missing == []


def test_the_table_is_read_once() -> None:
    assert load_table() is load_table()


# --- lookup rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("os_id", "version_id", "expected_version"),
    [
        ("rhel", "9.4", "9"),
        ("rhel", "8.10", "8"),
        ("centos", "7.9.2009", "7"),
        ("rocky", "8.10", "8"),
        ("almalinux", "9.4", "9"),
        ("ol", "9.4", "9"),
        ("debian", "12", "12"),
        ("sles", "15.6", "15.6"),
        ("amzn", "2", "2"),
        ("amzn", "2023", "2023"),
        ("amzn", "2018.03", "2018.03"),
        ("ubuntu", "22.04", "22.04"),
        ("ubuntu", "22.10", "22.10"),
        ("fedora", "41", "41"),
        ("opensuse-leap", "15.6", "15.6"),
    ],
)
def test_lookup_finds_the_release_that_the_version_id_belongs_to(
    os_id: str, version_id: str, expected_version: str
) -> None:
    found = load_table().lookup(os_id, version_id)

    assert found is not None
    assert (found.os, found.version) == (os_id, expected_version)


def test_older_amazon_linux_ami_point_releases_share_the_amazon_linux_1_lifecycle() -> None:
    found = load_table().lookup("amzn", "2017.09")

    assert found is not None
    assert found.version == "2018.03"
    assert found.eol == date(2023, 12, 31)


@pytest.mark.parametrize(
    ("os_id", "version_id"),
    [
        ("sles", "15.8"),  # not a minor of "15": a service pack has its own dates
        ("ubuntu", "27.04"),
        ("opensuse-leap", "15.7"),
        ("debian", ""),
        ("alpine", "3.20.3"),
        ("windows", "12345"),
    ],
)
def test_lookup_does_not_guess_a_release_the_table_lacks(os_id: str, version_id: str) -> None:
    assert load_table().lookup(os_id, version_id) is None


def test_lookup_does_not_lend_rhel_dates_to_an_unknown_rebuild() -> None:
    assert load_table().lookup("eurolinux", "9.4", "EuroLinux", ("rhel", "fedora")) is None


def test_an_id_in_capitals_still_matches() -> None:
    found = load_table().lookup("Ubuntu", "22.04")

    assert found is not None
    assert found.name == "Ubuntu 22.04 LTS"


@pytest.mark.parametrize(
    ("text", "expected_name", "expected_eol"),
    [
        (CENTOS_STREAM_8, "CentOS Stream 8", date(2024, 5, 31)),
        (CENTOS_LINUX_8, "CentOS Linux 8", date(2021, 12, 31)),
        (CENTOS_STREAM_9, "CentOS Stream 9", date(2027, 5, 31)),
        (CENTOS_7, "CentOS Linux 7", date(2024, 6, 30)),
    ],
)
def test_centos_stream_is_told_from_centos_linux_by_its_name(
    text: str, expected_name: str, expected_eol: date
) -> None:
    release = OsRelease.from_text(text)

    found = load_table().lookup(release.id, release.version_id, release.name, release.id_like)

    assert found is not None
    assert (found.name, found.eol) == (expected_name, expected_eol)


def test_centos_9_is_stream_even_when_its_name_does_not_say_so() -> None:
    found = load_table().lookup("centos", "9", "CentOS Linux")

    assert found is not None
    assert found.name == "CentOS Stream 9"


# --- judgements on the table's day ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status", "name"),
    [
        (AMAZON_LINUX_2, "end-of-life", "Amazon Linux 2"),
        (AMAZON_LINUX_2023, "supported", "Amazon Linux 2023"),
        (UBUNTU_22_04, "supported", "Ubuntu 22.04 LTS"),
        (UBUNTU_18_04, "end-of-life", "Ubuntu 18.04 LTS"),
        (DEBIAN_12, "extended", "Debian 12 (bookworm)"),
        (RHEL_9_4, "supported", "Red Hat Enterprise Linux 9"),
        (CENTOS_STREAM_9, "supported", "CentOS Stream 9"),
        (ROCKY_8_10, "supported", "Rocky Linux 8"),
        (SLES_15_SP6, "end-of-life", "SUSE Linux Enterprise Server 15 SP6"),
        (FEDORA_40, "end-of-life", "Fedora Linux 40"),
        (FEDORA_43, "ending-soon", "Fedora Linux 43"),
        (CENTOS_7, "end-of-life", "CentOS Linux 7"),
    ],
)
def test_real_images_are_judged_on_the_table_day(text: str, status: str, name: str) -> None:
    support = support_on(OsRelease.from_text(text), TABLE_DAY)

    assert support.status == status
    assert support.lifecycle is not None
    assert support.lifecycle.name == name


def test_an_ended_lts_release_names_the_paid_extension_it_could_still_buy() -> None:
    support = support_on(OsRelease.from_text(UBUNTU_18_04), TABLE_DAY)

    assert support.status == "end-of-life"
    assert support.summary == (
        "Ubuntu 18.04 LTS reached end of standard support on 2023-05-31 (paid ESM until "
        "2028-04-26); an image entitled to ESM may waive this result, with that entitlement as "
        "the reason"
    )
    assert support.days_left == (date(2023, 5, 31) - TABLE_DAY).days


def test_debian_lts_is_a_free_extension_from_debian_itself_so_not_end_of_life() -> None:
    support = support_on(OsRelease.from_text(DEBIAN_12), TABLE_DAY)

    assert support.status == "extended"
    assert support.summary == (
        "Debian 12 (bookworm) left regular security support on 2026-07-11 and is in Debian LTS, "
        "which the distribution itself delivers free until 2028-06-30 (581 days left); move to "
        "a release in regular security support before then"
    )


def test_debian_after_lts_is_end_of_life_without_a_waiver_hint() -> None:
    support = support_on(OsRelease.from_text(DEBIAN_12), date(2028, 7, 1))

    assert support.status == "end-of-life"
    assert support.summary == (
        "Debian 12 (bookworm) reached end of regular security support on 2026-07-11 "
        "(Debian LTS also ended on 2028-06-30)"
    )


def test_a_supported_release_reports_its_end_date_and_days_left() -> None:
    support = support_on(OsRelease.from_text(UBUNTU_22_04), TABLE_DAY)

    assert support.days_left == 186
    assert support.summary == (
        "Ubuntu 22.04 LTS is supported until 2027-06-01 (end of standard support; 186 days left)"
    )


def test_a_projected_end_date_is_flagged_in_the_summary() -> None:
    support = support_on(OsRelease.from_text(FEDORA_43), TABLE_DAY)

    assert support.lifecycle is not None
    assert support.lifecycle.projected
    assert support.summary == (
        "Fedora Linux 43 support ends on 2026-12-09 (projected date; 12 days left)"
    )


def test_a_release_becomes_ending_soon_when_fewer_than_warn_days_remain() -> None:
    release = OsRelease.from_text(UBUNTU_22_04)

    assert support_on(release, date(2027, 3, 3)).status == "supported"  # 90 days left
    assert support_on(release, date(2027, 3, 4)).status == "ending-soon"  # 89 days left
    assert support_on(release, date(2027, 3, 4), warn_days=30).status == "supported"


def test_an_unknown_distribution_is_unknown_and_says_it_is_not_in_the_table() -> None:
    support = support_on(OsRelease.from_text(ALPINE_3_20), TABLE_DAY)

    assert support.status == "unknown"
    assert support.lifecycle is None
    assert support.days_left is None
    assert support.summary == (
        "Alpine Linux v3.20 (ID=alpine, VERSION_ID=3.20.3) is not in the bundled end-of-life "
        "table (updated 2026-11-27); its support status is unknown"
    )


def test_an_unknown_release_reports_the_support_end_its_image_declares() -> None:
    release = OsRelease.from_text("ID=fedora\nVERSION_ID=47\nSUPPORT_END=2028-12-01\n")

    support = support_on(release, TABLE_DAY)

    assert support.status == "unknown"
    assert support.summary.endswith("(its os-release declares SUPPORT_END=2028-12-01)")


def test_a_release_without_version_id_such_as_debian_sid_is_unknown() -> None:
    support = support_on(OsRelease.from_text(DEBIAN_SID), TABLE_DAY)

    assert support.status == "unknown"
    assert "Debian GNU/Linux forky/sid has no VERSION_ID" in support.summary


# --- Windows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "status", "name"),
    [
        (9200, "end-of-life", "Windows Server 2012"),
        (9600, "end-of-life", "Windows Server 2012 R2"),
        (14393, "ending-soon", "Windows Server 2016"),
        (17763, "supported", "Windows Server 2019"),
        (20348, "supported", "Windows Server 2022"),
        (26100, "supported", "Windows Server 2025"),
    ],
)
def test_windows_server_is_judged_by_build_number(build: int, status: str, name: str) -> None:
    support = windows_support_on(build, TABLE_DAY)

    assert support.status == status
    assert support.lifecycle is not None
    assert support.lifecycle.name == name


def test_windows_2012_r2_reports_that_paid_updates_have_ended_too() -> None:
    support = windows_support_on(9600, TABLE_DAY)

    assert support.summary == (
        "Windows Server 2012 R2 reached end of Extended Support on 2023-10-10 "
        "(paid ESU also ended on 2026-10-13)"
    )


def test_windows_2016_is_ending_soon_with_days_left() -> None:
    support = windows_support_on(14393, TABLE_DAY)

    assert support.days_left == 46
    assert (
        support.summary == "Windows Server 2016 Extended Support ends on 2027-01-12 (46 days left)"
    )


def test_an_unknown_windows_build_is_unknown() -> None:
    support = windows_support_on(25398, TABLE_DAY)

    assert support.status == "unknown"
    assert "Windows build 25398 is not in the bundled end-of-life table" in support.summary


# --- boundaries, on a table the test controls -------------------------------------------------


def test_the_eol_day_itself_is_the_last_supported_day() -> None:
    support = support_on(UBUNTU, date(2027, 6, 1), small_table())

    assert (support.status, support.days_left) == ("ending-soon", 0)
    assert support.summary == "Ubuntu 22.04 LTS standard support ends today"


def test_the_day_after_eol_is_end_of_life() -> None:
    support = support_on(UBUNTU, date(2027, 6, 2), small_table(extended_eol="2032-04-21"))

    assert (support.status, support.days_left) == ("end-of-life", -1)
    assert support.summary == (
        "Ubuntu 22.04 LTS reached end of standard support on 2027-06-01 (paid ESM until "
        "2032-04-21); an image entitled to ESM may waive this result, with that entitlement as "
        "the reason"
    )


def test_one_day_left_is_singular() -> None:
    support = support_on(UBUNTU, date(2027, 5, 31), small_table())

    assert support.summary == "Ubuntu 22.04 LTS standard support ends on 2027-06-01 (1 day left)"


def test_a_distribution_without_terms_gets_generic_wording() -> None:
    table = EolTable.from_json(
        {
            "updated": "2026-11-27",
            "releases": [{"os": "x", "version": "1", "name": "X 1", "eol": "2020-01-01"}],
        }
    )

    support = support_on(OsRelease("x", "1", "X", "X 1"), TABLE_DAY, table)

    assert support.summary == "X 1 reached end of support on 2020-01-01"


def test_a_negative_warning_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="warn_days"):
        support_on(UBUNTU, TABLE_DAY, small_table(), warn_days=-1)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "not a JSON object"),
        ({"updated": "2026-11-27"}, "no releases list"),
        ({"releases": []}, "updated is required"),
        (
            {"updated": "2026-11-27", "releases": [{"os": "a", "version": "1", "name": "A"}]},
            "eol is required",
        ),
        (
            {
                "updated": "2026-11-27",
                "releases": [{"os": "a", "version": "1", "name": "A", "eol": "soon"}],
            },
            "releases\\[0\\].eol",
        ),
        (
            {
                "updated": "2026-11-27",
                "releases": [
                    {"os": "a", "version": "1", "name": "A", "eol": "2030-01-01"},
                    {"os": "a", "version": "1", "name": "A again", "eol": "2031-01-01"},
                ],
            },
            "twice",
        ),
        (
            {
                "updated": "2026-11-27",
                "releases": [
                    {
                        "os": "a",
                        "version": "1",
                        "name": "A",
                        "eol": "2030-01-01",
                        "projected": "yes",
                    }
                ],
            },
            "projected",
        ),
    ],
)
def test_a_malformed_table_is_rejected_with_the_field_named(document: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EolTable.from_json(document)
