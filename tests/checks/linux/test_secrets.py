"""Secret checks, judged from fixture facts: histories, AWS credentials, private keys."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from checks.linux.secrets import aws_credentials, private_keys, shell_history
from scanner.facts.base import Facts, ProbeOutput
from scanner.facts.linux.secrets import SECRET_MATCHES, secret_search_script
from scanner.fs import MemoryTree
from scanner.model import Outcome, Status
from tests.diskimages import tool
from tests.factbuilders import (
    LiveFacts,
    OfflineFacts,
    Symlink,
    evidence_text,
    live_context,
    probe_output,
    run,
    with_evidence,
)

# Shaped like real credentials, but invented.
KEY_ID = "AKIAZ7QWERTY5LKJH4GF"
SESSION_KEY_ID = "ASIAZ7QWERTY5LKJH4GF"
SECRET = "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"
DOC_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # AWS's documentation key, shipped inside every SDK
SITE_PACKAGES = "/usr/local/lib/python3.11/site-packages"

CREDENTIALS = f"[default]\naws_access_key_id = {KEY_ID}\naws_secret_access_key = {SECRET}\n"

OPENSSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"


# --- linux.secrets.shell-history -------------------------------------------------------------

HISTORY_CASES = [
    pytest.param(
        {"/root/.bash_history": "sudo yum update\nexport TOKEN=x\n"},
        Status.FAIL,
        "/root/.bash_history: 31 bytes, 2 lines",
        id="non-empty-root-bash-history-fails",
    ),
    pytest.param(
        {"/home/u/.python_history": "import os\n"},
        Status.FAIL,
        "/home/u/.python_history: 10 bytes, 1 lines",
        id="python-history-in-a-home-fails",
    ),
    pytest.param(
        {"/home/u/.local/share/fish/fish_history": "- cmd: ls\n"},
        Status.FAIL,
        "/home/u/.local/share/fish/fish_history",
        id="fish-history-fails",
    ),
    pytest.param(
        {"/root/.mysql_history": "show databases;\n"},
        Status.FAIL,
        "/root/.mysql_history",
        id="tool-history-fails",
    ),
    pytest.param(
        {"/root/.bash_history": ""},
        Status.PASS,
        "/root/.bash_history: 0 bytes",
        id="empty-history-passes",
    ),
    pytest.param(
        {"/root/.bashrc": "alias ll='ls -l'\n", "/home/u/notes_history.txt": "x\n"},
        Status.PASS,
        "",
        id="no-history-files-pass",
    ),
]


@pytest.mark.parametrize(("tree", "status", "evidence"), HISTORY_CASES)
def test_shell_history_status_in_an_image(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert run(shell_history, offline_facts(tree)).status is status


@pytest.mark.parametrize(("tree", "status", "evidence"), with_evidence(HISTORY_CASES))
def test_shell_history_evidence_names_the_file_and_its_size(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert evidence in evidence_text(run(shell_history, offline_facts(tree)))


def test_history_linked_to_dev_null_passes(offline_facts: OfflineFacts) -> None:
    facts = offline_facts({"/root/.bash_history": Symlink("/dev/null"), "/dev/": ""})
    assert run(shell_history, facts).status is Status.PASS


def test_history_symlink_to_an_absolute_path_reads_the_image_not_this_machine(
    offline_facts: OfflineFacts,
) -> None:
    # /etc/passwd exists (and is non-empty) on the machine running the tests, not in the image.
    facts = offline_facts({"/root/.bash_history": Symlink("/etc/passwd"), "/etc/": ""})
    assert run(shell_history, facts).status is Status.PASS


def test_history_copied_from_a_live_host_is_judged_by_its_full_size(
    live_facts: LiveFacts,
) -> None:
    outcome = run(shell_history, live_facts(files={"/home/ec2-user/.bash_history": "ls\n"}))
    assert outcome.status is Status.FAIL


# --- linux.secrets.aws-credentials -----------------------------------------------------------

AWS_CASES = [
    pytest.param(
        {"/root/.aws/credentials": CREDENTIALS},
        Status.FAIL,
        "/root/.aws/credentials:2",
        id="credentials-file-in-root-fails",
    ),
    pytest.param(
        {"/home/u/.aws/config": "[default]\nregion = us-east-1\naws_session_token = abcd\n"},
        Status.FAIL,
        "/home/u/.aws/config:3",
        id="token-in-a-home-aws-config-fails",
    ),
    pytest.param(
        {"/opt/app/config.ini": f"[aws]\nregion = us-east-1\nkey = {KEY_ID}\n"},
        Status.FAIL,
        "/opt/app/config.ini:3",
        id="access-key-id-in-opt-fails",
    ),
    pytest.param(
        {"/etc/profile.d/app.sh": f"export AWS_ACCESS_KEY_ID={SESSION_KEY_ID}\n"},
        Status.FAIL,
        "/etc/profile.d/app.sh:1",
        id="temporary-key-id-in-etc-fails",
    ),
    pytest.param(
        {"/srv/app/settings.json": f'{{"aws_secret_access_key": "{SECRET}"}}\n'},
        Status.FAIL,
        "/srv/app/settings.json:1",
        id="secret-access-key-assignment-fails",
    ),
    pytest.param(
        {"/opt/app/README.md": f"Set aws_access_key_id to e.g. {DOC_KEY_ID}\n"},
        Status.PASS,
        "",
        id="documentation-example-key-passes",
    ),
    pytest.param(
        {f"{SITE_PACKAGES}/botocore/data/fixture.json": f'"{KEY_ID}"\n'},
        Status.WARN,
        f"{SITE_PACKAGES}/botocore/data/fixture.json:1",
        id="key-only-inside-site-packages-warns",
    ),
    pytest.param(
        {
            "/opt/app/aws.py": 'secret = os.environ["aws_secret_access_key"]\n'
            "AWS_SECRET_ACCESS_KEY = os.environ.get('AWS_SECRET_ACCESS_KEY')\n"
        },
        Status.PASS,
        "",
        id="aws-secret-access-key-as-a-bare-word-in-code-passes",
    ),
    pytest.param(
        {"/home/u/.aws/config": "[default]\nregion = us-east-1\noutput = json\n"},
        Status.PASS,
        "",
        id="aws-config-without-credentials-passes",
    ),
    pytest.param(
        {"/var/log/app.log": f"{KEY_ID}\n"},
        Status.PASS,
        "",
        id="key-outside-the-searched-directories-is-not-looked-for",
    ),
]


@pytest.mark.parametrize(("tree", "status", "evidence"), AWS_CASES)
def test_aws_credentials_status_in_an_image(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    outcome = run(aws_credentials, offline_facts(tree))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("tree", "status", "evidence"), with_evidence(AWS_CASES))
def test_aws_credentials_evidence_names_the_file_and_line(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert evidence in evidence_text(run(aws_credentials, offline_facts(tree)))


@pytest.mark.parametrize(
    ("tree", "secret"),
    [
        pytest.param({"/root/.aws/credentials": CREDENTIALS}, KEY_ID, id="key-id-in-credentials"),
        pytest.param({"/root/.aws/credentials": CREDENTIALS}, SECRET, id="secret-in-credentials"),
        pytest.param({"/opt/app/config.ini": f"key={KEY_ID}\n"}, KEY_ID, id="key-id-in-ini"),
        pytest.param({"/opt/app/c.json": f'{{"id":"{KEY_ID}"}}'}, KEY_ID, id="key-id-in-json"),
        pytest.param({"/opt/app/c.txt": f"key_{KEY_ID}_old\n"}, KEY_ID, id="key-id-in-a-word"),
        pytest.param({"/opt/a.yml": f"secret: {SECRET}\n"}, SECRET, id="secret-in-yaml"),
        pytest.param(
            {"/opt/a.env": f"MY_AWS_SECRET_ACCESS_KEY={SECRET}\n"}, SECRET, id="secret-in-a-word"
        ),
        pytest.param(
            {f"{SITE_PACKAGES}/x/t.py": f"K = '{KEY_ID}'\n"}, KEY_ID, id="key-id-in-site-packages"
        ),
    ],
)
def test_aws_credentials_evidence_is_redacted(
    offline_facts: OfflineFacts, tree: dict[str, str], secret: str
) -> None:
    outcome = run(aws_credentials, offline_facts(tree))
    assert secret not in evidence_text(outcome) + outcome.summary


def test_aws_credentials_are_reported_once_per_line(offline_facts: OfflineFacts) -> None:
    # The credentials file is found both as an AWS file and by the content search of /root.
    outcome = run(aws_credentials, offline_facts({"/root/.aws/credentials": CREDENTIALS}))
    assert [e.source for e in outcome.evidence] == [
        "/root/.aws/credentials:2",
        "/root/.aws/credentials:3",
    ]


def test_aws_key_found_by_the_live_grep_fails(live_facts: LiveFacts) -> None:
    grep = f"/opt/app/config.ini\x002:key = {KEY_ID}\n"
    outcome = run(aws_credentials, live_facts(outputs={SECRET_MATCHES: grep}))
    assert evidence_text(outcome).startswith("/opt/app/config.ini:2: key = AKIA")


def test_aws_credentials_are_an_error_when_the_live_search_timed_out(
    live_facts: LiveFacts,
) -> None:
    facts = live_facts(outputs={SECRET_MATCHES: probe_output("", rc=124, timed_out=True)})
    assert run(aws_credentials, facts).status is Status.ERROR


# --- linux.secrets.private-keys --------------------------------------------------------------

PRIVATE_KEY_CASES = [
    pytest.param(
        {"/home/u/.ssh/id_rsa": OPENSSH_KEY},
        Status.FAIL,
        "/home/u/.ssh/id_rsa:1: -----BEGIN OPENSSH PRIVATE KEY-----",
        id="openssh-key-in-a-home-fails",
    ),
    pytest.param(
        {"/etc/pki/tls/private/server.key": RSA_KEY},
        Status.FAIL,
        "/etc/pki/tls/private/server.key:1",
        id="tls-key-in-etc-fails",
    ),
    pytest.param(
        {"/opt/app/key.pem": "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n"},
        Status.FAIL,
        "/opt/app/key.pem:1",
        id="encrypted-pkcs8-key-fails",
    ),
    pytest.param(
        {"/etc/ssh/ssh_host_ed25519_key": OPENSSH_KEY, "/etc/ssh/ssh_host_rsa_key": RSA_KEY},
        Status.PASS,
        "",
        id="ssh-host-keys-are-excluded",
    ),
    pytest.param(
        {
            f"{SITE_PACKAGES}/tornado/test/test.key": RSA_KEY,
            "/usr/local/lib/node_modules/x/tests/key.pem": RSA_KEY,
        },
        Status.WARN,
        f"{SITE_PACKAGES}/tornado/test/test.key:1",
        id="keys-only-in-bundled-packages-or-tests-warn",
    ),
    pytest.param(
        {"/etc/pki/tls/certs/ca.pem": "-----BEGIN PUBLIC KEY-----\nMIIB\n"},
        Status.PASS,
        "",
        id="public-keys-pass",
    ),
]


@pytest.mark.parametrize(("tree", "status", "evidence"), PRIVATE_KEY_CASES)
def test_private_keys_status_in_an_image(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    outcome = run(private_keys, offline_facts(tree))
    assert outcome.status is status, outcome.summary


@pytest.mark.parametrize(("tree", "status", "evidence"), with_evidence(PRIVATE_KEY_CASES))
def test_private_keys_evidence_names_the_file_and_line(
    offline_facts: OfflineFacts, tree: dict[str, str], status: Status, evidence: str
) -> None:
    assert evidence in evidence_text(run(private_keys, offline_facts(tree)))


def test_private_key_evidence_never_shows_the_key_body(offline_facts: OfflineFacts) -> None:
    outcome = run(private_keys, offline_facts({"/root/.ssh/id_rsa": OPENSSH_KEY}))
    assert "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE" not in evidence_text(outcome)


def test_own_key_fails_even_beside_bundled_ones(offline_facts: OfflineFacts) -> None:
    tree = {"/root/.ssh/id_rsa": OPENSSH_KEY, f"{SITE_PACKAGES}/x/tests/k.pem": RSA_KEY}
    assert run(private_keys, offline_facts(tree)).status is Status.FAIL


# --- a search that did not see everything never passes --------------------------------------


def _cut_search(grep: str) -> Facts:
    output = ProbeOutput(SECRET_MATCHES.name, 0, grep.encode(), b"", truncated=True)
    return Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output})


def test_an_incomplete_search_that_found_nothing_is_an_error_naming_the_bound() -> None:
    for check in (aws_credentials, private_keys):
        outcome = check.run(_cut_search(""))
        assert outcome.status is Status.ERROR, check.id
        assert "incomplete" in outcome.summary and "cut" in outcome.summary


def test_a_search_killed_before_its_end_is_an_error_and_still_fails_on_what_it_found() -> None:
    # Killed by the guest's OOM killer, say: rc 137, no timeout, and only part of the records.
    def killed(grep: str) -> Facts:
        output = ProbeOutput(SECRET_MATCHES.name, 137, grep.encode(), b"")
        return Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output})

    for check in (aws_credentials, private_keys):
        outcome = check.run(killed(""))
        assert outcome.status is Status.ERROR, check.id
        assert "stopped before it finished (exit code 137)" in outcome.summary
    found = private_keys.run(killed("/root/k\x001:-----BEGIN RSA PRIVATE KEY-----\n"))
    assert found.status is Status.FAIL


def test_an_incomplete_search_that_found_a_key_still_fails() -> None:
    outcome = private_keys.run(_cut_search("/root/k\x001:-----BEGIN RSA PRIVATE KEY-----\n"))
    assert outcome.status is Status.FAIL
    assert any(e.source == "not searched" for e in outcome.evidence)


def test_a_guest_whose_grep_is_busybox_gets_an_error_not_a_pass(tmp_path: Path) -> None:
    # Alpine and other minimal images ship BusyBox's grep, which has no -Z: the live search
    # cannot run there, and a key on the guest must not hide behind "nothing found".
    busybox = tool("busybox")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for applet in (
        "sh",
        "grep",
        "find",
        "xargs",
        "awk",
        "cut",
        "head",
        "cat",
        "wc",
        "mktemp",
        "nproc",
    ):
        (bin_dir / applet).symlink_to(busybox)
    for outcome in _judge_search_with(tmp_path, bin_dir):
        assert outcome.status is Status.ERROR, outcome.summary
        assert "which BusyBox's grep lacks" in outcome.summary


_SEARCH_TOOLS = ("sh", "grep", "find", "xargs", "awk", "cut", "head", "cat", "wc", "mktemp", "true")


def _search_outcomes(tmp_path: Path, replaced: dict[str, str | None]) -> list[Outcome]:
    """Both secret checks on the live search of a folder holding a private key, run with the
    real tools except those `replaced`: left out (None) or stood in for by a script."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in _SEARCH_TOOLS:
        found = shutil.which(name)
        assert found is not None
        if name not in replaced:
            (bin_dir / name).symlink_to(found)
    for name, body in replaced.items():
        if body is not None:
            (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
            (bin_dir / name).chmod(0o755)
    return _judge_search_with(tmp_path, bin_dir)


def _judge_search_with(tmp_path: Path, bin_dir: Path) -> list[Outcome]:
    """Both secret checks on the live search of a folder holding a private key, the script
    run by bin_dir's sh with nothing but bin_dir on PATH."""
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "id_rsa").write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    script = secret_search_script((str(tmp_path / "opt"),), "/dev/null")
    done = subprocess.run(
        [str(bin_dir / "sh"), "-c", script],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        timeout=60,
    )
    output = ProbeOutput(SECRET_MATCHES.name, done.returncode, done.stdout, done.stderr)
    facts = Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output})
    return [check.run(facts) for check in (aws_credentials, private_keys)]


