"""SSH facts: authorized_keys parsing, effective sshd settings (sshd -T or sshd_config), host keys."""

from __future__ import annotations

import pytest

from scanner.facts.base import FactFailed, FactUnavailable
from scanner.facts.linux.ssh import (
    AUTHORIZED_KEYS,
    HOST_KEYS,
    OFFERED_AUTH,
    SSHD_EFFECTIVE,
    HostKeyFile,
    HostKeys,
    parse_authorized_keys,
)
from tests.factbuilders import OPENSSH_SERVER, LiveFacts, OfflineFacts, Tree, probe_output

BLOB = "AAAAC3NzaC1lZDI1NTE5AAAAIGf0n2jW3wFv1cL4h6JwQbRkz1dQ8m8r4Q9m1kQ0fN7a"
SSHD_CONFIG = "/etc/ssh/sshd_config"
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "alice:x:1001:1001::/home/alice:/bin/bash\n"
    "nohome:x:1002:1002:::/sbin/nologin\n"
)

# --- parse_authorized_keys ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key_type", "comment", "options"),
    [
        pytest.param(
            f"ssh-ed25519 {BLOB} alice@laptop", "ssh-ed25519", "alice@laptop", "", id="plain"
        ),
        pytest.param(f"ssh-ed25519 {BLOB}", "ssh-ed25519", "", "", id="no-comment"),
        pytest.param(
            f"ssh-rsa {BLOB} build key 2024",
            "ssh-rsa",
            "build key 2024",
            "",
            id="comment-with-spaces",
        ),
        pytest.param(
            f'command="echo hi there",no-pty ssh-ed25519 {BLOB} c',
            "ssh-ed25519",
            "c",
            'command="echo hi there",no-pty',
            id="options-with-quoted-spaces",
        ),
        pytest.param(
            f'command="echo \\"a b\\"" ssh-ed25519 {BLOB}',
            "ssh-ed25519",
            "",
            'command="echo \\"a b\\""',
            id="options-with-escaped-quotes",
        ),
        pytest.param(
            f'from="10.0.0.0/8" ecdsa-sha2-nistp256 {BLOB} ops',
            "ecdsa-sha2-nistp256",
            "ops",
            'from="10.0.0.0/8"',
            id="from-option",
        ),
        pytest.param(
            f"ssh-ed25519-cert-v01@openssh.com {BLOB} cert",
            "ssh-ed25519-cert-v01@openssh.com",
            "cert",
            "",
            id="certificate",
        ),
        pytest.param(
            f"sk-ssh-ed25519@openssh.com {BLOB} yubikey",
            "sk-ssh-ed25519@openssh.com",
            "yubikey",
            "",
            id="security-key",
        ),
        pytest.param(f"   \tssh-ed25519 {BLOB} x", "ssh-ed25519", "x", "", id="leading-blanks"),
    ],
)
def test_parse_authorized_keys_splits_options_type_key_and_comment(
    line: str, key_type: str, comment: str, options: str
) -> None:
    (key,) = parse_authorized_keys("/root/.ssh/authorized_keys", line + "\n")
    assert (key.key_type, key.blob, key.comment, key.options) == (key_type, BLOB, comment, options)


def test_parse_authorized_keys_skips_comments_and_blank_lines_but_counts_them() -> None:
    text = f"# managed by packer\n\n   \nssh-ed25519 {BLOB} a\n# ssh-rsa {BLOB} old\n"
    keys = parse_authorized_keys("/root/.ssh/authorized_keys", text)
    assert [k.line_number for k in keys] == [4]


def test_parse_authorized_keys_reports_an_unparsable_line_as_a_possible_key() -> None:
    (key,) = parse_authorized_keys("/root/.ssh/authorized_keys", "AAAAB3NzaC1yc2E garbage\n")
    assert (key.key_type, key.line_number) == ("unparsed", 1)


def test_authorized_key_public_key_is_type_and_blob_without_comment() -> None:
    (key,) = parse_authorized_keys("/p", f"no-pty ssh-ed25519 {BLOB} comment\n")
    assert key.public_key == f"ssh-ed25519 {BLOB}"


# --- AUTHORIZED_KEYS ------------------------------------------------------------------------


