"""Peer of checks/linux/ssh.py: sshd's effective settings, keys, listening port and firewall."""

from __future__ import annotations

import datetime
import json
import socket
from collections.abc import Callable
from typing import Any

import paramiko
import pytest
import testinfra.host
from peer_support import VETTING_ADDRESSES, Account, Peer

View = dict[str, list[str]]


@pytest.fixture(scope="module")
def sshd_views(
    host: testinfra.host.Host, as_root: Callable[[], Any], peer: Peer, login_user: str
) -> dict[tuple[str, str], View]:
    """`sshd -T -C` for root and the login user from each vetting address and from this
    machine, as amiscan asks it: (user, address) -> keyword -> values."""
    users = ["root"] + ([login_user] if login_user != "root" else [])
    addresses = [*VETTING_ADDRESSES] + ([peer.client_addr] if peer.client_addr else [])
    local = host.backend.host.name
    views: dict[tuple[str, str], View] = {}
    with as_root():
        for user in users:
            for addr in addresses:
                spec = f"user={user},host={addr},addr={addr},lport={peer.scan_port},laddr={local}"
                out = host.check_output(f"{peer.sshd_bin} -T -f {peer.sshd_config} -C {spec}")
                view: View = {}
                for line in out.splitlines():
                    keyword, _, value = line.partition(" ")
                    view.setdefault(keyword.lower(), []).append(value.strip())
                views[(user, addr)] = view
    return views


def _first(view: View, keyword: str) -> str:
    values = view.get(keyword, [])
    return values[0].split()[0].lower() if values and values[0] else ""


def _offered_methods(address: str, port: int, user: str) -> list[str]:
    """What sshd offers an unauthenticated client (amiscan asks this from outside too)."""
    with socket.create_connection((address, port), timeout=10) as sock:
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=10)
            try:
                transport.auth_none(user)
            except paramiko.BadAuthenticationType as exc:
                return list(exc.allowed_types)
            return ["none"]
        finally:
            transport.close()


def test_linux_ssh_password_authentication(
    host: testinfra.host.Host, sshd_views: dict[tuple[str, str], View], login_user: str
) -> None:
    enabled = [k for k, v in sshd_views.items() if _first(v, "passwordauthentication") != "no"]
    assert not enabled, f"PasswordAuthentication is on for {enabled}"
    offered = _offered_methods(host.backend.host.name, int(host.backend.host.port), login_user)
    assert "password" not in offered, f"the server offers {offered}"
    kbd = [
        k
        for k, v in sshd_views.items()
        if _first(v, "kbdinteractiveauthentication") == "yes" and _first(v, "usepam") == "yes"
    ]
    assert not kbd, f"keyboard-interactive with PAM can ask for a password: {kbd}"
    assert "keyboard-interactive" not in offered, f"the server offers {offered}"


SAFE_ROOT_LOGIN = {"no", "prohibit-password", "without-password", "forced-commands-only"}


def test_linux_ssh_root_login(sshd_views: dict[tuple[str, str], View]) -> None:
    root = [v for (user, _), v in sshd_views.items() if user == "root"]
    assert root
    unsafe = {_first(v, "permitrootlogin") for v in root} - SAFE_ROOT_LOGIN
    assert not unsafe, f"PermitRootLogin {unsafe}"


def _expand(token: str, account: Account) -> str:
    path = token.replace("%%", "\0").replace("%h", account.home).replace("%u", account.name)
    path = path.replace("%U", str(account.uid)).replace("\0", "%")
    return path if path.startswith("/") else f"{account.home.rstrip('/')}/{path}"


def _key_blobs(text: str) -> list[tuple[str, str]]:
    """(type, blob) of each key line of an authorized_keys file (options allowed before)."""
    keys = []
    for line in text.splitlines():
        tokens = line.strip().split()
        if not tokens or tokens[0].startswith("#"):
            continue
        for i, token in enumerate(tokens[:-1]):
            if token.startswith(("ssh-", "ecdsa-", "sk-")):
                keys.append((token, tokens[i + 1]))
                break
    return keys


