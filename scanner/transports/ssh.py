"""SSH transport (paramiko): log in the way Marketplace vetting does and run one script.

paramiko's SSHClient hides which key authenticated and cannot ask the server which methods it
offers; both matter here (the injected key is excluded from `linux.ssh.authorized-keys`, and the
offered methods are the outside-in view of password authentication), so the Transport is driven
directly.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import paramiko

from scanner.cancel import NEVER, Cancel
from scanner.terminal import inert
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


# How often every wait wakes up to look at its deadline and at cancellation.
_POLL_S = 0.05
# paramiko's own timeouts are set this much beyond ours, so that ours always fire first and say
# which step stalled; theirs are only a backstop.
_GRACE_S = 1.0
# Per turn of the collection loop, so that a flood of output cannot starve the deadline check.
_READS_PER_TURN = 64
_RECV_BYTES = 65536
_MAX_STDERR = 1024 * 1024
# A guest string in an error message (a banner, an auth method name) is cut to this.
_GUEST_TEXT_CHARS = 200


class _ParamikoDebugOnly(logging.Filter):
    """paramiko's reader thread logs every failure it meets as ERROR, with a traceback; amiscan
    reports each of those failures itself, as one line, so paramiko's own account is debug
    output (-vv) only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return logging.getLogger().isEnabledFor(logging.DEBUG)


logging.getLogger("paramiko.transport").addFilter(_ParamikoDebugOnly())


def _guest(text: object) -> str:
    """Text the server chose (an exception quoting its banner, say), safe for one line."""
    return inert(text, _GUEST_TEXT_CHARS) or type(text).__name__


class _Watchdog:
    """Closes an SSH connection when its deadline passes or the scan is cancelled.

    paramiko waits without a deadline in several places (the reply to an exec request, a send
    window that never opens, a server that stops reading its socket); closing the connection
    from another thread is the one thing that ends every one of those waits.
    """

    def __init__(
        self,
        transport: paramiko.Transport,
        sock: socket.socket,
        limit_s: float,
        cancel: Cancel,
        stage: str,
        grace_s: float = 0.0,
    ) -> None:
        self.transport, self.sock, self.cancel = transport, sock, cancel
        # The limit as the user set it, for the message; the watchdog fires `grace_s` after it
        # when the code it guards checks the deadline itself and should be the one to say so.
        self.limit_s = limit_s
        self.deadline = time.monotonic() + limit_s
        self._fires_at = self.deadline + grace_s
        # What the connection was doing, for the message when the deadline passes.
        self.stage = stage
        self.fired = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, name="amiscan-ssh-watchdog", daemon=True
        )

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> _Watchdog:
        return self.__enter__()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    @property
    def expired(self) -> bool:
        return self.fired or time.monotonic() >= self.deadline

    def _watch(self) -> None:
        while not self._stopped.wait(_POLL_S):
            if self.cancel.is_set or time.monotonic() >= self._fires_at:
                self.fired = True
                _close_quietly(self.transport, self.sock)
                return


def _close_quietly(transport: paramiko.Transport, sock: socket.socket) -> None:
    # Transport.close() does nothing before the handshake started; the socket is closed too,
    # which is what ends a read of the banner.
    try:
        transport.close()
    except Exception as exc:  # closing must never be what fails
        log.debug("closing the SSH transport: %s", exc)
    try:
        sock.close()
    except OSError as exc:
        log.debug("closing the socket: %s", exc)


