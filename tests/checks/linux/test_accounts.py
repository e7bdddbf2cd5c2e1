"""Account checks, judged from fixture facts: root's password, hashes, sudo, the login user."""

from __future__ import annotations

import pytest

from checks.linux.accounts import default_user, passwords, root_password, sudo
from scanner.model import Status
from tests.factbuilders import LiveFacts, OfflineFacts, evidence_text, run, with_evidence

SHADOW = "/etc/shadow"
# Shaped like a real SHA-512 crypt hash; the salt and digest must never reach a report.
SALT = "Qw3rTyUi"
DIGEST = "N0tAR3alDigestButLongEnoughToLookLikeOneAbCdEfGh01234567"
SHA512 = f"$6${SALT}${DIGEST}"
DES = "abJnggxhB/yWI"  # a traditional 13-character crypt(3) hash


def shadow(*lines: str) -> str:
    """/etc/shadow with a locked daemon account first, so the lines under test start at 2."""
    return "daemon:*:19000:0:99999:7:::\n" + "".join(f"{line}\n" for line in lines)


# --- linux.accounts.root-password -----------------------------------------------------------

ROOT_PASSWORD_CASES = [
    pytest.param(shadow("root:*:19000:0:99999:7:::"), Status.PASS, id="star-passes"),
    pytest.param(shadow("root:!:19000:0:99999:7:::"), Status.PASS, id="bang-passes"),
    pytest.param(shadow("root:!!:19000::::::"), Status.PASS, id="double-bang-passes"),
    pytest.param(shadow("root:!$6$x$y:19000::::::"), Status.PASS, id="locked-hash-passes"),
    pytest.param(shadow("root::19000:0:99999:7:::"), Status.FAIL, id="empty-fails"),
    pytest.param(shadow(f"root:{SHA512}:19000::::::"), Status.FAIL, id="sha512-hash-fails"),
    pytest.param(shadow(f"root:{DES}:19000::::::"), Status.FAIL, id="des-hash-fails"),
    pytest.param(shadow("alice:*:19000::::::"), Status.WARN, id="no-root-line-warns"),
]


@pytest.mark.parametrize(("text", "status"), ROOT_PASSWORD_CASES)
def test_root_password_status(offline_facts: OfflineFacts, text: str, status: Status) -> None:
    outcome = run(root_password, offline_facts({SHADOW: text}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(shadow("root:*:19000::::::"), id="locked"),
        pytest.param(shadow("root::19000::::::"), id="empty"),
        pytest.param(shadow(f"root:{SHA512}:19000::::::"), id="hash"),
    ],
)
def test_root_password_evidence_names_roots_shadow_line(
    offline_facts: OfflineFacts, text: str
) -> None:
    outcome = run(root_password, offline_facts({SHADOW: text}))
    assert evidence_text(outcome).startswith(f"{SHADOW}:2: root:")


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        pytest.param(SHA512, DIGEST, id="sha512-digest"),
        pytest.param(SHA512, SALT, id="sha512-salt"),
        pytest.param(DES, DES, id="des-hash"),
    ],
)
def test_root_password_evidence_never_shows_the_hash(
    offline_facts: OfflineFacts, field: str, secret: str
) -> None:
    outcome = run(root_password, offline_facts({SHADOW: shadow(f"root:{field}:19000::::::")}))
    assert secret not in evidence_text(outcome) + outcome.summary


def test_root_password_cannot_be_judged_live_without_sudo(live_facts: LiveFacts) -> None:
    facts = live_facts(privileged=False, sudo_error="sudo: a password is required")
    outcome = run(root_password, facts)
    assert outcome.status is Status.ERROR


def test_root_password_error_gives_the_sudo_error(live_facts: LiveFacts) -> None:
    facts = live_facts(privileged=False, sudo_error="sudo: a password is required")
    assert "sudo: a password is required" in run(root_password, facts).summary


def test_root_password_is_an_error_when_a_privileged_scan_could_not_read_shadow(
    live_facts: LiveFacts,
) -> None:
    assert run(root_password, live_facts(privileged=True)).status is Status.ERROR


def test_root_password_is_an_error_when_the_image_has_no_shadow(
    offline_facts: OfflineFacts,
) -> None:
    outcome = run(root_password, offline_facts({"/etc/passwd": "root:x:0:0::/root:/bin/sh\n"}))
    assert outcome.status is Status.ERROR


def test_root_password_judges_shadow_copied_from_a_live_host(live_facts: LiveFacts) -> None:
    facts = live_facts(files={SHADOW: shadow("root::19000::::::")})
    assert run(root_password, facts).status is Status.FAIL


# --- linux.accounts.passwords ---------------------------------------------------------------

