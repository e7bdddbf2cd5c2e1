"""Does a host firewall admit a new inbound connection? Pure functions of what the host printed.

Each evaluator simulates one NEW TCP (or UDP) packet, the first of a connection the Marketplace
scanner opens, against one firewall's rules: `iptables -S` / `iptables-save`, `nft -j list
ruleset`, `firewall-cmd --list-all` and `ufw status verbose`. None of them runs a command.

The simulation is three-valued. A match the text does not settle (a rate limit, an ipset, the
instance's own address) is "unknown"; the walk then follows both outcomes, and only when they
disagree is the verdict `admitted=None`, naming what could not be evaluated. So an unknown match
after a rule that already decided, or one whose outcome cannot change the verdict, costs nothing.

A source may be an address ("10.0.0.1") or a network ("10.0.0.0/16"); a network is admitted only
when every address in it is (a rule covering part of it is "unknown"). Several sources are walked
one by one: all must be admitted.
"""

from __future__ import annotations

import enum
import ipaddress
import itertools
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# The networks the Marketplace scanner connects from (CHECKS.md, policy S4).
SCANNER_NETWORKS: tuple[str, ...] = ("10.0.0.0/16", "10.2.0.0/16")


@dataclass(frozen=True)
class FirewallVerdict:
    """Whether a firewall admits the simulated connection, and why, in one line."""

    admitted: bool | None  # None = cannot tell (unknown match module etc.)
    reason: str  # e.g. "INPUT policy DROP; no rule accepts tcp/22 from 10.0.0.1"
    deciding_rule: str = ""  # the rule text that decided, "" when a chain policy decided


# --- three-valued matching ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Unknown:
    """A match the text cannot settle, and why."""

    reason: str


_Tri = bool | _Unknown
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_N = TypeVar("_N", ipaddress.IPv4Network, ipaddress.IPv6Network)


def _all(results: Iterable[_Tri]) -> _Tri:
    """Every match of a rule holds: one False settles it, whatever else is unknown."""
    unknown: _Unknown | None = None
    for result in results:
        if result is False:
            return False
        if isinstance(result, _Unknown) and unknown is None:
            unknown = result
    return True if unknown is None else unknown


def _any(results: Iterable[_Tri]) -> _Tri:
    """Some alternative holds: one True settles it."""
    unknown: _Unknown | None = None
    for result in results:
        if result is True:
            return True
        if isinstance(result, _Unknown) and unknown is None:
            unknown = result
    return False if unknown is None else unknown


def _negate(result: _Tri, negated: bool = True) -> _Tri:
    if negated and isinstance(result, bool):
        return not result
    return result


# --- the simulated packet -------------------------------------------------------------------

_PROTOCOL_NUMBERS = {
    "icmp": 1,
    "igmp": 2,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "sctp": 132,
    "udplite": 136,
}

# Port names that appear in rule dumps (nft prints a set's ports by name when told to).
_PORT_NAMES = {
    "ftp": 21,
    "ssh": 22,
    "telnet": 23,
    "smtp": 25,
    "domain": 53,
    "http": 80,
    "pop3": 110,
    "ntp": 123,
    "imap": 143,
    "https": 443,
    "microsoft-ds": 445,
    "rdp": 3389,
}

# Linux and Windows clients pick source ports from these; the scanner's port is not known.
_EPHEMERAL_PORTS = (1024, 65535)


@dataclass(frozen=True)
class _Packet:
    """The first packet of a connection from the scanner: source, destination port, protocol."""

    source: _Network
    port: int
    protocol: str
    in_interface: str

    @property
    def version(self) -> int:
        return self.source.version


