"""os-release(5) parsing: real files from the distributions amiscan judges, and shell quoting."""

from __future__ import annotations

import pytest

from scanner.parsers.os_release import OsRelease, parse_os_release

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
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
DOCUMENTATION_URL="https://docs.aws.amazon.com/linux/"
SUPPORT_URL="https://aws.amazon.com/premiumsupport/"
BUG_REPORT_URL="https://github.com/amazonlinux/amazon-linux-2023"
VENDOR_NAME="AWS"
VENDOR_URL="https://aws.amazon.com/"
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
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
UBUNTU_CODENAME=jammy
"""

UBUNTU_18_04 = """\
NAME="Ubuntu"
VERSION="18.04.6 LTS (Bionic Beaver)"
ID=ubuntu
ID_LIKE=debian
PRETTY_NAME="Ubuntu 18.04.6 LTS"
VERSION_ID="18.04"
HOME_URL="https://www.ubuntu.com/"
SUPPORT_URL="https://help.ubuntu.com/"
BUG_REPORT_URL="https://bugs.launchpad.net/ubuntu/"
PRIVACY_POLICY_URL="https://www.ubuntu.com/legal/terms-and-policies/privacy-policy"
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
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"""

RHEL_9_4 = """\
NAME="Red Hat Enterprise Linux"
VERSION="9.4 (Plow)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:redhat:enterprise_linux:9::baseos"
HOME_URL="https://www.redhat.com/"
DOCUMENTATION_URL="https://access.redhat.com/documentation/en-us/red_hat_enterprise_linux/9"
BUG_REPORT_URL="https://issues.redhat.com/"