@pytest.mark.parametrize("missing", ["find", "xargs", "awk"])
def test_a_guest_without_a_tool_the_search_needs_gets_an_error_naming_it(
    tmp_path: Path, missing: str
) -> None:
    for outcome in _search_outcomes(tmp_path, {missing: None}):
        assert outcome.status is Status.ERROR, outcome.summary
        assert f"the guest has no {missing}, which the search needs" in outcome.summary


@pytest.mark.parametrize(
    "replaced",
    [
        pytest.param({"nproc": "echo 2", "head": None}, id="no-head-with-greps-side-by-side"),
        pytest.param({"cut": "exit 1"}, id="a-cut-that-fails"),
        pytest.param({"cut": "cat >/dev/null"}, id="a-cut-that-prints-nothing"),
        pytest.param({"mktemp": "exit 1"}, id="no-temporary-directory"),
    ],
)
def test_a_search_that_cannot_find_its_own_planted_key_is_an_error(
    tmp_path: Path, replaced: dict[str, str | None]
) -> None:
    # Each of these found nothing and passed both checks, with a key on the guest.
    for outcome in _search_outcomes(tmp_path, replaced):
        assert outcome.status is Status.ERROR, outcome.summary
        assert "did not find the file it planted to test itself" in outcome.summary


def test_the_search_with_every_tool_finds_the_key_and_not_its_planted_one(
    tmp_path: Path,
) -> None:
    aws, keys = _search_outcomes(tmp_path, {})
    assert aws.status is Status.PASS and keys.status is Status.FAIL
    assert "planted" not in " ".join(e.text + e.source for e in keys.evidence)


