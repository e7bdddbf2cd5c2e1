"""Remote access checks: vetting can reach the instance (SSM, WinRM or SMB), RDP, WinRM.

The in-guest configuration decides (listeners, services, Windows Firewall rules evaluated for
10.0.0.0/16 and 10.2.0.0/16). Whether the scanner itself could open the port is evidence, and a
warning when the guest looks right but the port was closed to us: the scanner is not in the
vetting ranges, so its view can only confirm, never prove, what vetting will see.
"""

from __future__ import annotations

from collections.abc import Mapping

from checks.evidence import line
from checks.policies import policy
from scanner.facts.base import Facts, FactUnavailable
from scanner.facts.windows.addresses import VETTING_RANGES
from scanner.facts.windows.firewall import FIREWALL, Admission, Firewall
from scanner.facts.windows.network import (
    LISTENING,
    RDP_DEFAULT_PORT,
    RDP_SETTINGS,
    SERVICES,
    SMB_SERVER,
    SSM_AGENT,
    TERMINAL_SERVICES,
    WINRM_HTTP_PORT,
    WINRM_LISTENERS,
    WINRM_SERVICE,
    Listening,
    Services,
)
from scanner.model import Evidence, Outcome, Platform, Severity, Status
from scanner.registry import check

_RANGES = " and ".join(VETTING_RANGES)
SMB_PORTS = (445, 139)


def reachable_ports(facts: Facts) -> Mapping[int, bool]:
    """Ports the scanner tried to open from outside (`ScanContext.extra["reachable_ports"]`)."""
    found = facts.context.extra.get("reachable_ports")
    return found if isinstance(found, Mapping) else {}


def _reach_line(facts: Facts, port: int) -> list[Evidence]:
    reached = reachable_ports(facts).get(port)
    if reached is None:
        return []
    where = facts.context.scanner_address or "the scanner"
    return [line(f"TCP connect from {where}", f"port {port} {'open' if reached else 'closed'}")]


def _admission_lines(admission: Admission) -> list[Evidence]:
    evidence = [line("Windows Firewall", f"TCP {admission.port}: {admission.reason}")]
    evidence += [line("Windows Firewall rule", rule.describe()) for rule in admission.rules[:8]]
    return evidence


def _listening_line(listening: Listening, port: int) -> Evidence:
    if not listening.observed:
        return line("listening sockets", f"port {port}: not observable on an image at rest")
    sockets = listening.on(port)
    text = ", ".join(f"{s.address}:{s.port}" for s in sockets) or "nothing"
    return line("Get-NetTCPConnection -State Listen", f"port {port}: {text}")


def _service_line(services: Services, name: str) -> Evidence:
    service = services.get(name)
    return line("Win32_Service", service.describe() if service else f"{name}: not installed")


def _port_open(listening: Listening, firewall: Firewall, port: int) -> tuple[bool, list[Evidence]]:
    admission = firewall.admits(port)
    evidence = [_listening_line(listening, port), *_admission_lines(admission)]
    # At rest only the configuration can be judged: the socket does not exist yet.
    return listening.reachable_on(port) is not False and admission.admitted, evidence


def _at_rest(listening: Listening) -> str:
    """What a pass judged from an image at rest must admit it did not see."""
    return "" if listening.observed else " (configuration at rest; not observed running)"


def _winrm_http_listener(facts: Facts) -> tuple[bool, list[Evidence]]:
    listeners = facts.get(WINRM_LISTENERS)
    evidence = [line("winrm/config/listener", item.describe()) for item in listeners]
    found = any(
        item.transport == "HTTP" and item.port == WINRM_HTTP_PORT and item.enabled
        for item in listeners
    )
    if not listeners:
        evidence.append(line("winrm/config/listener", "no listeners"))
    return found, evidence


@check(
    id="windows.remote.vetting-access",
    title="Marketplace vetting can reach the instance (SSM, WinRM or SMB)",
    severity=Severity.CRITICAL,
    platform=Platform.WINDOWS,
    policy=policy("W4"),
    rationale="Marketplace scans a Windows AMI through the SSM agent, WinRM on 5985 or SMB on "
    f"139/445 from {_RANGES}; with none of them the scan cannot run and the version is rejected.",
    remediation="Keep the AmazonSSMAgent service running and set to start automatically, or "
    "enable a WinRM HTTP listener on 5985 (`winrm quickconfig`) with a firewall rule admitting "
    f"{_RANGES}.",
    needs=[SERVICES, WINRM_LISTENERS, LISTENING, FIREWALL],
)
def vetting_access(facts: Facts) -> Outcome:
    services = facts.get(SERVICES)
    ssm = services.get(SSM_AGENT)
    evidence = [_service_line(services, SSM_AGENT)]
    if ssm is not None and ssm.runs_at_boot:
        summary = "the SSM agent is running and starts at boot"
        if not ssm.observed:
            summary = "the SSM agent is installed and starts at boot (configuration at rest)"
        return Outcome(Status.PASS, summary, tuple(evidence))
    listening, firewall = facts.get(LISTENING), facts.get(FIREWALL)
    unsettled: FactUnavailable | None = None
    try:
        http_listener, listener_lines = _winrm_http_listener(facts)
    except FactUnavailable as exc:
        # At rest WinRM may be unknowable; SMB can still settle the check.
        unsettled, http_listener, listener_lines = exc, False, []
    winrm_open, winrm_lines = _port_open(listening, firewall, WINRM_HTTP_PORT)
    evidence += listener_lines + winrm_lines + _reach_line(facts, WINRM_HTTP_PORT)
    winrm = services.get(WINRM_SERVICE)
    if http_listener and winrm_open and winrm is not None and winrm.serving:
        return Outcome(
            Status.PASS,
            f"WinRM listens on {WINRM_HTTP_PORT} and admits {_RANGES}{_at_rest(listening)}",
            tuple(evidence),
        )
    smb = services.get(SMB_SERVER)
    evidence.append(_service_line(services, SMB_SERVER))
    for port in SMB_PORTS:
        smb_open, smb_lines = _port_open(listening, firewall, port)
        evidence += smb_lines
        if smb is not None and smb.serving and smb_open:
            return Outcome(
                Status.PASS,
                f"SMB listens on {port} and admits {_RANGES}{_at_rest(listening)}",
                tuple(evidence),
            )
    if unsettled is not None:
        raise unsettled
    return Outcome(
        Status.FAIL,
        f"neither the SSM agent, WinRM on {WINRM_HTTP_PORT} nor SMB on 139/445 is available "
        f"to {_RANGES}",
        tuple(evidence),
    )


