"""Windows Firewall policy as the registry stores it, read into the live form's `Firewall`.

The offline scan cannot ask PowerShell, so it reads the policy the firewall service loads at
boot. The caller reads the hives and hands in value data; nothing here touches a registry.

Where the policy lives (paths under the SYSTEM and SOFTWARE hives):

- Local rules: `SYSTEM\\ControlSet00N\\Services\\SharedAccess\\Parameters\\FirewallPolicy\\
  FirewallRules`, one REG_SZ per rule, the value name being the rule id and the data
  `v2.33|Action=Allow|Active=TRUE|Dir=In|Protocol=6|Profile=Domain|LPort=5985|App=System|…|`
  ([MS-GPFAS] 2.2.2.19: `Key=Value` fields after the version, each ended by `|`; Profile, the
  port and the address keys repeat).
- Group Policy rules: `SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\FirewallRules`, same
  format. They add to the local rules, except that a Group Policy profile with
  `AllowLocalPolicyMerge` = 0 makes the firewall ignore local rules in that profile.
- Local profiles: `…\\FirewallPolicy\\DomainProfile`, `StandardProfile` (the Private profile) and
  `PublicProfile`; Group Policy profiles: `SOFTWARE\\Policies\\Microsoft\\WindowsFirewall\\
  DomainProfile`, `PrivateProfile`, `PublicProfile` (and the legacy `StandardProfile`, which
  stands for both Private and Public when neither of those keys exists). DWORDs
  `EnableFirewall` (absent: on), `DefaultInboundAction` (1 block, 0 allow; absent: block) and,
  in Group Policy only, `AllowLocalPolicyMerge`. A Group Policy value that is present wins.

The result feeds `Firewall.admits` unchanged and gives the live form's verdicts, except that
two kinds of rule are read more narrowly than the live probe reads them (so a verdict can only
become stricter):

- An Allow or ByPass rule that requires IPsec authentication (`Security=`, `Security2=`,
  `Security2_9=`, `RMauth=`, `RUAuth=`, or ByPass itself) admits only authenticated peers, never
  the vetting scanner: its action reads `AUTHENTICATED_ALLOW` or `AUTHENTICATED_BYPASS`, which
  `Firewall.admits` counts neither as allowing nor as blocking, and `describe()` shows it.
- An Allow rule limited to an app container or local users (`AppPkgId=`, `PFN=`, `LUOwn=`,
  `LUAuth=`, `LUAuth2_24=`) that names no program takes that limit as its program, so an
  any-port rule for one packaged app is not read as opening every port (the live probe reads
  only Program).

Conditions neither form models (local addresses, remote ports, interfaces and interface types,
platforms, trust tuples, keys newer than [MS-GPFAS] of 2024) are ignored: on a Block rule that
can only widen what it blocks; on an Allow rule it is what the live form assumes too.

Hostile data: the rules come from the scanned image, and nothing here raises on any string. A
rule that cannot be read exactly (no version, a field without `=`, an unknown action,
direction, profile, protocol, port or address, a repeated field with different values, ports
on a protocol other than TCP or UDP, more than `MAX_RULE_CHARS` characters) is left out of the
rules and reported as an `UnreadableRule`. Its `may_block` is true unless the text plainly says
the rule is disabled or Allow/ByPass, or the value holds no field at all; a rule that plainly
says outbound is dropped like any outbound rule. So a broken Block rule cannot silently turn a
fail into a pass: the caller sees `may_block`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from scanner.facts.base import FactFailed, Gathered
from scanner.facts.windows.firewall import ALL_PROFILES, Firewall, FirewallProfile, FirewallRule
from scanner.facts.windows.volume import software_key, system_key
from scanner.parsers.regf import RegistryKey

# Action texts for rules that admit only IPsec-authenticated peers. `Firewall.admits` compares
# actions with "allow" and "block" exactly, so these neither admit nor block the vetting scan.
AUTHENTICATED_ALLOW = "Allow (IPsec-authenticated peers only)"
AUTHENTICATED_BYPASS = "ByPass (IPsec-authenticated peers only)"

# [MS-FASP] FW_RULE caps each string of a rule at 10,000 characters; a value a hundred times
# that is not a rule Windows wrote, and parsing it in full would let an image spend the scan's
# time.
MAX_RULE_CHARS = 1 << 20

_VERSION = re.compile(r"v\d{1,3}\.\d{1,3}", re.ASCII)
_PORT = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?", re.ASCII)
_PROTOCOL = re.compile(r"\d{1,3}", re.ASCII)

_ACTIONS = {"allow": "Allow", "block": "Block", "bypass": "ByPass"}
_DIRECTIONS = {"in": "In", "out": "Out"}
_BOOLEANS = {"true": "TRUE", "false": "FALSE"}
_PROFILES = {name.lower(): name for name in ALL_PROFILES}
_PROTOCOL_NAMES = {1: "ICMPv4", 6: "TCP", 17: "UDP", 58: "ICMPv6"}
# LPort keywords name no fixed TCP port, so they stay as text that never matches a number.
_PORT_KEYWORDS = frozenset(
    k.lower()
    for k in (
        "RPC",
        "RPC-EPMap",
        "Teredo",
        "IPTLSIn",
        "IPHTTPSIn",
        "DHCP",
        "Ply2Disc",
        "mDNS",
        "TcpCDPSvc",
    )
)
# Remote address keywords depend on the network the instance boots in: addresses.py counts them
# as unresolved.
_ADDRESS_KEYWORDS = frozenset(
    k.lower()
    for k in (
        "LocalSubnet",
        "DNS",
        "DHCP",
        "WINS",
        "DefaultGateway",
        "IntrAnet",
        "IntErnet",
        "Ply2Renders",
        "RmtIntrAnet",
        "CaptivePortal",
    )
)
_PORT_KEYS = ("LPort", "LPort2_10", "LPort2_20")
_ADDRESS_KEYS = ("RA4", "RA6", "RA42", "RA62")
_AUTHENTICATION_KEYS = ("Security", "Security2_9", "Security2", "RMauth", "RUAuth")
_CONTAINER_KEYS = ("AppPkgId", "PFN", "LUOwn", "LUAuth", "LUAuth2_24")

Fields = dict[str, list[str]]


@dataclass(frozen=True)
class ProfileSettings:
    """One profile key's DWORDs as read (None: the value is absent)."""

    enable_firewall: int | None = None
    default_inbound_action: int | None = None
    allow_local_policy_merge: int | None = None  # Group Policy only