PASSWORDS_CASES = [
    pytest.param(
        shadow("root:*:::::::", "alice::19000::::::"),
        Status.FAIL,
        f"{SHADOW}:3: alice:",
        id="empty-password-fails",
    ),
    pytest.param(
        shadow("root:*:::::::", f"alice:{SHA512}:19000::::::"),
        Status.FAIL,
        f"{SHADOW}:3: alice:$6$",
        id="hash-fails",
    ),
    pytest.param(
        shadow("root:*:::::::", f"alice:{DES}:19000::::::"),
        Status.FAIL,
        f"{SHADOW}:3: alice:",
        id="des-hash-fails",
    ),
    pytest.param(
        shadow("root:*:::::::", f"alice:!{SHA512}:19000::::::"),
        Status.WARN,
        f"{SHADOW}:3: alice:!$6$",
        id="locked-hash-warns",
    ),
    pytest.param(
        shadow("root:*:::::::", "alice:!:19000::::::", "bob:!!:19000::::::", "svc:x:::::::"),
        Status.PASS,
        f"{SHADOW}: 5 entries examined",
        id="all-locked-pass",
    ),
    pytest.param(
        shadow("root:*:::::::", "+::::::::"),
        Status.PASS,
        f"{SHADOW}: 2 entries examined",
        id="nis-compat-line-is-not-an-account-with-an-empty-password",
    ),
]


@pytest.mark.parametrize(("text", "status", "evidence"), PASSWORDS_CASES)
def test_passwords_status(
    offline_facts: OfflineFacts, text: str, status: Status, evidence: str
) -> None:
    outcome = run(passwords, offline_facts({SHADOW: text}))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("text", "status", "evidence"), with_evidence(PASSWORDS_CASES))
def test_passwords_evidence_names_the_shadow_line(
    offline_facts: OfflineFacts, text: str, status: Status, evidence: str
) -> None:
    outcome = run(passwords, offline_facts({SHADOW: text}))
    assert evidence in evidence_text(outcome)


@pytest.mark.parametrize(
    ("field", "secret"),
    [
        pytest.param(SHA512, DIGEST, id="sha512-digest"),
        pytest.param(SHA512, SALT, id="sha512-salt"),
        pytest.param(f"!{SHA512}", DIGEST, id="locked-sha512-digest"),
        pytest.param("$y$j9T$s4ltS4ltS4lt$YescryptDigestAbCdEfGh", "YescryptDigest", id="yescrypt"),
        pytest.param(DES, DES, id="des-hash"),
        pytest.param(f"!{DES}", DES, id="locked-des-hash"),
    ],
)
def test_passwords_evidence_never_shows_a_hash(
    offline_facts: OfflineFacts, field: str, secret: str
) -> None:
    outcome = run(passwords, offline_facts({SHADOW: shadow(f"alice:{field}:19000::::::")}))
    assert secret not in evidence_text(outcome) + outcome.summary


def test_passwords_fail_lists_every_offending_user(offline_facts: OfflineFacts) -> None:
    text = shadow("root::::::::", f"alice:{SHA512}:::::::", f"bob:!{SHA512}:::::::")
    outcome = run(passwords, offline_facts({SHADOW: text}))
    assert outcome.summary == "empty password: root; password hash: alice"


def test_passwords_cannot_be_judged_live_without_sudo(live_facts: LiveFacts) -> None:
    outcome = run(
        passwords, live_facts(privileged=False, sudo_error="sudo: a password is required")
    )
    assert outcome.status is Status.ERROR


# --- linux.accounts.sudo --------------------------------------------------------------------

SUDO_CASES = [
    pytest.param(
        {"privileged": True}, Status.PASS, "sudo -n sh: `sudo -n sh` ran", id="sudo-works"
    ),
    pytest.param(
        {"privileged": False, "sudo_error": "sudo: a password is required"},
        Status.FAIL,
        "sudo -n sh: sudo: a password is required",
        id="sudo-needs-a-password",
    ),
    pytest.param(
        {"privileged": False, "session": {"uid": "0", "user": "root"}},
        Status.PASS,
        "sudo -n sh: logged in as root",
        id="logged-in-as-root",
    ),
]


@pytest.mark.parametrize(("context", "status", "evidence"), SUDO_CASES)
def test_sudo_status_on_a_live_host(
    live_facts: LiveFacts, context: dict[str, object], status: Status, evidence: str
) -> None:
    assert run(sudo, live_facts(**context)).status is status


@pytest.mark.parametrize(("context", "status", "evidence"), with_evidence(SUDO_CASES))
def test_sudo_evidence_says_how_root_was_or_was_not_reached(
    live_facts: LiveFacts, context: dict[str, object], status: Status, evidence: str
) -> None:
    assert evidence in evidence_text(run(sudo, live_facts(**context)))


def test_sudo_is_an_error_when_the_script_did_not_report_its_privileges(
    live_facts: LiveFacts,
) -> None:
    assert run(sudo, live_facts(privileged=None)).status is Status.ERROR


def test_sudo_is_skipped_offline(offline_facts: OfflineFacts) -> None:
    outcome = run(sudo, offline_facts({"/etc/sudoers": "root ALL=(ALL) ALL\n"}))
    assert outcome.status is Status.SKIP


# --- linux.accounts.default-user ------------------------------------------------------------