def test_authorized_keys_offline_expands_authorized_keys_file_tokens_for_each_account(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {
            SSHD_CONFIG: "AuthorizedKeysFile %h/.ssh/keys_%U /etc/ssh/keys/%u %%literal\n",
            "/etc/passwd": PASSWD,
            "/home/alice/.ssh/keys_1001": f"ssh-ed25519 {BLOB}\n",
            "/etc/ssh/keys/root": f"ssh-ed25519 {BLOB}\n",
            "/home/alice/%literal": f"ssh-ed25519 {BLOB}\n",
        }
    )
    found = facts.get(AUTHORIZED_KEYS)
    assert sorted(found.files_examined) == [
        "/etc/ssh/keys/root",
        "/home/alice/%literal",
        "/home/alice/.ssh/keys_1001",
    ]


def test_authorized_keys_offline_reads_the_standard_files_without_sshd_config(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {
            "/root/.ssh/authorized_keys2": f"ssh-ed25519 {BLOB}\n",
            "/home/bob/.ssh/authorized_keys": f"ssh-ed25519 {BLOB}\n",
        }
    )
    assert facts.get(AUTHORIZED_KEYS).files_examined == (
        "/root/.ssh/authorized_keys2",
        "/home/bob/.ssh/authorized_keys",
    )


def test_authorized_keys_file_none_adds_no_file(offline_facts: OfflineFacts) -> None:
    facts = offline_facts(
        {SSHD_CONFIG: "AuthorizedKeysFile none\n", "/etc/passwd": PASSWD, "/none": "x"}
    )
    assert facts.get(AUTHORIZED_KEYS).files_examined == ()


def test_authorized_keys_live_reads_the_files_the_probe_listed(live_facts: LiveFacts) -> None:
    facts = live_facts(
        files={"/srv/keys/ec2-user": f"ssh-ed25519 {BLOB}\n"},
        outputs={AUTHORIZED_KEYS: "/srv/keys/ec2-user\nsed: warning\n"},
    )
    assert [k.path for k in facts.get(AUTHORIZED_KEYS).keys] == ["/srv/keys/ec2-user"]


# --- SSHD_EFFECTIVE -------------------------------------------------------------------------

SSHD_T = (
    "usepam yes\npermitrootlogin without-password\npasswordauthentication no\n"
    "kbdinteractiveauthentication no\nauthorizedkeysfile .ssh/authorized_keys\n"
)


def test_sshd_effective_live_has_one_view_per_sshd_t_section(live_facts: LiveFacts) -> None:
    output = f"### user=root addr=10.0.0.1\n{SSHD_T}### user=ec2-user addr=10.2.0.1\n{SSHD_T}"
    views = live_facts(outputs={SSHD_EFFECTIVE: output}).get(SSHD_EFFECTIVE).views
    assert [v.label for v in views] == ["user=root addr=10.0.0.1", "user=ec2-user addr=10.2.0.1"]


def test_sshd_effective_live_reports_without_password_as_prohibit_password(
    live_facts: LiveFacts,
) -> None:
    effective = live_facts(outputs={SSHD_EFFECTIVE: f"### user=root addr=10.0.0.1\n{SSHD_T}"})
    (view,) = effective.get(SSHD_EFFECTIVE).views
    assert view.get("permitrootlogin").values == ("prohibit-password",)


def test_sshd_effective_live_points_at_the_config_line_that_agrees(live_facts: LiveFacts) -> None:
    facts = live_facts(
        files={SSHD_CONFIG: "UsePAM yes\nPasswordAuthentication no\n", "/etc/passwd": PASSWD},
        outputs={SSHD_EFFECTIVE: f"### user=root addr=10.0.0.1\n{SSHD_T}"},
    )
    view = facts.get(SSHD_EFFECTIVE).views[0]
    setting = view.get("passwordauthentication")
    assert (setting.source, setting.line) == (f"{SSHD_CONFIG}:2", "PasswordAuthentication no")


def test_sshd_effective_live_names_sshd_t_when_the_config_disagrees(live_facts: LiveFacts) -> None:
    facts = live_facts(
        files={SSHD_CONFIG: "PasswordAuthentication yes\n", "/etc/passwd": PASSWD},
        outputs={SSHD_EFFECTIVE: f"### user=root addr=10.0.0.1\n{SSHD_T}"},
    )
    setting = facts.get(SSHD_EFFECTIVE).views[0].get("passwordauthentication")
    assert setting.source == "sshd -T -C user=root,addr=10.0.0.1"


