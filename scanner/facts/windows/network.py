"""Remote access on a Windows guest: services, listening sockets, RDP and WinRM settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.facts.base import FactFailed
from scanner.facts.windows.common import as_int, as_list, as_text, probe_json, windows_fact

# --- services -----------------------------------------------------------------------------------

SSM_AGENT = "AmazonSSMAgent"
TERMINAL_SERVICES = "TermService"
WINRM_SERVICE = "WinRM"
SMB_SERVER = "LanmanServer"
_SERVICE_NAMES = (SSM_AGENT, TERMINAL_SERVICES, WINRM_SERVICE, SMB_SERVER, "EC2Launch", "Ec2Config")

_SERVICES_PROBE = (
    "$names = @("
    + ", ".join(f"'{name}'" for name in _SERVICE_NAMES)
    + r""")
$filter = ($names | ForEach-Object { "Name='$_'" }) -join ' OR '
$rows = @(Get-CimInstance -ClassName Win32_Service -Filter $filter | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; state = [string]$_.State; start_mode = [string]$_.StartMode }
})
ConvertTo-Json -Compress -Depth 3 -InputObject $rows
"""
)


@dataclass(frozen=True)
class Service:
    """A Windows service's state and start mode (Win32_Service)."""

    name: str
    state: str
    start_mode: str

    @property
    def running(self) -> bool:
        return self.state.lower() == "running"

    @property
    def starts_at_boot(self) -> bool:
        return self.start_mode.lower() in {"auto", "automatic"}

    def describe(self) -> str:
        return f"{self.name}: {self.state} (start mode {self.start_mode})"


@dataclass(frozen=True)
class Services:
    """The services the remote-access and launch-agent checks look at."""

    items: tuple[Service, ...]

    def get(self, name: str) -> Service | None:
        return next((s for s in self.items if s.name.lower() == name.lower()), None)


def parse_services(document: Any) -> Services:
    """The services probe's JSON."""
    return Services(
        tuple(
            Service(as_text(r.get("name")), as_text(r.get("state")), as_text(r.get("start_mode")))
            for r in as_list(document)
            if isinstance(r, dict)
        )
    )


SERVICES = windows_fact(
    "windows.services",
    "the state of remote-access and launch-agent services",
    _SERVICES_PROBE,
    lambda g: parse_services(probe_json(g, "querying Win32_Service")),
)


# --- listening sockets --------------------------------------------------------------------------

_LISTENING_PROBE = r"""
$rows = @(Get-NetTCPConnection -State Listen | ForEach-Object {
    [ordered]@{ address = [string]$_.LocalAddress; port = [int]$_.LocalPort; pid = [int]$_.OwningProcess }
})
ConvertTo-Json -Compress -Depth 3 -InputObject $rows
"""


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket."""

    address: str
    port: int
    pid: int | None

    @property
    def all_addresses(self) -> bool:
        return self.address in {"0.0.0.0", "::"}  # noqa: S104 - reading, not binding


@dataclass(frozen=True)
class Listening:
    """Every listening TCP socket of the guest."""

    sockets: tuple[Listener, ...]

    def on(self, port: int) -> tuple[Listener, ...]:
        return tuple(s for s in self.sockets if s.port == port)

    def reachable_on(self, port: int) -> bool:
        """Listening on every address (a loopback-only socket cannot be reached from outside)."""
        return any(s.all_addresses for s in self.on(port))


def parse_listening(document: Any) -> Listening:
    """The listening-sockets probe's JSON."""
    sockets = []
    for row in as_list(document):
        port = as_int(row.get("port")) if isinstance(row, dict) else None
        if port is None:
            continue
        sockets.append(Listener(as_text(row.get("address")), port, as_int(row.get("pid"))))
    return Listening(tuple(sockets))


LISTENING = windows_fact(
    "windows.net.listening",
    "listening TCP sockets (Get-NetTCPConnection)",
    _LISTENING_PROBE,
    lambda g: parse_listening(probe_json(g, "listing listening sockets")),
)