@dataclass(frozen=True)
class UnreadableRule:
    """A rule value that could not be read exactly, and whether it might be a block rule."""

    rule_id: str
    reason: str
    # False only when the text plainly says disabled, or Allow/ByPass, or has no field at all
    # (outbound-only rules are not reported): otherwise it may block the vetting ranges.
    may_block: bool
    store: str = ""  # "local" or "Group Policy", set by firewall_from_policy

    def describe(self) -> str:
        where = f"{self.store} rule" if self.store else "rule"
        effect = (
            "; it may be an inbound block rule, so what the firewall admits is uncertain"
            if self.may_block
            else ""
        )
        return f"{where} {_shown(self.rule_id)}: {self.reason}{effect}"


@dataclass(frozen=True)
class PolicyRules:
    """The inbound rules of one store, and the rules of it that could not be read."""

    rules: tuple[FirewallRule, ...]
    unreadable: tuple[UnreadableRule, ...]

    @property
    def may_block(self) -> bool:
        return any(u.may_block for u in self.unreadable)


class _Malformed(Exception):
    """Raised inside the parser only; parse_rule turns it into an UnreadableRule."""


def parse_rule(rule_id: str, text: str) -> FirewallRule | UnreadableRule | None:
    """One FirewallRules value: the inbound rule, None for an outbound rule, or why not."""
    if not isinstance(text, str):
        return UnreadableRule(rule_id, f"its data is {type(text).__name__}, not text", True)
    # REG_SZ data often keeps its terminating NUL.
    text = text.rstrip("\x00")
    seen = _plain_reading(text)
    if seen.get("dir") == {"out"}:
        return None
    if len(text) > MAX_RULE_CHARS:
        return _unreadable(rule_id, f"it is {len(text)} characters long", text, seen)
    try:
        return _rule(rule_id, _fields(text))
    except _Malformed as problem:
        return _unreadable(rule_id, str(problem), text, seen)


def parse_rules(values: Mapping[str, str]) -> PolicyRules:
    """Every value of one FirewallRules key (value name: rule id; data: the rule)."""
    rules: list[FirewallRule] = []
    unreadable: list[UnreadableRule] = []
    for rule_id, text in values.items():
        parsed = parse_rule(rule_id, text)
        if isinstance(parsed, FirewallRule):
            rules.append(parsed)
        elif isinstance(parsed, UnreadableRule):
            unreadable.append(parsed)
    return PolicyRules(tuple(rules), tuple(unreadable))


