"""Which accounts sshd's Match User blocks are judged for: root, the login user, real shells."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.linux.ssh import password_authentication
from scanner.model import Status
from tests.factbuilders import OPENSSH_SERVER, Tree, build_offline_facts, run

PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n"
    "backup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n"
    "deploy:x:1001:1001::/home/deploy:/bin/sh\n"
    "legacy:x:1002:1002::/home/legacy:\n"
)


def tree(match_user: str) -> Tree:
    return {
        **OPENSSH_SERVER,
        "/etc/passwd": PASSWD,
        "/etc/group": "root:x:0:\nec2-user:x:1000:\n",
        "/etc/ssh/sshd_config": (
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"Match User {match_user}\n    PasswordAuthentication yes\n"
        ),
    }


@pytest.mark.parametrize(
    ("match_user", "status"),
    [
        ("root", Status.FAIL),
        ("ec2-user", Status.FAIL),
        # deploy has a shell: anyone who knows (or guesses) its password gets in.
        ("deploy", Status.FAIL),
        # An empty shell field means /bin/sh.
        ("legacy", Status.FAIL),
        # backup cannot log in at all, and ghost does not exist.
        ("backup", Status.PASS),
        ("ghost", Status.PASS),
    ],
)
def test_match_user_blocks_count_for_accounts_that_can_log_in(
    tmp_path: Path, match_user: str, status: Status
) -> None:
    facts = build_offline_facts(tmp_path, tree(match_user))
    outcome = run(password_authentication, facts)
    assert outcome.status is status, outcome
    if status is Status.FAIL:
        assert any(f"user={match_user}" in e.text for e in outcome.evidence)


@pytest.mark.parametrize("check_id", ["linux.ssh.password-authentication", "linux.ssh.root-login"])
def test_a_configuration_sshd_would_refuse_turns_a_pass_into_a_warning(
    tmp_path: Path, check_id: str
) -> None:
    from scanner.registry import load_checks

    facts = build_offline_facts(
        tmp_path,
        {
            **OPENSSH_SERVER,
            "/etc/passwd": PASSWD,
            "/etc/ssh/sshd_config": (
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin no\nNoSuchKeyword yes\n"
            ),
        },
    )
    outcome = run(load_checks()[check_id], facts)
    assert outcome.status is Status.WARN
    assert "sshd would refuse to start" in outcome.summary
    assert outcome.evidence[0].source == "/etc/ssh/sshd_config:4"