class SSHTransport:
    """One authenticated SSH connection; `run_script` is one exec channel.

    Every wait has a deadline: the TCP connection, the banner, the key exchange and the
    authentication together take at most `connect_timeout_s`, and opening the channel, the
    exec request, sending the script and reading its output at most the collection's
    `timeout_s`; a cancelled scan ends any of them within a poll interval.
    """

    def __init__(
        self,
        host: str,
        port: int,
        user: str,
        credentials: Credentials,
        host_keys: HostKeyPolicy,
        connect_timeout_s: float = 15.0,
        cancel: Cancel = NEVER,
        max_output: int = MAX_SCRIPT_OUTPUT,
    ) -> None:
        self.host, self.port, self.user = host, port, user
        self.cancel = cancel
        self.credentials = credentials
        self.host_keys = host_keys
        self.connect_timeout_s = connect_timeout_s
        self.max_output = max_output
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

    def _tcp_connect(self, deadline: float) -> socket.socket:
        """A TCP connection, waited for in slices so that cancellation is seen at once."""
        try:
            addresses = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ConnectError(f"cannot resolve {self.host}: {exc.strerror}") from None
        failure: OSError | None = None
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            try:
                self._wait_connected(sock, address, deadline)
            except OSError as exc:
                sock.close()
                failure = exc
                if isinstance(exc, TimeoutError):
                    break
                continue
            except BaseException:
                sock.close()
                raise
            return sock
        if isinstance(failure, ConnectionRefusedError):
            raise ConnectError(f"connection to {self.host}:{self.port} refused")
        if isinstance(failure, TimeoutError):
            raise ConnectError(
                f"connection to {self.host}:{self.port} timed out after {self.connect_timeout_s:g}s"
            )
        detail = (failure.strerror or str(failure)) if failure else "no address"
        raise ConnectError(f"cannot connect to {self.host}:{self.port}: {detail}")

    def _wait_connected(self, sock: socket.socket, address: object, deadline: float) -> None:
        sock.setblocking(False)
        code = sock.connect_ex(address)  # type: ignore[arg-type]
        while code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            self.cancel.check()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            _, writable, _ = select.select([], [sock], [], min(remaining, _POLL_S))
            if writable:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
        sock.setblocking(True)

    def _open(self, deadline: float) -> tuple[paramiko.Transport, _Watchdog]:
        """A connection past the key exchange, and the watchdog that bounds it until stopped."""
        sock = self._tcp_connect(deadline)
        self.peer_address = sock.getpeername()[0]
        self.local_address = sock.getsockname()[0]
        remaining = max(deadline - time.monotonic(), 0.0)
        transport = paramiko.Transport(sock)
        transport.banner_timeout = remaining + _GRACE_S
        transport.handshake_timeout = remaining + _GRACE_S
        transport.auth_timeout = remaining + _GRACE_S
        watchdog = _Watchdog(transport, sock, remaining, self.cancel, "waiting for the SSH banner")
        # The limit the user set, not what the TCP connection left of it.
        watchdog.limit_s = self.connect_timeout_s
        watchdog.start()
        try:
            negotiated = threading.Event()
            transport.start_client(event=negotiated)
            # The event is not set when the transport is closed under it (deadline, cancel).
            while not negotiated.wait(_POLL_S) and transport.is_active():
                if transport.remote_version:
                    watchdog.stage = "exchanging keys"
            if not transport.is_active() or not negotiated.is_set():
                raise self._lost(watchdog, transport.get_exception(), "the SSH handshake")
        except BaseException:
            watchdog.stop()
            _close_quietly(transport, sock)
            raise
        return transport, watchdog

    def _lost(self, watchdog: _Watchdog, exc: BaseException | None, doing: str) -> TransportError:
        """The error for a connection that stopped: cancelled (raised), out of time, or failed."""
        self.cancel.check()
        if watchdog.expired:
            return ConnectError(
                f"{self.host}:{self.port} did not answer within {watchdog.limit_s:g}s "
                f"({watchdog.stage})"
            )
        detail = _guest(exc) if exc is not None else "the server closed the connection"
        return ConnectError(f"{doing} with {self.host}:{self.port} failed: {detail}")

    def _offered_methods(self, transport: paramiko.Transport, user: str) -> tuple[str, ...]:
        try:
            transport.auth_none(user)
        except paramiko.BadAuthenticationType as exc:
            return tuple(_guest(kind) for kind in exc.allowed_types)
        except paramiko.SSHException as exc:
            if not transport.is_active():
                raise
            log.debug("auth-none probe for %s failed: %s", user, exc)
            return ()
        return ("none",)

    def connect(self, probe_users: Sequence[str] = ("root",)) -> None:
        """Connect, verify the host key, learn the offered auth methods, and log in."""
        transport, watchdog = self._open(time.monotonic() + self.connect_timeout_s)
        try:
            self.host_key = transport.get_remote_server_key()
            self.host_key_verification = self.host_keys.verify(self.host, self.port, self.host_key)
            # OpenSSH refuses a change of user name within one connection, so the login user
            # is probed here and other users on short connections of their own.
            watchdog.stage = f"asking which authentication methods {self.user} may use"
            self.offered_auth_methods[self.user] = self._offered_methods(transport, self.user)
            if "none" not in self.offered_auth_methods[self.user]:
                watchdog.stage = f"authenticating as {self.user}"
                self._authenticate(transport)
        except HostKeyError:
            watchdog.stop()
            _close_quietly(transport, watchdog.sock)
            raise
        except (TransportError, paramiko.SSHException, OSError, EOFError) as exc:
            watchdog.stop()
            _close_quietly(transport, watchdog.sock)
            if isinstance(exc, TransportError) and not watchdog.expired:
                self.cancel.check()
                raise
            raise self._lost(watchdog, exc, "logging in") from None
        except BaseException:
            watchdog.stop()
            _close_quietly(transport, watchdog.sock)
            raise
        watchdog.stop()
        self._transport = transport
        for other in probe_users:
            if other != self.user and "none" not in self.offered_auth_methods[self.user]:
                self.offered_auth_methods[other] = self._probe_user(other)

    def _probe_user(self, user: str) -> tuple[str, ...]:
        try:
            transport, watchdog = self._open(time.monotonic() + self.connect_timeout_s)
        except TransportError as exc:
            log.debug("auth-method probe for %s failed: %s", user, exc)
            return ()
        try:
            return self._offered_methods(transport, user)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.cancel.check()
            log.debug("auth-method probe for %s failed: %s", user, exc)
            return ()
        finally:
            watchdog.stop()
            _close_quietly(transport, watchdog.sock)

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
                # sshd hangs up after MaxAuthTries: that too is "permission denied".
                if not transport.is_active():
                    break
                continue
            except paramiko.SSHException as exc:
                raise AuthError(
                    f"SSH authentication as {self.user} failed: {_guest(exc)}"
                ) from None
            if remaining:
                needed = ", ".join(_guest(method) for method in remaining)
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
        transport = self._transport
        if transport is None or not transport.is_active():
            raise ConnectError(f"not connected to {self.host}:{self.port}")
        self.exec_count += 1
        started = time.monotonic()
        # The exchange below returns a timed-out result at the deadline itself; the watchdog,
        # a little later, ends a wait inside paramiko (the exec reply, a closed window).
        watchdog = _Watchdog(
            transport,
            transport.sock,  # type: ignore[arg-type]
            timeout_s,
            self.cancel,
            "opening a session channel",
            grace_s=_GRACE_S,
        )
        with watchdog:
            channel: paramiko.Channel | None = None
            try:
                channel = transport.open_session(timeout=timeout_s + 2 * _GRACE_S)
                watchdog.stage = "waiting for the answer to the exec request"
                channel.exec_command("sh -s")
                watchdog.stage = "sending the collection script"
                return self._exchange(channel, script.encode(), started, watchdog)
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise self._lost(watchdog, exc, "the collection") from None
            finally:
                if channel is not None:
                    _close_channel(channel)

    def _exchange(
        self, channel: paramiko.Channel, script: bytes, started: float, watchdog: _Watchdog
    ) -> CommandResult:
        """Send the script and read its output at once (a script that prints before it has
        read all of its input must not deadlock), until it exits or the deadline passes."""
        stdout, stderr = bytearray(), bytearray()
        sent = 0
        while True:
            self.cancel.check()
            if time.monotonic() >= watchdog.deadline:
                return CommandResult(
                    None, bytes(stdout), bytes(stderr), True, time.monotonic() - started
                )
            progressed = False
            if sent < len(script):
                if channel.closed or channel.exit_status_ready():
                    sent = len(script)  # the script ended early; its output says why
                elif channel.send_ready():
                    # send_ready: the window is open, so this sends without waiting.
                    sent += channel.send(script[sent : sent + 32768])
                    progressed = True
                if sent >= len(script) and not channel.closed:
                    channel.shutdown_write()
                    watchdog.stage = "reading the output"
            for _ in range(_READS_PER_TURN):
                if not channel.recv_ready():
                    break
                chunk = channel.recv(_RECV_BYTES)
                if not chunk:
                    break
                progressed = True
                room = self.max_output - len(stdout)
                if len(chunk) >= room:
                    # A runaway: no probe prints this much. What came is kept, the rest is not
                    # waited for.
                    stdout += chunk[:room]
                    return CommandResult(
                        None, bytes(stdout), bytes(stderr), False, time.monotonic() - started, True
                    )
                stdout += chunk
            for _ in range(_READS_PER_TURN):
                if not channel.recv_stderr_ready():
                    break
                chunk = channel.recv_stderr(_RECV_BYTES)
                progressed = progressed or bool(chunk)
                stderr += chunk[: max(_MAX_STDERR - len(stderr), 0)]
            pending = channel.recv_ready() or channel.recv_stderr_ready()
            if not pending and sent >= len(script):
                if channel.exit_status_ready() and (channel.eof_received or channel.closed):
                    break
                if channel.closed:
                    break
            if not progressed:
                remaining = watchdog.deadline - time.monotonic()
                select.select([channel], [], [], max(min(remaining, _POLL_S), 0.0))
        status = channel.recv_exit_status() if channel.exit_status_ready() else None
        return CommandResult(
            status, bytes(stdout), bytes(stderr), False, time.monotonic() - started
        )

    def close(self) -> None:
        if self._transport is not None:
            _close_quietly(self._transport, self._transport.sock)  # type: ignore[arg-type]
            self._transport = None


def _close_channel(channel: paramiko.Channel) -> None:
    try:
        channel.close()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        log.debug("closing the channel: %s", exc)
