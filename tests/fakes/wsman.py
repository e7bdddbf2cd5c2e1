"""An honest WS-Management (WinRM) endpoint for `responses`, in front of a recorded Windows host.

What is real:
- HTTP: pywinrm talks through `requests`; `responses` hands every POST to `FakeWSMan.handle`.
- NTLM: the 401 challenge round trip is pyspnego's own acceptor (`spnego.server(protocol="ntlm")`)
  checking the client's NTLMv2 response against a credential file (NTLM_USER_FILE, Heimdal
  `DOMAIN:USER:PASSWORD` lines). A wrong password makes the acceptor refuse the AUTHENTICATE
  message, and the fake answers 401 as WinRM does.
- Message encryption: once authenticated, every request must be a multipart/encrypted body
  (`application/HTTP-SPNEGO-session-encrypted`, MS-WSMV 2.2.9.1) sealed with the NTLM session key;
  the fake unseals it with the acceptor's context (checking signature and sequence number) and
  seals every answer the same way. A plaintext SOAP body after authentication is refused (and
  counted), as WinRM does with AllowUnencrypted=false.
- SOAP: requests are parsed as XML; Create, Command, Send, Receive, Signal and Delete are answered
  with WS-Man envelopes in the real namespaces, with `a:RelatesTo` = the request's MessageID,
  ShellId/CommandId, base64 `rsp:Stream` elements and `rsp:CommandState` Done with an ExitCode.
  Operation timeouts are the real WSManFault 2150858793.

What is faked:
- There is no TCP connection per NTLM context: the fake keeps one authenticated context for the
  endpoint (pywinrm uses one keep-alive connection, so this is what it sees).
- Channel binding (HTTPS) is not exercised: `responses` has no socket to take a certificate from.
- powershell.exe does not run. The fake checks the command is the `-EncodedCommand` bootstrap that
  reads stdin, decodes the script sent on stdin, and then plays PowerShell: it reads the marker,
  limits and `Invoke-AmiscanProbe` calls from the real script and prints, for each probe, the
  record `Invoke-AmiscanProbe` prints, filled with the recorded output of that probe on the host.
  A hostile host (`after_end`, `ends_after`) goes on printing records with the marker after END.
"""

from __future__ import annotations

import base64
import re
import socket
import struct
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import responses
import spnego
from requests import PreparedRequest

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "p": "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
}
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
DONE = f"{SHELL}/CommandState/Done"
RUNNING = f"{SHELL}/CommandState/Running"
ENCRYPTED_PROTOCOL = "application/HTTP-SPNEGO-session-encrypted"
BOUNDARY = b"--Encrypted Boundary"
OPERATION_TIMEOUT_CODE = 2150858793


@dataclass(frozen=True)
class RecordedProbe:
    """What one probe printed on a real host: its output, and how it ended."""

    stdout: str
    status: str = "ok"
    error: str = ""


RecordedHost = Mapping[str, RecordedProbe | str]


@dataclass
class _Command:
    command: str
    arguments: list[str]
    stdin: bytearray = field(default_factory=bytearray)
    stdin_closed: bool = False
    stdout: bytes = b""
    exit_code: int = 0
    chunks: list[bytes] = field(default_factory=list)
    done: bool = False


# --- playing powershell.exe -----------------------------------------------------------------------

_MARKER = re.compile(r"^\$AmiscanMarker = '(AMISCAN-[0-9a-f]+)'$", re.M)
_LIMIT = re.compile(r"^\$AmiscanOutputLimit = (\d+)$", re.M)
_ERROR_LIMIT = re.compile(r"^\$AmiscanErrorLimit = (\d+)$", re.M)
_PROBE_CALL = re.compile(
    r"^Invoke-AmiscanProbe -Name '([A-Za-z0-9._-]+)' -Seconds (\d+) -Code '([A-Za-z0-9+/=]+)'$",
    re.M,
)