REDHAT_BUGZILLA_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_BUGZILLA_PRODUCT_VERSION=9.4
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux"
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
ANSI_COLOR="0;31"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:centos:centos:9"
HOME_URL="https://centos.org/"
BUG_REPORT_URL="https://issues.redhat.com/"
REDHAT_SUPPORT_PRODUCT="Red Hat Enterprise Linux 9"
REDHAT_SUPPORT_PRODUCT_VERSION="CentOS Stream"
"""

ROCKY_8_10 = """\
NAME="Rocky Linux"
VERSION="8.10 (Green Obsidian)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="8.10"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Rocky Linux 8.10 (Green Obsidian)"
ANSI_COLOR="0;32"
LOGO="fedora-logo-icon"
CPE_NAME="cpe:/o:rocky:rocky:8:GA"
HOME_URL="https://rockylinux.org/"
BUG_REPORT_URL="https://bugs.rockylinux.org/"
SUPPORT_END="2029-05-31"
ROCKY_SUPPORT_PRODUCT="Rocky-Linux-8"
ROCKY_SUPPORT_PRODUCT_VERSION="8.10"
REDHAT_SUPPORT_PRODUCT="Rocky Linux"
REDHAT_SUPPORT_PRODUCT_VERSION="8.10"
"""

SLES_15_SP6 = """\
NAME="SLES"
VERSION="15-SP6"
VERSION_ID="15.6"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP6"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp6"
DOCUMENTATION_URL="https://documentation.suse.com/"
"""

FEDORA_40 = """\
NAME="Fedora Linux"
VERSION="40 (Cloud Edition)"
ID=fedora
VERSION_ID=40
VERSION_CODENAME=""
PLATFORM_ID="platform:f40"
PRETTY_NAME="Fedora Linux 40 (Cloud Edition)"
ANSI_COLOR="0;38;2;60;110;180"
LOGO=fedora-logo-icon
CPE_NAME="cpe:/o:fedoraproject:fedora:40"
HOME_URL="https://fedoraproject.org/"
DOCUMENTATION_URL="https://docs.fedoraproject.org/en-US/fedora/f40/system-administrators-guide/"
SUPPORT_URL="https://ask.fedoraproject.org/"
BUG_REPORT_URL="https://bugzilla.redhat.com/"
REDHAT_BUGZILLA_PRODUCT="Fedora"
REDHAT_BUGZILLA_PRODUCT_VERSION=40
REDHAT_SUPPORT_PRODUCT="Fedora"
REDHAT_SUPPORT_PRODUCT_VERSION=40
SUPPORT_END=2025-05-13
VARIANT="Cloud Edition"
VARIANT_ID=cloud
"""

CENTOS_7 = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
BUG_REPORT_URL="https://bugs.centos.org/"

CENTOS_MANTISBT_PROJECT="CentOS-7"
CENTOS_MANTISBT_PROJECT_VERSION="7"
REDHAT_SUPPORT_PRODUCT="centos"
REDHAT_SUPPORT_PRODUCT_VERSION="7"

"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            AMAZON_LINUX_2,
            ("amzn", "2", "Amazon Linux", "Amazon Linux 2", ("centos", "rhel", "fedora")),
        ),
        (
            AMAZON_LINUX_2023,
            ("amzn", "2023", "Amazon Linux", "Amazon Linux 2023.6.20241212", ("fedora",)),
        ),
        (UBUNTU_22_04, ("ubuntu", "22.04", "Ubuntu", "Ubuntu 22.04.5 LTS", ("debian",))),
        (UBUNTU_18_04, ("ubuntu", "18.04", "Ubuntu", "Ubuntu 18.04.6 LTS", ("debian",))),
        (DEBIAN_12, ("debian", "12", "Debian GNU/Linux", "Debian GNU/Linux 12 (bookworm)", ())),
        (
            RHEL_9_4,
            (
                "rhel",
                "9.4",
                "Red Hat Enterprise Linux",
                "Red Hat Enterprise Linux 9.4 (Plow)",
                ("fedora",),
            ),
        ),
        (CENTOS_STREAM_9, ("centos", "9", "CentOS Stream", "CentOS Stream 9", ("rhel", "fedora"))),
        (
            ROCKY_8_10,
            (
                "rocky",
                "8.10",
                "Rocky Linux",
                "Rocky Linux 8.10 (Green Obsidian)",
                ("rhel", "centos", "fedora"),
            ),
        ),
        (SLES_15_SP6, ("sles", "15.6", "SLES", "SUSE Linux Enterprise Server 15 SP6", ("suse",))),
        (FEDORA_40, ("fedora", "40", "Fedora Linux", "Fedora Linux 40 (Cloud Edition)", ())),
        (CENTOS_7, ("centos", "7", "CentOS Linux", "CentOS Linux 7 (Core)", ("rhel", "fedora"))),
    ],
)
def test_real_os_release_files_yield_their_identity(
    text: str, expected: tuple[str, str, str, str, tuple[str, ...]]
) -> None:
    release = OsRelease.from_text(text)

    assert (
        release.id,
        release.version_id,
        release.name,
        release.pretty_name,
        release.id_like,
    ) == expected


def test_every_line_of_a_real_file_is_read_with_quotes_removed() -> None:
    fields = parse_os_release(RHEL_9_4)

    assert fields["REDHAT_BUGZILLA_PRODUCT_VERSION"] == "9.4"
    assert fields["CPE_NAME"] == "cpe:/o:redhat:enterprise_linux:9::baseos"
    assert len(fields) == 17


def test_support_end_is_kept_when_the_file_declares_it() -> None:
    assert OsRelease.from_text(FEDORA_40).support_end == "2025-05-13"
    assert OsRelease.from_text(UBUNTU_22_04).support_end == ""


def test_an_empty_quoted_value_is_an_empty_string() -> None:
    assert parse_os_release(FEDORA_40)["VERSION_CODENAME"] == ""


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('X="a \\"quoted\\" word"', 'a "quoted" word'),
        ('X="back\\\\slash, \\$HOME and \\`cmd\\`"', "back\\slash, $HOME and `cmd`"),
        ('X="C:\\temp\\new"', "C:\\temp\\new"),
        ("X='single \"quoted\" \\n $HOME'", 'single "quoted" \\n $HOME'),
        ("X=foo\\ bar", "foo bar"),
        ("X=\\$HOME", "$HOME"),
        ("X=$HOME", "$HOME"),
        ("X=a=b", "a=b"),
        ('X="a=b"', "a=b"),
        ("X=a#b", "a#b"),
        ('X="value" # trailing comment', "value"),
        ("X=value\t# trailing comment", "value"),
        ('X="spaces kept "  ', "spaces kept "),
        ("X=", ""),
        ('X=""', ""),
        ("X=''", ""),
        ("X='it'\\''s'", "it's"),
        ("X=\"a\"'b'c", "abc"),
        ('X="ünïcödé ✓"', "ünïcödé ✓"),
        ("lower_case=ok", "ok"),
    ],
)
def test_values_are_read_with_shell_quoting(line: str, value: str) -> None:
    key = line.partition("=")[0]

    assert parse_os_release(line + "\n") == {key: value}


@pytest.mark.parametrize(
    "line",
    [
        "X = spaced",
        "X =spaced",
        "1X=digit first",
        "X-Y=dash",
        "just some text",
        'X="unclosed',
        "X='unclosed",
        "X=two words",
        'X="quoted" junk',
        "X=a;b",
        "X=a|b",
        "X=(subshell)",
        "X=trailing\\",
        "export X=1",
        "=no key",
    ],
)
def test_lines_a_shell_would_not_read_as_one_assignment_are_ignored(line: str) -> None:
    text = f"ID=debian\n{line}\nVERSION_ID=12\n"

    assert parse_os_release(text) == {"ID": "debian", "VERSION_ID": "12"}


def test_comments_and_blank_lines_are_ignored() -> None:
    text = '# a comment\n\n   # an indented comment\n \t \nID=ubuntu\n#ID=debian\n  NAME="Ubuntu"\n'

    assert parse_os_release(text) == {"ID": "ubuntu", "NAME": "Ubuntu"}


def test_a_later_assignment_wins_as_in_a_shell() -> None:
    assert parse_os_release("ID=debian\nID=ubuntu\n") == {"ID": "ubuntu"}


def test_crlf_line_ends_and_a_byte_order_mark_do_not_leak_into_values() -> None:
    text = '\ufeffID=ubuntu\r\nVERSION_ID="22.04"\r\nNAME=Ubuntu\r\n'

    assert parse_os_release(text) == {"ID": "ubuntu", "VERSION_ID": "22.04", "NAME": "Ubuntu"}


def test_a_line_separator_inside_a_value_does_not_split_it() -> None:
    assert parse_os_release('NAME="a\u2028b"\n') == {"NAME": "a\u2028b"}


def test_a_file_without_fields_gets_the_defaults_of_os_release_5() -> None:
    release = OsRelease.from_text("# nothing here\n")

    assert release == OsRelease(id="linux", version_id="", name="Linux", pretty_name="Linux")


def test_id_like_is_split_on_whitespace() -> None:
    release = OsRelease.from_text('ID=rocky\nID_LIKE="rhel  centos\tfedora"\n')

    assert release.id_like == ("rhel", "centos", "fedora")
