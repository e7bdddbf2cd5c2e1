"""iptables: the filter table of `iptables -S` or `iptables-save`, simulated."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from scanner.parsers.firewall.packet import (
    Packet,
    iface_matches,
    in_ranges,
    ip_range,
    make_packets,
    match_destination,
    match_protocol,
    match_source_port,
    match_sources,
    parse_networks,
    port_ranges,
)
from scanner.parsers.firewall.tristate import Tri, Unknown, all_of, any_of, negate
from scanner.parsers.firewall.walk import (
    FirewallVerdict,
    Outcome,
    Step,
    Verb,
    Walker,
    decide,
    policy_outcome,
)

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
    packets = make_packets([source], port, protocol, in_interface)
    table = _ipt_read(rules_text)
    policy_name = table.policies.get("INPUT", "ACCEPT").upper()
    admitted = {"ACCEPT": True, "DROP": False}.get(policy_name)
    policy = policy_outcome(admitted, "INPUT", f"INPUT policy {policy_name}")
    return decide(packets, lambda packet: [(_ipt_walk(table, packet, policy), "")])


def _ipt_walk(table: _IptTable, packet: Packet, policy: Outcome) -> Outcome:
    known = table.chains | set(table.rules) | {"INPUT"}
    # Declared chains without rules exist too: a jump into one returns at once.
    chains = {
        name: [_ipt_step(text, tokens, packet, known) for text, tokens in table.rules.get(name, [])]
        for name in known
    }
    return Walker(chains, policy).run("INPUT")


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


def _ipt_step(text: str, tokens: list[str] | None, packet: Packet, chains: set[str]) -> Step:
    if tokens is None:
        return Step(text, True, Verb.UNKNOWN, "the rule cannot be read (unbalanced quotes)")
    try:
        options = _ipt_options(tokens)
    except ValueError as exc:
        return Step(text, True, Verb.UNKNOWN, f"the rule cannot be read: {exc}")
    matches = [o for o in options if o.module != "target" and o.name not in ("--jump", "--goto")]
    verb, target = _ipt_target(options, chains)
    return Step(text, all_of(_ipt_condition(o, packet) for o in matches), verb, target)


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


def _ipt_target(options: Sequence[_IptOption], chains: set[str]) -> tuple[Verb, str]:
    jump = next((o for o in options if o.name in ("--jump", "--goto")), None)
    if jump is None:
        return Verb.CONTINUE, ""  # a rule without a target only counts packets
    target = jump.args[0]
    if target in chains:
        return (Verb.JUMP if jump.name == "--jump" else Verb.GOTO), target
    if jump.name == "--jump" and target.upper() in ("ACCEPT", "DROP", "REJECT", "RETURN"):
        return Verb[target.upper()], ""
    if jump.name == "--jump" and target.upper() in _IPT_NON_TERMINATING:
        return Verb.CONTINUE, ""
    if target.upper() in ("NFQUEUE", "QUEUE"):
        return Verb.UNKNOWN, f"target {target} hands the verdict to a userspace program"
    return Verb.UNKNOWN, f"target {target} is not evaluated"


def _ipt_condition(option: _IptOption, packet: Packet) -> Tri:
    handler = _IPT_MATCHERS.get(option.module)
    if handler is None:
        return Unknown(f"match module '{option.module}' is not evaluated")
    try:
        result = handler(option.name, option.args, packet)
    except (ValueError, IndexError) as exc:
        return Unknown(f"cannot read {option.name} {' '.join(option.args)}: {exc}")
    return negate(result, option.negated)


def _ipt_core(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    value = args[0] if args else ""
    if name == "--source":
        return match_sources(packet, parse_networks(value), f"-s {value}")
    if name == "--destination":
        return match_destination(packet, parse_networks(value), f"-d {value}")
    if name == "--protocol":
        return True if value.lower() in ("all", "0") else match_protocol(value, packet)
    if name == "--in-interface":
        return iface_matches(value, packet.in_interface, "+")
    if name in ("--out-interface", "--fragment"):
        return False  # an arriving packet has no output interface; a SYN is no fragment
    if name == "--set-counters":
        return True
    return Unknown(f"option {name} is not evaluated")


def _ipt_flags(text: str) -> frozenset[str]:
    names = {name.strip().upper() for name in text.split(",")}
    if "ALL" in names:
        return _TCP_FLAGS
    unknown = names - _TCP_FLAGS - {"NONE"}
    if unknown:
        raise ValueError(f"unknown TCP flags {', '.join(sorted(unknown))}")
    return frozenset(names & _TCP_FLAGS)


def _ipt_tcp_udp(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    if name in ("--dport", "--destination-port"):
        return in_ranges(packet.port, port_ranges(args[0]))
    if name in ("--sport", "--source-port"):
        return match_source_port(port_ranges(args[0]), f"--sport {args[0]}")
    if name == "--syn":
        return True  # the packet is a SYN
    if name == "--tcp-flags":
        return _ipt_flags(args[0]) & _SYN == _ipt_flags(args[1])
    return Unknown(f"option {name} is not evaluated")


def _ipt_tcp(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    return _ipt_tcp_udp(name, args, packet) if packet.protocol == "tcp" else False


def _ipt_udp(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    return _ipt_tcp_udp(name, args, packet) if packet.protocol == "udp" else False


def _ipt_multiport(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    ranges = port_ranges(args[0])
    destination = in_ranges(packet.port, ranges)
    if name in ("--dports", "--destination-ports"):
        return destination
    source = match_source_port(ranges, f"{name} {args[0]}")
    if name in ("--sports", "--source-ports"):
        return source
    return any_of((destination, source))  # --ports: either port


def _ipt_state(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    # The first packet of a connection is NEW: RELATED,ESTABLISHED-only rules do not match.
    return "NEW" in {state.strip().upper() for state in args[0].split(",")}


def _ipt_conntrack(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    value = args[0]
    if name == "--ctstate":
        return _ipt_state(name, args, packet)
    if name == "--ctproto":
        return match_protocol(value, packet)
    if name == "--ctorigsrc":
        return match_sources(packet, parse_networks(value), f"--ctorigsrc {value}")
    if name == "--ctorigdst":
        return match_destination(packet, parse_networks(value), f"--ctorigdst {value}")
    if name == "--ctorigdstport":
        return in_ranges(packet.port, port_ranges(value))
    if name == "--ctdir":
        return value.upper() == "ORIGINAL"
    return Unknown(f"conntrack option {name} is not evaluated")


def _ipt_comment(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    return True


def _ipt_addrtype(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    if name in ("--limit-iface-in", "--limit-iface-out"):
        return True
    types = {kind.strip().upper() for kind in args[0].split(",")}
    if name == "--dst-type":
        return bool(types & {"LOCAL", "UNICAST"})  # INPUT sees packets for a local address
    if name == "--src-type":
        return "UNICAST" in types  # the scanner is a remote unicast address
    return Unknown(f"addrtype option {name} is not evaluated")


def _ipt_iprange(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    if name == "--src-range":
        return match_sources(packet, ip_range(args[0]), f"--src-range {args[0]}")
    return match_destination(packet, ip_range(args[0]), f"--dst-range {args[0]}")


def _ipt_pkttype(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    return args[0].lower() in ("unicast", "host")


def _ipt_icmp(name: str, args: tuple[str, ...], packet: Packet) -> Tri:
    return False  # the packet is TCP or UDP


_IptMatcher = Callable[[str, tuple[str, ...], Packet], Tri]
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