def test_sshd_effective_live_ignores_a_section_cut_short_by_an_exit_marker(
    live_facts: LiveFacts,
) -> None:
    output = (
        "### user=root addr=10.0.0.1\nBad configuration option\n### exit 255\n"
        f"passwordauthentication yes\n### user=root addr=10.2.0.1\n{SSHD_T}"
    )
    views = live_facts(outputs={SSHD_EFFECTIVE: output}).get(SSHD_EFFECTIVE).views
    assert [v.addr for v in views] == ["10.2.0.1"]


SSHD_T_REFUSED = probe_output("", rc=255, stderr="sshd: no hostkeys available -- exiting.")


def test_sshd_effective_live_falls_back_to_the_copied_config_and_says_why(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(
        files={SSHD_CONFIG: "PasswordAuthentication no\n"},
        outputs={SSHD_EFFECTIVE: SSHD_T_REFUSED},
    )
    effective = facts.get(SSHD_EFFECTIVE)
    assert effective.notes == ("`sshd -T` could not run: sshd: no hostkeys available -- exiting.",)


def test_sshd_effective_live_without_an_sshd_binary_is_an_error_not_a_fallback(
    live_facts: LiveFacts,
) -> None:
    failed = probe_output("", rc=127, stderr="no sshd binary (/usr/sbin/sshd)")
    facts = live_facts(
        files={SSHD_CONFIG: "PasswordAuthentication no\n"}, outputs={SSHD_EFFECTIVE: failed}
    )
    with pytest.raises(FactFailed, match="no OpenSSH server on the host: no sshd binary"):
        facts.get(SSHD_EFFECTIVE)


def test_sshd_effective_live_fallback_judges_root_and_the_login_user(live_facts: LiveFacts) -> None:
    failed = SSHD_T_REFUSED
    facts = live_facts(
        files={SSHD_CONFIG: "PasswordAuthentication no\n"},
        outputs={SSHD_EFFECTIVE: failed},
        login_user="admin",
    )
    assert {v.user for v in facts.get(SSHD_EFFECTIVE).views} == {"root", "admin"}


def test_sshd_effective_live_fails_without_sshd_t_or_config(live_facts: LiveFacts) -> None:
    failed = probe_output("", rc=127, stderr="sshd is not installed")
    with pytest.raises(FactFailed, match="sshd is not installed"):
        live_facts(outputs={SSHD_EFFECTIVE: failed}).get(SSHD_EFFECTIVE)


def test_sshd_effective_live_reads_the_config_the_serving_sshd_was_started_with(
    live_facts: LiveFacts,
) -> None:
    failed = SSHD_T_REFUSED
    facts = live_facts(
        files={"/opt/sshd/sshd_config": "PasswordAuthentication yes\n", SSHD_CONFIG: "x\n"},
        outputs={SSHD_EFFECTIVE: failed},
        session={"sshd_config": "/opt/sshd/sshd_config"},
    )
    setting = facts.get(SSHD_EFFECTIVE).views[0].get("passwordauthentication")
    assert setting.source == "/opt/sshd/sshd_config:1"


def test_sshd_effective_offline_judges_root_and_the_cloud_init_user_at_every_vetting_corner(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {
            **OPENSSH_SERVER,
            "/etc/passwd": PASSWD,
            SSHD_CONFIG: "PasswordAuthentication no\nMatch User alice\n  X11Forwarding no\n",
            "/etc/cloud/cloud.cfg": "system_info:\n  default_user:\n    name: admin\n",
        }
    )
    labels = {(v.user, v.addr) for v in facts.get(SSHD_EFFECTIVE).views}
    corners = ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")
    # alice has a shell and a Match User block of her own: it could let a password in too.
    assert labels == {(u, a) for u in ("root", "admin", "alice") for a in corners}


def test_sshd_effective_offline_assumes_ec2_user_without_cloud_init(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts(
        {**OPENSSH_SERVER, "/etc/passwd": PASSWD, SSHD_CONFIG: "PasswordAuthentication no\n"}
    )
    # alice is treated as root is (no Match block tells them apart): root's views stand for her.
    assert {v.user for v in facts.get(SSHD_EFFECTIVE).views} == {"root", "ec2-user"}


def test_sshd_effective_offline_judges_one_account_per_distinct_match_treatment(
    offline_facts: OfflineFacts,
) -> None:
    many = "".join(f"u{i}:x:{2000 + i}:{2000 + i}::/home/u{i}:/bin/bash\n" for i in range(3000))
    config = (
        "PasswordAuthentication no\n"
        "Match User u2999\n  PasswordAuthentication yes\n"
        "Match Group staff\n  PermitRootLogin yes\n"
    )
    facts = offline_facts(
        {
            **OPENSSH_SERVER,
            "/etc/passwd": PASSWD + many,
            "/etc/group": "staff:x:50:u17,u18\n",
            SSHD_CONFIG: config,
        }
    )
    views = facts.get(SSHD_EFFECTIVE).views
    # Every account is judged, however far down passwd; accounts treated alike share one.
    assert {v.user for v in views} == {"root", "ec2-user", "u17", "u2999"}
    assert {v.get("passwordauthentication").values for v in views if v.user == "u2999"} == {
        ("yes",)
    }
    assert {v.get("permitrootlogin").values for v in views if v.user == "u17"} == {("yes",)}


@pytest.mark.parametrize(
    ("tree", "missing"),
    [
        pytest.param({"/etc/passwd": PASSWD}, "no sshd binary", id="nothing"),
        pytest.param({**OPENSSH_SERVER, "/etc/passwd": PASSWD}, f"no {SSHD_CONFIG}", id="config"),
        pytest.param({SSHD_CONFIG: "\n", "/etc/passwd": PASSWD}, "no sshd binary", id="binary"),
    ],
)
def test_sshd_effective_offline_fails_naming_what_of_the_server_is_missing(
    offline_facts: OfflineFacts, tree: Tree, missing: str
) -> None:
    # The configuration applies to every Linux image: no server is an error, never a skip.
    with pytest.raises(FactFailed, match="no OpenSSH server in the image") as raised:
        offline_facts(tree).get(SSHD_EFFECTIVE)
    assert missing in str(raised.value)


def test_sshd_effective_offline_fails_when_the_accounts_are_unknown(
    offline_facts: OfflineFacts,
) -> None:
    facts = offline_facts({**OPENSSH_SERVER, SSHD_CONFIG: "PasswordAuthentication no\n"})
    with pytest.raises(FactFailed, match="Match blocks may select are unknown"):
        facts.get(SSHD_EFFECTIVE)


# --- OFFERED_AUTH and HOST_KEYS -------------------------------------------------------------


def test_offered_auth_unavailable_gives_the_probes_error(live_facts: LiveFacts) -> None:
    facts = live_facts(offered_auth_error="the outside-in probe timed out")
    with pytest.raises(FactUnavailable, match="the outside-in probe timed out"):
        facts.get(OFFERED_AUTH)


def test_offered_auth_is_unavailable_offline(offline_facts: OfflineFacts) -> None:
    with pytest.raises(FactUnavailable):
        offline_facts({}).get(OFFERED_AUTH)


def test_host_keys_live_parses_modification_times_and_the_boot_time(
    live_facts: LiveFacts,
) -> None:
    listing = (
        "#hostkey from sshd -T\n"
        "1700000000 /etc/ssh/ssh_host_ed25519_key\n?? /etc/ssh/ssh_host_rsa_key\n"
    )
    facts = live_facts(outputs={HOST_KEYS: listing}, session={"btime": "1700000100"})
    assert facts.get(HOST_KEYS) == HostKeys(
        (
            HostKeyFile("/etc/ssh/ssh_host_ed25519_key", 1700000000),
            HostKeyFile("/etc/ssh/ssh_host_rsa_key", None),
        ),
        boot_time=1700000100,
    )


def test_host_keys_offline_lists_key_files_under_etc_ssh(offline_facts: OfflineFacts) -> None:
    facts = offline_facts(
        {
            "/etc/ssh/ssh_host_ecdsa_key": "k",
            "/etc/ssh/ssh_host_ecdsa_key.pub": "k",
            "/etc/ssh/ssh_config": "x",
            "/etc/ssh/moduli": "x",
        }
    )
    assert [k.path for k in facts.get(HOST_KEYS).files] == [
        "/etc/ssh/ssh_host_ecdsa_key",
        "/etc/ssh/ssh_host_ecdsa_key.pub",
    ]