def test_an_aws_file_over_the_read_limit_without_credentials_in_its_start_is_an_error() -> None:
    copied = MemoryTree()
    copied.add("/root/.aws/credentials", b"[default]\n", size=9 * 1024**2)
    output = ProbeOutput(SECRET_MATCHES.name, 0, b"", b"")
    outcome = aws_credentials.run(Facts(copied, live_context(), {SECRET_MATCHES.name: output}))
    assert outcome.status is Status.ERROR
    assert "/root/.aws/credentials" in outcome.summary


def _deep_search(grep: str) -> Facts:
    marker = "#amiscan-too-deep 1 /opt/" + "d/" * 256 + "d\n"
    output = ProbeOutput(SECRET_MATCHES.name, 0, (grep + marker).encode(), b"")
    return Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output})


def test_a_live_search_that_hit_the_depth_bound_is_an_error_naming_it() -> None:
    for check in (aws_credentials, private_keys):
        outcome = check.run(_deep_search(""))
        assert outcome.status is Status.ERROR, check.id
        assert "1 directories deeper than 256 levels not searched" in outcome.summary


def test_a_live_search_that_hit_the_depth_bound_still_fails_on_a_key() -> None:
    outcome = private_keys.run(_deep_search("/root/k\x001:-----BEGIN RSA PRIVATE KEY-----\n"))
    assert outcome.status is Status.FAIL
    assert any(e.source == "not searched" for e in outcome.evidence)
