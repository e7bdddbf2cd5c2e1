"""SSH server checks, judged from fixture facts: each table is fixture -> status, and evidence."""

from __future__ import annotations

import base64
import textwrap
from typing import Any

import pytest

from checks.linux.ssh import (
    authorized_keys,
    host_keys,
    listening,
    password_authentication,
    root_login,
    server_installed,
)
from scanner.facts.base import Facts, ProbeOutput
from scanner.facts.linux.ssh import AUTHORIZED_KEYS, HOST_KEYS, SSHD_EFFECTIVE
from scanner.facts.linux.ssh_server import SSH_SERVER
from scanner.facts.linux.system import FIREWALL, LISTENERS
from scanner.model import Status
from scanner.registry import Check
from tests.factbuilders import (
    OPENSSH_SERVER,
    LiveFacts,
    OfflineFacts,
    Symlink,
    Tree,
    evidence_text,
    probe_output,
    run,
    with_evidence,
)

SSHD_CONFIG = "/etc/ssh/sshd_config"
PASSWD = "root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\n"


def key_blob(seed: int) -> str:
    """A well-formed ssh-ed25519 public key blob, different for each seed."""
    body = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + bytes([seed]) * 32
    return base64.b64encode(body).decode()


@pytest.fixture
def image(offline_facts: OfflineFacts) -> OfflineFacts:
    """`offline_facts` over an image with an OpenSSH server (installed, enabled, configured with
    OpenSSH's defaults unless the tree says otherwise) and a passwd."""

    def build(tree: Tree, **context: Any) -> Facts:
        base: dict[str, Any] = {
            **OPENSSH_SERVER,
            "/etc/passwd": PASSWD,
            SSHD_CONFIG: "# OpenSSH's defaults\n",
        }
        return offline_facts({**base, **tree}, **context)

    return build


SELLER_KEY = f"ssh-ed25519 {key_blob(1)} seller@laptop"
SCANNER_KEY = f"ssh-ed25519 {key_blob(2)} amiscan"


def sshd_t(
    passwords: str = "no",
    root: str = "without-password",
    kbd: str = "no",
    pam: str = "yes",
) -> str:
    """What `sshd -T` prints for one connection (the keywords the checks judge, and others)."""
    return textwrap.dedent(
        f"""\
        port 22
        addressfamily any
        listenaddress [::]:22
        listenaddress 0.0.0.0:22
        usepam {pam}
        permitrootlogin {root}
        pubkeyauthentication yes
        passwordauthentication {passwords}
        kbdinteractiveauthentication {kbd}
        permitemptypasswords no
        authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
        authenticationmethods any
        hostkey /etc/ssh/ssh_host_ed25519_key
        """
    )


def sections(default: str, **overrides: str) -> str:
    """The probe's output: a `### user=U addr=A` header before each connection's sshd -T lines.

    `overrides` replace the output for one connection, keyed `root_10_2_0_1`.
    """
    chunks = []
    for user in ("root", "ec2-user"):
        for addr in ("10.0.0.1", "10.2.0.1"):
            key = f"{user.replace('-', '_')}_{addr.replace('.', '_')}"
            chunks.append(f"### user={user} addr={addr}\n{overrides.get(key, default)}")
    return "".join(chunks)


SSHD_T_FAILED = probe_output(
    "### user=root addr=10.0.0.1\n### exit 255\n",
    rc=255,
    stderr="sshd: no hostkeys available -- exiting.",
)
SSHD_MISSING = probe_output("", rc=127, stderr="no sshd binary (/usr/sbin/sshd)")


# --- linux.ssh.password-authentication ------------------------------------------------------

OFFLINE_PASSWORD_CASES = [
    pytest.param(
        "PasswordAuthentication yes\n",
        Status.FAIL,
        f"{SSHD_CONFIG}:1: PasswordAuthentication yes",
        id="explicit-yes-fails",
    ),
    pytest.param(
        "# nothing about passwords\nPermitRootLogin no\n",
        Status.FAIL,
        "default: passwordauthentication yes",
        id="absent-falls-back-to-openssh-default-yes-and-fails",
    ),
    pytest.param(
        "PasswordAuthentication no\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: PasswordAuthentication no",
        id="no-passes",
    ),
    pytest.param(
        "passwordauthentication=no\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: passwordauthentication=no",
        id="lowercase-keyword-with-equals-separator-passes",
    ),
    pytest.param(
        "PasswordAuthentication no\nPasswordAuthentication yes\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: PasswordAuthentication no",
        id="first-value-wins-over-a-later-yes",
    ),
    pytest.param(
        "PasswordAuthentication no\n\nMatch Address 10.0.0.0/16\n    PasswordAuthentication yes\n",
        Status.FAIL,
        f"{SSHD_CONFIG}:4: PasswordAuthentication yes",
        id="match-block-for-a-vetting-range-turning-it-on-fails",
    ),
    pytest.param(
        "PasswordAuthentication no\nMatch Address 192.168.0.0/16\n    PasswordAuthentication yes\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: PasswordAuthentication no",
        id="match-block-for-a-non-vetting-range-passes",
    ),
    pytest.param(
        "PasswordAuthentication no\nKbdInteractiveAuthentication yes\nUsePAM yes\n",
        Status.WARN,
        f"{SSHD_CONFIG}:2: KbdInteractiveAuthentication yes",
        id="keyboard-interactive-with-pam-warns",
    ),
    pytest.param(
        "PasswordAuthentication no\nUsePAM yes\n",
        Status.WARN,
        f"{SSHD_CONFIG}:2: UsePAM yes",
        id="default-keyboard-interactive-with-pam-warns",
    ),
    pytest.param(
        "PasswordAuthentication no\nKbdInteractiveAuthentication yes\nUsePAM no\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: PasswordAuthentication no",
        id="keyboard-interactive-without-pam-passes",
    ),
]