LIVE_USER_CASES = [
    pytest.param({"login_user": "ec2-user"}, Status.PASS, id="ec2-user-passes"),
    pytest.param({"login_user": "ubuntu"}, Status.WARN, id="ubuntu-warns"),
    pytest.param(
        {"login_user": "ubuntu", "baseline_login_user": "ec2-user"},
        Status.FAIL,
        id="different-from-baseline-fails",
    ),
    pytest.param(
        {"login_user": "ec2-user", "baseline_login_user": "admin"},
        Status.FAIL,
        id="ec2-user-different-from-baseline-fails",
    ),
    pytest.param(
        {"login_user": "ubuntu", "baseline_login_user": "ubuntu"},
        Status.WARN,
        id="same-as-baseline-but-not-ec2-user-warns",
    ),
    pytest.param({"login_user": None}, Status.ERROR, id="unknown-login-user-errs"),
]


@pytest.mark.parametrize(("context", "status"), LIVE_USER_CASES)
def test_default_user_status_on_a_live_host(
    live_facts: LiveFacts, context: dict[str, object], status: Status
) -> None:
    assert run(default_user, live_facts(**context)).status is status


def test_default_user_evidence_names_the_login_and_the_baseline(live_facts: LiveFacts) -> None:
    facts = live_facts(login_user="ubuntu", baseline_login_user="ec2-user")
    text = evidence_text(run(default_user, facts))
    assert text == "logged in over ami: ubuntu\nbaseline report: login user ec2-user"


def cloud_cfg(name: str) -> str:
    return f"system_info:\n  distro: amazon\n  default_user:\n    name: {name}\n    lock_passwd: true\n"


CLOUD_CFG = "/etc/cloud/cloud.cfg"
CLOUD_CFG_D = "/etc/cloud/cloud.cfg.d"

OFFLINE_USER_CASES = [
    pytest.param({CLOUD_CFG: cloud_cfg("ec2-user")}, Status.PASS, CLOUD_CFG, id="ec2-user"),
    pytest.param({CLOUD_CFG: cloud_cfg("ubuntu")}, Status.WARN, CLOUD_CFG, id="ubuntu"),
    pytest.param(
        {CLOUD_CFG: cloud_cfg("ubuntu"), f"{CLOUD_CFG_D}/99-user.cfg": cloud_cfg("ec2-user")},
        Status.PASS,
        f"{CLOUD_CFG_D}/99-user.cfg",
        id="drop-in-overrides-cloud-cfg",
    ),
    pytest.param(
        {
            CLOUD_CFG: cloud_cfg("ec2-user"),
            f"{CLOUD_CFG_D}/10-a.cfg": cloud_cfg("centos"),
            f"{CLOUD_CFG_D}/20-b.cfg": cloud_cfg("admin"),
        },
        Status.WARN,
        f"{CLOUD_CFG_D}/20-b.cfg (system_info.default_user.name): admin",
        id="later-drop-in-wins",
    ),
    pytest.param(
        {
            CLOUD_CFG: cloud_cfg("ec2-user"),
            f"{CLOUD_CFG_D}/05-logging.cfg": "_log:\n  - x\n",
            f"{CLOUD_CFG_D}/README": cloud_cfg("ubuntu"),
        },
        Status.PASS,
        CLOUD_CFG,
        id="drop-ins-without-a-default-user-or-not-cfg-do-not-override",
    ),
]


@pytest.mark.parametrize(("tree", "status", "source"), OFFLINE_USER_CASES)
def test_default_user_status_from_cloud_init_config(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, source: str
) -> None:
    assert run(default_user, offline_facts(tree)).status is status


@pytest.mark.parametrize(("tree", "status", "source"), OFFLINE_USER_CASES)
def test_default_user_evidence_names_the_deciding_cloud_init_file(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, source: str
) -> None:
    assert evidence_text(run(default_user, offline_facts(tree))).startswith(source)


def test_default_user_cannot_be_judged_for_an_image_without_cloud_init(
    offline_facts: OfflineFacts,
) -> None:
    outcome = run(default_user, offline_facts({"/etc/passwd": "root:x:0:0::/root:/bin/sh\n"}))
    assert outcome.status is Status.ERROR


def test_many_empty_passwords_are_named_briefly_and_counted(offline_facts: OfflineFacts) -> None:
    users = [f"user{i}::19000::::::" for i in range(5000)]
    outcome = run(passwords, offline_facts({SHADOW: shadow(*users)}))
    assert outcome.status is Status.FAIL
    assert outcome.summary == (
        "empty password: " + ", ".join(f"user{i}" for i in range(10)) + " and 4990 more"
    )
    assert len(outcome.evidence) == 51
    assert "4950 more" in outcome.evidence[-1].text


def test_a_summary_that_names_accounts_survives_redaction(offline_facts: OfflineFacts) -> None:
    from scanner.redact import redact

    outcome = run(root_password, offline_facts({SHADOW: shadow("root::19000::::::")}))
    assert redact(outcome.summary) == "root has an empty password: anyone can log in as root"
    outcome = run(passwords, offline_facts({SHADOW: shadow("admin::19000::::::")}))
    assert redact(outcome.summary) == "empty password: admin"
