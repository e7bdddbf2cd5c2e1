"""Account facts: /etc/passwd and /etc/shadow parsing, the login user, and sudo privilege."""

from __future__ import annotations

import pytest

from scanner.facts.base import FactFailed, FactUnavailable
from scanner.facts.linux.accounts import (
    LOGIN_USER,
    PASSWD,
    PRIVILEGE,
    SHADOW,
    LoginUser,
    PasswdEntry,
    Privilege,
    ShadowEntry,
    parse_passwd,
    parse_shadow,
)
from tests.factbuilders import LiveFacts, OfflineFacts, Symlink

# --- parse_passwd ---------------------------------------------------------------------------


def test_parse_passwd_reads_name_ids_home_shell_and_line_number() -> None:
    text = "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:100:Alice A:/home/alice:/bin/zsh\n"
    assert parse_passwd(text) == [
        PasswdEntry("root", 0, 0, "/root", "/bin/bash", 1),
        PasswdEntry("alice", 1001, 100, "/home/alice", "/bin/zsh", 2),
    ]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("# comment:x:0:0::/:/bin/sh", id="comment"),
        pytest.param("+nisuser:x:2000:2000::/home/n:/bin/sh", id="nis-include"),
        pytest.param("-baduser:x:2001:2001::/home/b:/bin/sh", id="nis-exclude"),
        pytest.param("short:x:0:0", id="too-few-fields"),
        pytest.param("odd:x:abc:0::/home/odd:/bin/sh", id="non-numeric-uid"),
        pytest.param("", id="blank"),
    ],
)
def test_parse_passwd_skips_lines_that_are_not_local_accounts(line: str) -> None:
    assert parse_passwd(f"{line}\nroot:x:0:0::/root:/bin/sh\n") == [
        PasswdEntry("root", 0, 0, "/root", "/bin/sh", 2)
    ]


def test_passwd_fact_fails_when_the_image_has_no_passwd(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactFailed):
        offline_facts({"/etc/hostname": "x"}).get(PASSWD)


# --- parse_shadow and ShadowEntry.kind ------------------------------------------------------


def test_parse_shadow_reads_user_password_field_and_line_number() -> None:
    text = "# generated\n\nroot:*:19000:0:99999:7:::\nalice:$6$s$h:19000::::::\n"
    assert parse_shadow(text) == [
        ShadowEntry("root", "*", 3),
        ShadowEntry("alice", "$6$s$h", 4),
    ]


@pytest.mark.parametrize("line", ["+::::::::", "+@admins::::::::", "-olduser::::::::"])
def test_parse_shadow_skips_nis_compat_lines_as_parse_passwd_does(line: str) -> None:
    assert parse_shadow(f"{line}\nroot:*:::\n") == [ShadowEntry("root", "*", 2)]


def test_parse_shadow_skips_a_line_without_a_password_field() -> None:
    assert parse_shadow("garbage\nroot::::\n") == [ShadowEntry("root", "", 2)]


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        pytest.param("", "empty", id="empty"),
        pytest.param("*", "locked", id="star"),
        pytest.param("!", "locked", id="bang"),
        pytest.param("!!", "locked", id="double-bang"),
        pytest.param("*LK*", "locked", id="solaris-style-lock"),
        pytest.param("!$6$salt$digest", "locked-hash", id="locked-sha512"),
        pytest.param("!!$y$j9T$salt$digest", "locked-hash", id="double-locked-yescrypt"),
        pytest.param("!abJnggxhB/yWI", "locked-hash", id="locked-des"),
        pytest.param("$6$salt$digest", "hash", id="sha512"),
        pytest.param("$y$j9T$salt$digest", "hash", id="yescrypt"),
        pytest.param("$2b$12$abcdefghijklmnopqrstuv", "hash", id="bcrypt"),
        pytest.param("abJnggxhB/yWI", "hash", id="des"),
        pytest.param("x", "disabled", id="x"),
        pytest.param("NP", "disabled", id="no-password-marker"),
    ],
)
def test_shadow_entry_kind_says_what_the_password_field_allows(field: str, kind: str) -> None:
    assert ShadowEntry("u", field, 1).kind == kind


def test_shadow_entry_looks_up_a_user(offline_facts: OfflineFacts) -> None:
    shadow = offline_facts({"/etc/shadow": "root:*:::\nalice:!:::\n"}).get(SHADOW)
    assert shadow.entry("alice") == ShadowEntry("alice", "!", 2)