@pytest.mark.parametrize(("config", "status", "evidence"), OFFLINE_PASSWORD_CASES)
def test_password_authentication_status_from_the_image_sshd_config(
    image: OfflineFacts, config: str, status: Status, evidence: str
) -> None:
    outcome = run(password_authentication, image({SSHD_CONFIG: config}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("config", "status", "evidence"), with_evidence(OFFLINE_PASSWORD_CASES))
def test_password_authentication_evidence_names_the_deciding_config_line(
    image: OfflineFacts, config: str, status: Status, evidence: str
) -> None:
    outcome = run(password_authentication, image({SSHD_CONFIG: config}))
    assert evidence in evidence_text(outcome)


def test_password_authentication_in_an_included_drop_in_wins_over_the_main_file(
    image: OfflineFacts,
) -> None:
    facts = image(
        {
            SSHD_CONFIG: "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n",
            "/etc/ssh/sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n",
        }
    )
    outcome = run(password_authentication, facts)
    assert "/etc/ssh/sshd_config.d/50-cloud-init.conf:1" in evidence_text(outcome)
    assert outcome.status is Status.FAIL


# --- without an OpenSSH server, sshd's configuration cannot be judged: error, never skip ------

NO_SERVER_TREES = [
    pytest.param({}, "no sshd binary (looked for /usr/sbin/sshd", id="neither-binary-nor-config"),
    pytest.param(OPENSSH_SERVER, f"no {SSHD_CONFIG}", id="binary-without-config"),
    pytest.param(
        {SSHD_CONFIG: "PasswordAuthentication no\n"}, "no sshd binary", id="config-without-binary"
    ),
]
CONFIG_CHECKS = [
    pytest.param(password_authentication, id="password-authentication"),
    pytest.param(root_login, id="root-login"),
    pytest.param(authorized_keys, id="authorized-keys"),
    pytest.param(host_keys, id="host-keys"),
]


@pytest.mark.parametrize("judge", CONFIG_CHECKS)
@pytest.mark.parametrize(("tree", "missing"), NO_SERVER_TREES)
def test_sshd_configuration_checks_are_an_error_naming_the_missing_server(
    offline_facts: OfflineFacts, judge: Check, tree: Tree, missing: str
) -> None:
    outcome = run(judge, offline_facts({"/etc/passwd": PASSWD, **tree}))
    assert outcome.status is Status.ERROR, outcome.summary
    assert "no OpenSSH server in the image" in outcome.summary
    assert missing in outcome.summary


def test_a_key_baked_into_an_image_without_sshd_still_fails(offline_facts: OfflineFacts) -> None:
    # The key is there whatever serves SSH later: that is a finding, not a lack of data.
    tree = {"/etc/passwd": PASSWD, "/root/.ssh/authorized_keys": SELLER_KEY + "\n"}
    outcome = run(authorized_keys, offline_facts(tree))
    assert outcome.status is Status.FAIL
    assert "not examined: AuthorizedKeysFile paths unknown: no OpenSSH server" in evidence_text(
        outcome
    )


def test_host_keys_baked_into_an_image_without_sshd_still_fail(offline_facts: OfflineFacts) -> None:
    tree = {"/etc/passwd": PASSWD, "/etc/ssh/ssh_host_ed25519_key": "key\n"}
    assert run(host_keys, offline_facts(tree)).status is Status.FAIL


def test_password_authentication_on_a_live_host_without_sshd_is_an_error_naming_it(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(
        files={SSHD_CONFIG: "PasswordAuthentication yes\n"},
        outputs={SSHD_EFFECTIVE: SSHD_MISSING},
    )
    outcome = run(password_authentication, facts)
    assert outcome.status is Status.ERROR
    assert outcome.summary == "no OpenSSH server on the host: no sshd binary (/usr/sbin/sshd)"


LIVE_PASSWORD_CASES = [
    pytest.param(
        {"outputs": {SSHD_EFFECTIVE: sections(sshd_t())}},
        Status.PASS,
        "sshd -T -C user=root,addr=10.0.0.1: passwordauthentication no",
        id="sshd-t-no-everywhere-passes",
    ),
    pytest.param(
        {"outputs": {SSHD_EFFECTIVE: sections(sshd_t(), root_10_2_0_1=sshd_t(passwords="yes"))}},
        Status.FAIL,
        "sshd -T -C user=root,addr=10.2.0.1: passwordauthentication yes",
        id="sshd-t-yes-for-one-vetting-address-fails",
    ),
    pytest.param(
        {
            "outputs": {SSHD_EFFECTIVE: sections(sshd_t())},
            "offered_auth_methods": {"ec2-user": ("publickey", "password")},
        },
        Status.FAIL,
        "SSH server, probed from the scanner: offers publickey, password to user ec2-user",
        id="server-offering-password-from-outside-fails-although-sshd-t-says-no",
    ),
    pytest.param(
        {"outputs": {SSHD_EFFECTIVE: sections(sshd_t(kbd="yes", pam="yes"))}},
        Status.WARN,
        "sshd -T -C user=root,addr=10.0.0.1: kbdinteractiveauthentication yes",
        id="sshd-t-keyboard-interactive-with-pam-warns",
    ),
    pytest.param(
        {
            "outputs": {SSHD_EFFECTIVE: sections(sshd_t())},
            "offered_auth_methods": {"root": ("publickey", "keyboard-interactive")},
        },
        Status.WARN,
        "offers publickey, keyboard-interactive to user root",
        id="server-offering-keyboard-interactive-from-outside-warns",
    ),
    pytest.param(
        {
            "files": {SSHD_CONFIG: "PasswordAuthentication yes\n"},
            "outputs": {SSHD_EFFECTIVE: SSHD_T_FAILED},
        },
        Status.FAIL,
        f"{SSHD_CONFIG}:1: PasswordAuthentication yes",
        id="sshd-t-failing-falls-back-to-the-copied-config-which-says-yes",
    ),
    pytest.param(
        {
            "files": {SSHD_CONFIG: "PasswordAuthentication no\n"},
            "outputs": {SSHD_EFFECTIVE: SSHD_T_FAILED},
        },
        Status.PASS,
        "`sshd -T` could not run: sshd: no hostkeys available -- exiting.",
        id="sshd-t-failing-falls-back-to-the-copied-config-which-says-no",
    ),
    pytest.param(
        {
            "files": {SSHD_CONFIG: "PasswordAuthentication yes\n"},
            "outputs": {SSHD_EFFECTIVE: SSHD_MISSING},
        },
        Status.ERROR,
        "",
        id="no-sshd-binary-is-an-error-though-a-config-file-is-there",
    ),
    pytest.param(
        {
            "files": {
                SSHD_CONFIG: "PasswordAuthentication no\n"
                "Match Address 10.0.5.0/24\n  PasswordAuthentication yes\n",
                "/etc/passwd": PASSWD,
            },
            "outputs": {SSHD_EFFECTIVE: sections(sshd_t())},
        },
        Status.FAIL,
        f"{SSHD_CONFIG}:3: PasswordAuthentication yes",
        id="match-block-for-vetting-addresses-sshd-t-was-not-asked-about-fails",
    ),
    pytest.param(
        {"outputs": {SSHD_EFFECTIVE: SSHD_T_FAILED}},
        Status.ERROR,
        "",
        id="sshd-t-failing-without-a-copied-config-is-an-error",
    ),
    pytest.param(
        {"collection_error": "the connection dropped"},
        Status.ERROR,
        "",
        id="probe-output-missing-is-an-error",
    ),
]


@pytest.mark.parametrize(("live", "status", "evidence"), LIVE_PASSWORD_CASES)
def test_password_authentication_status_on_a_live_host(
    live_facts: LiveFacts, live: dict[str, Any], status: Status, evidence: str
) -> None:
    outcome = run(password_authentication, live_facts(**live))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("live", "status", "evidence"), with_evidence(LIVE_PASSWORD_CASES))
def test_password_authentication_evidence_on_a_live_host_names_the_command_or_line(
    live_facts: LiveFacts, live: dict[str, Any], status: Status, evidence: str
) -> None:
    outcome = run(password_authentication, live_facts(**live))
    assert evidence in evidence_text(outcome)


def test_password_authentication_error_says_why_sshd_t_gave_nothing(
    live_facts: LiveFacts,
) -> None:
    outcome = run(password_authentication, live_facts(outputs={SSHD_EFFECTIVE: SSHD_T_FAILED}))
    assert "no hostkeys available" in outcome.summary


# --- linux.ssh.root-login -------------------------------------------------------------------

OFFLINE_ROOT_LOGIN_CASES = [
    pytest.param("PermitRootLogin yes\n", Status.FAIL, f"{SSHD_CONFIG}:1", id="yes-fails"),
    pytest.param(
        "PermitRootLogin prohibit-password\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1",
        id="prohibit-password",
    ),
    pytest.param(
        "PermitRootLogin without-password\n", Status.PASS, f"{SSHD_CONFIG}:1", id="without-password"
    ),
    pytest.param("PermitRootLogin no\n", Status.PASS, f"{SSHD_CONFIG}:1", id="no"),
    pytest.param(
        "PermitRootLogin forced-commands-only\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1",
        id="forced-commands-only",
    ),
    pytest.param(
        "PasswordAuthentication no\n",
        Status.PASS,
        "default: permitrootlogin prohibit-password",
        id="absent-defaults-to-prohibit-password",
    ),
    pytest.param(
        "PermitRootLogin no\nMatch User root\n  PermitRootLogin yes\n",
        Status.FAIL,
        f"{SSHD_CONFIG}:3: PermitRootLogin yes",
        id="match-user-root-yes-fails",
    ),
    pytest.param(
        "PermitRootLogin no\nMatch User alice\n  PermitRootLogin yes\n",
        Status.PASS,
        f"{SSHD_CONFIG}:1: PermitRootLogin no",
        id="match-block-for-another-user-passes",
    ),
]


@pytest.mark.parametrize(("config", "status", "evidence"), OFFLINE_ROOT_LOGIN_CASES)
def test_root_login_status_from_the_image_sshd_config(
    image: OfflineFacts, config: str, status: Status, evidence: str
) -> None:
    outcome = run(root_login, image({SSHD_CONFIG: config, "/etc/passwd": PASSWD}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("config", "status", "evidence"), with_evidence(OFFLINE_ROOT_LOGIN_CASES))
def test_root_login_evidence_names_the_deciding_config_line(
    image: OfflineFacts, config: str, status: Status, evidence: str
) -> None:
    outcome = run(root_login, image({SSHD_CONFIG: config, "/etc/passwd": PASSWD}))
    assert evidence in evidence_text(outcome)


LIVE_ROOT_LOGIN_CASES = [
    pytest.param(
        sections(sshd_t(root="without-password")),
        Status.PASS,
        "sshd -T -C user=root,addr=10.0.0.1: permitrootlogin prohibit-password",
        id="without-password-passes",
    ),
    pytest.param(
        sections(sshd_t(root="no"), root_10_0_0_1=sshd_t(root="yes")),
        Status.FAIL,
        "sshd -T -C user=root,addr=10.0.0.1: permitrootlogin yes",
        id="yes-for-one-address-fails",
    ),
    pytest.param(
        sections(sshd_t(root="no"), ec2_user_10_0_0_1=sshd_t(root="yes")),
        Status.PASS,
        "sshd -T -C user=root,addr=10.0.0.1: permitrootlogin no",
        id="yes-only-for-another-user-passes",
    ),
]


@pytest.mark.parametrize(("output", "status", "evidence"), LIVE_ROOT_LOGIN_CASES)
def test_root_login_status_on_a_live_host(
    live_facts: LiveFacts, output: str, status: Status, evidence: str
) -> None:
    outcome = run(root_login, live_facts(outputs={SSHD_EFFECTIVE: output}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("output", "status", "evidence"), with_evidence(LIVE_ROOT_LOGIN_CASES))
def test_root_login_evidence_on_a_live_host_names_the_sshd_t_connection(
    live_facts: LiveFacts, output: str, status: Status, evidence: str
) -> None:
    outcome = run(root_login, live_facts(outputs={SSHD_EFFECTIVE: output}))
    assert evidence in evidence_text(outcome)


def test_root_login_is_an_error_when_sshd_t_reported_no_connection_as_root(
    live_facts: LiveFacts,
) -> None:
    output = "### user=ec2-user addr=10.0.0.1\n" + sshd_t()
    outcome = run(root_login, live_facts(outputs={SSHD_EFFECTIVE: output}))
    assert outcome.status is Status.ERROR


# --- linux.ssh.authorized-keys --------------------------------------------------------------

OFFLINE_KEY_CASES = [
    pytest.param(
        {"/root/.ssh/authorized_keys": SELLER_KEY + "\n"},
        Status.FAIL,
        "/root/.ssh/authorized_keys:1: ssh-ed25519 SHA256:",
        id="key-for-root-fails",
    ),
    pytest.param(
        {"/home/x/.ssh/authorized_keys2": "# build key\n\n" + SELLER_KEY + "\n"},
        Status.FAIL,
        "/home/x/.ssh/authorized_keys2:3",
        id="key-in-authorized-keys2-of-a-home-fails",
    ),
    pytest.param(
        {
            SSHD_CONFIG: "AuthorizedKeysFile /etc/ssh/keys/%u\n",
            "/etc/passwd": PASSWD,
            "/etc/ssh/keys/alice": SELLER_KEY + "\n",
        },
        Status.FAIL,
        "/etc/ssh/keys/alice:1",
        id="key-in-a-custom-authorized-keys-file-fails",
    ),
    pytest.param(
        {
            "/home/x/.ssh/authorized_keys": f'command="/usr/bin/backup",no-pty {SELLER_KEY}\n',
        },
        Status.FAIL,
        "/home/x/.ssh/authorized_keys:1: ssh-ed25519 SHA256:",
        id="key-with-options-fails",
    ),
    pytest.param(
        {"/root/.ssh/authorized_keys": "# keys are injected at launch\n\n   \n"},
        Status.PASS,
        "files examined: /root/.ssh/authorized_keys",
        id="comments-and-blank-lines-only-pass",
    ),
    pytest.param(
        {"/etc/hostname": "box\n"},
        Status.PASS,
        "files examined: none present",
        id="no-authorized-keys-files-pass",
    ),
]


@pytest.mark.parametrize(("tree", "status", "evidence"), OFFLINE_KEY_CASES)
def test_authorized_keys_status_in_an_image(
    image: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    outcome = run(authorized_keys, image(tree))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("tree", "status", "evidence"), with_evidence(OFFLINE_KEY_CASES))
def test_authorized_keys_evidence_names_the_file_and_line(
    image: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    outcome = run(authorized_keys, image(tree))
    assert evidence in evidence_text(outcome)


def test_authorized_keys_evidence_marks_a_key_with_options(image: OfflineFacts) -> None:
    tree = {"/root/.ssh/authorized_keys": f'command="/bin/true" {SELLER_KEY}\n'}
    outcome = run(authorized_keys, image(tree))
    assert "(with options)" in evidence_text(outcome)


def test_authorized_keys_evidence_shows_a_fingerprint_not_the_key(
    image: OfflineFacts,
) -> None:
    outcome = run(authorized_keys, image({"/root/.ssh/authorized_keys": SELLER_KEY}))
    assert key_blob(1) not in evidence_text(outcome)


LIVE_KEYS_FILE = "/home/ec2-user/.ssh/authorized_keys"


def key_files_listing(*paths: str, from_sshd_t: bool = True) -> str:
    """The key-files probe's output: where AuthorizedKeysFile came from, then the paths."""
    source = "#authorizedkeysfile from sshd -T" if from_sshd_t else "#authorizedkeysfile unknown"
    return "\n".join([source, *paths]) + "\n"


LIVE_KEY_CASES = [
    pytest.param(
        {LIVE_KEYS_FILE: SCANNER_KEY + "\n"},
        Status.PASS,
        f"files examined: {LIVE_KEYS_FILE}",
        id="only-the-scanners-own-key-passes",
    ),
    pytest.param(
        {LIVE_KEYS_FILE: f"ssh-ed25519 {key_blob(2)} another-comment\n"},
        Status.PASS,
        f"files examined: {LIVE_KEYS_FILE}",
        id="the-scanners-key-is-recognised-whatever-its-comment",
    ),
    pytest.param(
        {LIVE_KEYS_FILE: SCANNER_KEY + "\n" + SELLER_KEY + "\n"},
        Status.FAIL,
        f"{LIVE_KEYS_FILE}:2: ssh-ed25519 SHA256:",
        id="another-key-beside-the-scanners-fails",
    ),
    pytest.param(
        {LIVE_KEYS_FILE: SCANNER_KEY + "\n", "/etc/ssh/keys/ec2-user": SELLER_KEY + "\n"},
        Status.FAIL,
        "/etc/ssh/keys/ec2-user:1",
        id="key-in-a-file-the-probe-expanded-from-authorizedkeysfile-fails",
    ),
]


@pytest.mark.parametrize(("files", "status", "evidence"), LIVE_KEY_CASES)
def test_authorized_keys_status_on_a_live_host(
    live_facts: LiveFacts, files: dict[str, str], status: Status, evidence: str
) -> None:
    facts = live_facts(
        files=files,
        outputs={AUTHORIZED_KEYS: key_files_listing(*files)},
        scanner_public_key=SCANNER_KEY,
    )
    outcome = run(authorized_keys, facts)
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("files", "status", "evidence"), with_evidence(LIVE_KEY_CASES))
def test_authorized_keys_evidence_on_a_live_host_names_the_file_and_line(
    live_facts: LiveFacts, files: dict[str, str], status: Status, evidence: str
) -> None:
    facts = live_facts(
        files=files,
        outputs={AUTHORIZED_KEYS: key_files_listing(*files)},
        scanner_public_key=SCANNER_KEY,
    )
    outcome = run(authorized_keys, facts)
    assert evidence in evidence_text(outcome)


def test_authorized_keys_says_it_ignored_the_scanners_key(live_facts: LiveFacts) -> None:
    facts = live_facts(
        files={LIVE_KEYS_FILE: SCANNER_KEY},
        outputs={AUTHORIZED_KEYS: key_files_listing(LIVE_KEYS_FILE)},
        scanner_public_key=SCANNER_KEY,
    )
    outcome = run(authorized_keys, facts)
    assert "ignored the key amiscan logged in with" in outcome.summary


# --- linux.ssh.listening --------------------------------------------------------------------

TCP_HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt"
    "   uid  timeout inode\n"
)


def proc_net_tcp(*endpoints: str) -> str:
    """/proc/net/tcp listing LISTEN sockets at hex endpoints such as "00000000:0016"."""
    rows = [
        f"   {n}: {ep} 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
        f"{1000 + n} 1 0000000000000000 100 0 0 10 0\n"
        for n, ep in enumerate(endpoints)
    ]
    return TCP_HEADER + "".join(rows) + "### tcp6\n" + TCP_HEADER


ALL_V4_22 = proc_net_tcp("00000000:0016")  # 0.0.0.0:22
LOOPBACK_22 = proc_net_tcp("0100007F:0016")  # 127.0.0.1:22


def firewall_dump(iptables: str | None = None, rc: str = "0") -> str:
    """The firewall probe's output: iptables -S when given, every other front end absent."""
    if iptables is None:
        head = "### iptables\n### rc absent\n"
    else:
        head = f"### iptables\n{iptables.strip()}\n### rc {rc}\n"
    return head + "### nft\n### rc absent\n### firewalld\n### rc absent\n### ufw\n### rc absent\n"


IPTABLES_NOT_ROOT = (
    "iptables v1.8.8 (nf_tables): Could not fetch rule set generation id: "
    "Permission denied (you must be root)"
)


LISTENING_CASES = [
    pytest.param(
        ALL_V4_22,
        firewall_dump(),
        Status.PASS,
        "/proc/net/tcp, /proc/net/tcp6: listening on 0.0.0.0:22",
        id="all-addresses-and-no-firewall-passes",
    ),
    pytest.param(
        LOOPBACK_22,
        firewall_dump(),
        Status.FAIL,
        "/proc/net/tcp, /proc/net/tcp6: listening on 127.0.0.1:22",
        id="loopback-only-fails",
    ),
    pytest.param(
        proc_net_tcp("00000000:0050"),
        firewall_dump(),
        Status.FAIL,
        "nothing listens on port 22",
        id="nothing-on-port-22-fails",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump("-P INPUT DROP\n-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT\n"),
        Status.FAIL,
        "iptables -S (from 10.0.0.0/16): INPUT policy DROP",
        id="input-drop-without-an-accept-for-22-fails",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump("-P INPUT DROP\n-A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT\n"),
        Status.PASS,
        "iptables -S (from 10.2.0.0/16): -A INPUT -s 10.0.0.0/8 -p tcp -m tcp --dport 22 -j ACCEPT",
        id="accept-from-10-slash-8-passes",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump("-P INPUT DROP\n-A INPUT -p tcp -m geoip --src-cc US -j ACCEPT\n"),
        Status.WARN,
        "iptables -S (from 10.0.0.0/16): -A INPUT -p tcp -m geoip --src-cc US -j ACCEPT",
        id="unknown-match-module-warns",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump(
            "-P INPUT DROP\n"
            "-A INPUT -s 10.0.0.1/32 -p tcp --dport 22 -j ACCEPT\n"
            "-A INPUT -s 10.2.0.1/32 -p tcp --dport 22 -j ACCEPT\n"
        ),
        Status.WARN,
        "iptables -S (from 10.0.0.0/16): -A INPUT -s 10.0.0.1/32 -p tcp --dport 22 -j ACCEPT",
        id="accept-from-one-address-of-the-vetting-ranges-does-not-pass",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump("-P INPUT DROP\n-A INPUT -s 10.0.0.0/16 -p tcp --dport 22 -j ACCEPT\n"),
        Status.FAIL,
        "iptables -S (from 10.2.0.0/16): INPUT policy DROP",
        id="accept-from-only-one-vetting-range-fails",
    ),
    pytest.param(
        ALL_V4_22,
        firewall_dump(IPTABLES_NOT_ROOT, rc="4"),
        Status.WARN,
        f"iptables -S: iptables -S failed (exit 4): {IPTABLES_NOT_ROOT}",
        id="iptables-that-could-not-be-read-warns",
    ),
    pytest.param(
        ALL_V4_22,
        "### iptables\n### rc absent\n### nft\n### rc absent\n"
        "### firewalld\n### rc inactive\n### ufw\nStatus: inactive\n### rc 0\n",
        Status.PASS,
        "firewall: no active iptables, nftables, firewalld or ufw rules",
        id="inactive-firewalld-and-ufw-pass",
    ),
]


@pytest.mark.parametrize(("tcp", "firewall", "status", "evidence"), LISTENING_CASES)
def test_listening_status_on_a_live_host(
    live_facts: LiveFacts, tcp: str, firewall: str, status: Status, evidence: str
) -> None:
    outcome = run(listening, live_facts(outputs={LISTENERS: tcp, FIREWALL: firewall}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("tcp", "firewall", "status", "evidence"), with_evidence(LISTENING_CASES))
def test_listening_evidence_names_the_socket_table_or_firewall_rule(
    live_facts: LiveFacts, tcp: str, firewall: str, status: Status, evidence: str
) -> None:
    outcome = run(listening, live_facts(outputs={LISTENERS: tcp, FIREWALL: firewall}))
    assert evidence in evidence_text(outcome)


def test_listening_warns_when_the_firewall_could_not_be_read(live_facts: LiveFacts) -> None:
    outcome = run(listening, live_facts(outputs={LISTENERS: ALL_V4_22}))
    assert outcome.status is Status.WARN


def test_listening_on_the_ipv6_wildcard_counts_as_all_addresses(live_facts: LiveFacts) -> None:
    tcp6 = TCP_HEADER + (
        "   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0\n"
    )
    outcome = run(
        listening,
        live_facts(
            outputs={LISTENERS: TCP_HEADER + "### tcp6\n" + tcp6, FIREWALL: firewall_dump()}
        ),
    )
    assert outcome.status is Status.PASS


def test_listening_judges_the_configured_scan_port(live_facts: LiveFacts) -> None:
    outcome = run(
        listening,
        live_facts(outputs={LISTENERS: ALL_V4_22, FIREWALL: firewall_dump()}, scan_port=2222),
    )
    assert outcome.status is Status.FAIL


def test_listening_is_skipped_offline(image: OfflineFacts) -> None:
    outcome = run(listening, image({SSHD_CONFIG: "Port 22\n"}))
    assert outcome.status is Status.SKIP


# --- linux.ssh.host-keys --------------------------------------------------------------------

BOOT = 1_700_000_000
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


def host_key_listing(mtime: int, from_sshd_t: bool = True) -> str:
    """The host-key probe's output: where the HostKey paths came from, then `mtime path` lines."""
    source = "#hostkey from sshd -T" if from_sshd_t else "#hostkey unknown"
    return f"{source}\n{mtime} {HOST_KEY}\n{mtime} {HOST_KEY}.pub\n"


def test_host_keys_in_an_image_fail(image: OfflineFacts) -> None:
    facts = image({HOST_KEY: "key\n", f"{HOST_KEY}.pub": "ssh-ed25519 AAAA\n"})
    assert run(host_keys, facts).status is Status.FAIL


def test_host_keys_in_an_image_are_named_in_the_evidence(image: OfflineFacts) -> None:
    facts = image({HOST_KEY: "key\n", f"{HOST_KEY}.pub": "ssh-ed25519 AAAA\n"})
    assert f"{HOST_KEY}.pub" in evidence_text(run(host_keys, facts))


def test_an_image_without_host_keys_passes(image: OfflineFacts) -> None:
    facts = image({SSHD_CONFIG: "PasswordAuthentication no\n", "/etc/ssh/moduli": "x\n"})
    assert run(host_keys, facts).status is Status.PASS


LIVE_HOST_KEY_CASES = [
    pytest.param("ami", BOOT - 3600, Status.FAIL, id="ami-keys-older-than-the-boot-fail"),
    pytest.param("ami", BOOT + 5, Status.PASS, id="ami-keys-created-after-boot-pass"),
    # The check applies to a running host, but its file times cannot tell: error, not skip.
    pytest.param("ssh", BOOT - 3600, Status.ERROR, id="rebooted-host-keys-older-than-boot-error"),
    pytest.param("ssh", BOOT + 5, Status.PASS, id="running-host-keys-created-after-boot-pass"),
]


@pytest.mark.parametrize(("target_kind", "mtime", "status"), LIVE_HOST_KEY_CASES)
def test_host_keys_on_a_live_host_are_judged_by_age_against_the_boot_time(
    live_facts: LiveFacts, target_kind: str, mtime: int, status: Status
) -> None:
    facts = live_facts(
        outputs={HOST_KEYS: host_key_listing(mtime)},
        target_kind=target_kind,
        session={"btime": str(BOOT)},
    )
    assert run(host_keys, facts).status is status


def test_host_key_evidence_on_a_live_host_gives_the_file_and_its_age(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(
        outputs={HOST_KEYS: host_key_listing(BOOT - 1)}, session={"btime": str(BOOT)}
    )
    expected = f"{HOST_KEY}: modified {BOOT - 1} (before boot at {BOOT})"
    assert expected in evidence_text(run(host_keys, facts))


def test_host_keys_on_a_live_host_without_a_boot_time_are_an_error(live_facts: LiveFacts) -> None:
    facts = live_facts(outputs={HOST_KEYS: host_key_listing(BOOT)}, session={})
    assert run(host_keys, facts).status is Status.ERROR


def test_host_key_listing_that_failed_is_an_error(live_facts: LiveFacts) -> None:
    failed = ProbeOutput("linux.ssh.host-keys", 1, b"", b"stat: permission denied")
    facts = live_facts(outputs={HOST_KEYS: failed}, session={"btime": str(BOOT)})
    assert run(host_keys, facts).status is Status.ERROR


# --- linux.ssh.server-installed -------------------------------------------------------------

SSHD_BIN = "/usr/sbin/sshd"
UNIT_DIR = "/usr/lib/systemd/system"
WANTS = "/etc/systemd/system/multi-user.target.wants"
INSTALLED: dict[str, str | Symlink] = {SSHD_BIN: "ELF", SSHD_CONFIG: "PasswordAuthentication no\n"}
DEBIAN_UNIT = "/lib/systemd/system/ssh.service"

OFFLINE_SERVER_CASES = [
    pytest.param(
        OPENSSH_SERVER | {SSHD_CONFIG: "\n"},
        Status.PASS,
        "started at boot (multi-user.target wants sshd.service)",
        f"{WANTS}/sshd.service: multi-user.target wants sshd.service",
        id="systemd-wants-link-passes",
    ),
    pytest.param(
        INSTALLED
        | {
            DEBIAN_UNIT: "[Service]\n",
            "/etc/systemd/system/sshd.service": Symlink(DEBIAN_UNIT),
            f"{WANTS}/ssh.service": Symlink(DEBIAN_UNIT),
        },
        Status.PASS,
        "multi-user.target wants ssh.service",
        "sshd binary: /usr/sbin/sshd",
        id="debian-ssh-service-with-its-sshd-alias-passes",
    ),
    pytest.param(
        INSTALLED
        | {
            "/lib/systemd/system/ssh.socket": "[Socket]\nListenStream=22\n",
            "/etc/systemd/system/sockets.target.wants/ssh.socket": Symlink(
                "/lib/systemd/system/ssh.socket"
            ),
        },
        Status.PASS,
        "sockets.target wants ssh.socket",
        "/etc/systemd/system/sockets.target.wants/ssh.socket",
        id="socket-activation-passes",
    ),
    pytest.param(
        INSTALLED
        | {"/etc/init.d/ssh": "#!/bin/sh\n", "/etc/rc2.d/S01ssh": Symlink("../init.d/ssh")},
        Status.PASS,
        "SysV start link",
        "/etc/rc2.d/S01ssh: SysV start link",
        id="sysv-start-link-passes",
    ),
    pytest.param(
        INSTALLED
        | {
            "/etc/init.d/sshd": "#!/sbin/openrc-run\n",
            "/etc/runlevels/default/sshd": Symlink("/etc/init.d/sshd"),
        },
        Status.PASS,
        "OpenRC runlevel entry",
        "/etc/runlevels/default/sshd",
        id="openrc-default-runlevel-passes",
    ),
    pytest.param(
        INSTALLED | {f"{UNIT_DIR}/sshd.service": "[Service]\n"},
        Status.FAIL,
        "nothing starts it at boot",
        "systemd: sshd.service is installed, but no .wants link enables it",
        id="unit-installed-but-not-enabled-fails",
    ),
    pytest.param(
        INSTALLED | {f"{WANTS}/sshd.service": Symlink(f"{UNIT_DIR}/sshd.service")},
        Status.FAIL,
        "nothing starts it at boot",
        f"{WANTS}/sshd.service: leads to no unit file in the image",
        id="wants-link-to-a-unit-absent-from-the-image-fails",
    ),
    pytest.param(
        OPENSSH_SERVER
        | {SSHD_CONFIG: "\n", "/etc/systemd/system/sshd.service": Symlink("/dev/null")},
        Status.FAIL,
        "nothing starts it at boot",
        "/etc/systemd/system/sshd.service: sshd.service is masked",
        id="masked-unit-fails-despite-its-wants-link",
    ),
    pytest.param(
        INSTALLED
        | {
            DEBIAN_UNIT: "[Service]\n",
            "/etc/init.d/ssh": "#!/bin/sh\n",
            "/etc/rc2.d/S01ssh": Symlink("../init.d/ssh"),
        },
        Status.FAIL,
        "nothing starts it at boot",
        "/etc/rc2.d/S01ssh: ignored: systemd runs the native unit",
        id="sysv-link-beside-a-native-systemd-unit-that-is-disabled-fails",
    ),
    pytest.param(
        INSTALLED
        | {"/etc/init.d/ssh": "#!/bin/sh\n", "/etc/rc2.d/K01ssh": Symlink("../init.d/ssh")},
        Status.FAIL,
        "nothing starts it at boot",
        "no start link for sshd",
        id="sysv-kill-link-only-fails",
    ),
    pytest.param(
        {SSHD_CONFIG: "\n", **{k: v for k, v in OPENSSH_SERVER.items() if k != SSHD_BIN}},
        Status.FAIL,
        "no OpenSSH server in the image: no sshd binary (looked for /usr/sbin/sshd",
        "sshd binary: none",
        id="no-binary-fails-naming-it",
    ),
    pytest.param(
        OPENSSH_SERVER,
        Status.FAIL,
        f"no OpenSSH server in the image: no {SSHD_CONFIG}",
        f"{SSHD_CONFIG}: absent",
        id="no-config-fails-naming-it",
    ),
    pytest.param(
        {},
        Status.FAIL,
        f"no OpenSSH server in the image: no sshd binary (looked for /usr/sbin/sshd, "
        f"/usr/bin/sshd, /sbin/sshd, /usr/local/sbin/sshd), no {SSHD_CONFIG}",
        "",
        id="nothing-of-openssh-fails-naming-both",
    ),
    pytest.param(
        INSTALLED,
        Status.ERROR,
        "cannot tell what starts at boot",
        "",
        id="no-init-system-in-the-image-is-an-error",
    ),
]


@pytest.mark.parametrize(("tree", "status", "summary", "evidence"), OFFLINE_SERVER_CASES)
def test_server_installed_in_an_image(
    offline_facts: OfflineFacts, tree: Tree, status: Status, summary: str, evidence: str
) -> None:
    outcome = run(server_installed, offline_facts(tree))
    assert outcome.status is status, outcome.summary
    assert summary in outcome.summary
    assert evidence in evidence_text(outcome)


def server_probe(*lines: str, binary: bool = True, config: bool = True) -> str:
    """The server probe's output: binary and config lines, then `lines` (tab-separated)."""
    head = [f"binary\t{SSHD_BIN}"] if binary else []
    head.append(f"config\t{SSHD_CONFIG}\t{'present' if config else 'absent'}")
    return "\n".join(head + [line.replace(" | ", "\t") for line in lines]) + "\n"


SYSTEMD_DISABLED = (
    "systemd | booted",
    "unit | ssh.service | not-found | inactive",
    "unit | sshd.service | disabled | inactive",
    "unit | ssh.socket | not-found | inactive",
    "unit | sshd.socket | not-found | inactive",
)
NO_PROCESS = "process | pgrep -x sshd | "
RUNNING = "process | pgrep -x sshd | 812 "

LIVE_SERVER_CASES = [
    pytest.param(
        server_probe(
            "systemd | booted",
            "unit | sshd.service | enabled | active",
            "unit | ssh.service | not-found | inactive",
            RUNNING,
        ),
        "ssh",
        Status.PASS,
        "started at boot (enabled, active)",
        id="systemd-unit-enabled-passes",
    ),
    pytest.param(
        server_probe(
            "systemd | booted",
            "unit | ssh.service | disabled | inactive",
            "unit | ssh.socket | enabled | active",
            NO_PROCESS,
        ),
        "ssh",
        Status.PASS,
        "started at boot",
        id="socket-activation-enabled-passes",
    ),
    pytest.param(
        server_probe(
            "systemd | not-booted", "rcdir | /etc/rc2.d", "rc | /etc/rc2.d/S01ssh", RUNNING
        ),
        "ssh",
        Status.PASS,
        "started at boot (SysV start link)",
        id="systemctl-without-systemd-running-falls-back-to-rc-links",
    ),
    pytest.param(
        server_probe(*SYSTEMD_DISABLED, RUNNING),
        "ami",
        Status.PASS,
        "running on the freshly launched instance",
        id="running-on-a-fresh-ami-instance-passes",
    ),
    pytest.param(
        server_probe(*SYSTEMD_DISABLED, RUNNING),
        "ssh",
        Status.FAIL,
        "nothing starts it at boot (it runs now",
        id="running-but-disabled-on-a-host-fails",
    ),
    pytest.param(
        server_probe(*SYSTEMD_DISABLED, NO_PROCESS),
        "ssh",
        Status.FAIL,
        "nothing starts it at boot",
        id="disabled-and-stopped-fails",
    ),
    pytest.param(
        server_probe("systemd | absent", RUNNING),
        "local",
        Status.ERROR,
        "cannot tell what starts at boot; sshd runs now",
        id="no-known-init-system-is-an-error",
    ),
    pytest.param(
        server_probe("systemd | absent", "process | none | ", binary=False),
        "local",
        Status.FAIL,
        "no OpenSSH server on the host: no sshd binary",
        id="no-binary-fails",
    ),
    pytest.param(
        server_probe("systemd | absent", NO_PROCESS, config=False),
        "ssh",
        Status.FAIL,
        f"no OpenSSH server on the host: no {SSHD_CONFIG}",
        id="no-config-fails",
    ),
    pytest.param(
        probe_output("binary\t/usr/sbin/sshd\n", rc=124, timed_out=True),
        "ssh",
        Status.ERROR,
        "timed out",
        id="probe-timed-out-is-an-error",
    ),
]


@pytest.mark.parametrize(("output", "kind", "status", "summary"), LIVE_SERVER_CASES)
def test_server_installed_on_a_live_host(
    live_facts: LiveFacts, output: str | ProbeOutput, kind: str, status: Status, summary: str
) -> None:
    outcome = run(server_installed, live_facts(outputs={SSH_SERVER: output}, target_kind=kind))
    assert outcome.status is status, outcome.summary
    assert summary in outcome.summary


def test_server_installed_evidence_names_binary_config_and_what_starts_it(
    live_facts: LiveFacts,
) -> None:
    output = server_probe("systemd | booted", "unit | sshd.service | enabled | active", RUNNING)
    text = evidence_text(run(server_installed, live_facts(outputs={SSH_SERVER: output})))
    assert f"sshd binary: {SSHD_BIN}" in text
    assert f"{SSHD_CONFIG}: present" in text
    assert "systemctl is-enabled/is-active sshd.service: enabled, active" in text
    assert "pgrep -x sshd: sshd process(es) 812" in text


def test_server_installed_is_an_error_when_the_collection_missed_its_probe(
    live_facts: LiveFacts,
) -> None:
    outcome = run(server_installed, live_facts(collection_error="the connection dropped"))
    assert outcome.status is Status.ERROR


# --- summaries say what the settings allow, and no more ---------------------------------------

ROOT_LOGIN_SUMMARY_CASES = [
    pytest.param(
        "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n",
        Status.FAIL,
        "PermitRootLogin yes: sshd allows root to log in (4 of 4 vetting connections; password "
        "login is off now, but yes also permits it whenever PasswordAuthentication or "
        "keyboard-interactive is turned on)",
        id="yes-with-passwords-off-does-not-claim-a-password-login",
    ),
    pytest.param(
        "PermitRootLogin yes\nPasswordAuthentication yes\n",
        Status.FAIL,
        "PermitRootLogin yes with PasswordAuthentication yes: root can log in with a password "
        "(4 of 4 vetting connections)",
        id="yes-with-passwords-on-says-root-can-use-a-password",
    ),
    pytest.param(
        "PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication yes\n"
        "UsePAM yes\n",
        Status.FAIL,
        "PermitRootLogin yes with keyboard-interactive with PAM: root can log in with a password",
        id="yes-with-keyboard-interactive-and-pam-says-root-can-use-a-password",
    ),
    pytest.param(
        "PermitRootLogin yes\nPasswordAuthentication yes\nAuthenticationMethods publickey\n",
        Status.FAIL,
        "sshd allows root to log in (4 of 4 vetting connections; password login is off now",
        id="yes-with-only-publickey-allowed-does-not-claim-a-password-login",
    ),
    pytest.param(
        "PermitRootLogin prohibit-password\nPasswordAuthentication yes\n",
        Status.PASS,
        "PermitRootLogin is prohibit-password for every vetting connection",
        id="prohibit-password-passes-whatever-password-authentication-says",
    ),
]


@pytest.mark.parametrize(("config", "status", "summary"), ROOT_LOGIN_SUMMARY_CASES)
def test_root_login_summary_states_only_what_the_settings_allow(
    image: OfflineFacts, config: str, status: Status, summary: str
) -> None:
    shadow = "root:*:19700:0:99999:7:::\nalice:!!:19700:0:99999:7:::\n"
    outcome = run(root_login, image({SSHD_CONFIG: config, "/etc/shadow": shadow}))
    assert outcome.status is status, outcome.summary
    assert summary in outcome.summary


def test_root_login_evidence_shows_password_authentication_beside_permit_root_login(
    image: OfflineFacts,
) -> None:
    config = "PermitRootLogin yes\nPasswordAuthentication no\n"
    text = evidence_text(run(root_login, image({SSHD_CONFIG: config})))
    assert f"{SSHD_CONFIG}:1: PermitRootLogin yes" in text
    assert f"{SSHD_CONFIG}:2: PasswordAuthentication no" in text


PASSWORD_SUMMARY_CASES = [
    pytest.param(
        {"outputs": {SSHD_EFFECTIVE: sections(sshd_t(), root_10_2_0_1=sshd_t(passwords="yes"))}},
        "PasswordAuthentication is on for 1 of 4 vetting connections",
        id="names-the-share-of-connections",
    ),
    pytest.param(
        {
            "outputs": {SSHD_EFFECTIVE: sections(sshd_t())},
            "offered_auth_methods": {"ec2-user": ("publickey", "password")},
        },
        "the server offered password authentication to the scanner (user ec2-user)",
        id="names-the-outside-probe-when-only-it-saw-passwords",
    ),
]


@pytest.mark.parametrize(("live", "summary"), PASSWORD_SUMMARY_CASES)
def test_password_authentication_summary_names_what_was_seen(
    live_facts: LiveFacts, live: dict[str, Any], summary: str
) -> None:
    outcome = run(password_authentication, live_facts(**live))
    assert outcome.status is Status.FAIL
    assert outcome.summary == summary


# --- authorized keys and host keys: a pass needs every file sshd would read ------------------


def test_authorized_keys_live_is_an_error_when_sshd_named_no_authorized_keys_file(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(
        files={LIVE_KEYS_FILE: SCANNER_KEY + "\n"},
        outputs={AUTHORIZED_KEYS: key_files_listing(LIVE_KEYS_FILE, from_sshd_t=False)},
        scanner_public_key=SCANNER_KEY,
    )
    outcome = run(authorized_keys, facts)
    assert outcome.status is Status.ERROR
    assert "AuthorizedKeysFile paths unknown" in outcome.summary


def test_authorized_keys_live_without_root_is_an_error_unless_a_key_is_found(
    live_facts: LiveFacts,
) -> None:
    outputs = {AUTHORIZED_KEYS: key_files_listing(LIVE_KEYS_FILE)}
    files = {LIVE_KEYS_FILE: SCANNER_KEY + "\n"}
    unprivileged = {"privileged": False, "sudo_error": "sudo: a password is required"}
    clean = live_facts(files=files, outputs=outputs, scanner_public_key=SCANNER_KEY, **unprivileged)
    assert run(authorized_keys, clean).status is Status.ERROR
    baked = live_facts(files={LIVE_KEYS_FILE: SELLER_KEY + "\n"}, outputs=outputs, **unprivileged)
    assert run(authorized_keys, baked).status is Status.FAIL


def test_host_keys_offline_reads_the_hostkey_paths_sshd_config_names(image: OfflineFacts) -> None:
    facts = image(
        {SSHD_CONFIG: "HostKey /etc/ssh/keys/host_ed25519\n", "/etc/ssh/keys/host_ed25519": "k"}
    )
    outcome = run(host_keys, facts)
    assert outcome.status is Status.FAIL
    assert "/etc/ssh/keys/host_ed25519" in evidence_text(outcome)


def test_host_keys_live_is_an_error_when_sshd_named_no_hostkey_paths(live_facts: LiveFacts) -> None:
    facts = live_facts(
        outputs={HOST_KEYS: host_key_listing(BOOT + 5, from_sshd_t=False)},
        session={"btime": str(BOOT)},
    )
    outcome = run(host_keys, facts)
    assert outcome.status is Status.ERROR
    assert "HostKey paths unknown" in outcome.summary