def _network_text(network: _Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _make_packets(
    sources: Sequence[str], port: int, protocol: str, in_interface: str
) -> list[_Packet]:
    """One packet per source; ValueError for a source, port or protocol that is not one."""
    if not 0 < port <= 65535:
        raise ValueError(f"not a port: {port}")
    if protocol.lower() not in ("tcp", "udp"):
        raise ValueError(f"protocol must be tcp or udp, not {protocol!r}")
    return [
        _Packet(
            ipaddress.ip_network(source.strip(), strict=False), port, protocol.lower(), in_interface
        )
        for source in sources
    ]


def _describe(packets: Sequence[_Packet]) -> str:
    origins = ", ".join(_network_text(packet.source) for packet in packets)
    return f"{packets[0].protocol}/{packets[0].port} from {origins}"


def _exclude_same(part: _N, network: _N) -> list[_N]:
    if part.subnet_of(network):
        return []
    if network.subnet_of(part):
        return list(part.address_exclude(network))
    return [part]


def _exclude(part: _Network, network: _Network) -> list[_Network]:
    """What is left of `part` outside `network` (two CIDR blocks nest or are disjoint)."""
    if isinstance(part, ipaddress.IPv4Network) and isinstance(network, ipaddress.IPv4Network):
        return list(_exclude_same(part, network))
    if isinstance(part, ipaddress.IPv6Network) and isinstance(network, ipaddress.IPv6Network):
        return list(_exclude_same(part, network))
    return [part]


def _coverage(source: _Network, networks: Sequence[_Network]) -> str:
    """How much of `source` the union of `networks` covers: "all", "none" or "part"."""
    relevant = [n for n in networks if n.version == source.version and n.overlaps(source)]
    if not relevant:
        return "none"
    remaining: list[_Network] = [source]
    for network in relevant:
        remaining = [piece for part in remaining for piece in _exclude(part, network)]
        if not remaining:
            return "all"
    return "part"


def _match_sources(packet: _Packet, networks: Sequence[_Network], what: str) -> _Tri:
    """Whether the source lies in `networks` (True), outside them (False), or partly in them."""
    coverage = _coverage(packet.source, networks)
    if coverage == "part":
        return _Unknown(f"{what} covers only part of {_network_text(packet.source)}")
    return coverage == "all"


def _match_destination(packet: _Packet, networks: Sequence[_Network], what: str) -> _Tri:
    """A destination match: the packet is for the instance's own address, which is not known."""
    results: list[_Tri] = []
    for network in networks:
        if network.version != packet.version:
            results.append(False)
        elif network.prefixlen == 0:
            results.append(True)
        elif network.is_loopback or network.is_multicast or network.is_link_local:
            # The scanner reaches the instance's VPC address, never one of these.
            results.append(False)
        elif str(network) == "255.255.255.255/32":
            results.append(False)
        else:
            results.append(_Unknown(f"{what} depends on the instance's own address"))
    return _any(results)


def _in_ranges(port: int, ranges: Iterable[tuple[int, int]]) -> bool:
    return any(low <= port <= high for low, high in ranges)


def _covers(ranges: Iterable[tuple[int, int]], low: int, high: int) -> bool:
    point = low
    for start, end in sorted(ranges):
        if start > point:
            return False
        point = max(point, end + 1)
    return point > high


def _match_source_port(ranges: Sequence[tuple[int, int]], what: str) -> _Tri:
    """A source-port match: true only when every ephemeral port is in `ranges`."""
    low, high = _EPHEMERAL_PORTS
    clipped = [(max(a, low), min(b, high)) for a, b in ranges if a <= high and b >= low]
    if not clipped:
        return False
    if _covers(clipped, low, high):
        return True
    return _Unknown(f"{what} depends on the scanner's source port, which is not known")


def _iface_matches(pattern: str, name: str, wildcard: str) -> bool:
    if pattern.endswith(wildcard):
        return name.startswith(pattern[: -len(wildcard)])
    return pattern == name


def _protocol_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        return int(text) if text.isdigit() else _PROTOCOL_NUMBERS.get(text)
    return None


def _match_protocol(value: object, packet: _Packet) -> _Tri:
    wanted = _protocol_number(value)
    if wanted is None:
        return _Unknown(f"protocol {value} is not known")
    return wanted == _PROTOCOL_NUMBERS[packet.protocol]


def _port_number(text: str) -> int:
    text = text.strip()
    number = int(text) if text.isdigit() else _PORT_NAMES.get(text.lower())
    if number is None or not 0 <= number <= 65535:
        raise ValueError(f"not a port: {text!r}")
    return number


def _port_range(low: str, high: str) -> tuple[int, int]:
    first = _port_number(low) if low else 0
    last = _port_number(high) if high else 65535
    return min(first, last), max(first, last)


# --- walking chains -----------------------------------------------------------------------------


class _Verb(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"
    CONTINUE = "continue"  # no effect on the verdict: LOG, counters, no target
    JUMP = "jump"
    GOTO = "goto"
    RETURN = "return"
    UNKNOWN = "unknown"  # a target that may decide but is not evaluated (NFQUEUE, ...)


_DECISIONS = (_Verb.ACCEPT, _Verb.DROP, _Verb.REJECT)


@dataclass(frozen=True)
class _Step:
    """One rule, already matched against the packet."""

    text: str
    condition: _Tri
    verb: _Verb
    target: str = ""  # the chain of JUMP/GOTO; the reason of UNKNOWN


@dataclass(frozen=True)
class _Outcome:
    """Where a walk ended: a deciding rule, the base chain's policy, or an unknown."""

    admitted: bool | None
    kind: str  # "accept", "drop", "reject", "policy" or "unknown"
    chain: str
    rule: str = ""
    detail: str = ""  # the policy ("INPUT policy DROP") or why it is unknown


_Frames = tuple[tuple[str, int], ...]

# Kernels refuse deeper jump stacks; past this a dump has a loop.
_MAX_DEPTH = 64
# Each rule that cannot be evaluated doubles the walks; past this the verdict is unknown.
_MAX_FORKS = 128


class _Walker:
    """Follows the packet from a base chain through jumps, gotos and returns to a verdict."""

    def __init__(self, chains: Mapping[str, Sequence[_Step]], policy: _Outcome) -> None:
        self._chains = chains
        self._policy = policy
        self._forks_left = _MAX_FORKS

    def run(self, base: str) -> _Outcome:
        return self._walk(((base, 0),))

    def _walk(self, frames: _Frames) -> _Outcome:
        while frames:
            chain, index = frames[-1]
            steps = self._chains.get(chain, ())
            if index >= len(steps):
                frames = frames[:-1]  # the end of a user chain returns to its caller
                continue
            step = steps[index]
            frames = (*frames[:-1], (chain, index + 1))
            if step.condition is False or step.verb is _Verb.CONTINUE:
                continue
            if isinstance(step.condition, _Unknown):
                return self._fork(step, step.condition, chain, frames)
            moved = self._take(step, chain, frames)
            if isinstance(moved, _Outcome):
                return moved
            frames = moved
        return self._policy

    def _take(self, step: _Step, chain: str, frames: _Frames) -> _Outcome | _Frames:
        if step.verb in _DECISIONS:
            return _Outcome(step.verb is _Verb.ACCEPT, step.verb.value, chain, step.text)
        if step.verb is _Verb.RETURN:
            return frames[:-1]
        if step.verb is _Verb.UNKNOWN:
            return _Outcome(None, "unknown", chain, step.text, step.target)
        if step.target not in self._chains:
            detail = f"it jumps to chain {step.target}, which is not defined"
            return _Outcome(None, "unknown", chain, step.text, detail)
        if len(frames) >= _MAX_DEPTH:
            return _Outcome(None, "unknown", chain, step.text, "chains nest too deep (a loop?)")
        caller = frames if step.verb is _Verb.JUMP else frames[:-1]
        return (*caller, (step.target, 0))

    def _fork(self, step: _Step, unknown: _Unknown, chain: str, frames: _Frames) -> _Outcome:
        self._forks_left -= 1
        if self._forks_left < 0:
            return _Outcome(None, "unknown", chain, step.text, "too many rules cannot be evaluated")
        moved = self._take(step, chain, frames)
        matched = moved if isinstance(moved, _Outcome) else self._walk(moved)
        unmatched = self._walk(frames)
        if matched.admitted is not None and matched.admitted == unmatched.admitted:
            return unmatched  # the rule cannot change the verdict
        return _Outcome(None, "unknown", chain, step.text, unknown.reason)


def _verdict(outcome: _Outcome, what: str, prefix: str = "") -> FirewallVerdict:
    """The verdict of one walk; `what` describes the packet ("tcp/22 from 10.0.0.1")."""
    where = f"{prefix}{outcome.chain}"
    if outcome.kind == "policy" and outcome.admitted is None:
        return FirewallVerdict(None, f"cannot tell whether {what} is admitted: {outcome.detail}")
    if outcome.kind == "policy":
        missing = "drops or rejects" if outcome.admitted else "accepts"
        return FirewallVerdict(outcome.admitted, f"{outcome.detail}; no rule {missing} {what}")
    if outcome.kind == "unknown":
        reason = f"cannot tell whether {where} admits {what}: {outcome.detail}"
        return FirewallVerdict(None, reason, outcome.rule)
    return FirewallVerdict(outcome.admitted, f"{where} {outcome.kind}s {what}", outcome.rule)


def _policy(admitted: bool | None, chain: str, detail: str) -> _Outcome:
    return _Outcome(admitted, "policy", chain, detail=detail)


# A walk's outcomes, one per base chain, each with the prefix that names its chain in a reason.
_Walks = list[tuple[_Outcome, str]]


def _decide(packets: Sequence[_Packet], walk: Callable[[_Packet], _Walks]) -> FirewallVerdict:
    """Walks each source's packet; all sources must be admitted.

    When every source ends the same way, one reason names them all; otherwise the first source
    refused decides, then the first unknown.
    """
    walks = [walk(packet) for packet in packets]
    if all(other == walks[0] for other in walks):
        return _conjoin([_verdict(o, _describe(packets), prefix) for o, prefix in walks[0]])
    return _conjoin(
        [
            _conjoin([_verdict(o, _describe([packet]), prefix) for o, prefix in outcomes])
            for packet, outcomes in zip(packets, walks, strict=True)
        ]
    )


def _conjoin(verdicts: Sequence[FirewallVerdict]) -> FirewallVerdict:
    """The packet must pass every one: a refusal anywhere decides, then an unknown."""
    for verdict in verdicts:
        if verdict.admitted is False:
            return verdict
    for verdict in verdicts:
        if verdict.admitted is None:
            return verdict
    if len(verdicts) == 1:
        return verdicts[0]
    rules = [verdict.deciding_rule for verdict in verdicts if verdict.deciding_rule]
    return FirewallVerdict(True, "; ".join(v.reason for v in verdicts), rules[-1] if rules else "")


# --- iptables -----------------------------------------------------------------------------------

_IPT_ALIASES = {
    "-s": "--source",
    "--src": "--source",
    "-d": "--destination",
    "--dst": "--destination",
    "-p": "--protocol",
    "-i": "--in-interface",
    "-o": "--out-interface",
    "-j": "--jump",
    "-g": "--goto",
    "-m": "--match",
    "-f": "--fragment",
    "-c": "--set-counters",
}
_IPT_CORE = frozenset(_IPT_ALIASES.values())
# Values that may start with "-" are taken by count; other options take values up to the next
# option. `iptables -S` prints every rule in this one grammar.
_IPT_ARITY = {
    "--source": 1,
    "--destination": 1,
    "--protocol": 1,
    "--in-interface": 1,
    "--out-interface": 1,
    "--jump": 1,
    "--goto": 1,
    "--match": 1,
    "--fragment": 0,
    "--set-counters": 2,
    "--syn": 0,
    "--tcp-flags": 2,
    "--comment": 1,
    "--log-prefix": 1,
    "--nflog-prefix": 1,
}
_IPT_MODULE_OPTIONS: dict[str, frozenset[str]] = {
    "tcp": frozenset(
        ("--dport", "--destination-port", "--sport", "--source-port", "--syn", "--tcp-flags")
    ),
    "udp": frozenset(("--dport", "--destination-port", "--sport", "--source-port")),
    "multiport": frozenset(
        ("--dports", "--destination-ports", "--sports", "--source-ports", "--ports")
    ),
    "state": frozenset(("--state",)),
    "conntrack": frozenset(
        ("--ctstate", "--ctproto", "--ctorigsrc", "--ctorigdst", "--ctdir", "--ctorigdstport")
    ),
    "comment": frozenset(("--comment",)),
    "addrtype": frozenset(("--src-type", "--dst-type", "--limit-iface-in", "--limit-iface-out")),
    "iprange": frozenset(("--src-range", "--dst-range")),
    "pkttype": frozenset(("--pkt-type",)),
    "icmp": frozenset(("--icmp-type",)),
    "icmp6": frozenset(("--icmpv6-type",)),
}
# Targets after which the packet goes on to the next rule.
_IPT_NON_TERMINATING = frozenset(
    (
        "LOG",
        "NFLOG",
        "ULOG",
        "AUDIT",
        "MARK",
        "CONNMARK",
        "SECMARK",
        "CONNSECMARK",
        "CLASSIFY",
        "DSCP",
        "TOS",
        "TTL",
        "HL",
        "TCPMSS",
        "SET",
        "TRACE",
        "IDLETIMER",
        "LED",
        "RATEEST",
        "NFACCT",
        "TEE",
        "CHECKSUM",
    )
)
_IPT_PROTOCOL_MODULES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp6", "ipv6-icmp": "icmp6"}
_TCP_FLAGS = frozenset(("FIN", "SYN", "RST", "PSH", "ACK", "URG"))
_SYN = frozenset(("SYN",))


@dataclass(frozen=True)
class _IptOption:
    """One option of a rule, e.g. ("tcp", "--dport", ("22",), negated=False)."""

    module: str  # "" for the core options, the match module, or "target"
    name: str
    args: tuple[str, ...]
    negated: bool


@dataclass
class _IptTable:
    """The filter table of a dump: policies, chains, and each chain's rules (text, tokens)."""

    policies: dict[str, str] = field(default_factory=dict)
    chains: set[str] = field(default_factory=set)
    rules: dict[str, list[tuple[str, list[str] | None]]] = field(default_factory=dict)


def evaluate_iptables(
    rules_text: str,
    source: str,
    port: int,
    protocol: str = "tcp",
    in_interface: str = "eth0",
) -> FirewallVerdict:
    """Whether the filter table admits a NEW connection from `source` to `port`.

    `rules_text` is `iptables -S` output, or `iptables-save` output (only `*filter` is read).
    Walks INPUT in order, into user chains (-j, -g) and back (RETURN, end of chain). Evaluated:
    -s/-d/-p/-i (with `!`), tcp/udp ports and flags, multiport, state, conntrack, comment,
    addrtype, iprange, pkttype. Other match modules (limit, recent, set, ...), destination
    addresses (the instance's own address is not known) and NFQUEUE make the verdict None when
    they could change it. Raises ValueError for a bad source, port or protocol.
    """
    packets = _make_packets([source], port, protocol, in_interface)
    table = _ipt_read(rules_text)
    policy_name = table.policies.get("INPUT", "ACCEPT").upper()
    admitted = {"ACCEPT": True, "DROP": False}.get(policy_name)
    policy = _policy(admitted, "INPUT", f"INPUT policy {policy_name}")
    return _decide(packets, lambda packet: [(_ipt_walk(table, packet, policy), "")])


def _ipt_walk(table: _IptTable, packet: _Packet, policy: _Outcome) -> _Outcome:
    known = table.chains | set(table.rules) | {"INPUT"}
    # Declared chains without rules exist too: a jump into one returns at once.
    chains = {
        name: [_ipt_step(text, tokens, packet, known) for text, tokens in table.rules.get(name, [])]
        for name in known
    }
    return _Walker(chains, policy).run("INPUT")


def _ipt_filter_lines(text: str) -> Iterable[str]:
    table = "filter"  # `iptables -S` has no table headers
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            table = line[1:].strip()
        elif line == "COMMIT":
            table = ""
        elif table == "filter":
            # `iptables-save -c` puts packet and byte counters before each rule.
            yield re.sub(r"^\[\d+:\d+\]\s+", "", line)


def _ipt_read(text: str) -> _IptTable:
    table = _IptTable()
    for line in _ipt_filter_lines(text):
        if line.startswith(":"):  # iptables-save: ":INPUT DROP [0:0]", ":ufw-user-input - [0:0]"
            name, _, rest = line[1:].partition(" ")
            table.chains.add(name)
            policy = rest.split()[0] if rest.split() else "-"
            if policy != "-":
                table.policies[name] = policy
            continue
        try:
            tokens = shlex.split(line)
        except ValueError:
            chain = re.match(r"-A\s+(\S+)", line)
            if chain:  # an unreadable rule is kept: it is unknown if the walk reaches it
                table.rules.setdefault(chain.group(1), []).append((line, None))
            continue
        _ipt_command(table, line, tokens)
    return table


def _ipt_command(table: _IptTable, line: str, tokens: list[str]) -> None:
    if len(tokens) >= 3 and tokens[0] == "-P":
        table.policies[tokens[1]] = tokens[2]
    elif len(tokens) >= 2 and tokens[0] == "-N":
        table.chains.add(tokens[1])
    elif len(tokens) >= 2 and tokens[0] == "-A":
        table.rules.setdefault(tokens[1], []).append((line, tokens[2:]))


def _ipt_step(text: str, tokens: list[str] | None, packet: _Packet, chains: set[str]) -> _Step:
    if tokens is None:
        return _Step(text, True, _Verb.UNKNOWN, "the rule cannot be read (unbalanced quotes)")
    try:
        options = _ipt_options(tokens)
    except ValueError as exc:
        return _Step(text, True, _Verb.UNKNOWN, f"the rule cannot be read: {exc}")
    matches = [o for o in options if o.module != "target" and o.name not in ("--jump", "--goto")]
    verb, target = _ipt_target(options, chains)
    return _Step(text, _all(_ipt_condition(o, packet) for o in matches), verb, target)


def _looks_like_option(token: str) -> bool:
    return len(token) > 1 and token.startswith("-") and not token[1].isdigit()


def _ipt_take_args(
    tokens: Sequence[str], index: int, name: str
) -> tuple[tuple[str, ...], int, bool]:
    """The values of option `name` from `index`, the next index, and an old-style `--opt ! v`."""
    negated = False
    arity = _IPT_ARITY.get(name)
    old_style = index + 1 < len(tokens) and tokens[index] == "!"
    if arity != 0 and old_style and not _looks_like_option(tokens[index + 1]):
        negated, index = True, index + 1
    if arity is None:
        end = index
        while end < len(tokens) and not _looks_like_option(tokens[end]) and tokens[end] != "!":
            end += 1
        return tuple(tokens[index:end]), end, negated
    if index + arity > len(tokens):
        raise ValueError(f"{name} needs {arity} value(s)")
    return tuple(tokens[index : index + arity]), index + arity, negated


def _ipt_owner(name: str, module: str, protocol_module: str) -> str:
    """The match module an option belongs to: the latest -m, else the one -p loads."""
    if module and name in _IPT_MODULE_OPTIONS.get(module, frozenset()):
        return module
    if protocol_module and name in _IPT_MODULE_OPTIONS.get(protocol_module, frozenset()):
        return protocol_module
    return module or protocol_module


def _ipt_options(words: Sequence[str]) -> list[_IptOption]:
    options: list[_IptOption] = []
    module = protocol_module = ""
    in_target = negated = False
    index = 0
    while index < len(words):
        word = words[index]
        if word == "!":
            negated, index = True, index + 1
            continue
        if not _looks_like_option(word):
            raise ValueError(f"unexpected {word!r}")
        name = _IPT_ALIASES.get(word, word)
        args, index, old_negation = _ipt_take_args(words, index + 1, name)
        negated = negated or old_negation
        if name == "--match":
            module = args[0].lower()
        elif name in _IPT_CORE:
            if name == "--protocol":  # `-p tcp` loads the tcp match module, as `-p 6` does
                protocol_module = _IPT_PROTOCOL_MODULES.get(args[0].lower(), args[0].lower())
            in_target = in_target or name in ("--jump", "--goto")
            options.append(_IptOption("", name, args, negated))
        else:
            owner = "target" if in_target else _ipt_owner(name, module, protocol_module)
            options.append(_IptOption(owner, name, args, negated))
        negated = False
    return options


def _ipt_target(options: Sequence[_IptOption], chains: set[str]) -> tuple[_Verb, str]:
    jump = next((o for o in options if o.name in ("--jump", "--goto")), None)
    if jump is None:
        return _Verb.CONTINUE, ""  # a rule without a target only counts packets
    target = jump.args[0]
    if target in chains:
        return (_Verb.JUMP if jump.name == "--jump" else _Verb.GOTO), target
    if jump.name == "--jump" and target.upper() in ("ACCEPT", "DROP", "REJECT", "RETURN"):
        return _Verb[target.upper()], ""
    if jump.name == "--jump" and target.upper() in _IPT_NON_TERMINATING:
        return _Verb.CONTINUE, ""
    if target.upper() in ("NFQUEUE", "QUEUE"):
        return _Verb.UNKNOWN, f"target {target} hands the verdict to a userspace program"
    return _Verb.UNKNOWN, f"target {target} is not evaluated"


def _ipt_condition(option: _IptOption, packet: _Packet) -> _Tri:
    handler = _IPT_MATCHERS.get(option.module)
    if handler is None:
        return _Unknown(f"match module '{option.module}' is not evaluated")
    try:
        result = handler(option.name, option.args, packet)
    except (ValueError, IndexError) as exc:
        return _Unknown(f"cannot read {option.name} {' '.join(option.args)}: {exc}")
    return _negate(result, option.negated)


def _networks(text: str) -> list[_Network]:
    return [ipaddress.ip_network(part, strict=False) for part in text.split(",") if part]


def _ipt_core(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    value = args[0] if args else ""
    if name == "--source":
        return _match_sources(packet, _networks(value), f"-s {value}")
    if name == "--destination":
        return _match_destination(packet, _networks(value), f"-d {value}")
    if name == "--protocol":
        return True if value.lower() in ("all", "0") else _match_protocol(value, packet)
    if name == "--in-interface":
        return _iface_matches(value, packet.in_interface, "+")
    if name in ("--out-interface", "--fragment"):
        return False  # an arriving packet has no output interface; a SYN is no fragment
    if name == "--set-counters":
        return True
    return _Unknown(f"option {name} is not evaluated")


def _ipt_ports(text: str) -> list[tuple[int, int]]:
    return [_port_range(*_split_range(part, ":")) for part in text.split(",")]


def _split_range(text: str, separator: str) -> tuple[str, str]:
    low, found, high = text.partition(separator)
    return (low, high) if found else (low, low)


def _ipt_flags(text: str) -> frozenset[str]:
    names = {name.strip().upper() for name in text.split(",")}
    if "ALL" in names:
        return _TCP_FLAGS
    unknown = names - _TCP_FLAGS - {"NONE"}
    if unknown:
        raise ValueError(f"unknown TCP flags {', '.join(sorted(unknown))}")
    return frozenset(names & _TCP_FLAGS)


def _ipt_tcp_udp(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    if name in ("--dport", "--destination-port"):
        return _in_ranges(packet.port, _ipt_ports(args[0]))
    if name in ("--sport", "--source-port"):
        return _match_source_port(_ipt_ports(args[0]), f"--sport {args[0]}")
    if name == "--syn":
        return True  # the packet is a SYN
    if name == "--tcp-flags":
        return _ipt_flags(args[0]) & _SYN == _ipt_flags(args[1])
    return _Unknown(f"option {name} is not evaluated")


def _ipt_tcp(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    return _ipt_tcp_udp(name, args, packet) if packet.protocol == "tcp" else False


def _ipt_udp(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    return _ipt_tcp_udp(name, args, packet) if packet.protocol == "udp" else False


def _ipt_multiport(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    ranges = _ipt_ports(args[0])
    destination = _in_ranges(packet.port, ranges)
    if name in ("--dports", "--destination-ports"):
        return destination
    source = _match_source_port(ranges, f"{name} {args[0]}")
    if name in ("--sports", "--source-ports"):
        return source
    return _any((destination, source))  # --ports: either port


def _ipt_state(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    # The first packet of a connection is NEW: RELATED,ESTABLISHED-only rules do not match.
    return "NEW" in {state.strip().upper() for state in args[0].split(",")}


def _ipt_conntrack(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    value = args[0]
    if name == "--ctstate":
        return _ipt_state(name, args, packet)
    if name == "--ctproto":
        return _match_protocol(value, packet)
    if name == "--ctorigsrc":
        return _match_sources(packet, _networks(value), f"--ctorigsrc {value}")
    if name == "--ctorigdst":
        return _match_destination(packet, _networks(value), f"--ctorigdst {value}")
    if name == "--ctorigdstport":
        return _in_ranges(packet.port, _ipt_ports(value))
    if name == "--ctdir":
        return value.upper() == "ORIGINAL"
    return _Unknown(f"conntrack option {name} is not evaluated")


def _ipt_comment(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    return True


def _ipt_addrtype(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    if name in ("--limit-iface-in", "--limit-iface-out"):
        return True
    types = {kind.strip().upper() for kind in args[0].split(",")}
    if name == "--dst-type":
        return bool(types & {"LOCAL", "UNICAST"})  # INPUT sees packets for a local address
    if name == "--src-type":
        return "UNICAST" in types  # the scanner is a remote unicast address
    return _Unknown(f"addrtype option {name} is not evaluated")


def _ip_range(text: str) -> list[_Network]:
    low, high = _split_range(text, "-")
    first, last = ipaddress.ip_address(low.strip()), ipaddress.ip_address(high.strip())
    if isinstance(first, ipaddress.IPv4Address) and isinstance(last, ipaddress.IPv4Address):
        return list(ipaddress.summarize_address_range(first, last))
    if isinstance(first, ipaddress.IPv6Address) and isinstance(last, ipaddress.IPv6Address):
        return list(ipaddress.summarize_address_range(first, last))
    raise ValueError(f"a range mixes IPv4 and IPv6: {text!r}")


def _ipt_iprange(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    if name == "--src-range":
        return _match_sources(packet, _ip_range(args[0]), f"--src-range {args[0]}")
    return _match_destination(packet, _ip_range(args[0]), f"--dst-range {args[0]}")


def _ipt_pkttype(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    return args[0].lower() in ("unicast", "host")


def _ipt_icmp(name: str, args: tuple[str, ...], packet: _Packet) -> _Tri:
    return False  # the packet is TCP or UDP


_IptMatcher = Callable[[str, tuple[str, ...], _Packet], _Tri]
_IPT_MATCHERS: dict[str, _IptMatcher] = {
    "": _ipt_core,
    "tcp": _ipt_tcp,
    "udp": _ipt_udp,
    "multiport": _ipt_multiport,
    "state": _ipt_state,
    "conntrack": _ipt_conntrack,
    "comment": _ipt_comment,
    "addrtype": _ipt_addrtype,
    "iprange": _ipt_iprange,
    "pkttype": _ipt_pkttype,
    "icmp": _ipt_icmp,
    "icmp6": _ipt_icmp,
}


# --- nftables -----------------------------------------------------------------------------------

_NFT_VERDICTS = {
    "accept": _Verb.ACCEPT,
    "drop": _Verb.DROP,
    "reject": _Verb.REJECT,
    "return": _Verb.RETURN,
    "jump": _Verb.JUMP,
    "goto": _Verb.GOTO,
    "continue": _Verb.CONTINUE,
}
# Statements with no say in the verdict.
_NFT_SIDE_EFFECTS = frozenset(
    ("counter", "log", "mangle", "notrack", "secmark", "dup", "flow", "set", "ct helper")
)
# Statements that stop the rule for some packets (rate limits, quotas): unknown matches.
_NFT_RATE_MATCHES = frozenset(("limit", "quota", "ct count", "meter", "connlimit"))
_NFT_NAMED_PRIORITIES = {
    "raw": -300,
    "mangle": -150,
    "dstnat": -100,
    "filter": 0,
    "security": 50,
    "srcnat": 100,
}
_CT_STATE_BITS = {"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
_NFT_TCP_FLAG_BITS = {
    "fin": 1,
    "syn": 2,
    "rst": 4,
    "psh": 8,
    "ack": 16,
    "urg": 32,
    "ecn": 64,
    "cwr": 128,
}
_NFT_SYN = frozenset(("syn",))


@dataclass
class _NftRuleset:
    """The objects of `nft -j list ruleset`, indexed by (family, table, name)."""

    chains: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    rules: dict[tuple[str, str, str], list[dict[str, Any]]] = field(default_factory=dict)
    sets: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def add(self, kind: str, body: dict[str, Any]) -> None:
        family, table = str(body.get("family", "")), str(body.get("table", ""))
        if kind == "chain":
            self.chains[(family, table, str(body.get("name", "")))] = body
        elif kind == "rule":
            self.rules.setdefault((family, table, str(body.get("chain", ""))), []).append(body)
        elif kind in ("set", "map"):
            self.sets[(family, table, str(body.get("name", "")))] = body


@dataclass(frozen=True)
class _NftContext:
    """What matching a rule needs besides the rule: the packet and the table's named sets."""

    packet: _Packet
    ruleset: _NftRuleset
    family: str
    table: str

    def named_set(self, name: str) -> dict[str, Any] | None:
        return self.ruleset.sets.get((self.family, self.table, name))


def evaluate_nftables(
    ruleset_json: str,
    source: str,
    port: int,
    protocol: str = "tcp",
    in_interface: str = "eth0",
) -> FirewallVerdict:
    """Whether nftables admits a NEW connection from `source` to `port`.

    `ruleset_json` is `nft -j list ruleset`. Every base chain on the input hook of the ip/inet
    families (ip6/inet for an IPv6 source) is walked in priority order: the packet must pass all
    of them, and a drop in any is final. Evaluated: ip/ip6 saddr (addresses, prefixes, ranges,
    anonymous and named sets), tcp/udp/th ports, tcp flags, iifname, l4proto, nfproto, ct state,
    verdict maps, and accept/drop/reject/jump/goto/return. Other expressions (fib, limit, xt, ...)
    make the verdict None when they could change it. Raises ValueError when the text is not
    that JSON.
    """
    packets = _make_packets([source], port, protocol, in_interface)
    ruleset = _nft_load(ruleset_json)
    families = ("ip", "inet") if packets[0].version == 4 else ("ip6", "inet")
    bases = [
        key
        for key, chain in ruleset.chains.items()
        if chain.get("hook") == "input" and key[0] in families
    ]
    bases.sort(key=lambda key: _nft_priority(ruleset.chains[key].get("prio")))
    if not bases:
        return FirewallVerdict(
            True, f"no nftables chain hooks input; nothing filters {_describe(packets)}"
        )
    return _decide(packets, lambda packet: [_nft_walk(ruleset, key, packet) for key in bases])


def _nft_load(text: str) -> _NftRuleset:
    try:
        data = json.loads(text) if text.strip() else {"nftables": []}
    except json.JSONDecodeError as exc:
        raise ValueError(f"not nft JSON: {exc}") from exc
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError('not `nft -j list ruleset` output: no "nftables" list')
    ruleset = _NftRuleset()
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            ((kind, body),) = item.items()
            if isinstance(body, dict):
                ruleset.add(str(kind), body)
    return ruleset


def _nft_priority(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _NFT_NAMED_PRIORITIES.get(value.strip(), 0)
    return 0


def _nft_walk(
    ruleset: _NftRuleset, base: tuple[str, str, str], packet: _Packet
) -> tuple[_Outcome, str]:
    family, table, name = base
    context = _NftContext(packet, ruleset, family, table)
    chains = {
        key[2]: [_nft_step(rule, context) for rule in ruleset.rules.get(key, [])]
        for key in ruleset.chains
        if key[:2] == (family, table)
    }
    policy_name = str(ruleset.chains[base].get("policy", "accept"))
    admitted = {"accept": True, "drop": False}.get(policy_name)
    policy = _policy(admitted, name, f"{family} {table} {name} policy {policy_name}")
    return _Walker(chains, policy).run(name), f"{family} {table} "


def _single(statement: object) -> tuple[str, Any]:
    if isinstance(statement, dict) and len(statement) == 1:
        ((kind, body),) = statement.items()
        return str(kind), body
    return "?", statement


def _nft_step(rule: dict[str, Any], context: _NftContext) -> _Step:
    text = _nft_rule_text(rule)
    statements = rule.get("expr") or []
    conditions: list[_Tri] = []
    for index, statement in enumerate(statements):
        kind, body = _single(statement)
        if kind == "match":
            conditions.append(_nft_match(body, context))
        elif kind in _NFT_VERDICTS:
            target = str(body.get("target", "")) if isinstance(body, dict) else ""
            return _Step(text, _all(conditions), _NFT_VERDICTS[kind], target)
        elif kind == "vmap":
            verb, target = _nft_vmap(body, context)
            return _Step(text, _all(conditions), verb, target)
        elif kind in _NFT_SIDE_EFFECTS:
            continue
        elif kind in _NFT_RATE_MATCHES or _nft_is_xt_match(body, statements[index + 1 :], kind):
            conditions.append(_Unknown(f"the '{_nft_name(kind, body)}' statement is not evaluated"))
        else:  # anything else may decide the packet's fate: an xt target, queue, synproxy, ...
            detail = f"the '{_nft_name(kind, body)}' statement is not evaluated"
            return _Step(text, _all(conditions), _Verb.UNKNOWN, detail)
    return _Step(text, _all(conditions), _Verb.CONTINUE)


def _nft_name(kind: str, body: object) -> str:
    if kind == "xt" and isinstance(body, dict) and body.get("name"):
        return f"xt {body.get('type', '')} {body['name']}".replace("  ", " ")
    return kind


def _nft_is_xt_match(body: object, rest: Sequence[object], kind: str) -> bool:
    """An iptables-nft compatibility expression used as a match rather than as a target."""
    if kind != "xt":
        return False
    if isinstance(body, dict) and body.get("type") in ("match", "target"):
        return body.get("type") == "match"
    # Older nft prints `"xt": null`; a verdict after it means it was a match.
    return any(_single(s)[0] in _NFT_VERDICTS or _single(s)[0] == "vmap" for s in rest)


def _nft_vmap(body: object, context: _NftContext) -> tuple[_Verb, str]:
    if not isinstance(body, dict):
        return _Verb.UNKNOWN, "unreadable vmap"
    data = body.get("data")
    entries = _nft_items(data, context)
    if isinstance(entries, _Unknown):
        return _Verb.UNKNOWN, entries.reason
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2):
            return _Verb.UNKNOWN, "unreadable vmap entry"
        hit = _nft_match({"op": "==", "left": body.get("key"), "right": entry[0]}, context)
        if isinstance(hit, _Unknown):
            return _Verb.UNKNOWN, hit.reason
        if hit:
            kind, verdict_body = _single(entry[1])
            if kind not in _NFT_VERDICTS:
                return _Verb.UNKNOWN, f"vmap verdict {kind} is not evaluated"
            target = verdict_body.get("target", "") if isinstance(verdict_body, dict) else ""
            return _NFT_VERDICTS[kind], str(target)
    return _Verb.CONTINUE, ""


def _nft_items(right: object, context: _NftContext) -> list[Any] | _Unknown:
    """The values a match compares with: a literal, a list, an anonymous or a named set."""
    if isinstance(right, str) and right.startswith("@"):
        named = context.named_set(right[1:])
        if named is None:
            return _Unknown(f"set {right} is not in the ruleset")
        right = named.get("elem", [])
    elif isinstance(right, dict) and "set" in right:
        right = right["set"]
    items = right if isinstance(right, list) else [right]
    return [_nft_unwrap(item) for item in items]


def _nft_unwrap(item: object) -> object:
    # Elements with timeouts or comments are printed as {"elem": {"val": ..., ...}}.
    if isinstance(item, dict) and isinstance(item.get("elem"), dict):
        return item["elem"].get("val")
    return item


def _nft_field(left: object) -> str | None:
    if not isinstance(left, dict) or len(left) != 1:
        return None
    kind, body = _single(left)
    if not isinstance(body, dict):
        return None
    if kind == "payload" and "protocol" in body:
        return f"{body['protocol']} {body.get('field', '')}"
    if kind in ("meta", "ct") and "dir" not in body:
        return f"{kind} {body.get('key', '')}"
    return None


def _nft_match(body: object, context: _NftContext) -> _Tri:
    if not isinstance(body, dict):
        return _Unknown("unreadable match")
    op, left, right = str(body.get("op", "==")), body.get("left"), body.get("right")
    if _nft_flags_operand(left):
        return _nft_flags_match(op, left, right, context.packet)
    name = _nft_field(left)
    matcher = _NFT_FIELDS.get(name or "")
    if matcher is None:
        return _Unknown(f"a match on {_nft_render(left)} is not evaluated")
    if op in ("<", ">", "<=", ">="):
        return _nft_relation(op, name or "", right, context.packet)
    items = _nft_items(right, context)
    if isinstance(items, _Unknown):
        return items
    try:
        member = matcher(name or "", items, context.packet)
    except (ValueError, TypeError, KeyError) as exc:
        return _Unknown(f"cannot read {_nft_render(left)} {_nft_render(right)}: {exc}")
    if op in ("==", "in"):
        return member
    if op in ("!=", "!"):
        return _negate(member)
    return _Unknown(f"operator {op} is not evaluated")


def _nft_relation(op: str, name: str, right: object, packet: _Packet) -> _Tri:
    if not name.endswith("dport") or not isinstance(right, int):
        return _Unknown(f"{name} {op} {right} is not evaluated")
    if name.split()[0] not in ("th", packet.protocol):
        return False
    return {
        "<": packet.port < right,
        ">": packet.port > right,
        "<=": packet.port <= right,
        ">=": packet.port >= right,
    }[op]


def _nft_networks(item: object) -> list[_Network]:
    if isinstance(item, str):
        return [ipaddress.ip_network(item, strict=False)]
    if isinstance(item, dict) and isinstance(item.get("prefix"), dict):
        prefix = item["prefix"]
        return [ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}", strict=False)]
    if isinstance(item, dict) and isinstance(item.get("range"), list):
        low, high = item["range"]
        return _ip_range(f"{low}-{high}")
    raise ValueError(f"not an address: {item!r}")


def _nft_ports(item: object) -> tuple[int, int]:
    if isinstance(item, int) and not isinstance(item, bool):
        return item, item
    if isinstance(item, str):
        number = _port_number(item)
        return number, number
    if isinstance(item, dict) and isinstance(item.get("range"), list):
        low, high = item["range"]
        return _nft_ports(low)[0], _nft_ports(high)[0]
    raise ValueError(f"not a port: {item!r}")


def _nft_address(name: str, items: list[Any], packet: _Packet) -> _Tri:
    family = 4 if name.startswith("ip ") else 6
    if packet.version != family:
        return False  # `ip saddr` implies an IPv4 packet, `ip6 saddr` an IPv6 one
    networks = [network for item in items for network in _nft_networks(item)]
    if name.endswith("saddr"):
        return _match_sources(packet, networks, name)
    return _match_destination(packet, networks, name)


def _nft_port(name: str, items: list[Any], packet: _Packet) -> _Tri:
    protocol = name.split()[0]
    if protocol not in ("th", packet.protocol):
        return False  # `tcp dport` implies a TCP packet
    ranges = [_nft_ports(item) for item in items]
    if name.endswith("dport"):
        return _in_ranges(packet.port, ranges)
    return _match_source_port(ranges, name)


def _nft_protocol(name: str, items: list[Any], packet: _Packet) -> _Tri:
    if (name == "ip protocol" and packet.version != 4) or (
        name == "ip6 nexthdr" and packet.version != 6
    ):
        return False
    return _any(_match_protocol(item, packet) for item in items)


def _nft_in_interface(name: str, items: list[Any], packet: _Packet) -> _Tri:
    return any(_iface_matches(str(item), packet.in_interface, "*") for item in items)


def _nft_out_interface(name: str, items: list[Any], packet: _Packet) -> _Tri:
    return False  # an arriving packet has no output interface


def _nft_nfproto(name: str, items: list[Any], packet: _Packet) -> _Tri:
    # `meta nfproto ipv4` names the family; `meta protocol ip` the EtherType.
    wanted = f"ipv{packet.version}" if name == "meta nfproto" else _ETHER[packet.version]
    return any(str(item).lower() == wanted for item in items)


_ETHER = {4: "ip", 6: "ip6"}


def _nft_pkttype(name: str, items: list[Any], packet: _Packet) -> _Tri:
    return any(str(item).lower() in ("host", "unicast") for item in items)


def _nft_ct_state(name: str, items: list[Any], packet: _Packet) -> _Tri:
    # The first packet of a connection is NEW.
    for item in items:
        if isinstance(item, int) and item & _CT_STATE_BITS["new"]:
            return True
        if str(item).lower() == "new":
            return True
    return False


def _nft_ct_direction(name: str, items: list[Any], packet: _Packet) -> _Tri:
    return any(str(item).lower() == "original" for item in items)


def _nft_flag_set(value: object) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset((value.lower(),))
    if isinstance(value, int) and not isinstance(value, bool):
        return frozenset(n for n, bit in _NFT_TCP_FLAG_BITS.items() if value & bit)
    if isinstance(value, list):
        return frozenset().union(*(_nft_flag_set(item) for item in value))
    if isinstance(value, dict) and "|" in value:
        return _nft_flag_set(value["|"])
    raise ValueError(f"not TCP flags: {value!r}")


def _nft_flag_values(right: object) -> list[frozenset[str]]:
    # A list is one combination of flags ("syn,ack"); a set lists alternatives.
    values = right["set"] if isinstance(right, dict) and "set" in right else [right]
    return [_nft_flag_set(value) for value in (values if isinstance(values, list) else [values])]


def _nft_tcp_flags(op: str, flags: frozenset[str], right: object) -> _Tri:
    """Compares the SYN's flags, already masked, with `right` as operator `op` does."""
    try:
        values = _nft_flag_values(right)
    except ValueError as exc:
        return _Unknown(str(exc))
    if op in ("in", "!"):  # bitmask test: any of the flags is set
        hit = any(flags & value for value in values)
        return hit if op == "in" else not hit
    equal = any(flags == value for value in values)
    if op in ("==", "!="):
        return equal if op == "==" else not equal
    return _Unknown(f"operator {op} on tcp flags is not evaluated")


def _nft_flags_match(op: str, left: object, right: object, packet: _Packet) -> _Tri:
    """`tcp flags syn`, `tcp flags & (fin|syn|rst|ack) == syn` and the like."""
    if packet.protocol != "tcp":
        return False  # a tcp match implies a TCP packet
    if isinstance(left, dict) and "&" in left:
        operands = left["&"]
        if not (isinstance(operands, list) and len(operands) == 2):
            return _Unknown("unreadable bitwise match")
        try:
            masked = _NFT_SYN & _nft_flag_set(operands[1])
        except ValueError as exc:
            return _Unknown(str(exc))
        return _nft_tcp_flags(op, masked, right)
    return _nft_tcp_flags(op, _NFT_SYN, right)


def _nft_flags_operand(left: object) -> bool:
    if isinstance(left, dict) and "&" in left and isinstance(left["&"], list) and left["&"]:
        return _nft_field(left["&"][0]) == "tcp flags"
    return _nft_field(left) == "tcp flags"


_NftMatcher = Callable[[str, list[Any], _Packet], _Tri]
_NFT_FIELDS: dict[str, _NftMatcher] = {
    "ip saddr": _nft_address,
    "ip6 saddr": _nft_address,
    "ip daddr": _nft_address,
    "ip6 daddr": _nft_address,
    "ip protocol": _nft_protocol,
    "ip6 nexthdr": _nft_protocol,
    "meta l4proto": _nft_protocol,
    "ct protocol": _nft_protocol,
    "tcp dport": _nft_port,
    "udp dport": _nft_port,
    "th dport": _nft_port,
    "tcp sport": _nft_port,
    "udp sport": _nft_port,
    "th sport": _nft_port,
    "meta iifname": _nft_in_interface,
    "meta iif": _nft_in_interface,
    "meta oifname": _nft_out_interface,
    "meta oif": _nft_out_interface,
    "meta nfproto": _nft_nfproto,
    "meta protocol": _nft_nfproto,
    "meta pkttype": _nft_pkttype,
    "ct state": _nft_ct_state,
    "ct direction": _nft_ct_direction,
}


def _nft_rule_text(rule: dict[str, Any]) -> str:
    """The rule roughly as `nft list ruleset` prints it, prefixed with its table and chain."""
    parts = [_nft_render_statement(s) for s in rule.get("expr") or []]
    text = " ".join(part for part in parts if part)
    if rule.get("comment"):
        text += f' comment "{rule["comment"]}"'
    return f"{rule.get('family', '')} {rule.get('table', '')} {rule.get('chain', '')}: {text}"


def _nft_render_statement(statement: object) -> str:
    kind, body = _single(statement)
    if kind == "match" and isinstance(body, dict):
        op = str(body.get("op", "=="))
        shown = "" if op in ("==", "in") else f"{op} "
        return f"{_nft_render(body.get('left'))} {shown}{_nft_render(body.get('right'))}"
    if kind in ("jump", "goto") and isinstance(body, dict):
        return f"{kind} {body.get('target', '')}"
    if kind == "vmap" and isinstance(body, dict):
        return f"{_nft_render(body.get('key'))} vmap {_nft_render(body.get('data'))}"
    return kind


def _nft_render(value: object) -> str:
    if isinstance(value, dict) and len(value) == 1:
        kind, body = _single(value)
        field_name = _nft_field(value)
        if field_name is not None:
            return field_name.removeprefix("meta ") if kind == "meta" else field_name
        if kind == "prefix" and isinstance(body, dict):
            return f"{body.get('addr')}/{body.get('len')}"
        if kind == "range" and isinstance(body, list):
            return "-".join(_nft_render(item) for item in body)
        if kind == "set":
            items = body if isinstance(body, list) else [body]
            return "{ " + ", ".join(_nft_render(_nft_unwrap(item)) for item in items) + " }"
        if kind in ("&", "|") and isinstance(body, list):
            return f" {kind} ".join(_nft_render(item) for item in body)
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[1], dict) and _single(value[1])[0] in _NFT_VERDICTS:
            return f"{_nft_render(value[0])} : {_nft_render_statement(value[1])}"
        return ",".join(_nft_render(item) for item in value)
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, sort_keys=True)


# --- firewalld ----------------------------------------------------------------------------------

# The ports of firewalld's stock services (/usr/lib/firewalld/services/*.xml).
_FIREWALLD_SERVICES: dict[str, tuple[tuple[str, int, int], ...]] = {
    "ssh": (("tcp", 22, 22),),
    "http": (("tcp", 80, 80),),
    "https": (("tcp", 443, 443),),
    "dhcpv6-client": (("udp", 546, 546),),
    "dhcp": (("udp", 67, 67),),
    "cockpit": (("tcp", 9090, 9090),),
    "mdns": (("udp", 5353, 5353),),
    "samba-client": (("udp", 137, 137), ("udp", 138, 138)),
    "samba": (("tcp", 139, 139), ("tcp", 445, 445), ("udp", 137, 137), ("udp", 138, 138)),
    "dns": (("tcp", 53, 53), ("udp", 53, 53)),
    "ntp": (("udp", 123, 123),),
    "ftp": (("tcp", 21, 21),),
    "smtp": (("tcp", 25, 25),),
    "rdp": (("tcp", 3389, 3389),),
    "vnc-server": (("tcp", 5900, 5903),),
    "mysql": (("tcp", 3306, 3306),),
    "postgresql": (("tcp", 5432, 5432),),
    "nfs": (("tcp", 2049, 2049),),
    "redis": (("tcp", 6379, 6379),),
}
# What happens to a packet no rule of the zone accepted, by the zone's target.
_FIREWALLD_TARGETS = {
    "default": False,
    "%%REJECT%%": False,
    "REJECT": False,
    "DROP": False,
    "ACCEPT": True,
}


@dataclass
class _FirewalldZone:
    name: str
    settings: dict[str, str] = field(default_factory=dict)
    rich_rules: list[str] = field(default_factory=list)

    def words(self, key: str) -> list[str]:
        return self.settings.get(key, "").split()


@dataclass
class _RichElement:
    keyword: str
    attributes: dict[str, str] = field(default_factory=dict)
    negated: bool = False


def evaluate_firewalld(
    list_all_text: str,
    port: int,
    protocol: str = "tcp",
    source: str | None = None,
) -> FirewallVerdict:
    """Whether the default zone admits a NEW connection to `port`.

    `list_all_text` is `firewall-cmd --list-all`. The zone's services (stock port definitions),
    ports, protocols, source ports and rich rules are ordered as firewalld orders them:
    rich rules with a negative priority, then deny rich rules, then allow rules, then rich rules
    with a positive priority, then the zone's target. `source` defaults to the scanner networks.
    Services amiscan has no ports for, ipset or MAC sources and rate-limited rich rules make the
    verdict None when they could change it. The zone is taken as the one the scanner's packets
    land in: source-bound zones other than this one are not seen. Raises ValueError when the
    text is not that output.
    """
    if re.match(r"\s*firewalld is not running", list_all_text, re.IGNORECASE):
        return FirewallVerdict(True, "firewalld is not running; it filters nothing")
    sources = [source] if source is not None else list(SCANNER_NETWORKS)
    packets = _make_packets(sources, port, protocol, "")
    zone = _firewalld_parse(list_all_text)
    chain = f"zone {zone.name}"
    target = zone.settings.get("target", "default")
    policy = _policy(_FIREWALLD_TARGETS.get(target), chain, f"{chain} target {target}")

    def walk(packet: _Packet) -> _Walks:
        steps = _firewalld_steps(zone, packet)
        return [(_Walker({chain: steps}, policy).run(chain), "")]

    return _decide(packets, walk)


def _firewalld_parse(text: str) -> _FirewalldZone:
    lines = [line for line in text.splitlines() if line.strip()]
    header = re.fullmatch(r"(\S+)(?:\s+\([^)]*\))?\s*", lines[0]) if lines else None
    if header is None:
        raise ValueError("not `firewall-cmd --list-all` output: no zone name on the first line")
    zone = _FirewalldZone(header.group(1))
    in_rich = False
    for line in lines[1:]:
        if in_rich and line.strip().startswith("rule"):
            zone.rich_rules.append(line.strip())
            continue
        setting = re.fullmatch(r"\s+([a-z0-9-]+( [a-z]+)?):\s*(.*)", line)
        if setting:
            zone.settings[setting.group(1)] = setting.group(3).strip()
            in_rich = setting.group(1) == "rich rules"
    return zone


def _firewalld_steps(zone: _FirewalldZone, packet: _Packet) -> list[_Step]:
    early: list[tuple[int, _Step]] = []
    late: list[tuple[int, _Step]] = []
    deny: list[_Step] = []
    allow: list[_Step] = []
    for text in zone.rich_rules:
        priority, step = _rich_step(text, packet)
        if priority < 0:
            early.append((priority, step))
        elif priority > 0:
            late.append((priority, step))
        elif step.verb is _Verb.ACCEPT:
            allow.append(step)
        else:
            deny.append(step)
    allow += [_service_step(name, packet) for name in zone.words("services")]
    allow += [_firewalld_port_step(spec, packet, source=False) for spec in zone.words("ports")]
    allow += [_firewalld_port_step(s, packet, source=True) for s in zone.words("source-ports")]
    allow += [
        _Step(f"protocol {name}", _match_protocol(name, packet), _Verb.ACCEPT)
        for name in zone.words("protocols")
    ]
    ordered_early = [step for _, step in sorted(early, key=lambda pair: pair[0])]
    ordered_late = [step for _, step in sorted(late, key=lambda pair: pair[0])]
    return ordered_early + deny + allow + ordered_late


def _service_step(name: str, packet: _Packet) -> _Step:
    ports = _FIREWALLD_SERVICES.get(name)
    if ports is None:
        condition: _Tri = _Unknown(f"the ports of service '{name}' are not known to amiscan")
    else:
        condition = any(
            proto == packet.protocol and low <= packet.port <= high for proto, low, high in ports
        )
    return _Step(f"service {name}", condition, _Verb.ACCEPT)


def _firewalld_port_step(spec: str, packet: _Packet, *, source: bool) -> _Step:
    text = f"{'source-port' if source else 'port'} {spec}"
    return _Step(text, _firewalld_port_match(spec, packet, source=source), _Verb.ACCEPT)


def _firewalld_port_match(spec: str, packet: _Packet, *, source: bool) -> _Tri:
    ports, _, proto = spec.partition("/")
    if proto and proto.lower() != packet.protocol:
        return False
    try:
        ranges = [_port_range(*_split_range(ports, "-"))]
    except ValueError as exc:
        return _Unknown(str(exc))
    if source:
        return _match_source_port(ranges, f"source port {spec}")
    return _in_ranges(packet.port, ranges)


def _rich_parse(text: str) -> list[_RichElement]:
    elements: list[_RichElement] = []
    for word in shlex.split(text):
        if word == "NOT" and elements:
            elements[-1].negated = True
        elif "=" in word and elements:
            key, _, value = word.partition("=")
            elements[-1].attributes[key] = value
        else:
            elements.append(_RichElement(word))
    if not elements or elements[0].keyword != "rule":
        raise ValueError("a rich rule starts with 'rule'")
    return elements


def _rich_step(text: str, packet: _Packet) -> tuple[int, _Step]:
    """A rich rule as (priority, step); an unreadable one is unknown where a deny rule runs."""
    try:
        elements = _rich_parse(text)
        priority = int(elements[0].attributes.get("priority", "0"))
    except ValueError as exc:
        return 0, _Step(text, True, _Verb.UNKNOWN, f"the rich rule cannot be read: {exc}")
    conditions: list[_Tri] = []
    family = elements[0].attributes.get("family")
    if family:
        conditions.append(family == f"ipv{packet.version}")
    verb = _Verb.CONTINUE
    for previous, element in itertools.pairwise(elements):
        if element.keyword in ("accept", "reject", "drop"):
            verb = _Verb[element.keyword.upper()]
        elif element.keyword in ("masquerade", "forward-port"):
            return priority, _Step(text, False, _Verb.CONTINUE)  # rewrites, does not filter
        elif element.keyword == "limit" and previous.keyword in ("accept", "reject", "drop"):
            conditions.append(_Unknown(f"the rate limit of '{text}' is not evaluated"))
        else:
            conditions.append(_rich_condition(element, packet))
    return priority, _Step(text, _all(conditions), verb)


def _rich_condition(element: _RichElement, packet: _Packet) -> _Tri:
    keyword, attributes = element.keyword, element.attributes
    result: _Tri
    if keyword in ("source", "destination") and "address" in attributes:
        try:
            networks = _networks(attributes["address"])
        except ValueError as exc:
            return _Unknown(str(exc))
        what = f"{keyword} address {attributes['address']}"
        if keyword == "source":
            result = _match_sources(packet, networks, what)
        else:
            result = _match_destination(packet, networks, what)
    elif keyword == "service":
        result = _service_step(attributes.get("name", ""), packet).condition
    elif keyword in ("port", "source-port"):
        spec = f"{attributes.get('port', '')}/{attributes.get('protocol', '')}"
        result = _firewalld_port_match(spec, packet, source=keyword == "source-port")
    elif keyword == "protocol":
        result = _match_protocol(attributes.get("value", ""), packet)
    elif keyword in ("icmp-block", "icmp-type"):
        result = False  # the packet is TCP or UDP
    elif keyword in ("log", "audit", "nflog", "mark", "limit"):
        result = True  # logging and marking do not filter
    else:
        shown = " ".join([keyword, *(f"{k}={v}" for k, v in attributes.items())])
        result = _Unknown(f"rich rule element '{shown}' is not evaluated")
    return _negate(result, element.negated)


# --- ufw ----------------------------------------------------------------------------------------

# Ports of the application profiles Ubuntu ships (/etc/ufw/applications.d).
_UFW_APPS = {
    "OpenSSH": "22/tcp",
    "Apache": "80/tcp",
    "Apache Secure": "443/tcp",
    "Apache Full": "80,443/tcp",
    "Nginx HTTP": "80/tcp",
    "Nginx HTTPS": "443/tcp",
    "Nginx Full": "80,443/tcp",
}
_UFW_VERBS = {
    "ALLOW": _Verb.ACCEPT,
    "DENY": _Verb.DROP,
    "REJECT": _Verb.REJECT,
    "LIMIT": _Verb.UNKNOWN,
}
_UFW_LIMIT = (
    "ufw LIMIT refuses an address that opened 6 connections in the last 30 seconds; "
    "whether the scanner stays below that is not known"
)
_UFW_RULE = re.compile(
    r"(?:\[\s*\d+\]\s+)?(?P<to>.+?)\s+(?P<action>ALLOW|DENY|REJECT|LIMIT)"
    r"(?:\s+(?P<direction>IN|OUT|FWD))?\s+(?P<from>.+?)"
    r"(?:\s+\((?:log|log-all)[^)]*\))?(?:\s+#.*)?"
)
_UFW_PORTS = re.compile(r"(?P<ports>[\d,:]+)(?:/(?P<proto>[a-z0-9]+))?")


@dataclass(frozen=True)
class _UfwEnd:
    """One side (To or From) of a ufw rule."""

    address: str = ""  # "" for Anywhere
    ports: str = ""  # "" for any port; "22", "80,443", "1000:2000"
    protocol: str = ""  # "" for any protocol
    app: str = ""  # an application profile printed by name (ufw status without verbose)
    interface: str = ""
    v6: bool = False


@dataclass
class _UfwStatus:
    active: bool
    default_incoming: str | None = None
    rules: list[str] = field(default_factory=list)


def evaluate_ufw(
    status_verbose_text: str,
    source: str,
    port: int,
    protocol: str = "tcp",
    in_interface: str = "eth0",
) -> FirewallVerdict:
    """Whether ufw admits a NEW connection from `source` to `port`.

    `status_verbose_text` is `ufw status verbose`: its incoming rules are tried in order (the
    first that matches decides, as in ufw-user-input), then the default incoming policy. ufw's
    built-in before/after rules never accept or refuse a new TCP connection from a remote unicast
    address, so they are left out. A LIMIT rule that matches, and application profiles amiscan
    has no ports for, make the verdict None. Raises ValueError when the text is not that output.
    """
    status = _ufw_parse(status_verbose_text)
    if not status.active:
        return FirewallVerdict(True, "ufw is inactive; it filters nothing")
    packets = _make_packets([source], port, protocol, in_interface)
    default = status.default_incoming
    if default is None:
        policy = _policy(None, "ufw", "the default incoming policy is not shown (not verbose)")
    else:
        policy = _policy(default == "allow", "ufw", f"ufw default incoming policy {default}")

    def walk(packet: _Packet) -> _Walks:
        steps = [_ufw_step(line, packet) for line in status.rules]
        return [(_Walker({"ufw": steps}, policy).run("ufw"), "")]

    return _decide(packets, walk)


def _ufw_parse(text: str) -> _UfwStatus:
    state = re.search(r"^Status:\s*(\w+)", text, re.MULTILINE)
    if state is None:
        raise ValueError("not `ufw status` output: no 'Status:' line")
    status = _UfwStatus(active=state.group(1).lower() == "active")
    default = re.search(r"^Default:\s*(\w+)\s+\(incoming\)", text, re.MULTILINE)
    if default:
        status.default_incoming = default.group(1).lower()
    in_rules = False
    for line in text.splitlines():
        if re.match(r"\s*(\[\s*\d+\]\s+)?--\s+-+\s+-+", line):
            in_rules = True  # the rules start after the "--  ------  ----" line
        elif in_rules and line.strip():
            status.rules.append(line.strip())
    return status


def _ufw_step(line: str, packet: _Packet) -> _Step:
    rule = _UFW_RULE.fullmatch(line)
    if rule is None:
        return _Step(line, True, _Verb.UNKNOWN, "the ufw rule cannot be read")
    if rule.group("direction") in ("OUT", "FWD"):
        return _Step(line, False, _Verb.CONTINUE)
    verb = _UFW_VERBS[rule.group("action")]
    try:
        to, origin = _ufw_end(rule.group("to")), _ufw_end(rule.group("from"))
    except ValueError as exc:
        return _Step(line, True, _Verb.UNKNOWN, f"the ufw rule cannot be read: {exc}")
    try:
        condition = _all(_ufw_conditions(to, origin, packet))
    except ValueError as exc:
        return _Step(line, True, _Verb.UNKNOWN, f"the ufw rule cannot be read: {exc}")
    return _Step(line, condition, verb, _UFW_LIMIT if verb is _Verb.UNKNOWN else "")


def _ufw_end(text: str) -> _UfwEnd:
    """Reads "10.0.0.5 22/tcp (OpenSSH) (v6) on eth0" and its shorter forms."""
    rest, interface, v6 = text.strip(), "", False
    on = re.fullmatch(r"(.+?) on (\S+)", rest)
    if on:
        rest, interface = on.group(1), on.group(2)
    if rest.endswith(" (v6)"):
        rest, v6 = rest.removesuffix(" (v6)"), True
    app = re.fullmatch(r"(\S.*?)\s+\((.+)\)", rest)
    if app and not rest.startswith("Anywhere"):
        rest, v6 = app.group(1), v6 or app.group(2).endswith(" (v6)")
    if rest.startswith("Anywhere"):
        protocol = rest.removeprefix("Anywhere").removeprefix("/")
        return _UfwEnd(protocol=protocol, interface=interface, v6=v6)
    words = rest.split()
    ports = _UFW_PORTS.fullmatch(words[-1])
    if len(words) == 2 and ports and _is_address(words[0]):
        return _UfwEnd(words[0], ports["ports"], ports["proto"] or "", "", interface, v6)
    if len(words) == 1:
        address, protocol = _split_address_protocol(words[0])
        if _is_address(address):
            return _UfwEnd(address, "", protocol, "", interface, v6)
        if ports:
            return _UfwEnd("", ports["ports"], ports["proto"] or "", "", interface, v6)
    return _UfwEnd(app=rest, interface=interface, v6=v6)  # an application profile by name


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=False)
    except ValueError:
        return False
    return True


def _split_address_protocol(text: str) -> tuple[str, str]:
    # "10.0.0.5/tcp" is an address with a protocol; "10.0.0.0/24" is a network.
    head, _, tail = text.rpartition("/")
    if head and tail.isalpha():
        return head, tail
    return text, ""


def _ufw_conditions(to: _UfwEnd, origin: _UfwEnd, packet: _Packet) -> list[_Tri]:
    conditions: list[_Tri] = []
    rule_version = 6 if (to.v6 or origin.v6) else 4
    if not (to.address or origin.address):
        conditions.append(rule_version == packet.version)  # ufw keeps v4 and v6 rules apart
    if to.interface:
        conditions.append(_iface_matches(to.interface, packet.in_interface, "+"))
    protocol = to.protocol or origin.protocol
    if protocol:
        conditions.append(_match_protocol(protocol, packet))
    if to.address:
        conditions.append(_match_destination(packet, _networks(to.address), f"to {to.address}"))
    if origin.address:
        conditions.append(
            _match_sources(packet, _networks(origin.address), f"from {origin.address}")
        )
    if to.ports:
        conditions.append(_in_ranges(packet.port, _ipt_ports(to.ports)))
    if origin.ports:
        conditions.append(_match_source_port(_ipt_ports(origin.ports), f"from port {origin.ports}"))
    if to.app:
        conditions.append(_ufw_app(to.app, packet, source=False))
    if origin.app:
        conditions.append(_ufw_app(origin.app, packet, source=True))
    return conditions


def _ufw_app(name: str, packet: _Packet, *, source: bool) -> _Tri:
    """An application profile printed by name: its ports are the destination's or source's."""
    spec = _UFW_APPS.get(name)
    if spec is None:
        return _Unknown(f"the ports of application profile '{name}' are not known to amiscan")
    ports, _, protocol = spec.partition("/")
    if packet.protocol != protocol:
        return False
    if source:
        return _match_source_port(_ipt_ports(ports), f"from app {name}")
    return _in_ranges(packet.port, _ipt_ports(ports))