# --- Remote Desktop -----------------------------------------------------------------------------

_RDP_PROBE = r"""
$ts = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server'
$tcp = Get-ItemProperty -LiteralPath 'HKLM:\SYSTEM\CurrentControlSet\Control\Terminal Server\WinStations\RDP-Tcp' -ErrorAction SilentlyContinue
# Group Policy overrides the local setting when it is present.
$policy = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services' -ErrorAction SilentlyContinue
ConvertTo-Json -Compress -InputObject ([ordered]@{
    deny_ts_connections = $ts.fDenyTSConnections
    policy_deny_ts_connections = if ($policy) { $policy.fDenyTSConnections } else { $null }
    port = if ($tcp) { $tcp.PortNumber } else { $null }
    user_authentication = if ($tcp) { $tcp.UserAuthentication } else { $null }
})
"""

RDP_DEFAULT_PORT = 3389


@dataclass(frozen=True)
class RdpSettings:
    """Remote Desktop's registry settings."""

    deny_connections: int | None
    policy_deny_connections: int | None
    port: int
    network_level_authentication: bool | None

    @property
    def effective_deny(self) -> int | None:
        """fDenyTSConnections as Windows applies it: the policy value wins when set."""
        if self.policy_deny_connections is not None:
            return self.policy_deny_connections
        return self.deny_connections

    @property
    def source(self) -> str:
        if self.policy_deny_connections is not None:
            return r"HKLM\SOFTWARE\Policies\Microsoft\Windows NT\Terminal Services"
        return r"HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server"


def parse_rdp(document: Any) -> RdpSettings:
    """The RDP probe's JSON as RdpSettings."""
    if not isinstance(document, dict):
        raise FactFailed("the RDP probe printed no settings")
    nla = as_int(document.get("user_authentication"))
    return RdpSettings(
        deny_connections=as_int(document.get("deny_ts_connections")),
        policy_deny_connections=as_int(document.get("policy_deny_ts_connections")),
        port=as_int(document.get("port")) or RDP_DEFAULT_PORT,
        network_level_authentication=None if nla is None else nla == 1,
    )


RDP_SETTINGS = windows_fact(
    "windows.rdp.settings",
    "Remote Desktop settings (fDenyTSConnections, RDP-Tcp port)",
    _RDP_PROBE,
    lambda g: parse_rdp(probe_json(g, "reading the Remote Desktop settings")),
)


# --- WinRM listeners ----------------------------------------------------------------------------

_WINRM_PROBE = r"""
$rows = @(Get-WSManInstance -ResourceURI 'winrm/config/listener' -Enumerate | ForEach-Object {
    [ordered]@{
        transport = [string]$_.Transport
        address = [string]$_.Address
        port = [string]$_.Port
        enabled = [string]$_.Enabled
        listening_on = @($_.ListeningOn | ForEach-Object { [string]$_ })
    }
})
ConvertTo-Json -Compress -Depth 4 -InputObject $rows
"""

WINRM_HTTP_PORT = 5985


@dataclass(frozen=True)
class WinRMListener:
    """A WinRM listener (winrm/config/listener)."""

    transport: str
    address: str
    port: int | None
    enabled: bool

    def describe(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return f"Transport={self.transport} Address={self.address} Port={self.port} ({state})"


def parse_winrm_listeners(document: Any) -> tuple[WinRMListener, ...]:
    """The WinRM listener probe's JSON."""
    return tuple(
        WinRMListener(
            transport=as_text(row.get("transport")).upper(),
            address=as_text(row.get("address")),
            port=as_int(row.get("port")),
            enabled=as_text(row.get("enabled")).lower() == "true",
        )
        for row in as_list(document)
        if isinstance(row, dict)
    )


WINRM_LISTENERS = windows_fact(
    "windows.winrm.listeners",
    "WinRM listeners (winrm/config/listener)",
    _WINRM_PROBE,
    lambda g: parse_winrm_listeners(probe_json(g, "enumerating WinRM listeners")),
)
