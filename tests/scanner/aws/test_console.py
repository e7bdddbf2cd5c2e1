"""SSH host key fingerprints from console outputs as EC2 returns them, and pinning them end to end."""

from __future__ import annotations

import pytest

from scanner.aws.console import host_key_fingerprints
from scanner.transports.base import HostKeyError
from scanner.transports.ssh import (
    Credentials,
    HostKeyPolicy,
    SSHTransport,
    fingerprint,
    load_private_key,
    md5_fingerprint,
)
from tests.sshd import SshdServer

AL2_ECDSA = "SHA256:l8Wq3Ypk4RkS0k6bX1p5V7o0g7Ug3xW0wZ2o9cYk8Xg"
AL2_ED25519 = "SHA256:Vb8n7Qw2+e/4dZt0oPq1XkL9mJc3sRf6hGy5uTa2Bn0"
AL2_RSA = "SHA256:3m0YbRk9Jc1QdVx7eTz2wLs5oP8nHa4fGu6iKy/0ZqE"

# Amazon Linux 2: cloud-init's "ec2:" lines, carriage returns and all.
AMAZON_LINUX_2 = "\r\n".join(
    [
        "[    0.000000] Linux version 4.14.336-256.559.amzn2.x86_64 (mockbuild@ip-10-0-1-220)",
        "[   12.031472] cloud-init[2963]: Cloud-init v. 19.3-46.amzn2 running 'modules:final'",
        "ec2: ",
        "ec2: #############################################################",
        "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
        f"ec2: 256 {AL2_ECDSA} no comment (ECDSA)",
        f"ec2: 256 {AL2_ED25519} no comment (ED25519)",
        f"ec2: 2048 {AL2_RSA} no comment (RSA)",
        "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
        "ec2: #############################################################",
        "-----BEGIN SSH HOST KEY KEYS-----",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBD8= ",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHX3m0Yb ",
        "-----END SSH HOST KEY KEYS-----",
        "",
        "Amazon Linux 2",
        "Kernel 4.14.336-256.559.amzn2.x86_64 on an x86_64",
        "ip-172-31-5-10 login: ",
    ]
)

UBUNTU_ECDSA = "SHA256:Hm2cZpG0xJ8bT3kYw9qLrN5sV1dE7fU4aC6iO2yX+Qk"
UBUNTU_ED25519 = "SHA256:pD4Fz1sK9wQ7nB2xV5cM8jL3hT6gR0eY/uI4oA7kS2w"
UBUNTU_RSA = "SHA256:Zq8Wx2Cv5Bn7Mk1Lj4Hg6Fd9Sa3Pq0Ow/Ie2Ur5Ty8Y"

# Ubuntu: syslog-tagged cloud-init lines; the authorized-keys table above the block lists the
# login key's fingerprint, which must not be taken for a host key.
UBUNTU = "\n".join(
    [
        "[   18.412345] cloud-init[1021]: Cloud-init v. 23.4.4-0ubuntu0~22.04.1 running 'modules:config'",
        "ci-info: +++++++++Authorized keys from /home/ubuntu/.ssh/authorized_keys for user ubuntu++++++++++",
        "ci-info: +---------+-------------------------------------------------+---------+-----------+",
        "ci-info: | Keytype |                Fingerprint (sha256)             | Options |  Comment  |",
        "ci-info: +---------+-------------------------------------------------+---------+-----------+",
        "ci-info: | ssh-rsa | 4b:1e:8c:77:2d:0f:9a:31:5e:c2:6b:d8:40:aa:13:f7 |    -    | seller-ci |",
        "ci-info: +---------+-------------------------------------------------+---------+-----------+",
        "<14>Nov 27 10:00:05 cloud-init: #############################################################",
        "<14>Nov 27 10:00:05 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
        f"<14>Nov 27 10:00:05 cloud-init: 256 {UBUNTU_ECDSA} root@ip-172-31-5-10 (ECDSA)",
        f"<14>Nov 27 10:00:05 cloud-init: 256 {UBUNTU_ED25519} root@ip-172-31-5-10 (ED25519)",
        f"<14>Nov 27 10:00:05 cloud-init: 3072 {UBUNTU_RSA} root@ip-172-31-5-10 (RSA)",
        "<14>Nov 27 10:00:05 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
        "<14>Nov 27 10:00:05 cloud-init: #############################################################",
        "-----BEGIN SSH HOST KEY KEYS-----",
        "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTY= root@ip-172-31-5-10",
        "-----END SSH HOST KEY KEYS-----",
        "[   19.001234] cloud-init[1102]: Cloud-init v. 23.4.4 finished. Datasource DataSourceEc2Local.",
    ]
)

# Old OpenSSH (before 6.8) printed colon-separated MD5 fingerprints, with the key file's path.
OLD_MD5 = "\n".join(
    [
        "ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
        "ec2: 2048 9f:3b:1c:5d:7e:20:a4:86:0b:e1:f2:43:6c:d9:58:7a /etc/ssh/ssh_host_rsa_key.pub (RSA)",
        "ec2: 1024 0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9 /etc/ssh/ssh_host_dsa_key.pub (DSA)",
        "ec2: -----END SSH HOST KEY FINGERPRINTS-----",
    ]
)