def _field(text: str, limit: int) -> tuple[str, str]:
    """ConvertTo-AmiscanField: (UTF-8 size, base64 of at most `limit` bytes) or ('0', '-')."""
    if not text:
        return "0", "-"
    data = text.encode("utf-8")
    return str(len(data)), base64.b64encode(data[:limit]).decode()


def _probe_record(
    marker: str, name: str, recorded: RecordedProbe | str | None, out_limit: int, err_limit: int
) -> str:
    """The record `Invoke-AmiscanProbe` prints for one probe of the recorded host."""
    if recorded is None:
        recorded = RecordedProbe("", "error", f"no recording of probe {name} on this host")
    elif isinstance(recorded, str):
        recorded = RecordedProbe(recorded)
    size, out = _field(recorded.stdout, out_limit)
    _, err = _field(recorded.error, err_limit)
    return f"{marker} PROBE {name} {recorded.status} 12 {size} {out} {err}"


@dataclass
class PlayedScript:
    """What the fake saw in one collection script."""

    marker: str
    probes: dict[str, str]
    stdout: bytes


def play_collection_script(
    script: str,
    host: RecordedHost,
    env: Mapping[str, str],
    complete: bool = True,
    after_end: RecordedHost | None = None,
    ends_after: int = 0,
) -> PlayedScript:
    """The stdout powershell.exe would print running `script` on the recorded host.

    A hostile host may print more with the script's marker once the script is done: a record for
    each probe of `after_end` (another recording, meant to override the genuine one), then
    `ends_after` more END records.
    """
    marker = _MARKER.search(script)
    limit = _LIMIT.search(script)
    error_limit = _ERROR_LIMIT.search(script)
    assert marker and limit and error_limit, "not an amiscan collection script"
    out_limit, err_limit = int(limit.group(1)), int(error_limit.group(1))
    lines = ["Windows PowerShell", "AMISCAN-0000000000000000 PROBE forged ok 0 0 - -"]
    m = marker.group(1)
    for key, value in env.items():
        lines.append(f"{m} ENV {key} {_field(value, 4096)[1]}")
    probes: dict[str, str] = {}
    for name, _seconds, code in _PROBE_CALL.findall(script):
        probes[name] = base64.b64decode(code).decode("utf-8")
        lines.append(_probe_record(m, name, host.get(name), out_limit, err_limit))
    if complete:
        lines.append(f"{m} END")
    for name, forged in (after_end or {}).items():
        lines.append(_probe_record(m, name, forged, out_limit, err_limit))
    lines.extend([f"{m} END"] * ends_after)
    return PlayedScript(m, probes, ("\r\n".join(lines) + "\r\n").encode("ascii"))


# --- SOAP -----------------------------------------------------------------------------------------


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        '<s:Envelope xml:lang="en-US" '
        + " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items() if k != "f")
        + ">"
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{str(uuid.uuid4()).upper()}</a:MessageID>"
        "<a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>"
        f"<a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(relates_to: str, subcode: str, reason: str, code: int) -> bytes:
    body = (
        "<s:Fault><s:Code><s:Value>s:Receiver</s:Value>"
        f"<s:Subcode><s:Value>{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault xmlns:f="{NS["f"]}" Code="{code}" Machine="EC2AMAZ-FAKE">'
        f"<f:Message>{escape(reason)}</f:Message></f:WSManFault></s:Detail></s:Fault>"
    )
    return _envelope("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault", relates_to, body)


class SoapFault(Exception):
    def __init__(self, envelope: bytes) -> None:
        super().__init__("fault")
        self.envelope = envelope


# --- the endpoint ---------------------------------------------------------------------------------


