"""WinRMTransport (pywinrm) against the fake WS-Management endpoint: NTLM, sealing, one command."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import responses

from scanner.collect_windows import build_script, parse_output
from scanner.facts.base import Fact, Probe
from scanner.transports.base import AuthError, ConnectError, TransportError
from scanner.transports.winrm import (
    BOOTSTRAP,
    WinRMEndpoint,
    WinRMTransport,
    _socket_error,
    command_line,
    stdin_chunks,
)
from tests.fakes.windows_hosts import COMPLIANT
from tests.fakes.wsman import WSManEndpoint, credential_file, listening_port, serve_wsman

USER, PASSWORD = "Administrator", "Corr3ct-Horse-Battery"


@pytest.fixture(autouse=True)
def _ntlm_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NTLM_USER_FILE", str(credential_file(tmp_path, USER, PASSWORD)))


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[WSManEndpoint]:
    with serve_wsman(tmp_path, COMPLIANT, user=USER, password=PASSWORD) as served:
        yield served


def transport(port: int, password: str = PASSWORD, **options: object) -> WinRMTransport:
    return WinRMTransport(WinRMEndpoint("127.0.0.1", port), USER, password, **options)  # type: ignore[arg-type]


def probe(name: str, script: str = "'x'") -> Fact[object]:
    return Fact(name, name, derive=lambda g: None, probe=Probe(script), platform="windows")


def test_a_scan_is_one_command_over_an_ntlm_sealed_session(endpoint: WSManEndpoint) -> None:
    winrm = transport(endpoint.port)
    winrm.connect()
    script = build_script([probe("windows.accounts"), probe("windows.services")])
    result = winrm.run_script(script.text, 30)
    winrm.close()
    fake = endpoint.fake
    assert winrm.exec_count == 1 and len(fake.commands) == 1
    assert fake.actions[:3] == ["Create", "Command", "Send"]
    assert fake.actions[-2:] == ["Signal", "Delete"]
    assert fake.authenticated and fake.plaintext_requests == 0
    assert fake.sealed_requests == len(fake.actions)
    assert result.exit_status == 0 and not result.timed_out
    collected = parse_output(result.stdout, script.marker)
    assert collected.complete
    assert collected.outputs["windows.accounts"].text == COMPLIANT["windows.accounts"]


def test_the_script_travels_on_stdin_and_arrives_intact(endpoint: WSManEndpoint) -> None:
    # Big enough for several Send messages.
    big = "# " + "é" * 200_000 + "\n'done'"
    winrm = transport(endpoint.port)
    winrm.connect()
    winrm.run_script(build_script([probe("p.big", big)]).text, 30)
    assert endpoint.fake.played[0].probes == {"p.big": big}
    assert (
        endpoint.fake.actions.count("Send")
        == len(stdin_chunks(build_script([probe("p.big", big)]).text))
        > 1
    )


def test_the_command_is_a_small_powershell_bootstrap() -> None:
    command, arguments = command_line()
    assert command == "powershell.exe"
    assert arguments[:3] == ["-NoLogo", "-NoProfile", "-NonInteractive"]
    # cmd.exe stops reading a command line at 8191 characters.
    assert len(" ".join([command, *arguments])) < 8191
    assert "$input" in BOOTSTRAP


def test_rejected_credentials_are_one_line_auth_error(endpoint: WSManEndpoint) -> None:
    winrm = transport(endpoint.port, password="wrong-password")
    with pytest.raises(AuthError, match=r"rejected the credentials of Administrator \(HTTP 401"):
        winrm.connect()
    assert endpoint.fake.rejected_logins == 1
    assert not endpoint.fake.authenticated


def test_a_closed_port_is_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectError, match=f"connection to 127.0.0.1:{port} refused"):
        transport(port).connect()


def test_a_listener_that_never_answers_times_out() -> None:
    with listening_port() as port:
        winrm = transport(port, connect_timeout_s=1, operation_timeout_s=1)
        with pytest.raises(ConnectError, match=r"did not answer within 2s"):
            winrm.connect()


def test_a_connect_timeout_in_http_is_reported_as_such(tmp_path: Path) -> None:
    with listening_port() as port, responses.RequestsMock() as mock:
        mock.add(
            responses.POST,
            f"http://127.0.0.1:{port}/wsman",
            body=requests.exceptions.ConnectTimeout(),
        )
        with pytest.raises(ConnectError, match="timed out"):
            transport(port).connect()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ConnectionRefusedError(), "refused"),
        (TimeoutError(), "timed out after 3s"),
        (socket.gaierror(-2, "Name or service not known"), "cannot resolve winhost"),
        (OSError(113, "No route to host"), "No route to host"),
    ],
)
def test_socket_errors_read_as_one_line(error: OSError, message: str) -> None:
    assert message in str(_socket_error(error, "winhost:5985", 3))


def test_a_command_that_never_finishes_times_out_and_is_terminated(tmp_path: Path) -> None:
    with serve_wsman(tmp_path, COMPLIANT, user=USER, password=PASSWORD, hang=True) as served:
        winrm = transport(served.port)
        winrm.connect()
        result = winrm.run_script(build_script([probe("p.x")]).text, 0.5)
        assert result.timed_out and result.exit_status is None
        assert served.fake.actions[-1] == "Signal"


def test_a_wsman_fault_is_a_transport_error(endpoint: WSManEndpoint) -> None:
    winrm = transport(endpoint.port)
    winrm.connect()
    endpoint.fake.shells.clear()  # the server forgot the shell (service restarted)
    with pytest.raises(TransportError, match="answered with a fault"):
        winrm.run_script("'x'", 10)


def test_https_uses_tls_instead_of_message_encryption_and_can_skip_validation() -> None:
    winrm = WinRMTransport(
        WinRMEndpoint("winhost", 5986, https=True), USER, PASSWORD, validate_certificate=False
    )
    assert winrm.description == "winrms://Administrator@winhost:5986"
    protocol = winrm._protocol.transport
    assert protocol.endpoint == "https://winhost:5986/wsman"
    assert protocol.server_cert_validation == "ignore"
    assert protocol.send_cbt is True


def test_http_never_falls_back_to_plaintext_by_default() -> None:
    protocol = transport(5985)._protocol.transport
    assert protocol.message_encryption == "auto" and protocol.auth_method == "ntlm"