def test_linux_ssh_authorized_keys(
    host: testinfra.host.Host,
    as_root: Callable[[], Any],
    peer: Peer,
    sshd_views: dict[tuple[str, str], View],
    accounts: list[Account],
) -> None:
    # AuthorizedKeysFile of the running sshd, expanded for every account in /etc/passwd.
    tokens = sshd_views[("root", VETTING_ADDRESSES[0])].get("authorizedkeysfile", [""])[0].split()
    paths = dict.fromkeys(_expand(t, a) for a in accounts for t in tokens if t != "none")
    baked = []
    with as_root():
        for path in paths:
            file = host.file(path)
            if file.exists:
                own = tuple(peer.login_key)
                baked += [(path, k) for k in _key_blobs(file.content_string) if k != own]
    assert not baked, f"authorized keys: {baked}"


def test_linux_ssh_host_keys(
    host: testinfra.host.Host, as_root: Callable[[], Any], sshd_views: dict[tuple[str, str], View]
) -> None:
    keys = sshd_views[("root", VETTING_ADDRESSES[0])].get("hostkey", [])
    stat = host.file("/proc/stat").content_string
    boot = next(int(ln.split()[1]) for ln in stat.splitlines() if ln.startswith("btime "))
    older = []
    with as_root():
        for key in keys:
            for path in (key, f"{key}.pub"):
                file = host.file(path)
                if file.exists and file.mtime < datetime.datetime.fromtimestamp(boot):
                    older.append(path)
    # On a host that has booted more than once this cannot tell baked keys from first-boot keys
    # (amiscan says so as an error); keys made after this boot pass.
    assert not older, f"host keys predate this boot: {older}"


def _iptables_blocks(rules: str, port: int) -> bool:
    accept = any(f"--dport {port}" in ln and "-j ACCEPT" in ln for ln in rules.splitlines())
    drop = "-P INPUT DROP" in rules or any(
        ln.startswith("-A INPUT") and ("-j DROP" in ln or "-j REJECT" in ln)
        for ln in rules.splitlines()
    )
    return drop and not accept


def _nft_blocks(ruleset: str, port: int) -> bool:
    text = json.dumps(json.loads(ruleset or "{}"))
    return ('"drop"' in text or '"reject"' in text) and f'"right": {port}' not in text


def test_linux_ssh_listening(
    host: testinfra.host.Host, as_root: Callable[[], Any], peer: Peer
) -> None:
    port = peer.scan_port
    listening = host.socket.get_listening_sockets()
    on_all = f"tcp://0.0.0.0:{port}" in listening or f"tcp://:::{port}" in listening
    # The firewall is read whatever the socket table said (as amiscan does).
    blocked = []
    with as_root():
        if host.exists("iptables"):
            rules = host.run("iptables -S")
            if rules.rc != 0 or _iptables_blocks(rules.stdout, port):
                blocked.append("iptables")
        if host.exists("nft"):
            ruleset = host.run("nft -j list ruleset")
            if ruleset.rc != 0 or _nft_blocks(ruleset.stdout, port):
                blocked.append("nft")
        if host.exists("firewall-cmd") and host.run("firewall-cmd --state").rc == 0:
            zone = host.check_output("firewall-cmd --list-all")
            if "ssh" not in zone and f"{port}/tcp" not in zone:
                blocked.append("firewalld")
        if host.exists("ufw"):
            status = host.check_output("ufw status verbose").lower()
            if (
                "status: active" in status
                and "deny (incoming)" in status
                and str(port) not in status
            ):
                blocked.append("ufw")
    assert on_all, f"nothing listens on all addresses on port {port}: {listening}"
    assert not blocked, f"the firewall may block TCP/{port}: {blocked}"


def test_linux_ssh_server_installed(host: testinfra.host.Host, peer: Peer) -> None:
    binary = host.file(peer.sshd_bin)
    assert binary.is_file and binary.mode & 0o111, f"no sshd binary at {peer.sshd_bin}"
    assert host.file(peer.sshd_config).exists, f"no {peer.sshd_config}"
    assert host.service("ssh").is_enabled or host.service("sshd").is_enabled, "not started at boot"
