"""The sshd_config parser: unit tests, then the same configs judged by a real OpenSSH sshd.

The comparison tests run `sshd -T -f CONFIG -C user=,host=,addr=` and require the parser to
agree with it. They skip when /usr/sbin/sshd is absent, and fail instead when
AMISCAN_REQUIRE_SSHD=1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.fs import ImageRoot, MemoryTree
from scanner.parsers.sshd_config import (
    ConfigTooLarge,
    ConnectionInfo,
    EffectiveConfig,
    SshdConfig,
    addr_match_list,
    match_pattern_list,
    parse_sshd_config,
    parse_sshd_t,
    user_groups,
    vetting_addresses,
)
from scanner.parsers.sshd_config import config as config_module

MAIN = "/etc/ssh/sshd_config"
KEYS = (
    "passwordauthentication",
    "permitrootlogin",
    "kbdinteractiveauthentication",
    "usepam",
    "authorizedkeysfile",
    "pubkeyauthentication",
)


def parse(config: str, **files: str) -> SshdConfig:
    """Parse `config` as /etc/ssh/sshd_config; `files` maps guest paths to more files."""
    tree = MemoryTree()
    tree.add(MAIN, config.encode())
    for path, text in files.items():
        tree.add(path, text.encode())
    return parse_sshd_config(tree)


def effective(config: SshdConfig, user: str = "bob", addr: str = "10.0.0.5") -> EffectiveConfig:
    return config.effective(ConnectionInfo(user=user, addr=addr))


def value(config: SshdConfig, key: str, user: str = "bob", addr: str = "10.0.0.5") -> str:
    return " ".join(effective(config, user, addr).get(key).values)


# --------------------------------------------------------------------------------------------
# Line syntax


def test_keywords_and_yes_no_values_are_case_insensitive() -> None:
    config = parse("PASSWORDAUTHENTICATION NO\npermitRootLogin YES\n")
    assert value(config, "passwordauthentication") == "no"
    assert value(config, "PermitRootLogin") == "yes"


@pytest.mark.parametrize(
    "line",
    [
        "PasswordAuthentication no",
        "PasswordAuthentication=no",
        "PasswordAuthentication = no",
        "PasswordAuthentication =no",
        "PasswordAuthentication\t=\tno",
        "  \tPasswordAuthentication no  \t",
        "=PasswordAuthentication no",
        'Password"Authentication" no',
        'PasswordAuthentication "no"',
        "PasswordAuthentication no # trailing comment",
        "PasswordAuthentication no\r",
    ],
)
def test_each_separator_form_sets_the_value(line: str) -> None:
    config = parse(line + "\n")
    assert value(config, "passwordauthentication") == "no"
    assert config.problems == []


@pytest.mark.parametrize("line", ["PasswordAuthentication == no", "PasswordAuthentication==no"])
def test_a_second_equals_sign_is_part_of_the_value_and_rejected(line: str) -> None:
    config = parse(line + "\n")
    assert config.rejected
    assert value(config, "passwordauthentication") == "yes"


def test_comment_lines_and_blank_lines_are_ignored() -> None:
    config = parse("# PasswordAuthentication no\n\n   #PermitRootLogin yes\n")
    assert value(config, "passwordauthentication") == "yes"
    assert config.problems == []


def test_a_line_with_an_unterminated_quoted_keyword_is_silently_ignored() -> None:
    # strdelim() returns NULL and sshd skips the line without an error.
    config = parse('"PasswordAuthentication no\n')
    assert value(config, "passwordauthentication") == "yes"
    assert config.problems == []


def test_quoted_arguments_keep_spaces_and_escaped_quotes() -> None:
    config = parse('AuthorizedKeysFile ".ssh/my keys" \'x y\' a\\"b\n')
    assert effective(config).get("authorizedkeysfile").values == (".ssh/my keys", "x y", 'a"b')


def test_an_unterminated_quote_in_the_arguments_is_rejected() -> None:
    config = parse('AuthorizedKeysFile "abc\n')
    assert config.rejected
    assert config.problems == [f"{MAIN}:1: error: invalid quotes"]


def test_a_hash_inside_a_value_is_not_a_comment() -> None:
    config = parse("PermitRootLogin no#comment\n")
    assert config.rejected
    assert "no#comment" in config.problems[0]


# --------------------------------------------------------------------------------------------
# First value wins, Match, defaults


def test_first_value_wins_over_later_duplicates() -> None:
    config = parse("PasswordAuthentication no\nPasswordAuthentication yes\n")
    setting = effective(config).get("passwordauthentication")
    assert setting.values == ("no",)
    assert setting.source == f"{MAIN}:1"
    assert setting.line == "PasswordAuthentication no"


def test_challenge_response_is_an_alias_of_kbd_interactive_and_shares_first_wins() -> None:
    config = parse("ChallengeResponseAuthentication no\nKbdInteractiveAuthentication yes\n")
    assert value(config, "kbdinteractiveauthentication") == "no"
    assert value(config, "challengeresponseauthentication") == "no"
    assert value(config, "SKeyAuthentication") == "no"


def test_without_password_is_reported_as_prohibit_password() -> None:
    assert value(parse("PermitRootLogin without-password\n"), "permitrootlogin") == (
        "prohibit-password"
    )


def test_get_rejects_words_that_are_not_sshd_keywords() -> None:
    config = effective(parse(""))
    for word in ("PasswordAuth", "Match", "Include", "UsePrivilegeSeparation"):
        with pytest.raises(KeyError):
            config.get(word)


def test_compiled_in_defaults_apply_when_nothing_is_set() -> None:
    got = effective(parse("")).as_dict()
    assert got["passwordauthentication"] == ("yes",)
    assert got["permitrootlogin"] == ("prohibit-password",)
    assert got["kbdinteractiveauthentication"] == ("yes",)
    assert got["usepam"] == ("no",)
    assert got["pubkeyauthentication"] == ("yes",)
    assert got["permitemptypasswords"] == ("no",)
    assert got["authorizedkeysfile"] == (".ssh/authorized_keys", ".ssh/authorized_keys2")
    assert got["port"] == ("22",)
    assert got["listenaddress"] == ("[::]:22", "0.0.0.0:22")
    assert got["authenticationmethods"] == ("any",)
    assert got["hostkey"] == (
        "/etc/ssh/ssh_host_rsa_key",
        "/etc/ssh/ssh_host_ecdsa_key",
        "/etc/ssh/ssh_host_ed25519_key",
    )
    assert effective(parse("")).get("usepam").source == "default"


def test_listen_addresses_pair_every_address_without_a_port_with_every_port() -> None:
    config = parse("Port 2222\nListenAddress 10.1.2.3\nListenAddress [::1]:2200\nPort 22\n")
    assert effective(config).get("listenaddress").values == (
        "10.1.2.3:2222",
        "10.1.2.3:22",
        "[::1]:2200",
    )


def test_address_family_limits_the_default_listen_addresses() -> None:
    config = parse("AddressFamily inet\nPort 2200\nPort 22\n")
    assert effective(config).get("listenaddress").values == ("0.0.0.0:2200", "0.0.0.0:22")


def test_match_block_overrides_the_global_value_only_for_matching_connections() -> None:
    config = parse("PasswordAuthentication no\nMatch User root\n  PasswordAuthentication yes\n")
    assert value(config, "passwordauthentication", user="root") == "yes"
    assert value(config, "passwordauthentication", user="bob") == "no"
    assert effective(config, "root").get("passwordauthentication").source == f"{MAIN}:3"


def test_first_value_wins_among_matching_match_blocks() -> None:
    config = parse(
        "Match Address 10.0.0.0/16\n PermitRootLogin no\nMatch User root\n PermitRootLogin yes\n"
    )
    assert value(config, "permitrootlogin", "root", "10.0.0.9") == "no"
    assert value(config, "permitrootlogin", "root", "10.2.0.9") == "yes"


def test_lines_after_match_all_override_the_global_value_for_every_connection() -> None:
    config = parse(
        "PasswordAuthentication no\nMatch User nobody\n X11Forwarding yes\n"
        "Match all\nPasswordAuthentication yes\n"
    )
    assert value(config, "passwordauthentication") == "yes"


def test_global_only_keywords_are_allowed_after_match_all() -> None:
    config = parse("Match User root\n X11Forwarding yes\nMatch all\nPort 2222\nUsePAM yes\n")
    assert config.problems == []
    assert value(config, "port") == "2222"
    assert value(config, "usepam") == "yes"


def test_match_criteria_on_one_line_must_all_match() -> None:
    config = parse("Match User root Address 10.2.0.0/16\n PasswordAuthentication no\n")
    assert value(config, "passwordauthentication", "root", "10.2.1.1") == "no"
    assert value(config, "passwordauthentication", "root", "10.0.1.1") == "yes"
    assert value(config, "passwordauthentication", "bob", "10.2.1.1") == "yes"


def test_a_negated_user_matches_nobody_without_a_positive_pattern() -> None:
    config = parse("Match User !root\n PasswordAuthentication no\n")
    assert value(config, "passwordauthentication", user="bob") == "yes"


def test_a_negated_user_excludes_that_user_from_a_wildcard() -> None:
    config = parse("Match User !root,*\n PasswordAuthentication no\n")
    assert value(config, "passwordauthentication", user="bob") == "no"
    assert value(config, "passwordauthentication", user="root") == "yes"


def test_match_host_defaults_to_the_address_and_ignores_case() -> None:
    config = parse("Match Host 10.0.0.*,Example.COM\n PasswordAuthentication no\n")
    assert value(config, "passwordauthentication", addr="10.0.0.7") == "no"
    named = config.effective(ConnectionInfo("bob", "10.2.0.1", host="EXAMPLE.com"))
    assert named.get("passwordauthentication").values == ("no",)


def test_match_local_port_local_address_and_rdomain_need_those_attributes() -> None:
    config = parse(
        "Match LocalPort 2222\n PasswordAuthentication no\n"
        "Match LocalAddress 10.9.0.0/16\n PermitRootLogin no\n"
        "Match RDomain vrf*\n PubkeyAuthentication no\n"
    )
    full = config.effective(
        ConnectionInfo("bob", "10.0.0.1", laddr="10.9.1.1", lport=2222, rdomain="vrf1")
    ).as_dict()
    assert full["passwordauthentication"] == ("no",)
    assert full["permitrootlogin"] == ("no",)
    assert full["pubkeyauthentication"] == ("no",)
    bare = effective(config, addr="10.0.0.1").as_dict()
    assert bare["passwordauthentication"] == ("yes",)
    assert bare["permitrootlogin"] == ("prohibit-password",)
    assert bare["pubkeyauthentication"] == ("yes",)


def test_match_group_uses_the_groups_of_the_user_and_a_negated_group_wins() -> None:
    config = parse(
        "Match Group wheel\n PasswordAuthentication no\nMatch Group !wheel,*\n PermitRootLogin no\n"
    )
    admin = config.effective(ConnectionInfo("ann", "10.0.0.1", groups=("ann", "wheel")))
    plain = config.effective(ConnectionInfo("joe", "10.0.0.1", groups=("joe",)))
    assert admin.get("passwordauthentication").values == ("no",)
    assert admin.get("permitrootlogin").values == ("prohibit-password",)
    assert plain.get("passwordauthentication").values == ("yes",)
    assert plain.get("permitrootlogin").values == ("no",)


def test_effective_reads_the_users_groups_from_the_image_when_not_given() -> None:
    config = parse(
        "Match Group wheel\n PasswordAuthentication no\n",
        **{
            "/etc/passwd": "ann:x:1000:1000::/home/ann:/bin/sh\n",
            "/etc/group": "ann:x:1000:\nwheel:x:10:root,ann\n",
        },
    )
    assert value(config, "passwordauthentication", user="ann") == "no"
    assert value(config, "passwordauthentication", user="ghost") == "yes"


def test_lists_accumulate_globally_and_a_match_block_replaces_them() -> None:
    config = parse("AllowUsers root bob\nAllowUsers ann\nMatch User bob\n AllowUsers bob\n")
    assert effective(config, "root").get("allowusers").values == ("root", "bob", "ann")
    assert effective(config, "bob").get("allowusers").values == ("bob",)
    assert [s.source for s in effective(config, "root").sources("allowusers")] == [
        f"{MAIN}:1",
        f"{MAIN}:2",
    ]


def test_authorized_keys_file_takes_all_arguments_of_the_first_line_and_expands_tilde() -> None:
    config = parse(
        "AuthorizedKeysFile ~/.ssh/k %h/.ssh/k ~ann/k\nAuthorizedKeysFile /etc/other\n",
        **{"/etc/passwd": "root:x:0:0::/root:/bin/sh\nann:x:1:1::/srv/ann:/bin/sh\n"},
    )
    assert effective(config).get("authorizedkeysfile").values == (
        "/root/.ssh/k",
        "%h/.ssh/k",
        "/srv/ann/k",
    )


def test_keywords_sshd_overwrites_take_the_last_value() -> None:
    config = parse(
        "MaxStartups 5\nMaxStartups 10:30:60\nFingerprintHash md5\nFingerprintHash sha256\n"
        "AuthorizedPrincipalsCommand /bin/a\nAuthorizedPrincipalsCommand /bin/b\n"
    )
    got = effective(config).as_dict()
    assert got["maxstartups"] == ("10:30:60",)
    assert got["fingerprinthash"] == ("SHA256",)
    assert got["authorizedprincipalscommand"] == ("/bin/b",)


def test_max_startups_with_one_number_uses_it_as_start_and_limit() -> None:
    assert value(parse("MaxStartups 5\n"), "maxstartups") == "5:30:5"


def test_tilde_is_roots_home_even_without_a_passwd_file() -> None:
    config = parse("AuthorizedKeysFile ~/.ssh/k\n")
    assert effective(config).get("authorizedkeysfile").values == ("/root/.ssh/k",)


def test_a_tilde_for_an_unknown_user_is_rejected() -> None:
    assert parse("AuthorizedKeysFile ~ghost/k\n").rejected


def test_rekey_limit_and_interval_are_first_wins_each_on_their_own() -> None:
    config = parse("RekeyLimit 1G\nRekeyLimit 2G 1h\nMatch User root\n RekeyLimit 512M\n")
    assert effective(config, "bob").get("rekeylimit").values == ("1073741824", "3600")
    assert effective(config, "root").get("rekeylimit").values == ("536870912", "3600")


# --------------------------------------------------------------------------------------------
# Include


def image(tmp_path: Path, files: dict[str, str]) -> ImageRoot:
    for name, text in files.items():
        target = tmp_path / name.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return ImageRoot(tmp_path)


def test_relative_include_paths_resolve_against_etc_ssh_not_the_including_file(
    tmp_path: Path,
) -> None:
    root = image(
        tmp_path,
        {
            MAIN: "Include sshd_config.d/*.conf\n",
            "/etc/ssh/sshd_config.d/10-inner.conf": "Include extra.conf\n",
            "/etc/ssh/extra.conf": "PermitRootLogin no\n",
            "/etc/ssh/sshd_config.d/extra.conf": "PermitRootLogin yes\n",
        },
    )
    config = parse_sshd_config(root)
    assert value(config, "permitrootlogin") == "no"
    assert config.files == [
        MAIN,
        "/etc/ssh/sshd_config.d/10-inner.conf",
        "/etc/ssh/extra.conf",
        "/etc/ssh/sshd_config.d/extra.conf",
    ]


def test_include_glob_reads_files_in_sorted_order_and_skips_dotfiles(tmp_path: Path) -> None:
    root = image(
        tmp_path,
        {
            MAIN: "Include /etc/ssh/sshd_config.d/*\n",
            "/etc/ssh/sshd_config.d/50-b.conf": "PasswordAuthentication yes\n",
            "/etc/ssh/sshd_config.d/10-a.conf": "PasswordAuthentication no\n",
            "/etc/ssh/sshd_config.d/.00-hidden": "PermitRootLogin yes\n",
        },
    )
    config = parse_sshd_config(root)
    assert value(config, "passwordauthentication") == "no"
    assert value(config, "permitrootlogin") == "prohibit-password"


def test_including_a_directory_reads_nothing_and_is_not_a_problem(tmp_path: Path) -> None:
    root = image(tmp_path, {MAIN: "Include /etc/ssh/conf.d\n", "/etc/ssh/conf.d/a": "Port 1\n"})
    config = parse_sshd_config(root)
    assert config.problems == []
    assert value(config, "port") == "22"


def test_an_include_that_matches_nothing_is_not_a_problem() -> None:
    config = parse("Include /etc/ssh/sshd_config.d/*.conf /etc/ssh/absent.conf\n")
    assert config.problems == []
    assert config.files == [MAIN]


def test_an_include_inside_a_match_block_applies_only_to_that_block() -> None:
    config = parse(
        "Match User root\n  Include /etc/ssh/root.conf\nMatch all\nPermitRootLogin no\n",
        **{"/etc/ssh/root.conf": "PasswordAuthentication no\nPermitRootLogin yes\n"},
    )
    assert value(config, "passwordauthentication", user="root") == "no"
    assert value(config, "permitrootlogin", user="root") == "yes"
    assert value(config, "passwordauthentication", user="bob") == "yes"
    assert value(config, "permitrootlogin", user="bob") == "no"


def test_a_match_block_opened_in_an_included_file_ends_with_that_file() -> None:
    config = parse(
        "Include /etc/ssh/part.conf\nPasswordAuthentication no\n",
        **{"/etc/ssh/part.conf": "Match User root\n  PermitRootLogin yes\n"},
    )
    assert value(config, "passwordauthentication", user="bob") == "no"
    assert value(config, "permitrootlogin", user="root") == "yes"


def test_match_all_inside_an_include_in_a_non_matching_block_never_applies() -> None:
    config = parse(
        "Match User nosuch\n  Include /etc/ssh/part.conf\n",
        **{"/etc/ssh/part.conf": "Match all\n  PasswordAuthentication no\n"},
    )
    assert value(config, "passwordauthentication") == "yes"


def test_include_recursion_stops_at_sshds_depth_limit() -> None:
    config = parse(
        "Include /etc/ssh/loop.conf\n", **{"/etc/ssh/loop.conf": "Include /etc/ssh/loop.conf\n"}
    )
    assert config.rejected
    assert config.problems == [
        "/etc/ssh/loop.conf:1: error: Too many recursive configuration includes"
    ]


def test_files_that_include_each_other_stop_at_the_depth_limit_without_blowing_up() -> None:
    # Four files each including all four: 4**16 include paths if every one were followed.
    loop = {f"/etc/ssh/d/{i}.conf": "Include /etc/ssh/d/*.conf\n" for i in range(4)}
    config = parse("Include /etc/ssh/d/*.conf\nPasswordAuthentication no\n", **loop)
    assert config.rejected
    assert config.problems == [
        "/etc/ssh/d/0.conf:1: error: Too many recursive configuration includes"
    ]
    assert config.incomplete is None
    # sshd exits there; the lines after the include are still read for the rest of the verdict.
    assert value(config, "passwordauthentication") == "no"


def test_an_include_tree_past_the_file_bound_is_incomplete_not_judged() -> None:
    files = {
        f"/etc/ssh/l{level}/{name}.conf": f"Include /etc/ssh/l{level + 1}/*.conf\n"
        for level in range(12)
        for name in ("a", "b")
    }
    config = parse("Include /etc/ssh/l0/*.conf\n", **files)
    assert config.incomplete is not None
    assert "more than 1000 files" in config.incomplete


def test_a_chain_of_sixteen_includes_is_accepted_and_seventeen_is_not() -> None:
    def chain(length: int) -> SshdConfig:
        files = {f"/etc/ssh/f{i}": f"Include /etc/ssh/f{i + 1}\n" for i in range(1, length)}
        files[f"/etc/ssh/f{length}"] = "PasswordAuthentication no\n"
        return parse("Include /etc/ssh/f1\n", **files)

    assert not chain(16).rejected
    assert value(chain(16), "passwordauthentication") == "no"
    assert chain(17).rejected


def test_a_missing_main_file_raises_file_not_found() -> None:
    with pytest.raises(FileNotFoundError):
        parse_sshd_config(MemoryTree())


# --------------------------------------------------------------------------------------------
# Problems sshd reports


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("PasswordAuth no\n", "1: error: Bad configuration option: PasswordAuth"),
        ("PasswordAuthentication maybe\n", '1: error: unsupported option "maybe"'),
        (
            "PasswordAuthentication\n",
            '1: error: no argument after keyword "PasswordAuthentication"',
        ),
        ("PasswordAuthentication no yes\n", "1: error: keyword PasswordAuthentication extra"),
        ("Match User root\n Port 22\n", "2: error: Directive 'Port' is not allowed within a Match"),
        ("Match User root\n Bogus 1\n", "2: error: Bad configuration option: Bogus"),
        ("Match Foo bar\n", "1: error: Bad Match condition: Unsupported Match attribute Foo"),
        ("Match all User root\n", "1: error: Bad Match condition: 'all' cannot be combined"),
        ("Match User root all\n", "1: error: Bad Match condition: 'all' cannot be combined"),
        ("Match User\n", "1: error: Bad Match condition: Missing Match criteria for User"),
        ("Match Address 10.0.0.1/16\n", "1: error: Bad Match condition: Invalid Match address"),
        ("Subsystem sftp /a\nSubsystem sftp /b\n", "2: error: Subsystem 'sftp' already defined"),
        (
            "AuthenticationMethods publickey\nMatch User root\n AuthenticationMethods any\n",
            '3: error: "any" must appear alone',
        ),
    ],
)
def test_lines_sshd_rejects_are_problems_with_their_location(config: str, message: str) -> None:
    parsed = parse(config)
    assert parsed.rejected
    assert any(p.startswith(f"{MAIN}:{message}") for p in parsed.problems), parsed.problems


def test_deprecated_keywords_are_warnings_and_do_not_reject_the_config() -> None:
    config = parse("UsePrivilegeSeparation sandbox\nProtocol 2\n")
    assert not config.rejected
    assert config.problems == [
        f"{MAIN}:1: warning: Deprecated option UsePrivilegeSeparation (sshd ignores it)"
    ]


def test_every_problem_in_included_files_names_that_file() -> None:
    config = parse("Include /etc/ssh/bad.conf\n", **{"/etc/ssh/bad.conf": "\nNoSuchThing yes\n"})
    assert config.problems == ["/etc/ssh/bad.conf:2: error: Bad configuration option: NoSuchThing"]


# --------------------------------------------------------------------------------------------
# Pattern matching


@pytest.mark.parametrize(
    ("string", "patterns", "expected"),
    [
        ("root", "root", 1),
        ("root", "r??t", 1),
        ("root", "ro*", 1),
        ("root", "admin,root", 1),
        ("root", "!root,*", -1),
        ("root", "!admin", 0),
        ("Root", "root", 0),
        ("root", "r[o]ot", 0),
    ],
)
def test_match_pattern_list_follows_openssh(string: str, patterns: str, expected: int) -> None:
    assert match_pattern_list(string, patterns) == expected


@pytest.mark.parametrize(
    ("addr", "patterns", "expected"),
    [
        ("10.0.3.4", "10.0.0.0/16", 1),
        ("10.2.3.4", "10.0.0.0/16", 0),
        ("10.2.3.4", "10.0.0.0/16,10.2.0.0/16", 1),
        ("10.2.3.4", "!10.2.0.0/16,10.0.0.0/8", -1),
        ("10.0.3.4", "10.0.*", 1),
        ("10.0.0.1", "10.1", 1),
        ("10.0.0.2", "10.1", 0),
        ("10.0.0.1", "10.0.0.1", 1),
        ("10.0.0.1", "10.1/8", -2),
        ("10.0.0.1", "10.0.0.1/16", -2),
        ("10.0.0.1", "10.0.0.0/8,", -2),
        ("::1", "::1,10.0.0.0/8", 1),
        ("not-an-ip", "*", 0),
    ],
)
def test_addr_match_list_follows_openssh(addr: str, patterns: str, expected: int) -> None:
    assert addr_match_list(addr, patterns) == expected


# --------------------------------------------------------------------------------------------
# sshd -T output, users and groups


def test_parse_sshd_t_accumulates_repeated_keywords_and_splits_lists() -> None:
    output = (
        "port 22\nport 2222\nhostkey /etc/ssh/a\nhostkey /etc/ssh/b\n"
        "listenaddress [::]:22\nlistenaddress 0.0.0.0:22\n"
        "permitrootlogin without-password\n"
        "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\n"
        "subsystem sftp /usr/lib/openssh/sftp-server -l INFO\n"
        "forcecommand /bin/echo  two  spaces\nPasswordAuthentication no\n"
    )
    got = parse_sshd_t(output)
    assert got["port"] == ("22", "2222")
    assert got["hostkey"] == ("/etc/ssh/a", "/etc/ssh/b")
    assert got["listenaddress"] == ("[::]:22", "0.0.0.0:22")
    assert got["permitrootlogin"] == ("prohibit-password",)
    assert got["authorizedkeysfile"] == (".ssh/authorized_keys", ".ssh/authorized_keys2")
    assert got["subsystem"] == ("sftp /usr/lib/openssh/sftp-server -l INFO",)
    assert got["forcecommand"] == ("/bin/echo  two  spaces",)
    assert got["passwordauthentication"] == ("no",)


def test_user_groups_lists_the_primary_group_first_then_supplementary_groups() -> None:
    tree = MemoryTree()
    tree.add("/etc/passwd", b"root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n")
    tree.add("/etc/group", b"root:x:0:\nwheel:x:10:root,ann\nann:x:1000:\ndocker:x:99:ann\n")
    assert user_groups(tree, "ann") == ("ann", "wheel", "docker")
    assert user_groups(tree, "root") == ("root", "wheel")
    assert user_groups(tree, "ghost") == ()


# --------------------------------------------------------------------------------------------
# Scanner addresses


def test_vetting_addresses_are_the_range_corners_without_match_address() -> None:
    assert vetting_addresses(parse("PasswordAuthentication no\n")) == [
        "10.0.0.1",
        "10.0.255.254",
        "10.2.0.1",
        "10.2.255.254",
    ]


def test_vetting_addresses_cover_both_sides_of_a_partially_overlapping_network() -> None:
    config = parse(
        "Match Address 10.0.16.0/20,!10.2.128.0/17,192.168.0.0/16\n PasswordAuthentication no\n"
    )
    got = vetting_addresses(config)
    assert got == [
        "10.0.0.1",
        "10.0.15.255",
        "10.0.16.0",
        "10.0.31.255",
        "10.0.32.0",
        "10.0.255.254",
        "10.2.0.1",
        "10.2.127.255",
        "10.2.128.0",
        "10.2.255.254",
        "10.2.255.255",
    ]
    outcomes = {value(config, "passwordauthentication", addr=a) for a in got}
    assert outcomes == {"yes", "no"}


def test_vetting_addresses_find_where_a_wildcard_pattern_starts_and_stops() -> None:
    config = parse("Match LocalAddress 10.2.1?.*\n PasswordAuthentication no\n")
    assert {"10.2.9.255", "10.2.10.0", "10.2.19.255", "10.2.20.0"} <= set(vetting_addresses(config))


def test_vetting_addresses_stay_bounded_and_keep_every_outcome() -> None:
    blocks = "".join(f"Match Address 10.0.{n * 8}.0/24\n X11Forwarding yes\n" for n in range(30))
    config = parse(blocks + "Match Address 10.2.0.0/16\n PasswordAuthentication no\n")
    got = vetting_addresses(config)
    assert len(got) <= 32
    assert got == sorted(set(got), key=lambda a: tuple(int(p) for p in a.split(".")))
    assert {value(config, "passwordauthentication", addr=a) for a in got} == {"yes", "no"}
    assert {value(config, "x11forwarding", addr=a) for a in got} == {"yes", "no"}


def test_match_addresses_include_patterns_from_included_files() -> None:
    config = parse(
        "Include /etc/ssh/a.conf\nMatch Address 10.0.0.0/16 User root\n X11Forwarding no\n",
        **{"/etc/ssh/a.conf": "Match LocalAddress !10.2.0.0/16,10.*\n X11Forwarding no\n"},
    )
    assert config.match_addresses() == ["!10.2.0.0/16", "10.*", "10.0.0.0/16"]


# --------------------------------------------------------------------------------------------
# The same configurations judged by a real sshd

SSHD = Path("/usr/sbin/sshd")
REQUIRE_SSHD = os.environ.get("AMISCAN_REQUIRE_SSHD") == "1"
# (user, address) pairs: root and a system user that exist, one that does not; inside and
# outside the vetting ranges.
PAIRS = [
    ("root", "10.0.0.1"),
    ("nobody", "10.0.200.7"),
    ("root", "10.2.0.1"),
    ("alice", "10.2.255.254"),
    ("root", "192.0.2.10"),
]
# Values that depend on how sshd was built or on its working directory, not on the parser.
BUILD_DEPENDENT = {
    "ciphers",
    "macs",
    "kexalgorithms",
    "casignaturealgorithms",
    "hostbasedacceptedalgorithms",
    "hostkeyalgorithms",
    "pubkeyacceptedalgorithms",
    "gssapikexalgorithms",
    "ipqos",
    "pidfile",
    "xauthlocation",
}


def _unavailable(reason: str) -> None:
    if REQUIRE_SSHD:
        pytest.fail(f"AMISCAN_REQUIRE_SSHD=1 but {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Sshd:
    """Runs the real `sshd -T` on a config file."""

    host_key: Path

    def dump(self, config: Path, user: str, addr: str) -> subprocess.CompletedProcess[str]:
        spec = f"user={user},host={addr},addr={addr}"
        command = [str(SSHD), "-T", "-f", str(config), "-C", spec]
        return subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Sshd:
    if not os.access(SSHD, os.X_OK):
        _unavailable(f"no OpenSSH sshd at {SSHD}")
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        _unavailable("ssh-keygen is not installed")
    key = tmp_path_factory.mktemp("sshd") / "host_key"
    subprocess.run([str(keygen), "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    probe = key.parent / "probe"
    probe.write_text(f"HostKey {key}\n")
    result = Sshd(key).dump(probe, "root", "10.0.0.1")
    missing = re.search(r"Missing privilege separation directory: (\S+)", result.stderr)
    if missing:
        # sshd -T insists on the directory its service unit would create at start-up.
        try:
            Path(missing[1]).mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            _unavailable(f"cannot create {missing[1]} for sshd -T: {exc}")
        result = Sshd(key).dump(probe, "root", "10.0.0.1")
    if result.returncode != 0:
        _unavailable(f"sshd -T does not run here: {result.stderr.strip()}")
    return Sshd(key)


@dataclass(frozen=True)
class Case:
    id: str
    config: str
    files: dict[str, str] | None = None  # name in the temporary directory -> contents


_MANY_NETWORKS = ",".join(f"10.2.{i}.0/24" for i in range(256))

CASES = [
    Case(
        "match-address-hundreds-of-networks",
        f"Match Address {_MANY_NETWORKS},192.0.2.*\n PasswordAuthentication no\n"
        "Match Address !10.0.200.0/24,10.0.0.0/16\n PermitRootLogin no\n"
        "Match Address 10.0.0.1/32,fe80::/10,10.2.255.0/24\n KbdInteractiveAuthentication no\n",
    ),
    Case("empty-config-gives-defaults", ""),
    Case(
        "duplicates-first-wins",
        "PasswordAuthentication no\nPasswordAuthentication yes\n"
        "PermitRootLogin yes\npermitrootlogin no\nUsePAM yes\nUsePAM no\n",
    ),
    Case(
        "equals-forms",
        "PasswordAuthentication=no\nPermitRootLogin = no\n"
        "KbdInteractiveAuthentication= no\nUsePAM =yes\nPubkeyAuthentication\t=\tno\n",
    ),
    Case(
        "mixed-case",
        "PASSWORDAUTHENTICATION NO\npermitRootLogin Without-Password\n"
        "usePam YES\nkbdinteractiveauthentication No\n",
    ),
    Case(
        "match-user-root",
        "PasswordAuthentication no\nPermitRootLogin no\n"
        "Match User root\n  PasswordAuthentication yes\n  PermitRootLogin yes\n",
    ),
    Case(
        "match-user-list-and-wildcards",
        "Match User r??t,alice\n PubkeyAuthentication no\n"
        "Match User nob*\n AuthorizedKeysFile /etc/ssh/keys/%u\n",
    ),
    Case(
        "match-user-negation",
        "Match User !root,*\n PasswordAuthentication no\nMatch User !alice\n PermitRootLogin no\n",
    ),
    Case(
        "match-address-scanner-range",
        "PasswordAuthentication yes\nMatch Address 10.0.0.0/16\n PasswordAuthentication no\n",
    ),
    Case(
        "match-address-partial-overlap",
        "Match Address 10.0.0.0/24,10.2.128.0/17\n"
        " PasswordAuthentication no\nMatch Address 10.0.128.0/17\n PermitRootLogin no\n",
    ),
    Case(
        "match-address-negation",
        "Match Address !10.2.0.0/16,10.0.0.0/8\n"
        " PasswordAuthentication no\n"
        "Match Address !192.0.2.0/24,*\n KbdInteractiveAuthentication no\n",
    ),
    Case(
        "match-address-wildcard",
        "Match Address 10.0.*,192.0.2.1?\n KbdInteractiveAuthentication no\n",
    ),
    Case(
        "match-criteria-anded",
        "Match User root Address 10.2.0.0/16\n PermitRootLogin yes\n"
        "Match Address=10.0.0.0/8 User=nobody\n PasswordAuthentication no\n",
    ),
    Case(
        "match-all-returns-to-global",
        "PasswordAuthentication no\nMatch User nosuch\n"
        " X11Forwarding yes\nMatch all\nPasswordAuthentication yes\nPermitRootLogin no\n"
        "UsePAM yes\n",
    ),
    Case(
        "first-matching-block-wins",
        "Match Address 10.0.0.0/8\n PermitRootLogin no\n"
        "Match User root\n PermitRootLogin yes\n PasswordAuthentication no\n",
    ),
    Case(
        "include-glob-sorted",
        "Include {d}/conf.d/*.conf\nPasswordAuthentication yes\n",
        {
            "conf.d/50-b.conf": "PasswordAuthentication no\nPermitRootLogin yes\n",
            "conf.d/10-a.conf": "PermitRootLogin no\n",
            "conf.d/99-c.conf": "Match User root\n PubkeyAuthentication no\n",
            "conf.d/readme.txt": "UsePAM yes\n",
        },
    ),
    Case(
        "include-empty-glob-and-missing-file",
        "Include {d}/none.d/*.conf {d}/absent.conf\nPasswordAuthentication no\n",
    ),
    Case(
        "include-inside-match",
        "Match User root\n  Include {d}/root.conf\nMatch all\nPermitRootLogin no\n",
        {"root.conf": "PasswordAuthentication no\nPermitRootLogin yes\n"},
    ),
    Case(
        "included-match-does-not-leak",
        "Include {d}/part.conf\nPasswordAuthentication no\n",
        {"part.conf": "Match User root\n  PasswordAuthentication yes\n"},
    ),
    Case(
        "include-in-unmatched-block-never-matches",
        "Match User nosuch\n Include {d}/nm.conf\n",
        {"nm.conf": "PermitRootLogin yes\nMatch all\n PasswordAuthentication no\n"},
    ),
    Case(
        "include-before-first-match",
        "Include {d}/early.conf\nMatch User nobody\n Include {d}/late.conf\n",
        {
            "early.conf": "UsePAM yes\nMatch Address 10.2.0.0/16\n PasswordAuthentication no\n",
            "late.conf": "Match Address 10.0.0.0/16\n PubkeyAuthentication no\n",
        },
    ),
    Case(
        "nested-include-before-first-match",
        "Include {d}/outer.conf\n",
        {
            "outer.conf": "Include {d}/inner.conf\n",
            "inner.conf": "Match User root\n PasswordAuthentication no\n",
        },
    ),
    Case(
        "nested-include-in-match",
        "Match User root\n Include {d}/n1.conf\n",
        {
            "n1.conf": "Include {d}/n2.conf\nPubkeyAuthentication no\n",
            "n2.conf": "Match Address 10.2.0.0/16\n PasswordAuthentication no\n",
        },
    ),
    Case(
        "quoted-values",
        'PasswordAuthentication "no"\n"PermitRootLogin" no\n'
        'AuthorizedKeysFile ".ssh/k1" \'/etc/ssh/k2\' a\\"b\n'
        'Password"Authentication" yes\n',
    ),
    Case(
        "challenge-response-alias",
        "ChallengeResponseAuthentication no\n"
        "KbdInteractiveAuthentication yes\nMatch User root\n ChallengeResponseAuthentication yes\n",
    ),
    Case(
        "without-password",
        "PermitRootLogin without-password\n"
        "Match Address 10.2.0.0/16\n PermitRootLogin forced-commands-only\n",
    ),
    Case(
        "comments-and-whitespace",
        "# PasswordAuthentication yes\n\tPasswordAuthentication\tno  # c\n"
        "   =PermitRootLogin no\nMatch User root # only root\n PubkeyAuthentication no\n"
        "Match all # back\nUsePAM yes\n",
    ),
    Case(
        "crlf-line-endings",
        "PasswordAuthentication no\r\nMatch User root\r\n PermitRootLogin no\r\n",
    ),
    Case(
        "authorized-keys-file-forms",
        "AuthorizedKeysFile ~/.ssh/ak %h/.ssh/ak2\n"
        "AuthorizedKeysFile /ignored\nMatch User nobody\n AuthorizedKeysFile none\n",
    ),
    Case(
        "match-group",
        "Match Group root\n PasswordAuthentication no\nMatch Group !root,*\n PermitRootLogin no\n",
    ),
    Case(
        "match-host-is-the-address",
        "Match Host 10.0.*\n PasswordAuthentication no\n"
        "Match Host *.example.com\n PermitRootLogin yes\n",
    ),
    Case(
        "over-long-pattern-never-matches",
        f"Match User {'*' * 1100}\n PasswordAuthentication no\n"
        f"Match User {'*' * 1000}\n PermitRootLogin no\n",
    ),
    Case(
        "deprecated-options-ignored",
        "UsePrivilegeSeparation sandbox\nProtocol 2\n"
        "RSAAuthentication yes\nPasswordAuthentication no\n",
    ),
]


def _write_case(case: Case, directory: Path, host_key: Path) -> Path:
    for name, text in (case.files or {}).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text.replace("{d}", str(directory)))
    config = directory / "sshd_config"
    config.write_text(f"HostKey {host_key}\n" + case.config.replace("{d}", str(directory)))
    return config


def _sshd_values(sshd: Sshd, config: Path, user: str, addr: str) -> dict[str, tuple[str, ...]]:
    result = sshd.dump(config, user, addr)
    assert result.returncode == 0, result.stderr
    return parse_sshd_t(result.stdout)


@pytest.mark.sshd
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_effective_values_match_sshd_dash_t(sshd: Sshd, case: Case, tmp_path: Path) -> None:
    config_path = _write_case(case, tmp_path, sshd.host_key)
    config = parse_sshd_config(ImageRoot(Path("/")), str(config_path))
    assert not config.rejected, config.problems
    for user, addr in PAIRS:
        real = _sshd_values(sshd, config_path, user, addr)
        ours = config.effective(ConnectionInfo(user, addr))
        expected = {k: real[k] for k in KEYS}
        assert {k: ours.get(k).values for k in KEYS} == expected, (user, addr)


BUSY_CONFIG = """\
Port 2222
Port 22
ListenAddress 10.1.2.3
ListenAddress [::1]:2200
LogLevel debug1
SyslogFacility local3
LoginGraceTime 1h2m
ClientAliveInterval 1m
MaxStartups 5
MaxStartups 10:30:60
MaxAuthTries 3
X11Forwarding yes
AllowTcpForwarding all
GatewayPorts clientspecified
PermitTunnel point-to-point
IgnoreRhosts shosts-only
StreamLocalBindMask 022
Compression delayed
FingerprintHash md5
FingerprintHash sha256
StreamLocalBindMask 0077
AuthorizedPrincipalsCommand /bin/first %u
AuthorizedPrincipalsCommand /bin/second %u
AuthorizedPrincipalsCommandUser nobody
RekeyLimit 1G
RekeyLimit 2G 1h
PermitOpen host:22 [::1]:80
PermitListen 22 localhost:80
SetEnv A=1 B=2 A=3
AcceptEnv LANG LC_*
AllowUsers root nobody alice
DenyGroups wheel
TrustedUserCAKeys /etc/ssh/ca.pub
AuthorizedKeysCommand /bin/true %u
AuthorizedKeysCommandUser nobody
AuthenticationMethods publickey,password publickey,keyboard-interactive:pam
ForceCommand  /bin/echo   hi # kept by sshd
VersionAddendum some text
Subsystem sftp /usr/lib/openssh/sftp-server -f AUTHPRIV -l INFO
PubkeyAuthOptions verify-required touch-required
PerSourceMaxStartups 5
MaxStartups 10:30:60
PerSourceNetBlockSize 24:56
UnusedConnectionTimeout 2m
ChannelTimeout session=5m x11=1h
ChannelTimeout agent=1
Match User root
  AllowUsers root
  AuthenticationMethods publickey
  ChrootDirectory none
  ForceCommand none
  RekeyLimit 512M
  MaxSessions 2
