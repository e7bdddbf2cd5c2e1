"""Remote access on a Windows guest: services, listening sockets, RDP and WinRM settings."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from scanner.facts.base import FactFailed, FactUnavailable, Gathered
from scanner.facts.windows.common import as_int, as_list, as_text, probe_json, windows_fact
from scanner.facts.windows.volume import software_key, system_key
from scanner.parsers.regf import RegistryKey, windows_upper

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
    # "" when nothing was observed running: an image at rest, read offline.
    state: str
    start_mode: str

    @property
    def observed(self) -> bool:
        return bool(self.state)

    @property
    def running(self) -> bool:
        return self.state.lower() == "running"

    @property
    def starts_at_boot(self) -> bool:
        return self.start_mode.lower() in {"auto", "automatic"}

    @property
    def disabled(self) -> bool:
        return self.start_mode.lower() == "disabled"

    @property
    def runs_at_boot(self) -> bool:
        """Running and set to start automatically (live); set to start automatically (at rest)."""
        return (self.running or not self.observed) and self.starts_at_boot

    @property
    def serving(self) -> bool:
        """Running (live), or set to start automatically (at rest)."""
        return self.running if self.observed else self.starts_at_boot

    @property
    def can_run(self) -> bool:
        """Running (live); not disabled (at rest: Windows starts a manual service on demand)."""
        return self.running if self.observed else not self.disabled

    def describe(self) -> str:
        if not self.observed:
            return f"{self.name}: start mode {self.start_mode} (image at rest)"
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


# HKLM\SYSTEM\CurrentControlSet\Services\<name> Start, named as Win32_Service.StartMode names it.
_START_MODES = {0: "Boot", 1: "System", 2: "Auto", 3: "Manual", 4: "Disabled"}


def services_at_rest(g: Gathered) -> Services:
    """The offline form: each service's Start value; nothing runs on an image at rest."""
    services = system_key(g, "Services")
    if services is None:
        raise FactFailed("HKLM\\SYSTEM\\CurrentControlSet\\Services is missing from the image")
    # One pass over the few hundred service keys, not one per service looked for.
    wanted = {windows_upper(name) for name in _SERVICE_NAMES}
    found = []
    for key in services.subkeys():
        if windows_upper(key.name) not in wanted:
            continue
        start = key.int_value("Start")
        mode = _START_MODES.get(start, f"Start={start}") if start is not None else "(no Start)"
        found.append(Service(key.name, "", mode))
    return Services(tuple(found))


SERVICES = windows_fact(
    "windows.services",
    "the state of remote-access and launch-agent services",
    _SERVICES_PROBE,
    lambda g: parse_services(probe_json(g, "querying Win32_Service")),
    offline=services_at_rest,
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
    """Every listening TCP socket of the guest; none observed on an image at rest."""

    sockets: tuple[Listener, ...]
    observed: bool = True

    def on(self, port: int) -> tuple[Listener, ...]:
        return tuple(s for s in self.sockets if s.port == port)

    def reachable_on(self, port: int) -> bool | None:
        """Listening on every address (a loopback-only socket cannot be reached from outside);
        None when nothing could be observed."""
        if not self.observed:
            return None
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
    # Sockets exist only on a running instance: offline, the checks judge configuration alone.
    offline=lambda g: Listening((), observed=False),
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


_TERMINAL_SERVER = r"Control\Terminal Server"
_RDP_POLICY = r"Policies\Microsoft\Windows NT\Terminal Services"


def rdp_at_rest(g: Gathered) -> RdpSettings:
    """The offline form: the same registry values the probe reads, from the hives."""
    server = system_key(g, _TERMINAL_SERVER)
    if server is None:
        raise FactFailed(f"HKLM\\SYSTEM\\CurrentControlSet\\{_TERMINAL_SERVER} is missing")
    tcp = server.key(r"WinStations\RDP-Tcp")
    policy = software_key(g, _RDP_POLICY)
    nla = tcp.int_value("UserAuthentication") if tcp is not None else None
    return RdpSettings(
        deny_connections=server.int_value("fDenyTSConnections"),
        policy_deny_connections=policy.int_value("fDenyTSConnections") if policy else None,
        port=(tcp.int_value("PortNumber") if tcp is not None else None) or RDP_DEFAULT_PORT,
        network_level_authentication=None if nla is None else nla == 1,
    )


RDP_SETTINGS = windows_fact(
    "windows.rdp.settings",
    "Remote Desktop settings (fDenyTSConnections, RDP-Tcp port)",
    _RDP_PROBE,
    lambda g: parse_rdp(probe_json(g, "reading the Remote Desktop settings")),
    offline=rdp_at_rest,
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


_WSMAN = r"Microsoft\Windows\CurrentVersion\WSMAN"
_WINRM_POLICY = r"Policies\Microsoft\Windows\WinRM\Service"
_DEFAULT_PORTS = {"HTTP": WINRM_HTTP_PORT, "HTTPS": 5986}
_MAX_LISTENERS = 256


def _stored_listener(key: RegistryKey) -> WinRMListener:
    address, _, transport = key.name.rpartition("+")
    transport = transport.upper()
    port = key.value("Port")
    enabled = key.value("enabled")
    # "enabled" is absent on a listener winrm quickconfig created; 0 or "false" turns it off.
    off = enabled is not None and (
        enabled.as_number() == 0 or (enabled.as_text() or "").strip().lower() == "false"
    )
    return WinRMListener(
        transport,
        address or "*",
        (port.as_number() if port is not None else None) or _DEFAULT_PORTS.get(transport),
        not off,
    )


def winrm_at_rest(g: Gathered) -> tuple[WinRMListener, ...]:
    """The offline form: WinRM keeps each listener as WSMAN\\Listener\\<address>+<transport>.

    Group Policy's AllowAutoConfig adds an HTTP listener on 5985 at service start. Where WinRM
    was never configured the image holds no WSMAN key, and only a running instance can tell.
    """
    wsman = software_key(g, _WSMAN)
    policy = software_key(g, _WINRM_POLICY)
    auto = policy.int_value("AllowAutoConfig") if policy is not None else None
    if wsman is None and auto is None:
        raise FactUnavailable(
            "the image's registry holds no WinRM configuration (HKLM\\SOFTWARE\\"
            f"{_WSMAN}); its listeners need a running instance"
        )
    listeners = wsman.key("Listener") if wsman is not None else None
    keys = listeners.subkeys() if listeners is not None else iter(())
    found = [_stored_listener(key) for key in itertools.islice(keys, _MAX_LISTENERS)]
    if auto == 1 and policy is not None:
        address = (policy.text_value("IPv4Filter") or "").strip()
        if address:
            found.append(WinRMListener("HTTP", f"{address} (Group Policy)", WINRM_HTTP_PORT, True))
    return tuple(found)


WINRM_LISTENERS = windows_fact(
    "windows.winrm.listeners",
    "WinRM listeners (winrm/config/listener)",
    _WINRM_PROBE,
    lambda g: parse_winrm_listeners(probe_json(g, "enumerating WinRM listeners")),
    offline=winrm_at_rest,
)