def test_shadow_fact_fails_live_without_sudo_and_says_why(live_facts: LiveFacts) -> None:
    facts = live_facts(privileged=False, sudo_error="sudo: a terminal is required")
    with pytest.raises(FactFailed, match="sudo: a terminal is required"):
        facts.get(SHADOW)


def test_shadow_fact_fails_when_it_is_missing_from_the_image(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactFailed):
        offline_facts({"/etc/passwd": "root:x:0:0::/root:/bin/sh\n"}).get(SHADOW)


def test_shadow_fact_fails_live_when_the_collection_broke(live_facts: LiveFacts) -> None:
    facts = live_facts(files={"/etc/shadow": "root:*:::\n"}, collection_error="connection reset")
    with pytest.raises(FactFailed, match="connection reset"):
        facts.get(SHADOW)


def test_shadow_symlink_to_an_absolute_path_is_read_inside_the_image(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {"/etc/shadow": Symlink("/var/lib/shadow"), "/var/lib/shadow": "root:!:::\n"}
    )
    assert facts.get(SHADOW).entries == (ShadowEntry("root", "!", 1),)


def test_shadow_symlink_never_reaches_this_machines_files(offline_facts: OfflineFacts) -> None:
    # /etc/passwd exists on the machine running the tests, but not in the image.
    facts = offline_facts({"/etc/shadow": Symlink("../../../../../../../etc/passwd"), "/etc/": ""})
    with pytest.raises(FactFailed):
        facts.get(SHADOW)


# --- LOGIN_USER -----------------------------------------------------------------------------


def test_login_user_live_is_the_user_that_logged_in(live_facts: LiveFacts) -> None:
    facts = live_facts(login_user="ubuntu", target_kind="ssh")
    assert facts.get(LOGIN_USER) == LoginUser("ubuntu", "logged in over ssh")


CLOUD_CFG = "system_info:\n  default_user:\n    name: {}\n"


@pytest.mark.parametrize(
    ("dropin", "expected"),
    [
        pytest.param(CLOUD_CFG.format("admin"), "admin", id="drop-in-default-user-wins"),
        pytest.param("system_info: [not, a, mapping\n", "ec2-user", id="bad-yaml-is-ignored"),
        pytest.param("- a list\n", "ec2-user", id="non-mapping-document-is-ignored"),
        pytest.param("system_info:\n  default_user: ubuntu\n", "ec2-user", id="not-a-mapping"),
        pytest.param("", "ec2-user", id="empty-drop-in"),
    ],
)
def test_login_user_offline_is_cloud_inits_default_user_with_later_files_winning(
    offline_facts: OfflineFacts, dropin: str, expected: str
) -> None:
    facts = offline_facts(
        {
            "/etc/cloud/cloud.cfg": CLOUD_CFG.format("ec2-user"),
            "/etc/cloud/cloud.cfg.d/90-user.cfg": dropin,
        }
    )
    assert facts.get(LOGIN_USER).name == expected


def test_login_user_offline_fails_without_cloud_init(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactFailed, match="default_user"):
        offline_facts({"/etc/passwd": "root:x:0:0::/root:/bin/sh\n"}).get(LOGIN_USER)


# --- PRIVILEGE ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(
            {"privileged": True},
            Privilege(True, "`sudo -n sh` ran the privileged probes as uid 0"),
            id="sudo-worked",
        ),
        pytest.param(
            {"privileged": False, "session": {"uid": "0"}},
            Privilege(True, "logged in as root"),
            id="root-login",
        ),
        pytest.param(
            {"privileged": False, "sudo_error": "sudo: a password is required"},
            Privilege(False, "sudo: a password is required"),
            id="sudo-refused",
        ),
        pytest.param(
            {"privileged": False},
            Privilege(False, "sudo -n did not give root"),
            id="sudo-refused-silently",
        ),
    ],
)
def test_privilege_says_whether_and_how_root_was_reached(
    live_facts: LiveFacts, context: dict[str, object], expected: Privilege
) -> None:
    assert live_facts(**context).get(PRIVILEGE) == expected


def test_privilege_fails_when_the_script_did_not_report_it(live_facts: LiveFacts) -> None:
    with pytest.raises(FactFailed):
        live_facts(privileged=None).get(PRIVILEGE)


def test_privilege_is_unavailable_offline(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactUnavailable):
        offline_facts({}).get(PRIVILEGE)
