"""A minimal but realistic Linux image root on disk, for `amiscan dir:PATH` tests.

`build_compliant(path)` writes an Amazon Linux 2023-like root (os-release, passwd, and an OpenSSH
server enabled at boot) that passes every offline check;
the `ImageTree` methods then break it one way at a time (a password hash, a key, a history...).
Paths given to the methods are guest paths ("/etc/shadow"); they are written under the root.
"""

from __future__ import annotations

import os
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

LOGIN_USER = "ec2-user"

# A public key in authorized_keys form (a valid ed25519 blob; nobody holds its private half).
PUBLIC_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGf0n2jW3wFv1cL4h6JwQbRkz1dQ8m8r4Q9m1kQ0fN7a "
    "builder@packer"
)
# Shaped like real secrets, but invented: an access key id, and a private key with a dummy body.
ACCESS_KEY_ID = "AKIAZ7QWERTY5LKJH4GF"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzXamplEKEY"
PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "QyNTUxOQAAACBn9J9o1t8Bb9XC+IeicEG0ZM9XUPJvK+EPZtZEND03WgAAAJg1dGVzdA==\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)
SHA512_HASH = "$6$rounds=5000$Xq3vT9pLm2$Hq1o7d1S8Zk6k0m2r3G1pE4v5w6x7y8z9A0B1C2D3E4F5G6H7I8J9K0L"

AL2023_OS_RELEASE = """\
NAME="Amazon Linux"
VERSION="2023"
ID="amzn"
ID_LIKE="fedora"
VERSION_ID="2023"
PLATFORM_ID="platform:al2023"
PRETTY_NAME="Amazon Linux 2023.6.20241212"
ANSI_COLOR="0;33"
CPE_NAME="cpe:2.3:o:amazon:amazon_linux:2023"
HOME_URL="https://aws.amazon.com/linux/amazon-linux-2023/"
SUPPORT_END="2029-06-30"
"""

CENTOS_7_OS_RELEASE = """\
NAME="CentOS Linux"
VERSION="7 (Core)"
ID="centos"
ID_LIKE="rhel fedora"
VERSION_ID="7"
PRETTY_NAME="CentOS Linux 7 (Core)"
ANSI_COLOR="0;31"
CPE_NAME="cpe:/o:centos:centos:7"
HOME_URL="https://www.centos.org/"
"""

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:Kernel Overflow User:/:/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/usr/share/empty.sshd:/sbin/nologin
chrony:x:996:993:chrony system user:/var/lib/chrony:/sbin/nologin
ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash
"""

# Field 2 as a freshly built image leaves it: root locked with "*", the rest "!!" or "!".
SHADOW = {
    "root": "*",
    "bin": "*",
    "daemon": "*",
    "nobody": "*",
    "sshd": "!!",
    "chrony": "!!",
    "ec2-user": "!!",
}

GROUP = """\
root:x:0:
bin:x:1:
daemon:x:2:
wheel:x:10:ec2-user
nobody:x:65534:
sshd:x:74:
chrony:x:993:
adm:x:4:ec2-user
ec2-user:x:1000:
"""

# The stock Amazon Linux 2023 layout: drop-ins first, so that they win (first value wins).
SSHD_CONFIG = """\
#	$OpenBSD: sshd_config,v 1.104 2021/07/02 05:11:21 dtucker Exp $

