"""A hostile SSH server on 127.0.0.1, in process (paramiko's server side), for the SSH transport.

Each `Behaviour` is one way a hostile or broken image can stall a client that trusts it: say
nothing, stop after the banner, hang the authentication, never answer the exec request, offer a
one-byte window, or answer with endless output. Every thread is a daemon and `stop()` releases
whatever is blocked, so a test never waits on the server.
"""

from __future__ import annotations

import enum
import socket
import threading
from pathlib import Path
from types import TracebackType

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_SUCCEEDED

BANNER = b"SSH-2.0-OpenSSH_9.6\r\n"
USER = "ec2-user"


class Behaviour(enum.Enum):
    NO_BANNER = "no-banner"
    BANNER_THEN_SILENCE = "banner-then-silence"
    AUTH_NEVER_ANSWERED = "auth-never-answered"
    EXEC_NEVER_ANSWERED = "exec-never-answered"
    TINY_WINDOW = "tiny-window"
    ENDLESS_OUTPUT = "endless-output"


class _Server(paramiko.ServerInterface):
    def __init__(self, owner: HostileSSHServer) -> None:
        self.owner = owner

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if self.owner.behaviour is Behaviour.AUTH_NEVER_ANSWERED:
            self.owner.stopped.wait()
            return AUTH_FAILED
        return AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.owner.exec_requested.set()
        if self.owner.behaviour is Behaviour.EXEC_NEVER_ANSWERED:
            # Blocks paramiko's reader thread: the reply never comes, and nothing else is read.
            self.owner.stopped.wait()
            return False
        if self.owner.behaviour is Behaviour.ENDLESS_OUTPUT:
            threading.Thread(target=self.owner.flood, args=(channel,), daemon=True).start()
        return True


class HostileSSHServer:
    """Listens on a free loopback port; `key_path` is a client key every login is accepted with."""

    def __init__(self, behaviour: Behaviour, workdir: Path) -> None:
        self.behaviour = behaviour
        self.stopped = threading.Event()
        self.exec_requested = threading.Event()
        self.connections = 0
        self.bytes_sent = 0
        self._host_key = paramiko.ECDSAKey.generate()
        workdir.mkdir(parents=True, exist_ok=True)
        self.key_path = workdir / "client_key"
        paramiko.ECDSAKey.generate().write_private_key_file(str(self.key_path))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._sockets: list[socket.socket] = []
        self._transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"ssh://{USER}@127.0.0.1:{self.port}"

    def __enter__(self) -> HostileSSHServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopped.set()
        for transport in self._transports:
            transport.close()
        for sock in self._sockets:
            sock.close()
        self._thread.join(timeout=5)
        self._listener.close()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except (OSError, EOFError, paramiko.SSHException):
                # The client hung up (as it should, at its output limit).
                return
            self.connections += 1
            self._sockets.append(sock)
            if self.behaviour is Behaviour.NO_BANNER:
                continue  # accept the TCP connection, then say nothing at all
            if self.behaviour is Behaviour.BANNER_THEN_SILENCE:
                sock.sendall(BANNER)
                continue
            self._serve(sock)

    def _serve(self, sock: socket.socket) -> None:
        # A one-byte window: the client may send one byte of its script, and since nothing here
        # ever reads the channel, the window is never adjusted.
        window = 1 if self.behaviour is Behaviour.TINY_WINDOW else 2 * 1024 * 1024
        transport = paramiko.Transport(sock, default_window_size=window)
        transport.add_server_key(self._host_key)
        self._transports.append(transport)
        transport.start_server(event=threading.Event(), server=_Server(self))

    def flood(self, channel: paramiko.Channel) -> None:
        """Endless stdout on an answered exec request, as fast as the client takes it."""
        chunk = b"x" * 32000 + b"\n"
        channel.settimeout(0.5)
        while not self.stopped.is_set() and not channel.closed:
            try:
                self.bytes_sent += channel.send(chunk)
            except TimeoutError:
                continue
            except (OSError, EOFError, paramiko.SSHException):
                # The client hung up (as it should, at its output limit).
                return