"""


@pytest.mark.sshd
def test_every_keyword_sshd_prints_matches_for_a_busy_config(sshd: Sshd, tmp_path: Path) -> None:
    config_path = _write_case(Case("busy", BUSY_CONFIG), tmp_path, sshd.host_key)
    config = parse_sshd_config(ImageRoot(Path("/")), str(config_path))
    assert config.problems == []
    for user, addr in PAIRS[:2]:
        real = _sshd_values(sshd, config_path, user, addr)
        ours = config.effective(ConnectionInfo(user, addr)).as_dict()
        compared = set(real) - BUILD_DEPENDENT
        assert len(compared) > 80
        assert {k: ours[k] for k in compared} == {k: real[k] for k in compared}


REJECTED = [
    "PasswordAuth no\n",
    "PasswordAuthentication maybe\n",
    "PasswordAuthentication\n",
    "PasswordAuthentication no yes\n",
    "PasswordAuthentication == no\n",
    "PasswordAuthentication==no\n",
    "IPQoS -8\n",
    "PermitRootLogin no#comment\n",
    "Match User root\n Port 22\n",
    "Match Foo bar\n",
    "Match all User root\n",
    "Match User root all\n",
    "Match Address 10.0.0.1/16\n",
    "Match Address 10.0.0.0/8,\n",
    'AuthorizedKeysFile "abc\n',
    "Subsystem sftp /a\nSubsystem sftp /b\n",
    "AuthenticationMethods publickey\nMatch User root\n AuthenticationMethods any\n",
    "Include {d}/self.conf\n",
]


@pytest.mark.sshd
@pytest.mark.parametrize("text", REJECTED)
def test_configs_sshd_rejects_are_rejected(sshd: Sshd, text: str, tmp_path: Path) -> None:
    (tmp_path / "self.conf").write_text(f"Include {tmp_path}/self.conf\n")
    config_path = _write_case(Case("bad", text), tmp_path, sshd.host_key)
    assert sshd.dump(config_path, "root", "10.0.0.1").returncode != 0
    assert parse_sshd_config(ImageRoot(Path("/")), str(config_path)).rejected


@pytest.mark.sshd
def test_sshd_prints_without_password_for_prohibit_password(sshd: Sshd, tmp_path: Path) -> None:
    # Why parse_sshd_t rewrites it: sshd -T prints the older spelling for both.
    config_path = _write_case(
        Case("p", "PermitRootLogin prohibit-password\n"), tmp_path, sshd.host_key
    )
    output = sshd.dump(config_path, "root", "10.0.0.1").stdout
    assert "permitrootlogin without-password" in output.splitlines()


# --------------------------------------------------------------------------------------------
# Work bounded by the guest data: each Match line, address list and account is read once


@pytest.mark.parametrize(
    ("addr", "patterns", "expected"),
    [
        ("10.0.0.5", "!10.0.0.0/24,10.0.0.0/x/", -1),  # a negated match before the bad entry
        ("10.0.0.5", "10.0.0.0/8,10.0.0.1/8", -2),  # a positive match does not hide it
        ("10.0.0.5", "10.0.0.1/8,!10.0.0.0/24", -2),  # nothing after a bad entry counts
        ("10.0.0.5", "10.0.0.0/8,!10.0.0.5", -1),
        ("10.0.0.5", "10.0.*,!10.1.0.0/16", 1),
        ("10.0.0.5", "!10.0.0.?,10.0.0.0/8", -1),
        ("::1", "10.0.0.0/8,::/0", 1),
        ("10.0.0.5", "::/0", 0),
        ("not-an-address", "10.0.0.0/8", 0),
        (None, "10.0.0.0/8,!10.1.0.0/16", 0),
        (None, "10.0.0.0/8,", -2),
    ],
)
def test_address_lists_are_parsed_once_and_keep_sshds_order_rules(
    addr: str | None, patterns: str, expected: int
) -> None:
    assert addr_match_list(addr, patterns) == expected


def test_a_match_address_line_of_thousands_of_networks_is_matched_per_address() -> None:
    networks = ",".join(f"10.{i >> 8}.{i & 255}.0/24" for i in range(4000))
    config = parse(f"Match Address {networks}\n  PasswordAuthentication no\n")
    assert value(config, "passwordauthentication", addr="10.2.7.9") == "no"
    assert value(config, "passwordauthentication", addr="10.20.7.9") == "yes"
    assert len(vetting_addresses(config)) == 32


def test_too_many_wildcard_address_entries_are_refused_not_guessed() -> None:
    wildcards = ",".join(f"10.{i % 256}.{i // 256}.*" for i in range(100))
    config = parse(f"Match Address {wildcards}\n  PasswordAuthentication no\n")
    with pytest.raises(ConfigTooLarge, match="wildcard"):
        vetting_addresses(config)


def test_accounts_treated_alike_share_a_signature_and_one_walk() -> None:
    passwd = "".join(f"u{i}:x:{i}:{i}::/home/u{i}:/bin/sh\n" for i in range(5000))
    config = parse(
        "Match User u4999\n  PasswordAuthentication no\nMatch Group wheel\n  PermitRootLogin no\n",
        **{"/etc/passwd": passwd, "/etc/group": "wheel:x:10:u7\n"},
    )
    assert config.user_signature("u1") == config.user_signature("u2") == (False, False)
    assert config.user_signature("u4999") == (True, False)
    assert config.user_signature("u7") == (False, True)
    for user in ("u1", "u2", "u3"):
        assert value(config, "passwordauthentication", user=user) == "yes"
    assert value(config, "passwordauthentication", user="u4999") == "no"
    assert value(config, "permitrootlogin", user="u7") == "no"
    assert config.groups_of("u7") == ("wheel",)  # no group 7: the supplementary one only


def test_judging_past_the_work_bound_raises_instead_of_running_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(config_module, "MAX_WORK", 50)
    blocks = "".join(f"Match User u{i}\n  PasswordAuthentication no\n" for i in range(20))
    config = parse(blocks)
    with pytest.raises(ConfigTooLarge, match="Match lines"):
        for i in range(20):
            effective(config, user=f"u{i}")


def test_user_groups_reads_as_getgrgid_and_the_member_lists_do() -> None:
    tree = MemoryTree()
    tree.add("/etc/passwd", b"bob:x:5:100::/home/bob:/bin/sh\nbob:x:6:200::/x:/bin/sh\n")
    tree.add("/etc/group", b"users:x:100:\nalso100:x:100:\nops:x:300:bob,bob\ndev:x:400:al,bob\n")
    assert user_groups(tree, "bob") == ("users", "ops", "dev")
    assert user_groups(tree, "nobody") == ()