def firewall_from_policy(
    local_rules: Mapping[str, str],
    local_profiles: Mapping[str, ProfileSettings],
    policy_rules: Mapping[str, str],
    policy_profiles: Mapping[str, ProfileSettings],
) -> tuple[Firewall, tuple[UnreadableRule, ...]]:
    """The firewall the local and Group Policy stores make together, and their unreadable rules.

    `local_profiles` is keyed "Domain", "Private" (StandardProfile), "Public"; `policy_profiles`
    by "Domain", "Private", "Public" and "Standard", one entry per key that exists (even with no
    values: an existing PrivateProfile key retires StandardProfile). No network category is
    known offline, so `active_profiles` is empty and every profile is judged.
    """
    policy = {name: _policy_settings(policy_profiles, name) for name in ALL_PROFILES}
    closed = frozenset(n for n, s in policy.items() if s.allow_local_policy_merge == 0)
    local, group = parse_rules(local_rules), parse_rules(policy_rules)
    rules = (*_outside(local.rules, closed), *group.rules)
    unreadable = (
        *_from(local.unreadable, "local", closed),
        *_from(group.unreadable, "Group Policy"),
    )
    profiles = tuple(
        _profile(name, local_profiles.get(name, ProfileSettings()), policy[name])
        for name in ALL_PROFILES
    )
    return Firewall(profiles, (), rules), unreadable


# --- Reading one rule ---------------------------------------------------------------------------


def _plain_reading(text: str) -> dict[str, set[str]]:
    """Dir, Active and Action as the text plainly gives them, for a rule that will not parse.

    Keys and values are compared case-insensitively and trimmed, and elements are taken even
    before a missing version, so that only a rule that says so everywhere counts as harmless.
    """
    seen: dict[str, set[str]] = {}
    for element in text.split("|"):
        key, _, value = element.partition("=")
        key = key.strip().lower()
        if key in {"dir", "active", "action"}:
            seen.setdefault(key, set()).add(value.strip().lower())
    return seen


def _unreadable(rule_id: str, reason: str, text: str, seen: dict[str, set[str]]) -> UnreadableRule:
    # A value without a single `=` ("", "|||") names no action for Windows to apply.
    empty = "=" not in text
    disabled = seen.get("active") == {"false"}
    allowing = bool(seen.get("action")) and seen.get("action", set()) <= {"allow", "bypass"}
    return UnreadableRule(rule_id, reason, may_block=not (empty or disabled or allowing))


def _fields(text: str) -> Fields:
    """The rule's fields by lower-cased key, after checking the version and the `|` framing."""
    version, *elements = text.split("|")
    if not _VERSION.fullmatch(version):
        raise _Malformed(f"it does not start with a version such as v2.33 but {_shown(version)}")
    fields: Fields = {}
    for element in elements:
        if not element:
            continue  # the final "|" leaves one empty element
        key, sep, value = element.partition("=")
        if not sep:
            raise _Malformed(f"the field {_shown(element)} has no '='")
        fields.setdefault(key.lower(), []).append(value)
    return fields


def _rule(rule_id: str, fields: Fields) -> FirewallRule | None:
    if _choice(fields, "Dir", _DIRECTIONS) == "Out":
        return None
    action = _choice(fields, "Action", _ACTIONS)
    protocol = _protocol(fields)
    admits_only_some = action != "Block"
    return FirewallRule(
        name=rule_id,
        display_name=_display_name(rule_id, _single(fields, "Name")),
        group=_single(fields, "EmbedCtxt") or "",
        # [MS-GPFAS]: a rule without Active= is inactive.
        enabled=_choice(fields, "Active", _BOOLEANS, required=False) == "TRUE",
        action=_action_text(action, fields),
        profiles=_profiles(fields),
        protocol=_PROTOCOL_NAMES.get(protocol, str(protocol)) if protocol is not None else "Any",
        local_ports=_ports(fields, protocol),
        remote_addresses=_addresses(fields),
        program=_program(fields, narrowed=admits_only_some),
        service=_named(fields, "Svc"),
    )


def _values(fields: Fields, key: str) -> list[str]:
    return fields.get(key.lower(), [])


def _single(fields: Fields, key: str) -> str | None:
    """A field that appears at most once (repeats of the same value are harmless)."""
    values = _values(fields, key)
    if len(set(values)) > 1:
        raise _Malformed(f"{key}= appears {len(values)} times with different values")
    return values[0] if values else None


def _choice(fields: Fields, key: str, allowed: Mapping[str, str], required: bool = True) -> str:
    value = _single(fields, key)
    if value is None:
        if required:
            raise _Malformed(f"it has no {key}=")
        return ""
    if value.lower() not in allowed:
        raise _Malformed(f"{key}={_shown(value)} is not one of {', '.join(allowed.values())}")
    return allowed[value.lower()]