def test_amazon_linux_2_console_output_yields_every_host_key_fingerprint() -> None:
    assert host_key_fingerprints(AMAZON_LINUX_2) == [AL2_ECDSA, AL2_ED25519, AL2_RSA]


def test_ubuntu_console_output_yields_the_host_keys_not_the_login_key() -> None:
    found = host_key_fingerprints(UBUNTU)
    assert found == [UBUNTU_ECDSA, UBUNTU_ED25519, UBUNTU_RSA]
    assert not any("4b:1e:8c" in value for value in found)


def test_old_md5_fingerprints_are_labelled_md5() -> None:
    assert host_key_fingerprints(OLD_MD5) == [
        "MD5:9f:3b:1c:5d:7e:20:a4:86:0b:e1:f2:43:6c:d9:58:7a",
        "MD5:0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9",
    ]


def test_md5_fingerprints_already_labelled_are_kept_as_they_are() -> None:
    text = "\n".join(
        [
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----",
            "256 MD5:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99 root@host (ED25519)",
            "-----END SSH HOST KEY FINGERPRINTS-----",
        ]
    )
    assert host_key_fingerprints(text) == ["MD5:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"]


def test_padded_sha256_fingerprints_lose_their_padding_as_openssh_prints_them() -> None:
    text = "\n".join(
        [
            "-----BEGIN SSH HOST KEY FINGERPRINTS-----",
            f"256 {UBUNTU_ED25519}= root@host (ED25519)",
            "-----END SSH HOST KEY FINGERPRINTS-----",
        ]
    )
    assert host_key_fingerprints(text) == [UBUNTU_ED25519]


def test_after_a_reboot_the_last_block_wins() -> None:
    rebooted = AMAZON_LINUX_2 + "\r\n[    0.000000] Linux version 4.14.336\r\n" + UBUNTU
    assert host_key_fingerprints(rebooted) == [UBUNTU_ECDSA, UBUNTU_ED25519, UBUNTU_RSA]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param(
            "[    0.000000] Linux version 6.1.0-18-cloud-amd64\nlogin: ", id="no-block-yet"
        ),
        pytest.param(
            "ci-info: | ssh-rsa | 4b:1e:8c:77:2d:0f:9a:31:5e:c2:6b:d8:40:aa:13:f7 | - | k |\n"
            f"256 {UBUNTU_ED25519} root@host (ED25519)",
            id="fingerprints-outside-a-block",
        ),
    ],
)
def test_without_a_fingerprint_block_nothing_is_pinned(text: str) -> None:
    assert host_key_fingerprints(text) == []


# --- pinning against a real sshd -----------------------------------------------------------------


def connect(server: SshdServer, policy: HostKeyPolicy) -> SSHTransport:
    transport = SSHTransport(
        server.host,
        server.port,
        server.user,
        Credentials(
            keys=[load_private_key(server.key_path)], use_agent=False, use_default_keys=False
        ),
        policy,
        connect_timeout_s=10,
    )
    transport.connect(probe_users=())
    return transport


def console_listing(*fingerprints: str) -> str:
    lines = [f"<14>Nov 27 10:00:05 cloud-init: 256 {f} root@ip (ED25519)" for f in fingerprints]
    return "\n".join(
        [
            "<14>Nov 27 10:00:05 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----",
            *lines,
            "<14>Nov 27 10:00:05 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----",
        ]
    )


def test_the_fingerprint_the_console_lists_for_the_real_host_key_is_accepted(
    sshd_server: SshdServer,
) -> None:
    pinned = host_key_fingerprints(console_listing(fingerprint(sshd_server.host_key)))
    transport = connect(sshd_server, HostKeyPolicy(pinned=pinned))
    try:
        assert transport.host_key_verification == (
            f"pinned from the console output (ssh-ed25519 {fingerprint(sshd_server.host_key)})"
        )
    finally:
        transport.close()


def test_an_md5_fingerprint_of_the_real_host_key_is_accepted(sshd_server: SshdServer) -> None:
    transport = connect(sshd_server, HostKeyPolicy(pinned=[md5_fingerprint(sshd_server.host_key)]))
    try:
        assert transport.host_key_verification.startswith("pinned from the console output")
    finally:
        transport.close()


def test_a_host_key_the_console_does_not_list_is_refused(sshd_server: SshdServer) -> None:
    other = "SHA256:" + "A" * 43
    with pytest.raises(HostKeyError) as refused:
        connect(sshd_server, HostKeyPolicy(pinned=host_key_fingerprints(console_listing(other))))
    message = str(refused.value)
    assert message.startswith(f"host key mismatch for {sshd_server.host}:{sshd_server.port}")
    assert fingerprint(sshd_server.host_key) in message
    assert other in message
    assert "refusing to log in" in message
