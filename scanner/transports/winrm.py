"""WinRM transport (pywinrm): log in with NTLM and run the whole collection script as ONE command.

The script is too long for a command line (cmd.exe stops at 8191 characters), so the command is a
small `powershell -EncodedCommand` bootstrap that reads the real script, base64-encoded, from
standard input (`$input`), which pywinrm sends with WS-Man Send messages. This is the approach
Ansible's WinRM connection uses; base64 keeps the script clear of the console code page.

Over HTTP (5985) NTLM seals every message (pywinrm's message encryption), so the script and its
output never cross the network in the clear; over HTTPS (5986) TLS does, and NTLM is bound to
the server's certificate (channel binding).
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import requests
from spnego.exceptions import SpnegoError
from winrm.exceptions import (
    InvalidCredentialsError,
    WinRMError,
    WinRMOperationTimeoutError,
    WinRMTransportError,
    WSManFaultError,
)
from winrm.protocol import Protocol

from scanner.transports.base import (
    MAX_SCRIPT_OUTPUT,
    AuthError,
    CommandResult,
    ConnectError,
    TransportError,
)

log = logging.getLogger(__name__)

_T = TypeVar("_T")

HTTP_PORT = 5985
HTTPS_PORT = 5986
# Characters of base64 per stdin line, and lines per WS-Man Send message: one Send stays well
# under WinRM's default MaxEnvelopeSizekb of 500 (pywinrm announces 150 KiB).
_LINE = 4096
_LINES_PER_SEND = 16

# Reads the base64 script from standard input and runs it; $input enumerates stdin's lines.
BOOTSTRAP = (
    "$ErrorActionPreference = 'Stop'\n"
    "$AmiscanSource = [System.Text.Encoding]::UTF8.GetString("
    "[Convert]::FromBase64String((@($input) -join '')))\n"
    "& ([ScriptBlock]::Create($AmiscanSource))\n"
)


def encoded_command(script: str) -> str:
    """PowerShell's -EncodedCommand form of a script: base64 of its UTF-16LE text."""
    return base64.b64encode(script.encode("utf-16-le")).decode("ascii")


def command_line() -> tuple[str, list[str]]:
    """The command and arguments of the one WinRM command a scan runs."""
    return "powershell.exe", [
        "-NoLogo",
        "-NoProfile",
        "-NonInteractive",
        # The probes' runspaces load system modules (NetSecurity, CimCmdlets); a Restricted
        # or AllSigned machine policy must not stop that. Group Policy still overrides it.
        "-ExecutionPolicy",
        "Bypass",
        "-EncodedCommand",
        encoded_command(BOOTSTRAP),
    ]


def stdin_chunks(script: str) -> list[bytes]:
    """The script as base64 lines, grouped into the payloads of successive Send messages."""
    encoded = base64.b64encode(script.encode("utf-8")).decode("ascii")
    lines = [encoded[i : i + _LINE] for i in range(0, len(encoded), _LINE)] or [""]
    return [
        "".join(f"{line}\r\n" for line in lines[i : i + _LINES_PER_SEND]).encode("ascii")
        for i in range(0, len(lines), _LINES_PER_SEND)
    ]


@dataclass(frozen=True)
class WinRMEndpoint:
    """Where WinRM listens: host, port and whether it is the HTTPS listener."""

    host: str
    port: int = HTTP_PORT
    https: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.https else 'http'}://{host}:{self.port}/wsman"

    @property
    def scheme(self) -> str:
        return "winrms" if self.https else "winrm"