def _display_name(rule_id: str, name: str | None) -> str:
    # "@FirewallAPI.dll,-30253" names a string resource of a DLL the scan cannot load.
    return name if name and not name.startswith("@") else rule_id


def _action_text(action: str, fields: Fields) -> str:
    if action == "ByPass":
        return AUTHENTICATED_BYPASS
    if action == "Allow" and any(_values(fields, k) for k in _AUTHENTICATION_KEYS):
        return AUTHENTICATED_ALLOW
    return action


def _profiles(fields: Fields) -> tuple[str, ...]:
    named: set[str] = set()
    for value in _values(fields, "Profile"):
        if value.lower() not in _PROFILES:
            raise _Malformed(f"Profile={_shown(value)} is not Domain, Private or Public")
        named.add(_PROFILES[value.lower()])
    return tuple(p for p in ALL_PROFILES if p in named) or ALL_PROFILES


def _protocol(fields: Fields) -> int | None:
    value = _single(fields, "Protocol")
    if value is None:
        return None
    if not _PROTOCOL.fullmatch(value) or int(value) > 255:
        raise _Malformed(f"Protocol={_shown(value)} is not an IP protocol number")
    return int(value)


def _ports(fields: Fields, protocol: int | None) -> tuple[str, ...]:
    values = [v for key in _PORT_KEYS for v in _values(fields, key)]
    if not values:
        return ("Any",)
    if protocol not in {6, 17}:
        shown = "any protocol" if protocol is None else f"protocol {protocol}"
        raise _Malformed(f"it names local ports but is for {shown}, not TCP or UDP")
    return tuple(dict.fromkeys(_port(v) for v in values))


def _port(value: str) -> str:
    if value.lower() in _PORT_KEYWORDS:
        return value
    match = _PORT.fullmatch(value)
    if match is None:
        raise _Malformed(f"the local port {_shown(value)} is neither a port, a range nor a keyword")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not low <= high <= 65535:
        raise _Malformed(f"the local port {_shown(value)} is out of range")
    return str(low) if low == high else f"{low}-{high}"


def _addresses(fields: Fields) -> tuple[str, ...]:
    values = [v for key in _ADDRESS_KEYS for v in _values(fields, key)]
    if not values:
        return ("Any",)
    # RA4=LocalSubnet|RA6=LocalSubnet is one keyword to the live cmdlets.
    return tuple(dict.fromkeys(_address(v) for v in values))


def _address(value: str) -> str:
    """The entry in the form addresses.py reads (it parses exactly what is checked here)."""
    if value == "*":
        return "Any"
    if value.lower() in _ADDRESS_KEYWORDS:
        return value
    if _is_address_range(value) or _is_network(value):
        return value
    raise _Malformed(f"the remote address {_shown(value)} is not an address, range or keyword")


def _is_network(value: str) -> bool:
    # strict=False: "10.0.0.5/8" is a host on a subnet, which the firewall accepts as the subnet.
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    # Python also reads "/0.0.255.255" as a host mask; the firewall knows only subnet masks.
    _, _, mask = value.partition("/")
    return "." not in mask or str(network.netmask) == mask


def _is_address_range(value: str) -> bool:
    low_text, sep, high_text = value.partition("-")
    if not sep:
        return False
    try:
        low, high = ipaddress.ip_address(low_text), ipaddress.ip_address(high_text)
    except ValueError:
        return False
    return low.version == high.version and int(low) <= int(high)


def _named(fields: Fields, key: str) -> str:
    value = _single(fields, key)
    if value == "":
        raise _Malformed(f"{key}= is empty")
    return value or "Any"


def _program(fields: Fields, narrowed: bool) -> str:
    program = _named(fields, "App")
    if program != "Any" or not narrowed:
        return program
    # A package or user condition limits the rule the way a program does; on a Block rule it
    # is ignored instead, so that the block reads as wide as it could be.
    for key in _CONTAINER_KEYS:
        value = _single(fields, key)
        if value:
            return f"{key}={value}"
    return "Any"


def _shown(value: str, limit: int = 60) -> str:
    """A piece of hostile text quoted for a message: escaped by repr, and short."""
    return repr(value[:limit]) + ("…" if len(value) > limit else "")


# --- Merging the stores -----------------------------------------------------------------------


def _policy_settings(policy_profiles: Mapping[str, ProfileSettings], name: str) -> ProfileSettings:
    """The Group Policy settings of one profile, StandardProfile standing in where it applies."""
    if name != "Domain" and not ({"Private", "Public"} & policy_profiles.keys()):
        return policy_profiles.get("Standard", ProfileSettings())
    return policy_profiles.get(name, ProfileSettings())


