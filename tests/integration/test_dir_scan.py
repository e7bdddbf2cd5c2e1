"""`amiscan dir:PATH --json -` end to end, on image roots written by `tests.imagetree`.

Every tree is scanned once by the real command line (a subprocess), all trees in parallel, and
the tests below judge the JSON reports: a compliant image passes every offline check; each
problem CHECKS.md names fails (or warns) exactly its own check; symlinks never lead outside the
image root; and the offline sshd verdicts agree with what OpenSSH's own `sshd -T` decides.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.imagetree import (
    ACCESS_KEY_ID,
    AL2023_OS_RELEASE,
    CENTOS_7_OS_RELEASE,
    PRIVATE_KEY,
    PUBLIC_KEY,
    SECRET_ACCESS_KEY,
    SHA512_HASH,
    SSHD_BINARY,
    SSHD_UNIT,
    SSHD_WANTS_LINK,
    ImageTree,
    build_compliant,
)
from tests.sshd import require_sshd

# The Linux rows of CHECKS.md: judged from files offline, or only on a running instance.
OFFLINE_CHECKS = (
    "linux.ssh.server-installed",
    "linux.ssh.password-authentication",
    "linux.ssh.root-login",
    "linux.ssh.authorized-keys",
    "linux.ssh.host-keys",
    "linux.accounts.root-password",
    "linux.accounts.passwords",
    "linux.accounts.default-user",
    "linux.os.supported",
    "linux.secrets.shell-history",
    "linux.secrets.aws-credentials",
    "linux.secrets.private-keys",
    "linux.filesystem.unencrypted",
    "linux.cloud-init.clean",
)
LIVE_ONLY_CHECKS = ("linux.ssh.listening", "linux.accounts.sudo", "linux.packages.up-to-date")
LINUX_CHECKS = OFFLINE_CHECKS + LIVE_ONLY_CHECKS

SERVER_INSTALLED = "linux.ssh.server-installed"
PASSWORD_AUTH = "linux.ssh.password-authentication"
ROOT_LOGIN = "linux.ssh.root-login"
# The checks that judge sshd's configuration: without a server, they cannot judge anything.
SSHD_CONFIG_CHECKS = (
    PASSWORD_AUTH,
    ROOT_LOGIN,
    "linux.ssh.authorized-keys",
    "linux.ssh.host-keys",
)

SCAN_TIMEOUT_S = 60
ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_COLOR": "1",
}


# --------------------------------------------------------------------------------------------
# Running the command line


@dataclass(frozen=True)
class Scan:
    """One run of `amiscan`: exit code, output, and the JSON report when there is one."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool = False

    @property
    def report(self) -> dict[str, Any]:
        assert not self.timed_out, f"amiscan {' '.join(self.args)} did not finish"
        assert "Traceback" not in self.stderr, self.stderr
        report: dict[str, Any] = json.loads(self.stdout)
        return report

    def result(self, check_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [r for r in self.report["results"] if r["id"] == check_id]
        assert len(found) == 1, f"{check_id} is not in the report once: {self.statuses()}"
        return found[0]

    def status(self, check_id: str) -> str:
        return str(self.result(check_id)["status"])

    def statuses(self) -> dict[str, str]:
        return {r["id"]: r["status"] for r in self.report["results"]}

    def evidence(self, check_id: str) -> str:
        """The evidence of a result, one "source: text" line per item."""
        return "\n".join(f"{e['source']}: {e['text']}" for e in self.result(check_id)["evidence"])

    def describe(self, check_id: str) -> str:
        result = self.result(check_id)
        return f"{result['status']}: {result['summary']}\n{self.evidence(check_id)}"


def amiscan(*args: str, cwd: Path) -> Scan:
    """Run the command line; `cwd` should hold no amiscan.toml or pyproject.toml (config)."""
    command = [sys.executable, "-m", "scanner", *args]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=ENV,
            capture_output=True,
            text=True,
            timeout=SCAN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return Scan(tuple(args), -1, str(exc.stdout or ""), str(exc.stderr or ""), timed_out=True)
    return Scan(tuple(args), done.returncode, done.stdout, done.stderr)


def scan_dir(root: Path, cwd: Path) -> Scan:
    return amiscan(f"dir:{root}", "--json", "-", "--no-html", cwd=cwd)


# --------------------------------------------------------------------------------------------
# The image trees: a compliant baseline, then one problem per tree

Mutation = Callable[[ImageTree, Path], None]


@dataclass(frozen=True)
class TreeCase:
    """A compliant image with one change; `changes` are the statuses that differ from it."""

    name: str
    mutate: Mutation
    changes: dict[str, str] = field(default_factory=dict)
    # check id -> text(s) that must appear in its evidence (the reason, not just the status)
    evidence: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    os_release_symlink: bool = False

    def expected_evidence(self) -> list[tuple[str, str]]:
        return [
            (check_id, text)
            for check_id, texts in self.evidence.items()
            for text in ((texts,) if isinstance(texts, str) else texts)
        ]


def _unchanged(tree: ImageTree, outside: Path) -> None:
    pass


def _replace_in(tree: ImageTree, guest_path: str, old: str, new: str) -> None:
    path = tree.host_path(guest_path)
    text = path.read_text()
    assert old in text, f"{old!r} is not in {guest_path}"
    path.write_text(text.replace(old, new))


def _password_yes(tree: ImageTree, outside: Path) -> None:
    tree.set_sshd_option("PasswordAuthentication", "yes")


def _password_yes_in_dropin(tree: ImageTree, outside: Path) -> None:
    # cloud-init writes this when ssh_pwauth is true; the drop-in is included before the main
    # file's own `PasswordAuthentication no`, so its value wins.
    tree.write("/etc/ssh/sshd_config.d/50-cloud-init.conf", "PasswordAuthentication yes\n")


def _password_yes_for_vetting_network(tree: ImageTree, outside: Path) -> None:
    tree.append(
        "/etc/ssh/sshd_config", "\nMatch Address 10.0.0.0/16\n\tPasswordAuthentication yes\n"
    )


def _root_login_yes(tree: ImageTree, outside: Path) -> None:
    tree.set_sshd_option("PermitRootLogin", "yes")


def _key_for_root(tree: ImageTree, outside: Path) -> None:
    tree.write("/root/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)


def _key_for_login_user(tree: ImageTree, outside: Path) -> None:
    tree.write("/home/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)


def _no_sshd(tree: ImageTree, outside: Path) -> None:
    # openssh-server removed, its configuration (from openssh) left behind.
    tree.remove(SSHD_BINARY)
    tree.remove(SSHD_UNIT)
    tree.remove(SSHD_WANTS_LINK)


def _sshd_disabled(tree: ImageTree, outside: Path) -> None:
    tree.remove(SSHD_WANTS_LINK)


def _sshd_socket_activated(tree: ImageTree, outside: Path) -> None:
    # Ubuntu 24.04: ssh.service disabled, ssh.socket wanted by sockets.target (a relative link).
    tree.remove(SSHD_WANTS_LINK)
    tree.write("/usr/lib/systemd/system/ssh.socket", "[Socket]\nListenStream=22\n")
    tree.symlink(
        "/etc/systemd/system/sockets.target.wants/ssh.socket",
        "../../../../usr/lib/systemd/system/ssh.socket",
    )


def _root_hash(tree: ImageTree, outside: Path) -> None:
    tree.set_shadow_password("root", SHA512_HASH)


def _empty_password(tree: ImageTree, outside: Path) -> None:
    tree.set_shadow_password("ec2-user", "")


def _locked_hash(tree: ImageTree, outside: Path) -> None:
    tree.set_shadow_password("ec2-user", "!" + SHA512_HASH)


HISTORY = "sudo dnf -y update\nexport DB_PASSWORD=hunter2\nhistory -c\n"


def _history(tree: ImageTree, outside: Path) -> None:
    tree.write("/home/ec2-user/.bash_history", HISTORY, mode=0o600)


def _credentials_file(tree: ImageTree, outside: Path) -> None:
    tree.write(
        "/home/ec2-user/.aws/credentials",
        f"[default]\naws_access_key_id = {ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {SECRET_ACCESS_KEY}\n",
        mode=0o600,
    )


def _key_id_in_etc(tree: ImageTree, outside: Path) -> None:
    tree.write("/etc/app.conf", f"[s3]\nbucket = releases\naccess_key = {ACCESS_KEY_ID}\n")


def _private_key_in_opt(tree: ImageTree, outside: Path) -> None:
    tree.write("/opt/app/key.pem", PRIVATE_KEY, mode=0o600)


def _host_keys(tree: ImageTree, outside: Path) -> None:
    tree.write("/etc/ssh/ssh_host_ed25519_key", PRIVATE_KEY, mode=0o600)
    tree.write("/etc/ssh/ssh_host_ed25519_key.pub", PUBLIC_KEY.replace("builder@packer", "root@ip"))


def _crypttab(tree: ImageTree, outside: Path) -> None:
    tree.append("/etc/crypttab", "luks-data UUID=7f3c1e9a-2b4d-4e6f-8a0b-1c2d3e4f5a6b none luks\n")


def _centos_7(tree: ImageTree, outside: Path) -> None:
    tree.set_os_release(CENTOS_7_OS_RELEASE)


def _cloud_init_state(tree: ImageTree, outside: Path) -> None:
    instance = "/var/lib/cloud/instances/i-0a1b2c3d4e5f67890"
    tree.write(f"{instance}/boot-finished", "1700000000.12 - up 12.3 seconds\n")
    tree.write(f"{instance}/datasource", "DataSourceEc2Local: DataSourceEc2Local\n")
    tree.symlink("/var/lib/cloud/instance", instance)


def _ubuntu_user(tree: ImageTree, outside: Path) -> None:
    tree.set_default_user("ubuntu")


ROW_CASES = [
    TreeCase("compliant", _unchanged),
    TreeCase("compliant-os-release-symlink", _unchanged, os_release_symlink=True),
    TreeCase(
        "sshd-not-installed",
        _no_sshd,
        {SERVER_INSTALLED: "fail", **dict.fromkeys(SSHD_CONFIG_CHECKS, "error")},
        {
            SERVER_INSTALLED: "sshd binary: none",
            **dict.fromkeys(SSHD_CONFIG_CHECKS, "no OpenSSH server in the image: no sshd binary"),
        },
    ),
    TreeCase(
        "sshd-installed-but-not-enabled",
        _sshd_disabled,
        {SERVER_INSTALLED: "fail"},
        {SERVER_INSTALLED: "systemd: sshd.service is installed, but no .wants link enables it"},
    ),
    TreeCase(
        "password-authentication-yes",
        _password_yes,
        {PASSWORD_AUTH: "fail"},
        {PASSWORD_AUTH: "/etc/ssh/sshd_config:24"},
    ),
    TreeCase(
        "password-authentication-in-included-dropin",
        _password_yes_in_dropin,
        {PASSWORD_AUTH: "fail"},
        {PASSWORD_AUTH: "/etc/ssh/sshd_config.d/50-cloud-init.conf:1"},
    ),
    TreeCase(
        "password-authentication-in-match-address-block",
        _password_yes_for_vetting_network,
        {PASSWORD_AUTH: "fail"},
        {PASSWORD_AUTH: "addr=10.0."},
    ),
    TreeCase(
        "permit-root-login-yes",
        _root_login_yes,
        {ROOT_LOGIN: "fail"},
        {ROOT_LOGIN: "PermitRootLogin yes"},
    ),
    TreeCase(
        "authorized-key-for-root",
        _key_for_root,
        {"linux.ssh.authorized-keys": "fail"},
        {"linux.ssh.authorized-keys": "/root/.ssh/authorized_keys:1"},
    ),
    TreeCase(
        "authorized-key-in-a-home",
        _key_for_login_user,
        {"linux.ssh.authorized-keys": "fail"},
        {"linux.ssh.authorized-keys": "/home/ec2-user/.ssh/authorized_keys:1"},
    ),
    TreeCase(
        "shadow-root-hash",
        _root_hash,
        {"linux.accounts.root-password": "fail", "linux.accounts.passwords": "fail"},
        {"linux.accounts.root-password": "/etc/shadow:1"},
    ),
    TreeCase(
        "shadow-empty-password",
        _empty_password,
        {"linux.accounts.passwords": "fail"},
        {"linux.accounts.passwords": "/etc/shadow:7: ec2-user:"},
    ),
    TreeCase(
        "shadow-locked-hash",
        _locked_hash,
        {"linux.accounts.passwords": "warn"},
        {"linux.accounts.passwords": "ec2-user:!$6$"},
    ),
    TreeCase(
        "non-empty-bash-history",
        _history,
        {"linux.secrets.shell-history": "fail"},
        {
            "linux.secrets.shell-history": f"/home/ec2-user/.bash_history: {len(HISTORY)} bytes, 3 lines"
        },
    ),
    TreeCase(
        "aws-credentials-file",
        _credentials_file,
        {"linux.secrets.aws-credentials": "fail"},
        {"linux.secrets.aws-credentials": "/home/ec2-user/.aws/credentials:2"},
    ),
    TreeCase(
        "access-key-id-in-etc",
        _key_id_in_etc,
        {"linux.secrets.aws-credentials": "fail"},
        {"linux.secrets.aws-credentials": "/etc/app.conf:3"},
    ),
    TreeCase(
        "private-key-in-opt",
        _private_key_in_opt,
        {"linux.secrets.private-keys": "fail"},
        {"linux.secrets.private-keys": "/opt/app/key.pem:1"},
    ),
    TreeCase(
        "ssh-host-keys-present",
        _host_keys,
        {"linux.ssh.host-keys": "fail"},
        {"linux.ssh.host-keys": "/etc/ssh/ssh_host_ed25519_key"},
    ),
    TreeCase(
        "crypttab-entry",
        _crypttab,
        {"linux.filesystem.unencrypted": "fail"},
        {"linux.filesystem.unencrypted": "/etc/crypttab:2: luks-data"},
    ),
    TreeCase(
        "os-release-centos-7",
        _centos_7,
        {"linux.os.supported": "fail"},
        {"linux.os.supported": "/etc/os-release: ID=centos VERSION_ID=7"},
    ),
    TreeCase(
        "cloud-init-instance-state",
        _cloud_init_state,
        {"linux.cloud-init.clean": "fail"},
        {"linux.cloud-init.clean": "/var/lib/cloud/instances/i-0a1b2c3d4e5f67890"},
    ),
    TreeCase(
        "default-user-ubuntu",
        _ubuntu_user,
        {"linux.accounts.default-user": "warn"},
        {"linux.accounts.default-user": "/etc/cloud/cloud.cfg"},
    ),
]


# --- many flavours of one problem in one image: each must be found --------------------------

YESCRYPT_HASH = "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7"
DES_HASH = "abJnggxhB/yWI"


def _hash_flavours(tree: ImageTree, outside: Path) -> None:
    tree.set_shadow_password("root", YESCRYPT_HASH)
    tree.set_shadow_password("daemon", DES_HASH)


def _lock_flavours(tree: ImageTree, outside: Path) -> None:
    tree.set_shadow_password("root", "!!" + SHA512_HASH)
    tree.set_shadow_password("bin", "*LK*")
    tree.set_shadow_password("daemon", "!*")
    tree.set_shadow_password("ec2-user", "!")


HISTORY_FILES = (
    "/root/.python_history",
    "/root/.mysql_history",
    "/root/.lesshst",
    "/home/ec2-user/.zsh_history",
    "/home/ec2-user/.local/share/fish/fish_history",
    "/home/bob/.bash_history",
)


def _history_flavours(tree: ImageTree, outside: Path) -> None:
    for path in HISTORY_FILES:
        tree.write(path, "something the build typed\n", mode=0o600)
    tree.write("/root/.bash_history.d/notes", "not a history file\n")


CREDENTIAL_FILES = {
    "/root/.aws/config": f"[default]\nregion = us-east-1\naws_access_key_id={ACCESS_KEY_ID}\n",
    "/home/ec2-user/.aws/credentials": f"[ci]\nAWS_ACCESS_KEY_ID = {ACCESS_KEY_ID}\n",
    "/srv/www/env.js": 'window.AWS_KEY = "ASIAZ7QWERTY5LKJH4GF";\n',
    "/etc/environment": f"AWS_SECRET_ACCESS_KEY={SECRET_ACCESS_KEY}\n",
    "/usr/local/bin/deploy.sh": f"#!/bin/sh\nexport AWS_ACCESS_KEY_ID={ACCESS_KEY_ID}\n",
}


def _credential_flavours(tree: ImageTree, outside: Path) -> None:
    for path, content in CREDENTIAL_FILES.items():
        tree.write(path, content, mode=0o600)
    # A credentials file without keys is not a leak.
    tree.write("/home/bob/.aws/credentials", "[default]\nregion = eu-west-1\n")


def _pem(label: str, newline: str = "\n") -> str:
    return newline.join(
        [f"-----BEGIN {label}-----", "MIIEowIBAAKCAQEA0Z3VS5JJcds3", f"-----END {label}-----", ""]
    )


PRIVATE_KEY_FILES = {
    "/root/.ssh/id_rsa": _pem("RSA PRIVATE KEY"),
    "/etc/pki/tls/private/server.key": _pem("PRIVATE KEY"),
    "/opt/app/enc.pem": _pem("ENCRYPTED PRIVATE KEY"),
    "/srv/git/ec.key": _pem("EC PRIVATE KEY"),
    "/home/ec2-user/deploy_key": _pem("OPENSSH PRIVATE KEY", "\r\n"),
}


def _private_key_flavours(tree: ImageTree, outside: Path) -> None:
    for path, content in PRIVATE_KEY_FILES.items():
        tree.write(path, content, mode=0o600)


def _pgp_private_key(tree: ImageTree, outside: Path) -> None:
    tree.write(
        "/root/.gnupg/release-signing.asc",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQOYBGVx3kEBCAC7\n=Zx1q\n"
        "-----END PGP PRIVATE KEY BLOCK-----\n",
        mode=0o600,
    )


def _authorized_key_flavours(tree: ImageTree, outside: Path) -> None:
    tree.set_sshd_option(
        "AuthorizedKeysFile",
        "/etc/ssh/authorized_keys/%u .ssh/authorized_keys .ssh/authorized_keys2",
    )
    tree.write("/etc/ssh/authorized_keys/ec2-user", PUBLIC_KEY + "\n")
    tree.write("/home/ec2-user/.ssh/authorized_keys2", PUBLIC_KEY + "\n", mode=0o600)
    tree.write(
        "/root/.ssh/authorized_keys",
        "no-port-forwarding,command=\"echo 'Please login as ec2-user';sleep 10\" "
        + PUBLIC_KEY
        + "\n",
        mode=0o600,
    )
    tree.append("/etc/passwd", "jenkins:x:990:990:Jenkins:/var/lib/jenkins:/bin/bash\n")
    tree.write("/var/lib/jenkins/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)
    # Comments only: nothing sshd would accept.
    tree.write("/home/bob/.ssh/authorized_keys", "# keys are injected at launch\n\n")


def _os_release_absolute_symlink(tree: ImageTree, outside: Path) -> None:
    tree.write("/usr/lib/os-release", CENTOS_7_OS_RELEASE)
    tree.symlink("/etc/os-release", "/usr/lib/os-release")


def _os_release_only_in_usr_lib(tree: ImageTree, outside: Path) -> None:
    tree.remove("/etc/os-release")
    tree.write(
        "/usr/lib/os-release",
        'PRETTY_NAME="Debian GNU/Linux 9 (stretch)"\nNAME="Debian GNU/Linux"\n'
        'VERSION_ID="9"\nVERSION="9 (stretch)"\nID=debian\n',
    )


def _os_release_crlf_single_quotes(tree: ImageTree, outside: Path) -> None:
    tree.set_os_release(
        "# written on Windows\r\nNAME='Ubuntu'\r\nVERSION='18.04.6 LTS (Bionic Beaver)'\r\n"
        "ID=ubuntu\r\nID_LIKE=debian\r\nPRETTY_NAME='Ubuntu 18.04.6 LTS'\r\nVERSION_ID='18.04'\r\n"
    )


def _default_user_in_cloud_cfg_d(tree: ImageTree, outside: Path) -> None:
    tree.write(
        "/etc/cloud/cloud.cfg.d/99-user.cfg",
        "system_info:\n  default_user:\n    name: admin\n    lock_passwd: true\n",
    )


VARIANT_CASES = [
    TreeCase(
        "sshd-socket-activated",
        _sshd_socket_activated,
        evidence={SERVER_INSTALLED: "sockets.target wants ssh.socket"},
    ),
    TreeCase(
        "shadow-yescrypt-and-des-hashes",
        _hash_flavours,
        {"linux.accounts.root-password": "fail", "linux.accounts.passwords": "fail"},
        {"linux.accounts.passwords": ("/etc/shadow:1: root:$y$", "/etc/shadow:3: daemon:")},
    ),
    TreeCase(
        "shadow-lock-markers-and-a-locked-root-hash",
        _lock_flavours,
        {"linux.accounts.passwords": "warn"},
        {"linux.accounts.passwords": "/etc/shadow:1: root:!!$6$"},
    ),
    TreeCase(
        "history-files-of-other-shells-and-tools",
        _history_flavours,
        {"linux.secrets.shell-history": "fail"},
        {"linux.secrets.shell-history": HISTORY_FILES},
    ),
    TreeCase(
        "aws-keys-in-every-searched-place",
        _credential_flavours,
        {"linux.secrets.aws-credentials": "fail"},
        {"linux.secrets.aws-credentials": tuple(CREDENTIAL_FILES)},
    ),
    TreeCase(
        "private-keys-in-every-pem-flavour",
        _private_key_flavours,
        {"linux.secrets.private-keys": "fail"},
        {"linux.secrets.private-keys": tuple(PRIVATE_KEY_FILES)},
    ),
    TreeCase(
        "pgp-private-key-block",
        _pgp_private_key,
        {"linux.secrets.private-keys": "fail"},
        {"linux.secrets.private-keys": "/root/.gnupg/release-signing.asc"},
    ),
    TreeCase(
        "authorized-keys2-options-custom-file-and-service-home",
        _authorized_key_flavours,
        {"linux.ssh.authorized-keys": "fail"},
        {
            "linux.ssh.authorized-keys": (
                "/etc/ssh/authorized_keys/ec2-user:1",
                "/home/ec2-user/.ssh/authorized_keys2:1",
                "/root/.ssh/authorized_keys:1",
                "/var/lib/jenkins/.ssh/authorized_keys:1",
            )
        },
    ),
    TreeCase(
        "os-release-absolute-symlink-to-eol-release",
        _os_release_absolute_symlink,
        {"linux.os.supported": "fail"},
        {"linux.os.supported": "/etc/os-release: ID=centos VERSION_ID=7"},
    ),
    TreeCase(
        "os-release-only-in-usr-lib",
        _os_release_only_in_usr_lib,
        {"linux.os.supported": "fail"},
        {"linux.os.supported": "/usr/lib/os-release: ID=debian VERSION_ID=9"},
    ),
    TreeCase(
        "os-release-crlf-and-single-quotes",
        _os_release_crlf_single_quotes,
        {"linux.os.supported": "fail"},
        {"linux.os.supported": "ID=ubuntu VERSION_ID=18.04"},
    ),
    TreeCase(
        "default-user-overridden-in-cloud-cfg-d",
        _default_user_in_cloud_cfg_d,
        {"linux.accounts.default-user": "warn"},
        {"linux.accounts.default-user": "/etc/cloud/cloud.cfg.d/99-user.cfg"},
    ),
]


# --- symlinks: resolved inside the image, never on this machine -----------------------------

# Markers of files that live OUTSIDE the image root; no report may ever show them.
HOST_ONLY_KEY_ID = "AKIAHOSTONLY7Q2W3E4R"
HOST_ONLY_MARK = "HOSTONLY"
IMAGE_KEY_ID = "AKIAIMAGE0NLY5T6Y7U8"
BUILDER_USER = "packer"


def _shadow_behind_absolute_symlink(tree: ImageTree, outside: Path) -> None:
    # The image keeps its real shadow elsewhere; the absolute link must resolve in the image.
    tree.write(
        "/usr/share/base/shadow",
        f"root:{SHA512_HASH}:19700:0:99999:7:::\n"
        "ec2-user:!!:19700:0:99999:7:::\n"
        f"{BUILDER_USER}:{SHA512_HASH}:19700:0:99999:7:::\n",
        mode=0o600,
    )
    tree.symlink("/etc/shadow", "/etc/../usr/share/base/shadow")


# Three lines: the file this machine has at /etc/hostname holds one.
IMAGE_HOSTNAME = "image-build-7f3a\n# set by the build\n# line three\n"


def _history_to_image_hostname(tree: ImageTree, outside: Path) -> None:
    tree.write("/etc/hostname", IMAGE_HOSTNAME)
    tree.symlink("/root/.bash_history", "/etc/hostname")


def _history_to_empty_image_hostname(tree: ImageTree, outside: Path) -> None:
    tree.write("/etc/hostname", "")
    tree.symlink("/root/.bash_history", "/etc/hostname")


def _dotdot_escapes(tree: ImageTree, outside: Path) -> None:
    # From /home/X/.aws, six `..` climb far above the image root: they stop at its /.
    tree.symlink("/home/ec2-user/.aws/credentials", "../../../../../../etc/passwd")
    # On this machine the same link reaches <case>/outside/credentials (a host-only key);
    # inside the image it reaches the image's /outside/credentials.
    tree.symlink("/home/alice/.aws/credentials", "../../../../outside/credentials")
    tree.write("/outside/credentials", f"[default]\naws_access_key_id = {IMAGE_KEY_ID}\n")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "credentials").write_text(f"[default]\naws_access_key_id = {HOST_ONLY_KEY_ID}\n")


def _symlink_loops(tree: ImageTree, outside: Path) -> None:
    tree.symlink("/etc/shadow", "/etc/shadow")
    tree.symlink("/root/.bash_history", "/root/.bash_history")
    tree.symlink("/etc/os-release", "os-release.alt")
    tree.symlink("/etc/os-release.alt", "/etc/os-release")
    tree.symlink("/etc/ssh/sshd_config.d/60-loop.conf", "61-loop.conf")
    tree.symlink("/etc/ssh/sshd_config.d/61-loop.conf", "60-loop.conf")
    tree.symlink("/home/ec2-user/.ssh/authorized_keys", "authorized_keys")
    tree.symlink("/home/ec2-user/self", ".")
    tree.symlink("/opt/app/up", "/opt")
    tree.symlink("/home/ec2-user/.aws", "/home/ec2-user/.aws")


def _home_to_nowhere(tree: ImageTree, outside: Path) -> None:
    tree.symlink("/home", "/nonexistent")


def _home_moved_inside_image(tree: ImageTree, outside: Path) -> None:
    tree.write("/data/home/ec2-user/.ssh/authorized_keys", PUBLIC_KEY + "\n", mode=0o600)
    tree.symlink("/home", "/data/home")


def _links_to_host_files(tree: ImageTree, outside: Path) -> None:
    """Absolute links to this machine's paths of files that hold every problem amiscan knows."""
    outside.mkdir(parents=True, exist_ok=True)
    files = {
        "credentials": f"[default]\naws_access_key_id = {HOST_ONLY_KEY_ID}\n",
        "history": f"echo {HOST_ONLY_MARK}\ncurl -u admin:hunter2 https://example.com\n",
        "sshd.conf": "PasswordAuthentication yes\nPermitRootLogin yes\n",
        "os-release": CENTOS_7_OS_RELEASE,
        "app.conf": f"key = {HOST_ONLY_KEY_ID}\n",
        "key.pem": PRIVATE_KEY,
        "crypttab": "luks-host UUID=0000 none luks\n",
        "cloud.cfg": "system_info:\n  default_user:\n    name: hostonlyuser\n",
        "home/bob/.ssh/authorized_keys": PUBLIC_KEY + "\n",
        "cloud/instances/i-0123/boot-finished": "1\n",
    }
    for name, content in files.items():
        path = outside / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    tree.symlink("/root/.aws/credentials", outside / "credentials")
    tree.symlink("/root/.bash_history", outside / "history")
    tree.symlink("/etc/ssh/sshd_config.d/00-host.conf", outside / "sshd.conf")
    tree.symlink("/etc/os-release", outside / "os-release")
    tree.symlink("/etc/app.conf", outside / "app.conf")
    tree.symlink("/opt/app/key.pem", outside / "key.pem")
    tree.symlink("/opt/host", outside)
    tree.symlink("/etc/crypttab", outside / "crypttab")
    tree.symlink("/etc/cloud/cloud.cfg.d/99-host.cfg", outside / "cloud.cfg")
    tree.symlink("/root/.ssh/authorized_keys", outside / "home/bob/.ssh/authorized_keys")
    tree.symlink("/home/ec2-user/.ssh", outside / "home/bob/.ssh")
    tree.symlink("/var/lib/cloud/instances", outside / "cloud/instances")


SYMLINK_CASES = [
    TreeCase(
        "shadow-absolute-symlink-to-image-file",
        _shadow_behind_absolute_symlink,
        {"linux.accounts.root-password": "fail", "linux.accounts.passwords": "fail"},
        {
            "linux.accounts.root-password": "/etc/shadow:1: root:$6$",
            "linux.accounts.passwords": f"/etc/shadow:3: {BUILDER_USER}:$6$",
        },
    ),
    TreeCase(
        "history-absolute-symlink-to-image-hostname",
        _history_to_image_hostname,
        {"linux.secrets.shell-history": "fail"},
        {
            "linux.secrets.shell-history": f"/root/.bash_history: {len(IMAGE_HOSTNAME)} bytes, 3 lines"
        },
    ),
    TreeCase(
        "history-absolute-symlink-to-empty-image-hostname",
        _history_to_empty_image_hostname,
        {},
        {"linux.secrets.shell-history": "/root/.bash_history: 0 bytes"},
    ),
    TreeCase(
        "dotdot-symlinks-stop-at-the-image-root",
        _dotdot_escapes,
        {"linux.secrets.aws-credentials": "fail"},
        {"linux.secrets.aws-credentials": "/home/alice/.aws/credentials:2"},
    ),
    TreeCase("home-symlink-to-nonexistent-dir", _home_to_nowhere),
    TreeCase(
        "home-symlink-to-dir-inside-image",
        _home_moved_inside_image,
        {"linux.ssh.authorized-keys": "fail"},
        {"linux.ssh.authorized-keys": "/home/ec2-user/.ssh/authorized_keys:1"},
    ),
    TreeCase("absolute-symlinks-to-files-outside-the-root", _links_to_host_files),
]

# The loop tree's shadow cannot be read at all: judged separately (error or skip, with reason).
LOOP_CASE = TreeCase("symlink-loops", _symlink_loops)


# --- sshd configurations that OpenSSH's own `sshd -T` judges --------------------------------


@dataclass(frozen=True)
class SshdCase:
    """A complete sshd configuration (paths relative to /etc/ssh), as it sits in the image.

    `password` and `root_login` are the verdicts the case is designed to produce; the test
    checks first that `sshd -T` agrees with the design, then that amiscan agrees with sshd.
    """

    name: str
    files: dict[str, str]
    password: str
    root_login: str
    extra_addrs: tuple[str, ...] = ()


SSHD_CASES = [
    SshdCase(
        "duplicates-first-value-wins",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
            "PasswordAuthentication yes\nPermitRootLogin yes\n"
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "dropin-included-first-wins-over-main-file",
        {
            "sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nPasswordAuthentication no\n"
            "PermitRootLogin no\n",
            "sshd_config.d/50-cloud-init.conf": "PasswordAuthentication yes\n",
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "equals-separator",
        {"sshd_config": "PasswordAuthentication=no\nPermitRootLogin =yes\nUsePAM= no\n"},
        "pass",
        "fail",
    ),
    SshdCase(
        "mixed-case-keywords-and-values",
        {"sshd_config": "passwordAUTHENTICATION Yes\nPERMITROOTLOGIN No\n"},
        "fail",
        "pass",
    ),
    SshdCase(
        "match-user-root-permits-root-and-passwords",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
            "Match User root\n    PermitRootLogin yes\n    PasswordAuthentication yes\n"
        },
        "fail",
        "fail",
    ),
    SshdCase(
        "match-address-with-negated-subnet-enables-passwords",
        {
            "sshd_config": "PasswordAuthentication no\n"
            "Match Address 10.0.0.0/16,!10.0.5.0/24\n    PasswordAuthentication yes\n"
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "match-address-negated-hole-in-the-lockdown",
        {
            "sshd_config": "PasswordAuthentication yes\nPermitRootLogin no\n"
            "Match Address 10.0.0.0/16,10.2.0.0/16,!10.2.3.0/24\n"
            "    PasswordAuthentication no\n"
        },
        "fail",
        "pass",
        extra_addrs=("10.2.3.7",),
    ),
    SshdCase(
        "match-address-covers-both-vetting-ranges",
        {
            "sshd_config": "PasswordAuthentication yes\nPermitRootLogin yes\n"
            "Match Address 10.0.0.0/16,10.2.0.0/16\n"
            "    PasswordAuthentication no\n    PermitRootLogin no\n"
        },
        "pass",
        "pass",
        extra_addrs=("10.0.77.1", "10.2.3.7"),
    ),
    SshdCase(
        "match-address-wildcard",
        {
            "sshd_config": "PasswordAuthentication no\n"
            "Match Address 10.2.*\n    PasswordAuthentication yes\n"
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "match-all-overrides-the-global-value",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
            "Match all\n    PasswordAuthentication yes\n"
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "earlier-match-block-wins-over-match-all",
        {
            "sshd_config": "Match User ec2-user\n    PasswordAuthentication yes\n"
            "Match all\n    PasswordAuthentication no\n"
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "match-user-wildcard-with-negation",
        {
            "sshd_config": "PasswordAuthentication no\n"
            "Match User *,!root\n    PasswordAuthentication yes\n"
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "relative-include-glob-skips-dotfiles-and-other-suffixes",
        {
            "sshd_config": "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n"
            "PermitRootLogin yes\n",
            "sshd_config.d/.00-hidden.conf": "PasswordAuthentication yes\nPermitRootLogin yes\n",
            "sshd_config.d/10-root.conf": "PermitRootLogin without-password\n",
            "sshd_config.d/20-passwords.conf": "PasswordAuthentication no\n",
            "sshd_config.d/30-late.conf": "PasswordAuthentication yes\n",
            "sshd_config.d/00-disabled.conf.rpmsave": "PasswordAuthentication yes\n",
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "nested-relative-include-resolves-against-etc-ssh",
        {
            "sshd_config": "Include sshd_config.d/10-nested.conf\nPasswordAuthentication no\n",
            "sshd_config.d/10-nested.conf": "Include local.conf\n",
            "sshd_config.d/local.conf": "PasswordAuthentication no\n",
            "local.conf": "PasswordAuthentication yes\n",
        },
        "fail",
        "pass",
    ),
    SshdCase(
        "include-inside-match-applies-only-to-that-block",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
            "Match User root\n    Include /etc/ssh/sshd_config.d/root-only.conf\n"
            "Match Address 192.168.0.0/16\n    Include sshd_config.d/lan-only.conf\n",
            "sshd_config.d/root-only.conf": "PermitRootLogin yes\n",
            "sshd_config.d/lan-only.conf": "PasswordAuthentication yes\n",
        },
        "pass",
        "fail",
    ),
    SshdCase(
        "quoted-values",
        {"sshd_config": 'PasswordAuthentication "no"\nPermitRootLogin "yes"\n'},
        "pass",
        "fail",
    ),
    SshdCase(
        "trailing-comments",
        {"sshd_config": "PasswordAuthentication yes # no\nPermitRootLogin no #yes\n"},
        "fail",
        "pass",
    ),
    SshdCase(
        "challenge-response-alias-enables-keyboard-interactive-with-pam",
        {
            "sshd_config": "PasswordAuthentication no\nChallengeResponseAuthentication yes\n"
            "KbdInteractiveAuthentication no\nUsePAM yes\n"
        },
        "warn",
        "pass",
    ),
    SshdCase(
        "challenge-response-alias-shares-first-value-wins",
        {
            "sshd_config": "PasswordAuthentication no\nChallengeResponseAuthentication no\n"
            "KbdInteractiveAuthentication yes\nUsePAM yes\n"
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "compiled-in-defaults",
        {"sshd_config": "# nothing set: sshd's compiled-in defaults apply\n"},
        "fail",
        "pass",
    ),
    SshdCase(
        "match-block-opened-in-a-dropin-ends-with-that-file",
        {
            "sshd_config": "Include sshd_config.d/*.conf\nPasswordAuthentication no\n"
            "PermitRootLogin no\n",
            "sshd_config.d/10-deploy.conf": "Match User deploy\n    PasswordAuthentication yes\n"
            "    PermitRootLogin yes\n",
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "match-user-is-case-sensitive",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
            "Match User ROOT,EC2-USER\n    PasswordAuthentication yes\n    PermitRootLogin yes\n"
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "root-login-for-one-vetting-range-only",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin prohibit-password\n"
            "Match User root Address 10.2.0.0/16\n    PermitRootLogin yes\n"
        },
        "pass",
        "fail",
    ),
    SshdCase(
        "include-character-class-glob-and-several-patterns",
        {
            "sshd_config": "Include sshd_config.d/[0-9]*.conf /etc/ssh/extra/*.conf\n"
            "PasswordAuthentication yes\nPermitRootLogin yes\n",
            "sshd_config.d/a-first-by-name.conf": "PasswordAuthentication yes\n",
            "sshd_config.d/20-passwords.conf": "PasswordAuthentication no\n",
            "extra/root.conf": "PermitRootLogin no\n",
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "whitespace-tabs-and-quoted-equals",
        {
            "sshd_config": '   \tPasswordAuthentication="no"\n\t# PasswordAuthentication yes\n'
            "PermitRootLogin\t\tWITHOUT-PASSWORD\n"
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "match-local-port-other-than-the-scanning-port",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
            "Match LocalPort 2222\n    PasswordAuthentication yes\n    PermitRootLogin yes\n"
        },
        "pass",
        "pass",
    ),
    SshdCase(
        "match-local-port-of-the-scanning-port",
        {
            "sshd_config": "PasswordAuthentication no\nPermitRootLogin no\n"
            "Match LocalPort 22\n    PasswordAuthentication yes\n    PermitRootLogin yes\n"
        },
        "fail",
        "fail",
    ),
]


def _sshd_tree(case: SshdCase) -> TreeCase:
    def mutate(tree: ImageTree, outside: Path) -> None:
        tree.write_sshd_config(case.files)

    return TreeCase(f"sshd-{case.name}", mutate)


# --------------------------------------------------------------------------------------------
# Building and scanning every tree once


def _all_tree_cases() -> list[TreeCase]:
    return [
        *ROW_CASES,
        *VARIANT_CASES,
        *SYMLINK_CASES,
        LOOP_CASE,
        *(_sshd_tree(c) for c in SSHD_CASES),
    ]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Scan]:
    """Every tree case built under its own directory and scanned once, in parallel."""
    base = tmp_path_factory.mktemp("images")
    cases = _all_tree_cases()
    assert len({c.name for c in cases}) == len(cases), "tree case names must be unique"
    roots = {}
    for case in cases:
        tree = build_compliant(
            base / case.name / "root", os_release_symlink=case.os_release_symlink
        )
        case.mutate(tree, base / case.name / "outside")
        roots[case.name] = tree.root
    with ThreadPoolExecutor(max_workers=2 * len(os.sched_getaffinity(0))) as pool:
        futures = {name: pool.submit(scan_dir, root, base) for name, root in roots.items()}
        return {name: future.result() for name, future in futures.items()}


def _expected(case: TreeCase) -> dict[str, str]:
    return {
        **dict.fromkeys(OFFLINE_CHECKS, "pass"),
        **dict.fromkeys(LIVE_ONLY_CHECKS, "skip"),
        **case.changes,
    }


def _assert_statuses(scan: Scan, case: TreeCase) -> None:
    statuses = scan.statuses()
    linux = {k: v for k, v in statuses.items() if k in LINUX_CHECKS}
    details = "\n".join(
        f"{k}: {scan.describe(k)}" for k, v in linux.items() if v != _expected(case).get(k)
    )
    assert linux == _expected(case), details
    # A check another package adds may not apply to a directory, but it may not break the scan.
    others = {k: v for k, v in statuses.items() if k not in LINUX_CHECKS}
    assert all(v in ("pass", "skip") for v in others.values()), others


# --------------------------------------------------------------------------------------------
# A compliant image, and one problem at a time


@pytest.mark.parametrize("case", [*ROW_CASES, *VARIANT_CASES], ids=lambda c: c.name)
def test_each_image_problem_fails_or_warns_exactly_its_own_check(
    scans: dict[str, Scan], case: TreeCase
) -> None:
    scan = scans[case.name]
    _assert_statuses(scan, case)
    failing = "fail" in case.changes.values()
    assert scan.returncode == (1 if failing else 0), scan.stderr
    assert scan.report["verdict"] == ("fail" if failing else "pass")
    for check_id, text in case.expected_evidence():
        assert text in scan.evidence(check_id), scan.describe(check_id)


@pytest.mark.parametrize("name", ["compliant", "compliant-os-release-symlink"])
def test_a_compliant_image_reports_every_linux_check_and_skips_live_ones_with_a_reason(
    scans: dict[str, Scan], name: str
) -> None:
    scan = scans[name]
    report = scan.report
    assert report["schema_version"] == 1
    assert report["target"]["kind"] == "dir"
    assert report["target"]["platform"] == "linux"
    assert set(LINUX_CHECKS) <= set(scan.statuses())
    for check_id in LIVE_ONLY_CHECKS:
        assert scan.status(check_id) == "skip"
        assert scan.result(check_id)["summary"].strip(), f"{check_id} skipped without a reason"
    assert report["summary"]["fail"] == 0


def test_the_os_release_symlink_is_read_as_etc_os_release(scans: dict[str, Scan]) -> None:
    scan = scans["compliant-os-release-symlink"]
    assert "/etc/os-release: ID=amzn VERSION_ID=2023" in scan.evidence("linux.os.supported")


def test_aws_documentation_example_key_and_certificates_are_not_secrets(
    scans: dict[str, Scan],
) -> None:
    # The baseline ships /opt/app/README with AKIAIOSFODNN7EXAMPLE and a certificate.
    scan = scans["compliant"]
    assert scan.status("linux.secrets.aws-credentials") == "pass"
    assert scan.status("linux.secrets.private-keys") == "pass"


def test_secrets_never_appear_unredacted_in_the_report(scans: dict[str, Scan]) -> None:
    for name in ("aws-credentials-file", "access-key-id-in-etc", "shadow-root-hash"):
        out = scans[name].stdout
        assert ACCESS_KEY_ID not in out
        assert SECRET_ACCESS_KEY not in out
        assert SHA512_HASH.split("$")[-1] not in out


# --------------------------------------------------------------------------------------------
# Symlinks: read inside the image root, never on this machine


@pytest.mark.parametrize("case", SYMLINK_CASES, ids=lambda c: c.name)
def test_symlinks_resolve_inside_the_image_root(scans: dict[str, Scan], case: TreeCase) -> None:
    scan = scans[case.name]
    _assert_statuses(scan, case)
    assert scan.returncode == (1 if "fail" in case.changes.values() else 0), scan.stderr
    for check_id, text in case.expected_evidence():
        assert text in scan.evidence(check_id), scan.describe(check_id)


def test_an_absolute_shadow_symlink_reads_the_images_file_not_this_machines(
    scans: dict[str, Scan],
) -> None:
    scan = scans["shadow-absolute-symlink-to-image-file"]
    # `packer` exists only in the image's /usr/share/base/shadow.
    assert BUILDER_USER in scan.result("linux.accounts.passwords")["summary"]


def test_a_dotdot_symlink_climbing_out_of_the_root_never_reads_the_host_file(
    scans: dict[str, Scan],
) -> None:
    scan = scans["dotdot-symlinks-stop-at-the-image-root"]
    assert IMAGE_KEY_ID[:8] in scan.evidence("linux.secrets.aws-credentials")
    assert HOST_ONLY_KEY_ID[:8] not in scan.stdout


def test_files_outside_the_root_are_never_read_through_absolute_symlinks(
    scans: dict[str, Scan], tmp_path_factory: pytest.TempPathFactory
) -> None:
    scan = scans["absolute-symlinks-to-files-outside-the-root"]
    assert scan.returncode == 0, scan.stderr
    for marker in (HOST_ONLY_KEY_ID[:8], HOST_ONLY_MARK, "hostonlyuser", "luks-host", "i-0123"):
        assert marker not in scan.stdout
    # /etc/os-release points outside; /usr/lib/os-release is the image's answer.
    assert "/usr/lib/os-release" in scan.evidence("linux.os.supported")


def test_symlink_loops_end_the_scan_with_reasons_not_a_hang_or_a_traceback(
    scans: dict[str, Scan],
) -> None:
    scan = scans[LOOP_CASE.name]
    assert not scan.timed_out
    assert "Traceback" not in scan.stderr
    unreadable = ("linux.accounts.root-password", "linux.accounts.passwords")
    for check_id in unreadable:
        result = scan.result(check_id)
        assert result["status"] in ("error", "skip"), scan.describe(check_id)
        assert "/etc/shadow" in result["summary"]
    judged = [k for k in OFFLINE_CHECKS if k not in unreadable]
    assert {k: scan.status(k) for k in judged} == dict.fromkeys(judged, "pass")
    # The os-release loop falls back to /usr/lib/os-release, as os-release(5) says.
    assert "/usr/lib/os-release" in scan.evidence("linux.os.supported")
    assert scan.returncode in (0, 3), scan.stderr


# --------------------------------------------------------------------------------------------
# sshd configurations: amiscan's offline verdict against OpenSSH's `sshd -T`

SCANNER_USERS = ("root", "ec2-user")
# Corners of the two ranges the Marketplace scanner connects from.
SCANNER_ADDRS = ("10.0.0.1", "10.0.255.254", "10.2.0.1", "10.2.255.254")
SCAN_PORT = 22
SAFE_ROOT_LOGIN = {"no", "prohibit-password", "without-password", "forced-commands-only"}
_INCLUDE = re.compile(r"^(\s*include)(\s*=\s*|\s+)(.*)$", re.IGNORECASE)


def _for_real_sshd(text: str, etc_ssh: Path) -> str:
    """The config with Include paths moved from the image's /etc/ssh to `etc_ssh`."""
    root = etc_ssh.parent.parent
    lines = []
    for line in text.splitlines():
        found = _INCLUDE.match(line)
        if found:
            args = [
                f"{root}{arg}" if arg.startswith("/") else f"{etc_ssh}/{arg}"
                for arg in found[3].split()
            ]
            line = f"{found[1]} {' '.join(args)}"
        lines.append(line)
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Decision:
    password: str
    root_login: str


@dataclass(frozen=True)
class RealSshd:
    binary: str
    host_key: Path

    def dump(self, config: Path, user: str, addr: str) -> dict[str, str]:
        spec = f"user={user},host={addr},addr={addr},lport={SCAN_PORT}"
        done = subprocess.run(
            [self.binary, "-T", "-f", str(config), "-h", str(self.host_key), "-C", spec],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 0, f"sshd -T rejected {config}: {done.stderr}"
        values = {}
        for line in done.stdout.splitlines():
            keyword, _, value = line.partition(" ")
            values[keyword] = value.strip()
        return values

    def decide(self, case: SshdCase, workdir: Path) -> Decision:
        """Run sshd -T for every scanner connection; judge as CHECKS.md says."""
        etc_ssh = workdir / "etc" / "ssh"
        for name, text in case.files.items():
            path = etc_ssh / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(_for_real_sshd(text, etc_ssh))
        views = [
            (user, self.dump(etc_ssh / "sshd_config", user, addr))
            for user in SCANNER_USERS
            for addr in (*SCANNER_ADDRS, *case.extra_addrs)
        ]
        if any(v["passwordauthentication"] == "yes" for _, v in views):
            password = "fail"
        elif any(
            v["kbdinteractiveauthentication"] == "yes" and v["usepam"] == "yes" for _, v in views
        ):
            password = "warn"
        else:
            password = "pass"
        unsafe = [
            v for u, v in views if u == "root" and v["permitrootlogin"] not in SAFE_ROOT_LOGIN
        ]
        return Decision(password, "fail" if unsafe else "pass")


@pytest.fixture(scope="module")
def real_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealSshd]:
    binary = require_sshd()
    key = tmp_path_factory.mktemp("sshd-host-key") / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    if os.geteuid() == 0:
        # sshd -T insists on the privilege separation directory its service would create.
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    yield RealSshd(binary, key)


@pytest.mark.sshd
@pytest.mark.parametrize("case", SSHD_CASES, ids=lambda c: c.name)
def test_offline_ssh_verdicts_agree_with_openssh_sshd_dash_t(
    scans: dict[str, Scan], real_sshd: RealSshd, case: SshdCase, tmp_path: Path
) -> None:
    decided = real_sshd.decide(case, tmp_path)
    assert decided == Decision(case.password, case.root_login), "sshd disagrees with the design"
    scan = scans[f"sshd-{case.name}"]
    assert "Traceback" not in scan.stderr
    assert scan.status(PASSWORD_AUTH) == decided.password, scan.describe(PASSWORD_AUTH)
    assert scan.status(ROOT_LOGIN) == decided.root_login, scan.describe(ROOT_LOGIN)


# --------------------------------------------------------------------------------------------
# Bad input: exit code 2 and one line, no traceback


def _assert_usage_error(scan: Scan, mentions: str) -> None:
    assert scan.returncode == 2, (scan.stdout, scan.stderr)
    lines = [line for line in scan.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, scan.stderr
    assert lines[0].startswith("amiscan: error: ")
    assert mentions in lines[0]
    assert scan.stdout == ""


def test_a_directory_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "does" / "not" / "exist"
    _assert_usage_error(
        amiscan(f"dir:{missing}", "--json", "-", "--no-html", cwd=tmp_path), str(missing)
    )


def test_a_file_instead_of_a_directory_is_a_usage_error(tmp_path: Path) -> None:
    image_file = tmp_path / "disk.img"
    image_file.write_bytes(b"\0" * 512)
    _assert_usage_error(
        amiscan(f"dir:{image_file}", "--json", "-", "--no-html", cwd=tmp_path), "not a directory"
    )


def test_an_unknown_check_id_is_a_usage_error(tmp_path: Path) -> None:
    root = build_compliant(tmp_path / "root").root
    scan = amiscan(
        f"dir:{root}",
        "--checks",
        "linux.ssh.root-login,linux.no-such-check",
        "--json",
        "-",
        "--no-html",
        cwd=tmp_path,
    )
    _assert_usage_error(scan, "linux.no-such-check")


@pytest.mark.parametrize(
    "target", ["ftp://host/image", "not a target at all", "s3://bucket/image.raw"]
)
def test_a_target_string_amiscan_does_not_know_is_a_usage_error(
    tmp_path: Path, target: str
) -> None:
    _assert_usage_error(amiscan(target, "--json", "-", "--no-html", cwd=tmp_path), target)


def test_checks_json_lists_every_linux_check_of_the_catalog(tmp_path: Path) -> None:
    scan = amiscan("checks", "--json", cwd=tmp_path)
    assert scan.returncode == 0, scan.stderr
    listed = {item["id"]: item for item in json.loads(scan.stdout)}
    assert set(LINUX_CHECKS) <= set(listed)
    for check_id in LINUX_CHECKS:
        assert listed[check_id]["platform"] == "linux"


# --------------------------------------------------------------------------------------------
# A directory that holds no operating system: the scan cannot complete (exit 3), and says why

MOUNT_ROOT = "mount the image's root file system and scan that directory"
NOT_AN_OS_TREES: dict[str, tuple[dict[str, str], str]] = {
    "empty-directory": (
        {},
        "an empty directory: mount the image's root file system there (read-only) and scan again",
    ),
    "efi-system-partition": (
        {
            "EFI/BOOT/BOOTX64.EFI": "MZ",
            "EFI/debian/shimx64.efi": "MZ",
            "EFI/debian/grub.cfg": "search.fs_uuid 2d1b7c1e root\n",
        },
        f"an EFI system partition, not an operating system (/EFI/BOOT/, /EFI/debian/, "
        f"/EFI/BOOT/BOOTX64.EFI, /EFI/debian/shimx64.efi): {MOUNT_ROOT}",
    ),
    "boot-partition": (
        {
            "vmlinuz-6.1.0-18-cloud-amd64": "kernel",
            "initrd.img-6.1.0-18-cloud-amd64": "initrd",
            "System.map-6.1.0-18-cloud-amd64": "map",
            "grub/grub.cfg": "menuentry 'Debian GNU/Linux' {}\n",
        },
        f"a /boot partition, not an operating system (/System.map-6.1.0-18-cloud-amd64, "
        f"/initrd.img-6.1.0-18-cloud-amd64, /vmlinuz-6.1.0-18-cloud-amd64, /grub/): {MOUNT_ROOT}",
    ),
    "data-volume": (
        {
            "postgresql/15/main/PG_VERSION": "15\n",
            "www/index.html": "<h1>hello</h1>\n",
            "etc/app.conf": "listen = 0.0.0.0:8080\n",
        },
        f"a data volume (no /etc/os-release or /etc/passwd): {MOUNT_ROOT}",
    ),
}


def _write_files(root: Path, files: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)


@pytest.mark.parametrize("name", NOT_AN_OS_TREES)
def test_a_directory_without_an_operating_system_cannot_be_scanned(
    tmp_path: Path, name: str
) -> None:
    files, message = NOT_AN_OS_TREES[name]
    root = tmp_path / name
    _write_files(root, files)
    scan = amiscan(f"dir:{root}", "--json", "report.json", "--no-html", cwd=tmp_path)
    assert scan.returncode == 3, (scan.stdout, scan.stderr)
    assert "Traceback" not in scan.stderr
    said = [line for line in scan.stderr.splitlines() if "scan incomplete" in line]
    assert said == [f"amiscan: dir:{root}: scan incomplete: {message}"], scan.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "error"
    assert report["errors"] == [message]
    # Nothing was judged: no check passes (or skips) on a volume that holds no system.
    assert report["results"], "the report lists the checks that could not be judged"
    assert {r["status"] for r in report["results"]} == {"error"}


def test_a_windows_volume_with_a_damaged_hive_is_judged_as_windows_and_never_passes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "c"
    _write_files(root, {"WINDOWS/system32/config/SYSTEM": "regf", "Program Files/x.txt": "x"})
    scan = amiscan(f"dir:{root}", "--json", "-", "--no-html", cwd=tmp_path)
    # No launch agent on the volume is a failure the files settle; the rest cannot be judged.
    assert scan.returncode == 1, (scan.stdout, scan.stderr)
    assert "Traceback" not in scan.stderr
    assert scan.report["target"]["platform"] == "windows"
    failed = {r["id"] for r in scan.report["results"] if r["status"] == "fail"}
    assert failed == {"windows.launch-agent.password", "windows.launch-agent.version"}
    statuses = {r["id"]: r["status"] for r in scan.report["results"]}
    assert statuses and all(check.startswith("windows.") for check in statuses)
    assert "pass" not in statuses.values()
    rdp = next(r for r in scan.report["results"] if r["id"] == "windows.rdp.enabled")
    assert rdp["status"] == "error"
    assert "SYSTEM registry hive cannot be read" in rdp["summary"]


def test_a_root_mounted_one_level_down_is_pointed_at(tmp_path: Path) -> None:
    build_compliant(tmp_path / "mnt" / "nvme1n1p1")
    scan = amiscan(f"dir:{tmp_path / 'mnt'}", "--json", "-", "--no-html", cwd=tmp_path)
    assert scan.returncode == 3, scan.stderr
    assert scan.report["errors"] == [
        "no operating system at the top, but one a level down (/nvme1n1p1/): "
        "scan that directory instead"
    ]


@pytest.mark.parametrize(
    "missing", ["/etc/os-release", "/etc/passwd"], ids=["no-os-release", "no-passwd"]
)
def test_a_linux_root_needs_both_os_release_and_passwd(tmp_path: Path, missing: str) -> None:
    tree = ImageTree(tmp_path / "root")
    tree.write("/etc/os-release", AL2023_OS_RELEASE)
    tree.write("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n")
    tree.remove(missing)
    scan = amiscan(f"dir:{tree.root}", "--json", "-", "--no-html", cwd=tmp_path)
    assert scan.returncode == 3, scan.stderr
    (error,) = scan.report["errors"]
    assert error.startswith("not a whole Linux root"), error
    assert error.endswith(MOUNT_ROOT)


# --------------------------------------------------------------------------------------------
# Never a pass about what was not judged


@pytest.mark.parametrize("unreadable", ["missing", "a-directory"])
def test_an_image_whose_shadow_cannot_be_read_is_could_not_judge(
    tmp_path: Path, unreadable: str
) -> None:
    tree = build_compliant(tmp_path / "root")
    tree.remove("/etc/shadow")
    if unreadable == "a-directory":
        tree.mkdir("/etc/shadow")
    scan = amiscan(f"dir:{tree.root}", "--json", "report.json", "--no-html", cwd=tmp_path)
    assert scan.returncode == 3, (scan.stdout, scan.stderr)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["verdict"] == "error"
    unjudged = {u["id"] for u in report["unjudged"]}
    assert {"linux.accounts.root-password", "linux.accounts.passwords"} <= unjudged
    assert "could not judge" in scan.stdout
    assert "PASS" not in scan.stdout.splitlines()[-1]


def test_an_image_without_openssh_fails_and_never_passes(tmp_path: Path) -> None:
    tree = build_compliant(tmp_path / "root")
    _no_sshd(tree, tmp_path)
    scan = amiscan(f"dir:{tree.root}", "--json", "report.json", "--no-html", cwd=tmp_path)
    assert scan.returncode == 1, (scan.stdout, scan.stderr)
    report = json.loads((tmp_path / "report.json").read_text())
    statuses = {r["id"]: r["status"] for r in report["results"]}
    assert statuses["linux.ssh.server-installed"] == "fail"
    assert statuses["linux.ssh.password-authentication"] == "error"
    assert statuses["linux.ssh.root-login"] == "error"
