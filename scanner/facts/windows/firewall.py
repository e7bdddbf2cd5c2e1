"""Windows Firewall: profiles, the active network category, and the inbound rules that matter.

Only rules that can decide the ports vetting uses are gathered (RDP 3389, WinRM 5985/5986, SMB
445/139, plus the Remote Desktop, Windows Remote Management and File and Printer Sharing groups),
because `Get-NetFirewallRule | Get-Net*Filter` over every rule takes many seconds; the four
`-All` filter queries are joined by InstanceID instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scanner.facts.base import Gathered
from scanner.facts.windows.addresses import VETTING_RANGES, Coverage, coverage, overlaps
from scanner.facts.windows.common import as_list, as_text, probe_json, windows_fact

_PROBE = r"""
$ports = @('3389', '5985', '5986', '445', '139')
# Group names are localised; their resource strings are not (Remote Desktop, Windows Remote
# Management, File and Printer Sharing).
$groups = @('@FirewallAPI.dll,-28752', '@FirewallAPI.dll,-30267', '@FirewallAPI.dll,-28502')
$store = 'ActiveStore'
$profiles = @(Get-NetFirewallProfile -PolicyStore $store | ForEach-Object {
    [ordered]@{ name = [string]$_.Name; enabled = [string]$_.Enabled; default_inbound = [string]$_.DefaultInboundAction }
})
$active = @(Get-NetConnectionProfile -ErrorAction SilentlyContinue | ForEach-Object { [string]$_.NetworkCategory })
$byId = @{}
foreach ($kind in 'port', 'address', 'application', 'service') {
    $byId[$kind] = @{}
}
Get-NetFirewallPortFilter -All -PolicyStore $store | ForEach-Object { $byId['port'][$_.InstanceID] = $_ }
Get-NetFirewallAddressFilter -All -PolicyStore $store | ForEach-Object { $byId['address'][$_.InstanceID] = $_ }
Get-NetFirewallApplicationFilter -All -PolicyStore $store | ForEach-Object { $byId['application'][$_.InstanceID] = $_ }
Get-NetFirewallServiceFilter -All -PolicyStore $store | ForEach-Object { $byId['service'][$_.InstanceID] = $_ }
$rules = @(Get-NetFirewallRule -Direction Inbound -PolicyStore $store | ForEach-Object {
    $port = $byId['port'][$_.InstanceID]
    $program = [string]$byId['application'][$_.InstanceID].Program
    $service = [string]$byId['service'][$_.InstanceID].Service
    $localPorts = @($port.LocalPort | ForEach-Object { [string]$_ })
    $protocol = [string]$port.Protocol
    $tcp = @('TCP', 'Any', '6') -contains $protocol
    $unrestricted = ($program -eq 'Any' -or $program -eq '') -and ($service -eq 'Any' -or $service -eq '')
    $touches = @($localPorts | Where-Object { ($ports -contains $_) -or ($_ -match '^\d+-\d+$') -or ($_ -eq 'Any' -and $unrestricted) }).Count -gt 0
    if (($groups -contains $_.Group) -or ($tcp -and $touches)) {
        [ordered]@{
            name = [string]$_.Name
            display_name = [string]$_.DisplayName
            group = [string]$_.DisplayGroup
            enabled = [string]$_.Enabled
            action = [string]$_.Action
            profile = [string]$_.Profile
            protocol = $protocol
            local_port = $localPorts
            remote_address = @($byId['address'][$_.InstanceID].RemoteAddress | ForEach-Object { [string]$_ })
            program = $program
            service = $service
        }
    }
})
ConvertTo-Json -Compress -Depth 5 -InputObject ([ordered]@{ profiles = $profiles; active_profiles = $active; rules = $rules })
"""

ALL_PROFILES = ("Domain", "Private", "Public")
# Get-NetConnectionProfile says "DomainAuthenticated"; the firewall profile is "Domain".
_CATEGORY_TO_PROFILE = {"domainauthenticated": "Domain", "private": "Private", "public": "Public"}


@dataclass(frozen=True)
class FirewallProfile:
    """One Windows Firewall profile (Domain, Private, Public)."""

    name: str
    enabled: bool
    default_inbound: str


@dataclass(frozen=True)
class FirewallRule:
    """An inbound rule with its port, address, program and service filters joined in."""

    name: str
    display_name: str
    group: str
    enabled: bool
    action: str
    profiles: tuple[str, ...]
    protocol: str
    local_ports: tuple[str, ...]
    remote_addresses: tuple[str, ...]
    program: str = "Any"
    service: str = "Any"

    def opens(self, port: int) -> bool:
        """Whether this rule applies to inbound TCP to `port` (enabled or not)."""
        if self.protocol.upper() not in {"TCP", "ANY", "6"}:
            return False
        unrestricted = self.program in {"", "Any"} and self.service in {"", "Any"}
        return any(_port_matches(entry, port, unrestricted) for entry in self.local_ports)

    def describe(self) -> str:
        state = "enabled" if self.enabled else "disabled"
        return (
            f"{self.display_name or self.name} [{self.name}]: {state} {self.action} "
            f"TCP {','.join(self.local_ports) or 'Any'} from {','.join(self.remote_addresses) or 'Any'} "
            f"(profile {','.join(self.profiles)})"
        )


def _port_matches(entry: str, port: int, unrestricted: bool) -> bool:
    text = entry.strip()
    if text.lower() == "any":
        # An "any port" rule limited to one program or service admits that program only.
        return unrestricted
    if "-" in text:
        low, _, high = text.partition("-")
        return low.isdigit() and high.isdigit() and int(low) <= port <= int(high)
    return text.isdigit() and int(text) == port


@dataclass(frozen=True)
class Admission:
    """Whether the firewall admits TCP to a port from the vetting ranges, and why."""

    port: int
    admitted: bool
    reason: str
    rules: tuple[FirewallRule, ...]


@dataclass(frozen=True)
class Firewall:
    """The firewall's profiles, the active network categories and the relevant inbound rules."""

    profiles: tuple[FirewallProfile, ...]
    active_profiles: tuple[str, ...]
    rules: tuple[FirewallRule, ...]

    def rules_for(self, port: int) -> tuple[FirewallRule, ...]:
        return tuple(rule for rule in self.rules if rule.opens(port))

    def admits(self, port: int, ranges: Sequence[str] = VETTING_RANGES) -> Admission:
        """Judge inbound TCP to `port` from `ranges` under every active profile.

        Windows Firewall applies block rules before allow rules, and a disabled profile (or one
        whose default inbound action is Allow) admits everything.
        """
        active = self.active_profiles or ALL_PROFILES
        relevant = self.rules_for(port)
        for profile_name in active:
            verdict = self._admits_in(profile_name, port, ranges, relevant)
            if not verdict.admitted:
                return verdict
        reasons = {self._admits_in(p, port, ranges, relevant).reason for p in active}
        return Admission(port, True, "; ".join(sorted(reasons)), relevant)

    def _admits_in(
        self,
        profile_name: str,
        port: int,
        ranges: Sequence[str],
        relevant: tuple[FirewallRule, ...],
    ) -> Admission:
        profile = next((p for p in self.profiles if p.name.lower() == profile_name.lower()), None)
        if profile is not None and not profile.enabled:
            return Admission(port, True, f"the {profile.name} firewall profile is off", relevant)
        applying = [
            r
            for r in relevant
            if r.enabled and profile_name.lower() in {p.lower() for p in r.profiles}
        ]
        blocking = [
            r
            for r in applying
            if r.action.lower() == "block" and overlaps(r.remote_addresses, ranges)
        ]
        if blocking:
            names = ", ".join(r.display_name or r.name for r in blocking)
            return Admission(port, False, f"blocked by {names} ({profile_name} profile)", relevant)
        if profile is not None and profile.default_inbound.lower() == "allow":
            return Admission(
                port, True, f"the {profile.name} profile allows inbound by default", relevant
            )
        allowing = [r for r in applying if r.action.lower() == "allow"]
        if not allowing:
            return Admission(
                port,
                False,
                f"no enabled allow rule for TCP {port} ({profile_name} profile)",
                relevant,
            )
        found: Coverage = coverage([a for r in allowing for a in r.remote_addresses], ranges)
        if found.covers:
            return Admission(
                port, True, f"allowed from {', '.join(ranges)} ({profile_name} profile)", relevant
            )
        detail = f"; cannot judge {', '.join(found.unresolved)}" if found.unresolved else ""
        return Admission(
            port,
            False,
            f"TCP {port} is not allowed from {', '.join(found.missing)} "
            f"({profile_name} profile{detail})",
            relevant,
        )


