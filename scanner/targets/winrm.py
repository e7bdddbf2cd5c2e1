"""`winrm://[user@]host[:port]` (HTTP, 5985) and `winrms://…` (HTTPS, 5986): a running Windows host.

The password never appears on the command line (where `ps` and shell history would keep it): it is
read from an environment variable, AMISCAN_WINRM_PASSWORD unless `--password-env` names another.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from scanner.facts.base import Mode, ScanContext
from scanner.run import ScanRun
from scanner.targets.base import ScanAborted, ScanOptions, TargetError

log = logging.getLogger(__name__)

DEFAULT_USER = "Administrator"
DEFAULT_PASSWORD_ENV = "AMISCAN_WINRM_PASSWORD"  # noqa: S105 - a variable name
DEFAULT_CONNECT_TIMEOUT_S = 15.0
# What vetting and buyers connect to: RDP, and WinRM over HTTP.
OUTSIDE_IN_PORTS = (3389, 5985)
_PORTS = {"winrm": 5985, "winrms": 5986}


@dataclass(frozen=True)
class WinRMSettings:
    """How to log in to a WinRM target, beyond what ScanOptions says."""

    password_env: str = DEFAULT_PASSWORD_ENV
    validate_certificate: bool = True


def parse_winrm_url(text: str) -> tuple[str | None, str, int, bool]:
    """(user, host, port, https) of `winrm[s]://[user@]host[:port]`."""
    parts = urlsplit(text)
    if parts.scheme not in _PORTS or not parts.hostname:
        raise TargetError(f"{text!r} is not winrm://[user@]host[:port] or winrms://…")
    if parts.path not in ("", "/", "/wsman") or parts.query or parts.fragment:
        raise TargetError(f"{text!r}: a {parts.scheme}:// target has no path, query or fragment")
    if parts.password is not None:
        raise TargetError(
            f"passwords in {parts.scheme}:// URLs are not accepted (they end up in shell history "
            f"and `ps`); set {DEFAULT_PASSWORD_ENV} or use --password-env VAR"
        )
    try:
        port = parts.port or _PORTS[parts.scheme]
    except ValueError:
        raise TargetError(f"{text!r}: the port must be a number from 1 to 65535") from None
    user = unquote(parts.username) if parts.username else None
    return user, parts.hostname, port, parts.scheme == "winrms"


def probe_ports(
    host: str, ports: Iterable[int], timeout_s: float
) -> tuple[dict[int, bool], str | None]:
    """Which ports accept a TCP connection from this machine, and the local address used."""
    found: dict[int, bool] = {}
    local: str | None = None
    for port in ports:
        try:
            with socket.create_connection((host, port), timeout=timeout_s) as sock:
                found[port] = True
                local = local or sock.getsockname()[0]
        except OSError:
            found[port] = False
    return found, local


class WinRMTarget:
    """A running Windows host reached over WinRM, logged in to with a password."""

    platform = "windows"

    def __init__(
        self, url: str, options: ScanOptions, settings: WinRMSettings | None = None
    ) -> None:
        user, self.host, self.port, self.https = parse_winrm_url(url)
        self.kind = "winrms" if self.https else "winrm"
        self.settings = settings or WinRMSettings()
        self.user = user or options.user or DEFAULT_USER
        password = os.environ.get(self.settings.password_env)
        if not password:
            raise TargetError(
                f"no password for {self.user}: set the environment variable "
                f"{self.settings.password_env} (amiscan never takes passwords on the command line)"
            )
        self._password = password
        self.id = url

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        """Log in, try the ports from outside, then collect and judge in one round trip."""
        from scanner.transports.base import TransportError
        from scanner.transports.winrm import WinRMEndpoint, WinRMTransport
        from scanner.windows import scan_live_windows

        connect_timeout = options.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S
        run.details.update(
            {"host": self.host, "port": self.port, "login_user": self.user, "https": self.https}
        )
        transport = WinRMTransport(
            WinRMEndpoint(self.host, self.port, self.https),
            self.user,
            self._password,
            connect_timeout_s=connect_timeout,
            validate_certificate=self.settings.validate_certificate,
        )
        try:
            with run.phase("logged in", f"Logging in to {self.host}:{self.port} (WinRM)"):
                transport.connect()
        except TransportError as exc:
            raise ScanAborted(str(exc)) from None
        try:
            ports = sorted({*OUTSIDE_IN_PORTS, self.port})
            with run.phase("reachability", "Trying RDP and WinRM ports from outside"):
                reachable, local = probe_ports(self.host, ports, min(connect_timeout, 5.0))
            run.details["reachable_ports"] = {str(p): ok for p, ok in reachable.items()}
            run.details["address"] = transport.peer_address
            context = ScanContext(
                mode=Mode.LIVE,
                target_kind=self.kind,
                login_user=self.user,
                scan_port=self.port,
                scanner_address=transport.local_address or local,
                reached_from_scanner=True,
                baseline_login_user=options.baseline_login_user,
                scan_date=options.scan_date,
                extra={"reachable_ports": reachable},
            )
            scan_live_windows(run, transport, context, options.collect_timeout_s)
        except TransportError as exc:
            raise ScanAborted(str(exc)) from None
        finally:
            transport.close()