def _profile(name: str, local: ProfileSettings, policy: ProfileSettings) -> FirewallProfile:
    enable = _present(policy.enable_firewall, local.enable_firewall)
    inbound = _present(policy.default_inbound_action, local.default_inbound_action)
    return FirewallProfile(
        name=name,
        enabled=enable is None or enable != 0,
        default_inbound=_inbound_text(inbound),
    )


def _present(policy: int | None, local: int | None) -> int | None:
    return policy if policy is not None else local


def _inbound_text(value: int | None) -> str:
    if value is None:
        return "NotConfigured"  # as Get-NetFirewallProfile shows it; the firewall blocks
    # Only 0 allows: any other number reads as the stricter Block.
    return "Allow" if value == 0 else "Block"


def _outside(rules: Iterable[FirewallRule], closed: frozenset[str]) -> list[FirewallRule]:
    """Local rules without the profiles whose Group Policy ignores local rules."""
    kept: list[FirewallRule] = []
    for rule in rules:
        profiles = tuple(p for p in rule.profiles if p not in closed)
        if profiles:
            kept.append(replace(rule, profiles=profiles) if closed else rule)
    return kept


def _from(
    unreadable: Iterable[UnreadableRule], store: str, closed: frozenset[str] = frozenset()
) -> list[UnreadableRule]:
    # A local rule the firewall ignores in every profile cannot block anything.
    ignored = closed >= set(ALL_PROFILES)
    return [replace(u, store=store, may_block=u.may_block and not ignored) for u in unreadable]


# --- The registry ------------------------------------------------------------------------------

_LOCAL_POLICY = r"Services\SharedAccess\Parameters\FirewallPolicy"
_GROUP_POLICY = r"Policies\Microsoft\WindowsFirewall"
_LOCAL_PROFILE_KEYS = {
    "Domain": "DomainProfile",
    "Private": "StandardProfile",
    "Public": "PublicProfile",
}
_POLICY_PROFILE_KEYS = {
    "Domain": "DomainProfile",
    "Private": "PrivateProfile",
    "Public": "PublicProfile",
    "Standard": "StandardProfile",
}
# Windows Server ships some 400 rules; a store claiming far more is not one Windows wrote.
_MAX_RULES = 65536
_SHOWN_UNREADABLE = 5


def _rule_texts(key: RegistryKey | None) -> dict[str, str]:
    texts: dict[str, str] = {}
    for index, value in enumerate(key.values() if key is not None else ()):
        if index >= _MAX_RULES:
            raise FactFailed(f"{key.path if key else ''} holds more than {_MAX_RULES} rules")
        text = value.as_text()
        # A rule stored as another type is handed on as text so it is reported, not dropped.
        texts[value.name] = text if text is not None else value.data.decode("latin-1")
    return texts


def _profiles_of(key: RegistryKey | None, names: dict[str, str]) -> dict[str, ProfileSettings]:
    found: dict[str, ProfileSettings] = {}
    for profile, key_name in names.items():
        sub = key.subkey(key_name) if key is not None else None
        if sub is not None:
            found[profile] = ProfileSettings(
                sub.int_value("EnableFirewall"),
                sub.int_value("DefaultInboundAction"),
                sub.int_value("AllowLocalPolicyMerge"),
            )
    return found


def firewall_at_rest(g: Gathered) -> Firewall:
    """The offline form: the local and Group Policy stores the firewall service loads at boot.

    A rule that cannot be read and might block makes the firewall unjudgeable: reading past it
    could call a blocked port admitted.
    """
    local = system_key(g, _LOCAL_POLICY)
    if local is None:
        raise FactFailed(f"HKLM\\SYSTEM\\CurrentControlSet\\{_LOCAL_POLICY} is missing")
    group = software_key(g, _GROUP_POLICY)
    firewall, unreadable = firewall_from_policy(
        _rule_texts(local.subkey("FirewallRules")),
        _profiles_of(local, _LOCAL_PROFILE_KEYS),
        _rule_texts(group.subkey("FirewallRules") if group is not None else None),
        _profiles_of(group, _POLICY_PROFILE_KEYS),
    )
    blocking = [u for u in unreadable if u.may_block]
    if blocking:
        shown = "; ".join(u.describe() for u in blocking[:_SHOWN_UNREADABLE])
        more = (
            f" (and {len(blocking) - _SHOWN_UNREADABLE} more)"
            if len(blocking) > _SHOWN_UNREADABLE
            else ""
        )
        raise FactFailed(f"firewall rules that cannot be read: {shown}{more}")
    return firewall
