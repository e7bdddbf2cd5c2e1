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

One module per front end (iptables, nftables, firewalld, ufw), each reading its tool's output into
steps; below them `walk` (chains to a verdict), `packet` (the simulated packet and its matches) and
`tristate` (three-valued results).
"""

from scanner.parsers.firewall.firewalld import evaluate_firewalld
from scanner.parsers.firewall.iptables import evaluate_iptables
from scanner.parsers.firewall.nftables import evaluate_nftables
from scanner.parsers.firewall.packet import SCANNER_NETWORKS
from scanner.parsers.firewall.ufw import evaluate_ufw
from scanner.parsers.firewall.walk import FirewallVerdict

__all__ = [
    "SCANNER_NETWORKS",
    "FirewallVerdict",
    "evaluate_firewalld",
    "evaluate_iptables",
    "evaluate_nftables",
    "evaluate_ufw",
]