class WinRMTransport:
    """One WinRM shell on a Windows host; `run_script` is one command in it."""

    def __init__(
        self,
        endpoint: WinRMEndpoint,
        user: str,
        password: str,
        *,
        connect_timeout_s: float = 15.0,
        operation_timeout_s: int = 20,
        validate_certificate: bool = True,
        message_encryption: Literal["auto", "always"] = "auto",
        send_cbt: bool | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.user = user
        self.description = f"{endpoint.scheme}://{user}@{endpoint.host}:{endpoint.port}"
        self.exec_count = 0
        self.local_address: str | None = None
        self.peer_address: str | None = None
        self.connect_timeout_s = connect_timeout_s
        operation = max(1, int(operation_timeout_s))
        self._protocol = Protocol(
            endpoint.url,
            transport="ntlm",
            username=user,
            password=password,
            server_cert_validation="validate" if validate_certificate else "ignore",
            # Over HTTP the only protection is NTLM sealing, so there is no "never" here.
            message_encryption=message_encryption,
            # Channel binding ties NTLM to the TLS certificate; plain HTTP has none to bind to.
            send_cbt=endpoint.https if send_cbt is None else send_cbt,
            # The CA bundle requests would take from the environment, passed explicitly (pywinrm
            # warns about, and will drop, reading it itself).
            ca_trust_path=os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or "legacy_requests",
            operation_timeout_sec=operation,
            read_timeout_sec=operation + max(1, int(connect_timeout_s)),
            # Environment proxies are not used: the scanner reaches the host directly.
            proxy=None,
        )
        self._shell_id: str | None = None

    # -- connecting -------------------------------------------------------------------------

    def _where(self) -> str:
        return f"{self.endpoint.host}:{self.endpoint.port}"

    def _tcp_check(self) -> None:
        # requests uses one timeout for connecting and reading; connecting first, with the
        # connect timeout, tells "nothing answers" from "WinRM is slow" in the error.
        try:
            sock = socket.create_connection(
                (self.endpoint.host, self.endpoint.port), timeout=self.connect_timeout_s
            )
        except OSError as exc:
            raise _socket_error(exc, self._where(), self.connect_timeout_s) from None
        with sock:
            self.local_address = sock.getsockname()[0]
            self.peer_address = sock.getpeername()[0]

    def connect(self) -> None:
        """Reach the host, authenticate (NTLM) and open the shell the command will run in."""
        self._tcp_check()
        self._shell_id = self._call(lambda: self._protocol.open_shell(codepage=65001))

    def _call(self, action: Callable[[], _T]) -> _T:
        try:
            return action()
        except InvalidCredentialsError:
            raise AuthError(
                f"WinRM at {self._where()} rejected the credentials of {self.user} "
                "(HTTP 401: wrong user or password, or NTLM not allowed)"
            ) from None
        except PermissionError as exc:
            # requests-ntlm: the server answered 401 without an NTLM challenge.
            raise AuthError(f"WinRM at {self._where()} refused NTLM: {exc}") from None
        except SpnegoError as exc:
            raise AuthError(f"NTLM with {self._where()} failed: {exc}") from None
        except requests.exceptions.RequestException as exc:
            raise _request_error(exc, self._where(), self._protocol.read_timeout_sec) from None
        except WSManFaultError as exc:
            raise TransportError(
                f"WinRM at {self._where()} answered with a fault: {exc.reason}"
            ) from None
        except WinRMTransportError as exc:
            raise TransportError(f"WinRM at {self._where()}: {exc.message}") from None
        except WinRMError as exc:
            raise TransportError(f"WinRM at {self._where()}: {exc}") from None

    # -- running ----------------------------------------------------------------------------

    def run_script(self, script: str, timeout_s: float) -> CommandResult:
        """Run `script` as the one command of this scan; stop waiting after `timeout_s`."""
        if self._shell_id is None:
            raise ConnectError(f"not connected to {self._where()}")
        shell_id = self._shell_id
        started = time.monotonic()
        deadline = started + timeout_s
        command, arguments = command_line()
        self.exec_count += 1
        command_id = self._call(
            lambda: self._protocol.run_command(
                shell_id, command, arguments, console_mode_stdin=False
            )
        )
        try:
            chunks = stdin_chunks(script)
            for index, chunk in enumerate(chunks):
                last = index == len(chunks) - 1
                self._call(
                    functools.partial(
                        self._protocol.send_command_input, shell_id, command_id, chunk, end=last
                    )
                )
            return self._receive(shell_id, command_id, started, deadline)
        finally:
            try:
                self._call(lambda: self._protocol.cleanup_command(shell_id, command_id))
            except TransportError as exc:
                log.debug("cleaning up the WinRM command failed: %s", exc)

    def _receive(
        self, shell_id: str, command_id: str, started: float, deadline: float
    ) -> CommandResult:
        stdout, stderr = bytearray(), bytearray()
        truncated = False
        while True:
            if time.monotonic() >= deadline:
                return CommandResult(
                    None, bytes(stdout), bytes(stderr), True, time.monotonic() - started, truncated
                )
            try:
                out, err, status, done = self._call(
                    lambda: self._protocol.get_command_output_raw(shell_id, command_id)
                )
            except WinRMOperationTimeoutError:
                # The command is still running and printed nothing within the operation timeout.
                continue
            if len(stdout) < MAX_SCRIPT_OUTPUT:
                stdout += out
            else:
                truncated = True
            if len(stderr) < 1024 * 1024:
                stderr += err
            if done:
                return CommandResult(
                    status,
                    bytes(stdout),
                    bytes(stderr),
                    False,
                    time.monotonic() - started,
                    truncated,
                )

    def close(self) -> None:
        """Close the shell (and its HTTP session); errors are only logged."""
        if self._shell_id is None:
            return
        shell_id, self._shell_id = self._shell_id, None
        try:
            self._call(lambda: self._protocol.close_shell(shell_id))
        except TransportError as exc:
            log.debug("closing the WinRM shell failed: %s", exc)


def _socket_error(exc: OSError, where: str, timeout_s: float) -> ConnectError:
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"connection to {where} refused (is WinRM listening?)")
    if isinstance(exc, TimeoutError | socket.timeout):
        return ConnectError(f"connection to {where} timed out after {timeout_s:g}s")
    if isinstance(exc, socket.gaierror):
        return ConnectError(f"cannot resolve {where.rsplit(':', 1)[0]}: {exc.strerror}")
    return ConnectError(f"cannot connect to {where}: {exc.strerror or exc}")


def _request_error(
    exc: requests.exceptions.RequestException, where: str, read_timeout: object
) -> TransportError:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return ConnectError(f"connection to {where} timed out")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return ConnectError(
            f"WinRM at {where} accepted the connection but did not answer within {read_timeout}s"
        )
    if isinstance(exc, requests.exceptions.SSLError):
        return ConnectError(
            f"TLS with {where} failed: {_innermost(exc)} "
            "(a self-signed WinRM certificate needs --winrm-insecure)"
        )
    if isinstance(exc, requests.exceptions.ConnectionError):
        cause = _innermost(exc)
        if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
            return ConnectError(f"connection to {where} refused (is WinRM listening?)")
        if isinstance(cause, socket.gaierror) or "resolve" in str(cause).lower():
            return ConnectError(f"cannot resolve {where.rsplit(':', 1)[0]}")
        return ConnectError(f"connection to {where} failed: {cause}")
    return TransportError(f"WinRM request to {where} failed: {exc}")


def _innermost(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    current: BaseException = exc
    while id(current) not in seen:
        seen.add(id(current))
        nested = current.__cause__ or current.__context__
        if nested is None and current.args and isinstance(current.args[0], BaseException):
            nested = current.args[0]
        reason = getattr(current, "reason", None)
        if nested is None and isinstance(reason, BaseException):
            nested = reason
        if nested is None:
            break
        current = nested
    return current