def _profiles(text: str) -> tuple[str, ...]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or any(p.lower() == "any" for p in parts):
        return ALL_PROFILES
    return tuple(parts)


def _rule(raw: dict[str, Any]) -> FirewallRule:
    return FirewallRule(
        name=as_text(raw.get("name")),
        display_name=as_text(raw.get("display_name")),
        group=as_text(raw.get("group")),
        enabled=as_text(raw.get("enabled")).lower() == "true",
        action=as_text(raw.get("action")) or "Allow",
        profiles=_profiles(as_text(raw.get("profile"))),
        protocol=as_text(raw.get("protocol")) or "Any",
        local_ports=tuple(as_text(p) for p in as_list(raw.get("local_port"))) or ("Any",),
        remote_addresses=tuple(as_text(a) for a in as_list(raw.get("remote_address"))) or ("Any",),
        program=as_text(raw.get("program")) or "Any",
        service=as_text(raw.get("service")) or "Any",
    )


def parse_firewall(document: Any) -> Firewall:
    """The probe's JSON as a Firewall."""
    data = document if isinstance(document, dict) else {}
    profiles = tuple(
        FirewallProfile(
            name=as_text(p.get("name")),
            enabled=as_text(p.get("enabled")).lower() == "true",
            default_inbound=as_text(p.get("default_inbound")) or "NotConfigured",
        )
        for p in as_list(data.get("profiles"))
        if isinstance(p, dict)
    )
    active = tuple(
        _CATEGORY_TO_PROFILE.get(as_text(c).lower(), as_text(c))
        for c in as_list(data.get("active_profiles"))
    )
    rules = tuple(_rule(r) for r in as_list(data.get("rules")) if isinstance(r, dict))
    return Firewall(profiles, tuple(dict.fromkeys(active)), rules)


def _at_rest(g: Gathered) -> Firewall:
    # Imported here: the policy reader builds on this module's model.
    from scanner.facts.windows.firewall_policy import firewall_at_rest

    return firewall_at_rest(g)


def _derive(g: Gathered) -> Firewall:
    return parse_firewall(probe_json(g, "reading the Windows Firewall rules"))


FIREWALL = windows_fact(
    "windows.firewall",
    "Windows Firewall profiles and inbound rules",
    _PROBE,
    _derive,
    timeout_s=90,
    offline=_at_rest,
)