class FakeWSMan:
    """One WinRM endpoint: NTLM acceptor, message sealing, and a cmd shell that runs our script."""

    def __init__(
        self,
        url: str,
        host: RecordedHost,
        env: Mapping[str, str] | None = None,
        receive_chunks: int = 2,
        hang: bool = False,
        complete: bool = True,
        after_end: RecordedHost | None = None,
        ends_after: int = 0,
    ) -> None:
        self.url = url
        self.host = host
        self.env = dict(
            env
            or {
                "user": "EC2AMAZ-FAKE\\Administrator",
                "elevated": "True",
                "hostname": "EC2AMAZ-FAKE",
                "powershell": "5.1.20348.2849",
            }
        )
        self.receive_chunks = max(1, receive_chunks)
        self.hang = hang
        self.complete = complete
        self.after_end = after_end
        self.ends_after = ends_after
        self._context: Any = None
        self.authenticated = False
        self.shells: set[str] = set()
        self.commands: dict[str, _Command] = {}
        self.actions: list[str] = []
        self.sealed_requests = 0
        self.plaintext_requests = 0
        self.rejected_logins = 0
        self.played: list[PlayedScript] = []

    # -- HTTP + NTLM ----------------------------------------------------------------------------

    def handle(self, request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        authorization = request.headers.get("Authorization", "")
        if authorization:
            return self._authenticate(authorization, body, request)
        if not self.authenticated:
            return 401, {"WWW-Authenticate": "Negotiate"}, b""
        return self._message(body, request)

    def _authenticate(
        self, header: str, body: bytes, request: PreparedRequest
    ) -> tuple[int, dict[str, str], bytes]:
        scheme, _, value = header.partition(" ")
        assert scheme in {"Negotiate", "NTLM"}, header
        token = base64.b64decode(value)
        message_type = struct.unpack("<I", token[8:12])[0]
        if message_type == 1:
            self._context = spnego.server(protocol="ntlm")
            self.authenticated = False
            challenge = self._context.step(token)
            return (
                401,
                {"WWW-Authenticate": f"{scheme} {base64.b64encode(challenge).decode()}"},
                b"",
            )
        try:
            self._context.step(token)
        except spnego.exceptions.SpnegoError:
            self.rejected_logins += 1
            self._context = None
            return 401, {"WWW-Authenticate": "Negotiate"}, b""
        self.authenticated = True
        if not body:
            return 200, {}, b""
        return self._message(body, request)

    def _message(self, body: bytes, request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/encrypted") and ENCRYPTED_PROTOCOL in content_type:
            soap = self._unseal(body)
            self.sealed_requests += 1
            status, answer = self._soap(soap)
            return status, self._sealed_headers(), self._seal(answer)
        self.plaintext_requests += 1
        return 401, {"WWW-Authenticate": "Negotiate"}, b""

    def _unseal(self, body: bytes) -> bytes:
        header, _, rest = body.partition(
            BOUNDARY + b"\r\n\tContent-Type: application/octet-stream\r\n"
        )
        length = int(re.search(rb"Length=(\d+)", header).group(1))  # type: ignore[union-attr]
        assert rest.endswith(BOUNDARY + b"--\r\n"), "unterminated multipart/encrypted body"
        payload = rest[: -len(BOUNDARY + b"--\r\n")]
        signature_length = struct.unpack("<i", payload[:4])[0]
        signature = payload[4 : 4 + signature_length]
        plain: bytes = self._context.unwrap(signature + payload[4 + signature_length :]).data
        assert len(plain) == length, "OriginalContent Length does not match"
        return plain

    def _seal(self, message: bytes) -> bytes:
        wrapped = self._context.wrap(message, encrypt=True).data
        signature, sealed = wrapped[:16], wrapped[16:]
        return (
            BOUNDARY + b"\r\n"
            b"\tContent-Type: " + ENCRYPTED_PROTOCOL.encode() + b"\r\n"
            b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length="
            + str(len(message)).encode()
            + b"\r\n"
            + BOUNDARY
            + b"\r\n"
            b"\tContent-Type: application/octet-stream\r\n"
            + struct.pack("<i", len(signature))
            + signature
            + sealed
            + BOUNDARY
            + b"--\r\n"
        )

    @staticmethod
    def _sealed_headers() -> dict[str, str]:
        return {
            "Content-Type": f'multipart/encrypted;protocol="{ENCRYPTED_PROTOCOL}";'
            'boundary="Encrypted Boundary"'
        }

    # -- WS-Management --------------------------------------------------------------------------

    def _soap(self, message: bytes) -> tuple[int, bytes]:
        root = ET.fromstring(message)  # noqa: S314 - pywinrm's own request
        action = root.findtext("s:Header/a:Action", namespaces=NS) or ""
        message_id = root.findtext("s:Header/a:MessageID", namespaces=NS) or ""
        resource = root.findtext("s:Header/w:ResourceURI", namespaces=NS)
        assert resource == SHELL_URI, resource
        verb = action.rsplit("/", 1)[-1]
        self.actions.append(verb)
        handler = {
            "Create": self._create,
            "Command": self._command,
            "Send": self._send,
            "Receive": self._receive,
            "Signal": self._signal,
            "Delete": self._delete,
        }.get(verb)
        try:
            if handler is None:
                raise SoapFault(_fault(message_id, "w:ActionNotSupported", action, 2150858753))
            return 200, handler(root, message_id)
        except SoapFault as fault:
            return 500, fault.envelope

    def _shell_id(self, root: ET.Element, message_id: str) -> str:
        selector = root.find("s:Header/w:SelectorSet/w:Selector[@Name='ShellId']", NS)
        shell_id = selector.text if selector is not None else None
        if shell_id not in self.shells:
            raise SoapFault(
                _fault(message_id, "w:InvalidSelectors", f"shell {shell_id} not found", 2150858843)
            )
        return str(shell_id)

    def _create(self, root: ET.Element, message_id: str) -> bytes:
        shell_id = str(uuid.uuid4()).upper()
        self.shells.add(shell_id)
        body = (
            f"<x:ResourceCreated><a:Address>{self.url}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL_URI}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet>'
            "</a:ReferenceParameters></x:ResourceCreated>"
            f"<rsp:Shell><rsp:ShellId>{shell_id}</rsp:ShellId><rsp:ResourceUri>{SHELL_URI}"
            "</rsp:ResourceUri><rsp:Owner>EC2AMAZ-FAKE\\Administrator</rsp:Owner>"
            "<rsp:InputStreams>stdin</rsp:InputStreams>"
            "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>"
        )
        return _envelope(f"{TRANSFER}/CreateResponse", message_id, body)

    def _command(self, root: ET.Element, message_id: str) -> bytes:
        self._shell_id(root, message_id)
        line = root.find("s:Body/rsp:CommandLine", NS)
        assert line is not None
        command = line.findtext("rsp:Command", namespaces=NS) or ""
        arguments = (line.findtext("rsp:Arguments", namespaces=NS) or "").split()
        command_id = str(uuid.uuid4()).upper()
        self.commands[command_id] = _Command(command, arguments)
        body = f"<rsp:CommandResponse><rsp:CommandId>{command_id}</rsp:CommandId></rsp:CommandResponse>"
        return _envelope(f"{SHELL}/CommandResponse", message_id, body)

    def _lookup(self, command_id: str | None, message_id: str) -> _Command:
        if command_id not in self.commands:
            raise SoapFault(_fault(message_id, "w:InvalidParameter", "no such command", 2150858843))
        return self.commands[str(command_id)]

    def _send(self, root: ET.Element, message_id: str) -> bytes:
        self._shell_id(root, message_id)
        stream = root.find("s:Body/rsp:Send/rsp:Stream", NS)
        assert stream is not None and stream.get("Name") == "stdin"
        command = self._lookup(stream.get("CommandId"), message_id)
        command.stdin += base64.b64decode(stream.text or "")
        if stream.get("End") == "true":
            command.stdin_closed = True
            self._run(command)
        return _envelope(f"{SHELL}/SendResponse", message_id, "<rsp:SendResponse/>")

    def _run(self, command: _Command) -> None:
        """Play powershell.exe: check the bootstrap, decode the script from stdin, print records."""
        assert command.command == "powershell.exe", command.command
        encoded = command.arguments[command.arguments.index("-EncodedCommand") + 1]
        bootstrap = base64.b64decode(encoded).decode("utf-16-le")
        assert "$input" in bootstrap and "FromBase64String" in bootstrap, bootstrap
        script = base64.b64decode(b"".join(command.stdin.split())).decode("utf-8")
        played = play_collection_script(
            script, self.host, self.env, self.complete, self.after_end, self.ends_after
        )
        self.played.append(played)
        size = -(-len(played.stdout) // self.receive_chunks)
        command.chunks = [played.stdout[i : i + size] for i in range(0, len(played.stdout), size)]

    def _receive(self, root: ET.Element, message_id: str) -> bytes:
        self._shell_id(root, message_id)
        desired = root.find("s:Body/rsp:Receive/rsp:DesiredStream", NS)
        assert desired is not None
        command_id = desired.get("CommandId")
        command = self._lookup(command_id, message_id)
        if self.hang or not command.stdin_closed:
            raise SoapFault(
                _fault(
                    message_id,
                    "w:TimedOut",
                    "The WS-Management service cannot complete the "
                    "operation within the time specified in OperationTimeout.",
                    OPERATION_TIMEOUT_CODE,
                )
            )
        chunk = command.chunks.pop(0) if command.chunks else b""
        streams = f'<rsp:Stream Name="stdout" CommandId="{command_id}">{base64.b64encode(chunk).decode()}</rsp:Stream>'
        if command.chunks:
            state = f'<rsp:CommandState CommandId="{command_id}" State="{RUNNING}"/>'
        else:
            command.done = True
            streams += (
                f'<rsp:Stream Name="stdout" CommandId="{command_id}" End="true"></rsp:Stream>'
                f'<rsp:Stream Name="stderr" CommandId="{command_id}" End="true"></rsp:Stream>'
            )
            state = (
                f'<rsp:CommandState CommandId="{command_id}" State="{DONE}">'
                f"<rsp:ExitCode>{command.exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        body = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
        return _envelope(f"{SHELL}/ReceiveResponse", message_id, body)

    def _signal(self, root: ET.Element, message_id: str) -> bytes:
        self._shell_id(root, message_id)
        signal = root.find("s:Body/rsp:Signal", NS)
        assert signal is not None
        self._lookup(signal.get("CommandId"), message_id).done = True
        return _envelope(f"{SHELL}/SignalResponse", message_id, "<rsp:SignalResponse/>")

    def _delete(self, root: ET.Element, message_id: str) -> bytes:
        self.shells.discard(self._shell_id(root, message_id))
        return _envelope(f"{TRANSFER}/DeleteResponse", message_id, "")


# --- wiring for tests -------------------------------------------------------------------------------


@dataclass
class WSManEndpoint:
    """A fake endpoint registered with `responses`, and the real TCP port it pretends to be on."""

    fake: FakeWSMan
    port: int
    user: str
    password: str


def credential_file(directory: Path, user: str, password: str) -> Path:
    """An NTLM_USER_FILE for pyspnego's acceptor (Heimdal format, local account: no domain)."""
    path = directory / "ntlm-users"
    path.write_text(f":{user}:{password}\n")
    return path


@contextmanager
def listening_port() -> Iterator[int]:
    """A real 127.0.0.1 port that accepts TCP connections and never answers them."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield int(server.getsockname()[1])


@contextmanager
def serve_wsman(
    directory: Path,
    host: RecordedHost,
    *,
    user: str = "Administrator",
    password: str = "Corr3ct-Horse-Battery",  # noqa: S107 - a test credential
    **options: Any,
) -> Iterator[WSManEndpoint]:
    """Serve the recorded host at http://127.0.0.1:PORT/wsman (NTLM + sealing) via `responses`.

    NTLM_USER_FILE must be set by the caller (pytest's monkeypatch) to `credential_file(...)`.
    """
    with (
        listening_port() as port,
        responses.RequestsMock(assert_all_requests_are_fired=False) as mock,
    ):
        url = f"http://127.0.0.1:{port}/wsman"
        fake = FakeWSMan(url, host, **options)
        mock.add_callback(responses.POST, url, callback=fake.handle)
        yield WSManEndpoint(fake, port, user, password)
