"""Formats and places beyond the common case: dnf5 advisories, homes outside /home."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks.linux.secrets import private_keys
from scanner.facts.linux.accounts import parse_passwd
from scanner.facts.linux.secrets import home_dirs_to_search
from scanner.facts.linux.system import parse_updates
from scanner.model import Status
from tests.factbuilders import build_offline_facts, run

DNF5 = """\
### manager dnf
### security
Updating and loading repositories:
Repositories loaded.
Name                     Type        Severity                 Package                                 Issued
FEDORA-2026-1a2b3c4d5e   security    Important                openssl-libs-1:3.2.4-2.fc43.x86_64      2026-11-02 01:12:44
FEDORA-2026-6f7e8d9c0b   bugfix      None                     vim-minimal-2:9.1.800-1.fc43.x86_64     2026-11-03 10:00:00
### rc 0
### all
### rc 0
"""


def test_dnf5_security_advisories_are_pending_security_updates() -> None:
    pending = parse_updates(DNF5, refreshed=True)
    assert len(pending.security) == 1
    assert pending.security[0].startswith("FEDORA-2026-1a2b3c4d5e")


PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "jenkins:x:998:998:Jenkins:/var/lib/jenkins:/bin/bash\n"
    "app:x:997:997::/var/lib/app:/usr/sbin/nologin\n"
    "nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n"
    "odd:x:1005:1005::/:/bin/sh\n"
    "ec2-user:x:1000:1000::/home/ec2-user:/bin/bash\n"
)
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def test_only_homes_of_accounts_that_can_log_in_outside_the_searched_trees_are_added() -> None:
    assert home_dirs_to_search(parse_passwd(PASSWD)) == ("/var/lib/jenkins",)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/var/lib/jenkins/.ssh/id_ed25519", Status.FAIL),
        ("/var/lib/app/.ssh/id_ed25519", Status.PASS),
    ],
)
def test_a_private_key_in_a_service_accounts_home_is_found_when_it_can_log_in(
    tmp_path: Path, path: str, status: Status
) -> None:
    facts = build_offline_facts(tmp_path, {"/etc/passwd": PASSWD, path: KEY})
    assert run(private_keys, facts).status is status