# To modify the system-wide sshd configuration, create a  *.conf  file under
#  /etc/ssh/sshd_config.d/  which will be automatically included below
Include /etc/ssh/sshd_config.d/*.conf

#Port 22
#AddressFamily any
#ListenAddress 0.0.0.0

#HostKey /etc/ssh/ssh_host_rsa_key
#HostKey /etc/ssh/ssh_host_ecdsa_key
#HostKey /etc/ssh/ssh_host_ed25519_key

SyslogFacility AUTHPRIV

PermitRootLogin forced-commands-only
#StrictModes yes
#MaxAuthTries 6

AuthorizedKeysFile	.ssh/authorized_keys

# To disable tunneled clear text passwords, change to no here!
PasswordAuthentication no
#PermitEmptyPasswords no

KbdInteractiveAuthentication no

UsePAM yes

X11Forwarding yes
PrintMotd no
ClientAliveInterval 120

AuthorizedKeysCommand /opt/aws/bin/eic_run_authorized_keys %u %f
AuthorizedKeysCommandUser ec2-instance-connect

Subsystem sftp	/usr/libexec/openssh/sftp-server
"""

SSHD_DROPIN = """\
# This system is following system-wide crypto policy. The changes to
# crypto properties (Ciphers, MACs, ...) will not have any effect in
# this or following included files. To override some configuration option,
# write it before this block or in a file in this directory with earlier name.
Include /etc/crypto-policies/back-ends/opensshserver.config

SyslogFacility AUTHPRIV

ChallengeResponseAuthentication no

GSSAPIAuthentication yes
GSSAPICleanupCredentials no

UsePAM yes

X11Forwarding yes

PrintMotd no
"""

CRYPTO_POLICY = "Ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com,aes256-ctr\n"

SSHD_BINARY = "/usr/sbin/sshd"
SSHD_UNIT = "/usr/lib/systemd/system/sshd.service"
SSHD_WANTS_LINK = "/etc/systemd/system/multi-user.target.wants/sshd.service"
# The unit Amazon Linux 2023 ships (abridged).
SSHD_SERVICE = """\
[Unit]
Description=OpenSSH server daemon
After=network.target sshd-keygen.target
Wants=sshd-keygen.target

[Service]
Type=notify
ExecStart=/usr/sbin/sshd -D $OPTIONS
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure

[Install]
WantedBy=multi-user.target
"""


def cloud_cfg(default_user: str = LOGIN_USER) -> str:
    return textwrap.dedent(
        f"""\
        users:
         - default

        disable_root: true
        mount_default_fields: [~, ~, 'auto', 'defaults,nofail,x-systemd.requires=cloud-init.service,_netdev', '0', '2']
        ssh_pwauth: false
        ssh_deletekeys: true
        ssh_genkeytypes: ['ed25519', 'ecdsa']

        cloud_init_modules:
         - migrator
         - seed_random
         - bootcmd
         - write-files
         - growpart
         - resizefs
         - set-hostname
         - update-hostname
         - users-groups
         - ssh

        system_info:
          default_user:
            name: {default_user}
            lock_passwd: True
            gecos: EC2 Default User
            groups: [wheel, adm, systemd-journal]
            sudo: ["ALL=(ALL) NOPASSWD:ALL"]
            shell: /bin/bash
          distro: amazon
          paths:
            cloud_dir: /var/lib/cloud
            templates_dir: /etc/cloud/templates
          ssh_svcname: sshd
        """
    )


@dataclass(frozen=True)
class ImageTree:
    """An image root on disk, addressed by guest paths."""

    root: Path

    def host_path(self, guest_path: str) -> Path:
        """Where a guest path lives on this machine (without resolving symlinks)."""
        return self.root / guest_path.lstrip("/")

    def write(self, guest_path: str, content: str | bytes, mode: int = 0o644) -> Path:
        """Write a file (creating parent directories); writes through an existing symlink."""
        path = self.host_path(guest_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode()
        path.write_bytes(content)
        path.chmod(mode)
        return path

    def append(self, guest_path: str, content: str) -> None:
        with self.host_path(guest_path).open("a", encoding="utf-8") as handle:
            handle.write(content)

    def mkdir(self, guest_path: str, mode: int = 0o755) -> Path:
        path = self.host_path(guest_path)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        return path

    def symlink(self, guest_path: str, target: str | Path) -> None:
        """Make `guest_path` a symlink to `target`, verbatim (absolute or relative)."""
        path = self.host_path(guest_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.remove(guest_path)
        os.symlink(target, path)

    def remove(self, guest_path: str) -> None:
        path = self.host_path(guest_path)
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)

    # --- the mutations tests ask for most ---------------------------------------------------

    def set_shadow_password(self, user: str, field: str) -> None:
        """Replace the password field of `user` in /etc/shadow."""
        lines = []
        for line in self.host_path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == user:
                fields[1] = field
            lines.append(":".join(fields))
        self.write("/etc/shadow", "\n".join(lines) + "\n", mode=0o600)

    def set_sshd_option(self, keyword: str, value: str) -> None:
        """Rewrite the main sshd_config's (uncommented) line for `keyword`."""
        path = self.host_path("/etc/ssh/sshd_config")
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.split(None, 1)[:1] == [keyword]:
                lines[index] = f"{keyword} {value}"
                break
        else:
            raise KeyError(f"{keyword} is not set in sshd_config")
        path.write_text("\n".join(lines) + "\n")

    def write_sshd_config(self, files: dict[str, str]) -> None:
        """Replace the whole sshd configuration: `files` maps paths relative to /etc/ssh
        ("sshd_config", "sshd_config.d/50-cloud-init.conf", ...) to their contents."""
        self.remove("/etc/ssh/sshd_config.d")
        self.mkdir("/etc/ssh/sshd_config.d")
        for name, content in files.items():
            self.write(f"/etc/ssh/{name}", content, mode=0o600)

    def set_default_user(self, name: str) -> None:
        self.write("/etc/cloud/cloud.cfg", cloud_cfg(name))

    def set_os_release(self, text: str) -> None:
        """Replace the os-release contents (through /etc/os-release's symlink when it is one)."""
        self.host_path("/etc/os-release").resolve().write_text(text)


def _shadow_text(fields: dict[str, str]) -> str:
    return "".join(f"{user}:{password}:19700:0:99999:7:::\n" for user, password in fields.items())


def build_compliant(root: Path, *, os_release_symlink: bool = False) -> ImageTree:
    """Write an image root that passes every offline check; returns it for mutation.

    With `os_release_symlink`, /etc/os-release is the usual `../usr/lib/os-release` symlink
    instead of a regular file. The release is Amazon Linux 2023, which the bundled end-of-life
    table supports until 2029-06-30: after that day the baseline needs a newer release.
    """
    tree = ImageTree(root)
    root.mkdir(parents=True, exist_ok=True)
    for directory in ("/bin", "/dev", "/proc", "/sys", "/tmp", "/var/tmp", "/srv", "/mnt"):
        tree.mkdir(directory)

    tree.write("/etc/passwd", PASSWD)
    tree.write("/etc/shadow", _shadow_text(SHADOW), mode=0o600)
    tree.write("/etc/group", GROUP)
    tree.write("/etc/hostname", "localhost.localdomain\n")
    tree.write("/etc/hosts", "127.0.0.1   localhost localhost.localdomain\n")
    tree.write(
        "/etc/fstab", "UUID=2d1b7c1e-6a5c-4f0e-9d3e-2f9a7b1c0d11 / xfs defaults,noatime 1 1\n"
    )
    tree.write(
        "/etc/crypttab",
        "# /etc/crypttab: mappings for encrypted partitions (none in this image)\n",
    )
    tree.write("/etc/sudoers", "root ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n", mode=0o440)
    tree.write(
        "/etc/sudoers.d/90-cloud-init-users",
        f"{LOGIN_USER} ALL=(ALL) NOPASSWD:ALL\n",
        mode=0o440,
    )

    tree.write("/usr/lib/os-release", AL2023_OS_RELEASE)
    if os_release_symlink:
        tree.symlink("/etc/os-release", "../usr/lib/os-release")
    else:
        tree.write("/etc/os-release", AL2023_OS_RELEASE)

    # OpenSSH's server, enabled at boot as `systemctl enable sshd` leaves it.
    tree.write(SSHD_BINARY, b"\x7fELF\x02\x01\x01 (a stand-in for sshd)\n", mode=0o755)
    tree.write(SSHD_UNIT, SSHD_SERVICE)
    tree.symlink(SSHD_WANTS_LINK, SSHD_UNIT)
    tree.write("/etc/ssh/sshd_config", SSHD_CONFIG, mode=0o600)
    tree.write("/etc/ssh/sshd_config.d/50-redhat.conf", SSHD_DROPIN, mode=0o600)
    tree.write("/etc/crypto-policies/back-ends/opensshserver.config", CRYPTO_POLICY)
    tree.write("/etc/ssh/ssh_config", "Include /etc/ssh/ssh_config.d/*.conf\n")
    tree.write("/etc/ssh/moduli", "20190427000000 2 6 100 2047 2 D9E3F5...\n")

    tree.write("/etc/cloud/cloud.cfg", cloud_cfg())
    tree.write("/etc/cloud/cloud.cfg.d/05_logging.cfg", "_log:\n - &log_base |\n   [loggers]\n")
    tree.mkdir("/var/lib/cloud")
    tree.mkdir("/var/lib/cloud/data")

    tree.mkdir("/root", mode=0o700)
    tree.write("/root/.bashrc", "alias rm='rm -i'\n")
    tree.mkdir("/root/.ssh", mode=0o700)
    # An empty history is harmless (the shell creates it); only content is a leak.
    tree.write("/root/.bash_history", "", mode=0o600)

    home = f"/home/{LOGIN_USER}"
    tree.mkdir(home, mode=0o700)
    tree.write(f"{home}/.bashrc", "# .bashrc\n[ -f /etc/bashrc ] && . /etc/bashrc\n")
    tree.write(f"{home}/.bash_logout", "# ~/.bash_logout\n")
    tree.mkdir(f"{home}/.ssh", mode=0o700)

    # An application that ships AWS's documentation key and a public certificate: neither is
    # a secret, and neither may be reported as one.
    tree.write(
        "/opt/app/README",
        "Configure credentials, e.g. aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
    )
    tree.write(
        "/opt/app/tls/server.crt",
        "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUJ3l2\n-----END CERTIFICATE-----\n",
    )
    tree.write("/opt/app/app.conf", "listen = 0.0.0.0:8080\nlog_level = info\n")
    return tree
