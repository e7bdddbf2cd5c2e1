"""SSH transport (paramiko): log in the way Marketplace vetting does and run one script.

paramiko's SSHClient hides which key authenticated and cannot ask the server which methods it
offers; both matter here (the injected key is excluded from `linux.ssh.authorized-keys`, and the
offered methods are the outside-in view of password authentication), so the Transport is driven
directly.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import select
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from scanner.cancel import NEVER, Cancel
from scanner.transports.base import (
    MAX_SCRIPT_OUTPUT,
    AuthError,
    CommandResult,
    ConnectError,
    HostKeyError,
    TransportError,
)

log = logging.getLogger(__name__)

_DEFAULT_KEY_FILES = ("id_ed25519", "id_ecdsa", "id_rsa")


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint ("SHA256:base64-without-padding")."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def md5_fingerprint(key: paramiko.PKey) -> str:
    """The legacy colon-separated MD5 fingerprint ("MD5:aa:bb:…"), as old cloud-init prints it."""
    digest = hashlib.md5(key.asbytes(), usedforsecurity=False).hexdigest()
    return "MD5:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def matches_fingerprints(key: paramiko.PKey, fingerprints: Sequence[str]) -> bool:
    """Whether `key` is one of `fingerprints` (SHA256 or the legacy MD5 form)."""
    return fingerprint(key) in fingerprints or md5_fingerprint(key) in fingerprints


def public_key_line(key: paramiko.PKey) -> str:
    """The key as an authorized_keys line without options or comment ("type base64")."""
    return f"{key.get_name()} {key.get_base64()}"


@dataclass
class HostKeyPolicy:
    """How the server's host key is verified.

    `pinned` fingerprints (from the instance's console output) are authoritative; otherwise a
    known_hosts file is consulted and an unknown host is trusted on first use, which the report
    says.
    """

    pinned: Sequence[str] = ()
    known_hosts: Path | None = None

    def verify(self, host: str, port: int, key: paramiko.PKey) -> str:
        seen = fingerprint(key)
        if self.pinned:
            if matches_fingerprints(key, self.pinned):
                return f"pinned from the console output ({key.get_name()} {seen})"
            raise HostKeyError(
                f"host key mismatch for {host}:{port}: the server presented {seen}, the console "
                f"output lists {', '.join(self.pinned)}; refusing to log in"
            )
        if self.known_hosts is not None and self.known_hosts.is_file():
            known = paramiko.HostKeys(str(self.known_hosts))
            name = host if port == 22 else f"[{host}]:{port}"
            entry = known.lookup(name)
            if entry is not None and key.get_name() in entry:
                expected = entry[key.get_name()]
                if expected.asbytes() != key.asbytes():
                    raise HostKeyError(
                        f"host key mismatch for {name}: {self.known_hosts} expects "
                        f"{fingerprint(expected)}, the server presented {seen}"
                    )
                return f"matched {self.known_hosts} ({key.get_name()} {seen})"
        return f"trusted on first use ({key.get_name()} {seen}); not verified"


@dataclass
class Credentials:
    """Keys to try, in order: explicit keys, an identity file, the agent, default key files."""

    keys: Sequence[paramiko.PKey] = ()
    identity_file: Path | None = None
    use_agent: bool = True
    use_default_keys: bool = True
    _loaded: list[tuple[str, paramiko.PKey]] = field(default_factory=list, repr=False)

    def candidates(self) -> list[tuple[str, paramiko.PKey]]:
        if self._loaded:
            return self._loaded
        found = [(f"key {fingerprint(k)}", k) for k in self.keys]
        if self.identity_file is not None:
            found.append((str(self.identity_file), load_private_key(self.identity_file)))
        if self.use_agent:
            try:
                found += [(f"agent key {fingerprint(k)}", k) for k in paramiko.Agent().get_keys()]
            except paramiko.SSHException as exc:
                log.debug("ssh-agent unavailable: %s", exc)
        if self.use_default_keys and self.identity_file is None:
            for name in _DEFAULT_KEY_FILES:
                path = Path.home() / ".ssh" / name
                if path.is_file():
                    try:
                        found.append((str(path), load_private_key(path)))
                    except TransportError as exc:
                        log.debug("skipping %s: %s", path, exc)
        self._loaded = found
        return found


def load_private_key(path: Path) -> paramiko.PKey:
    """A private key file, with errors a person can act on."""
    try:
        return paramiko.PKey.from_path(path)
    except FileNotFoundError:
        raise AuthError(f"identity file {path} does not exist") from None
    except PermissionError:
        raise AuthError(f"identity file {path} is not readable") from None
    except paramiko.PasswordRequiredException:
        raise AuthError(
            f"identity file {path} is encrypted; add it to ssh-agent (ssh-add) and omit -i"
        ) from None
    except (paramiko.SSHException, ValueError, UnicodeDecodeError) as exc:
        raise AuthError(
            f"identity file {path} is not a private key paramiko can read: {exc}"
        ) from None


class SSHTransport:
    """One authenticated SSH connection; `run_script` is one exec channel."""

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        credentials: Credentials,
        host_keys: HostKeyPolicy,
        connect_timeout_s: float = 15.0,
        cancel: Cancel = NEVER,
    ) -> None:
        self.host, self.port, self.user = host, port, user
        self.cancel = cancel
        self.credentials = credentials
        self.host_keys = host_keys
        self.connect_timeout_s = connect_timeout_s
        self.description = f"ssh://{user}@{host}:{port}"
        self.exec_count = 0
        self.host_key_verification = ""
        # The key the server presented, kept so it can still be checked against fingerprints
        # that appear only after login (cloud-init prints them late in first boot).
        self.host_key: paramiko.PKey | None = None
        self.authenticated_key: paramiko.PKey | None = None
        self.offered_auth_methods: dict[str, tuple[str, ...]] = {}
        self.peer_address: str | None = None
        self.local_address: str | None = None
        self._transport: paramiko.Transport | None = None

    # -- connecting -------------------------------------------------------------------------

    def _open(self) -> paramiko.Transport:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.connect_timeout_s)
        except ConnectionRefusedError:
            raise ConnectError(f"connection to {self.host}:{self.port} refused") from None
        except TimeoutError:
            raise ConnectError(
                f"connection to {self.host}:{self.port} timed out after {self.connect_timeout_s:g}s"
            ) from None
        except socket.gaierror as exc:
            raise ConnectError(f"cannot resolve {self.host}: {exc.strerror}") from None
        except OSError as exc:
            raise ConnectError(
                f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        self.peer_address = sock.getpeername()[0]
        self.local_address = sock.getsockname()[0]
        transport = paramiko.Transport(sock)
        transport.banner_timeout = self.connect_timeout_s
        transport.handshake_timeout = self.connect_timeout_s
        try:
            transport.start_client(timeout=self.connect_timeout_s)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            transport.close()
            raise ConnectError(
                f"SSH handshake with {self.host}:{self.port} failed: {exc or type(exc).__name__}"
            ) from None
        return transport

    def _offered_methods(self, transport: paramiko.Transport, user: str) -> tuple[str, ...]:
        try:
            transport.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            return tuple(exc.allowed_types)
        except paramiko.SSHException as exc:
            log.debug("auth-none probe for %s failed: %s", user, exc)
            return ()
        return ("none",)

    def connect(self, probe_users: Sequence[str] = ("root",)) -> None:
        """Connect, verify the host key, learn the offered auth methods, and log in."""
        transport = self._open()
        try:
            self.host_key = transport.get_remote_server_key()
            self.host_key_verification = self.host_keys.verify(self.host, self.port, self.host_key)
            # OpenSSH refuses a change of user name within one connection, so the login user
            # is probed here and other users on short connections of their own.
            self.offered_auth_methods[self.user] = self._offered_methods(transport, self.user)
            if "none" in self.offered_auth_methods[self.user]:
                self._transport = transport
                return
            self._authenticate(transport)
        except BaseException:
            transport.close()
            raise
        self._transport = transport
        for other in probe_users:
            if other != self.user:
                self.offered_auth_methods[other] = self._probe_user(other)

    def _probe_user(self, user: str) -> tuple[str, ...]:
        try:
            transport = self._open()
        except TransportError as exc:
            log.debug("auth-method probe for %s failed: %s", user, exc)
            return ()
        try:
            return self._offered_methods(transport, user)
        finally:
            transport.close()

    def _authenticate(self, transport: paramiko.Transport) -> None:
        candidates = self.credentials.candidates()
        if not candidates:
            raise AuthError(
                f"no SSH key to log in as {self.user}@{self.host}: pass -i/--identity-file "
                "or load a key into ssh-agent"
            )
        offered = self.offered_auth_methods.get(self.user, ())
        if offered and "publickey" not in offered:
            raise AuthError(
                f"{self.host}:{self.port} does not accept public keys for {self.user} "
                f"(offers: {', '.join(offered)})"
            )
        tried = []
        for label, key in candidates:
            tried.append(label)
            try:
                remaining = transport.auth_publickey(self.user, key)
            except paramiko.AuthenticationException:
                continue
            except paramiko.SSHException as exc:
                raise AuthError(f"SSH authentication as {self.user} failed: {exc}") from None
            if remaining:
                needed = ", ".join(remaining)
                raise AuthError(
                    f"{self.user}@{self.host} requires more than a key (next: {needed})"
                )
            self.authenticated_key = key
            return
        raise AuthError(
            f"permission denied (publickey) for {self.user}@{self.host}:{self.port}; "
            f"tried {len(tried)} key(s): {', '.join(tried)}"
        )

    # -- running ----------------------------------------------------------------------------

    def run_script(self, script: str, timeout_s: float) -> CommandResult:
        if self._transport is None or not self._transport.is_active():
            raise ConnectError(f"not connected to {self.host}:{self.port}")
        self.exec_count += 1
        started = time.monotonic()
        deadline = started + timeout_s
        channel = self._transport.open_session(timeout=self.connect_timeout_s)
        try:
            channel.exec_command("sh -s")
            channel.sendall(script.encode())
            channel.shutdown_write()
            return self._drain(channel, started, deadline)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise ConnectError(f"connection to {self.host}:{self.port} lost: {exc}") from None
        finally:
            channel.close()

    def _drain(self, channel: paramiko.Channel, started: float, deadline: float) -> CommandResult:
        stdout, stderr = bytearray(), bytearray()
        truncated = False
        while True:
            self.cancel.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CommandResult(
                    None, bytes(stdout), bytes(stderr), True, time.monotonic() - started, truncated
                )
            select.select([channel], [], [], min(remaining, 0.5))
            progressed = False
            while channel.recv_ready():
                chunk = channel.recv(65536)
                progressed = True
                if len(stdout) < MAX_SCRIPT_OUTPUT:
                    stdout += chunk
                else:
                    truncated = True
            while channel.recv_stderr_ready():
                chunk = channel.recv_stderr(65536)
                progressed = True
                if len(stderr) < 1024 * 1024:
                    stderr += chunk
            drained = not progressed and not channel.recv_ready()
            if channel.exit_status_ready() and drained and (channel.eof_received or channel.closed):
                break
            if channel.closed and not channel.recv_ready() and not channel.recv_stderr_ready():
                break
        status = channel.recv_exit_status() if channel.exit_status_ready() else None
        return CommandResult(
            status, bytes(stdout), bytes(stderr), False, time.monotonic() - started, truncated
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