@check(
    id="windows.rdp.enabled",
    title="Remote Desktop is enabled and reachable on 3389",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("CL"),
    rationale="Buyers administer Windows instances over RDP with the password GetPasswordData "
    "returns; an AMI that refuses RDP cannot be used as sold.",
    remediation="Enable RDP (`Set-ItemProperty 'HKLM:\\System\\CurrentControlSet\\Control\\"
    "Terminal Server' fDenyTSConnections 0`), keep TermService running on port 3389, and enable "
    "the firewall group: `Enable-NetFirewallRule -DisplayGroup 'Remote Desktop'`.",
    needs=[RDP_SETTINGS, SERVICES, LISTENING, FIREWALL],
)
def rdp_enabled(facts: Facts) -> Outcome:
    settings = facts.get(RDP_SETTINGS)
    services = facts.get(SERVICES)
    deny = settings.effective_deny
    evidence = [
        line(settings.source, f"fDenyTSConnections = {deny if deny is not None else '(unset)'}"),
        line("RDP-Tcp", f"PortNumber = {settings.port}"),
        _service_line(services, TERMINAL_SERVICES),
    ]
    problems = []
    if deny != 0:
        problems.append("RDP connections are denied (fDenyTSConnections is not 0)")
    if settings.port != RDP_DEFAULT_PORT:
        problems.append(f"RDP listens on port {settings.port}, not {RDP_DEFAULT_PORT}")
    service = services.get(TERMINAL_SERVICES)
    if service is None or not service.can_run:
        state = "is disabled" if service is not None and service.disabled else "is not running"
        problems.append(f"the Remote Desktop Services service (TermService) {state}")
    port_open, port_lines = _port_open(facts.get(LISTENING), facts.get(FIREWALL), RDP_DEFAULT_PORT)
    evidence += port_lines + _reach_line(facts, RDP_DEFAULT_PORT)
    if not port_open:
        problems.append(f"port {RDP_DEFAULT_PORT} is not listening or not admitted by the firewall")
    if problems:
        return Outcome(Status.FAIL, "; ".join(problems), tuple(evidence))
    if reachable_ports(facts).get(RDP_DEFAULT_PORT) is False:
        return Outcome(
            Status.WARN,
            f"RDP is enabled, but the scanner could not connect to port {RDP_DEFAULT_PORT} "
            "(a security group or network ACL in the way?)",
            tuple(evidence),
        )
    listening = facts.get(LISTENING)
    return Outcome(
        Status.PASS,
        f"RDP is enabled on {RDP_DEFAULT_PORT} and admitted{_at_rest(listening)}",
        tuple(evidence),
    )


@check(
    id="windows.winrm.listener",
    title="WinRM listens on 5985 and admits the vetting ranges",
    severity=Severity.HIGH,
    platform=Platform.WINDOWS,
    policy=policy("W4", "BP"),
    rationale=f"Vetting connects to WinRM over HTTP on 5985 from {_RANGES} when SSM is not "
    "available; a listener bound elsewhere or a firewall rule limited to the local subnet "
    "makes that connection fail.",
    remediation="`winrm quickconfig -quiet` (HTTP listener on 5985), then allow the vetting "
    "ranges: `Set-NetFirewallRule -Name WINRM-HTTP-In-TCP -RemoteAddress Any` (or add "
    f"{_RANGES}).",
    needs=[WINRM_LISTENERS, SERVICES, LISTENING, FIREWALL],
)
def winrm_listener(facts: Facts) -> Outcome:
    services = facts.get(SERVICES)
    http_listener, evidence = _winrm_http_listener(facts)
    evidence.append(_service_line(services, WINRM_SERVICE))
    port_open, port_lines = _port_open(facts.get(LISTENING), facts.get(FIREWALL), WINRM_HTTP_PORT)
    evidence += port_lines + _reach_line(facts, WINRM_HTTP_PORT)
    problems = []
    if not http_listener:
        problems.append(f"no enabled WinRM HTTP listener on {WINRM_HTTP_PORT}")
    service = services.get(WINRM_SERVICE)
    if service is None or not service.runs_at_boot:
        problems.append("the WinRM service is not running or does not start at boot")
    if not port_open:
        problems.append(
            f"port {WINRM_HTTP_PORT} is not listening or the firewall does not admit {_RANGES}"
        )
    if problems:
        return Outcome(Status.FAIL, "; ".join(problems), tuple(evidence))
    if reachable_ports(facts).get(WINRM_HTTP_PORT) is False:
        return Outcome(
            Status.WARN,
            f"WinRM is configured on {WINRM_HTTP_PORT}, but the scanner could not connect to it",
            tuple(evidence),
        )
    listening = facts.get(LISTENING)
    return Outcome(
        Status.PASS,
        f"WinRM listens on {WINRM_HTTP_PORT} and admits {_RANGES}{_at_rest(listening)}",
        tuple(evidence),
    )
