"""Walking a packet through chains of matched rules, and the FirewallVerdict it ends in."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from scanner.parsers.firewall.packet import Packet, describe_packets
from scanner.parsers.firewall.tristate import Tri, Unknown


@dataclass(frozen=True)
class FirewallVerdict:
    """Whether a firewall admits the simulated connection, and why, in one line."""

    admitted: bool | None  # None = cannot tell (unknown match module etc.)
    reason: str  # e.g. "INPUT policy DROP; no rule accepts tcp/22 from 10.0.0.1"
    deciding_rule: str = ""  # the rule text that decided, "" when a chain policy decided


class Verb(enum.Enum):
    ACCEPT = "accept"
    DROP = "drop"
    REJECT = "reject"
    CONTINUE = "continue"  # no effect on the verdict: LOG, counters, no target
    JUMP = "jump"
    GOTO = "goto"
    RETURN = "return"
    UNKNOWN = "unknown"  # a target that may decide but is not evaluated (NFQUEUE, ...)


_DECISIONS = (Verb.ACCEPT, Verb.DROP, Verb.REJECT)


@dataclass(frozen=True)
class Step:
    """One rule, already matched against the packet."""

    text: str
    condition: Tri
    verb: Verb
    target: str = ""  # the chain of JUMP/GOTO; the reason of UNKNOWN


@dataclass(frozen=True)
class Outcome:
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


class Walker:
    """Follows the packet from a base chain through jumps, gotos and returns to a verdict."""

    def __init__(self, chains: Mapping[str, Sequence[Step]], policy: Outcome) -> None:
        self._chains = chains
        self._policy = policy
        self._forks_left = _MAX_FORKS

    def run(self, base: str) -> Outcome:
        return self._walk(((base, 0),))

    def _walk(self, frames: _Frames) -> Outcome:
        while frames:
            chain, index = frames[-1]
            steps = self._chains.get(chain, ())
            if index >= len(steps):
                frames = frames[:-1]  # the end of a user chain returns to its caller
                continue
            step = steps[index]
            frames = (*frames[:-1], (chain, index + 1))
            if step.condition is False or step.verb is Verb.CONTINUE:
                continue
            if isinstance(step.condition, Unknown):
                return self._fork(step, step.condition, chain, frames)
            moved = self._take(step, chain, frames)
            if isinstance(moved, Outcome):
                return moved
            frames = moved
        return self._policy

    def _take(self, step: Step, chain: str, frames: _Frames) -> Outcome | _Frames:
        if step.verb in _DECISIONS:
            return Outcome(step.verb is Verb.ACCEPT, step.verb.value, chain, step.text)
        if step.verb is Verb.RETURN:
            return frames[:-1]
        if step.verb is Verb.UNKNOWN:
            return Outcome(None, "unknown", chain, step.text, step.target)
        if step.target not in self._chains:
            detail = f"it jumps to chain {step.target}, which is not defined"
            return Outcome(None, "unknown", chain, step.text, detail)
        if len(frames) >= _MAX_DEPTH:
            return Outcome(None, "unknown", chain, step.text, "chains nest too deep (a loop?)")
        caller = frames if step.verb is Verb.JUMP else frames[:-1]
        return (*caller, (step.target, 0))

    def _fork(self, step: Step, unknown: Unknown, chain: str, frames: _Frames) -> Outcome:
        self._forks_left -= 1
        if self._forks_left < 0:
            return Outcome(None, "unknown", chain, step.text, "too many rules cannot be evaluated")
        moved = self._take(step, chain, frames)
        matched = moved if isinstance(moved, Outcome) else self._walk(moved)
        unmatched = self._walk(frames)
        if matched.admitted is not None and matched.admitted == unmatched.admitted:
            return unmatched  # the rule cannot change the verdict
        return Outcome(None, "unknown", chain, step.text, unknown.reason)


def _verdict(outcome: Outcome, what: str, prefix: str = "") -> FirewallVerdict:
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


def policy_outcome(admitted: bool | None, chain: str, detail: str) -> Outcome:
    return Outcome(admitted, "policy", chain, detail=detail)


# A walk's outcomes, one per base chain, each with the prefix that names its chain in a reason.
Walks = list[tuple[Outcome, str]]


def decide(packets: Sequence[Packet], walk: Callable[[Packet], Walks]) -> FirewallVerdict:
    """Walks each source's packet; all sources must be admitted.

    When every source ends the same way, one reason names them all; otherwise the first source
    refused decides, then the first unknown.
    """
    walks = [walk(packet) for packet in packets]
    if all(other == walks[0] for other in walks):
        return _conjoin([_verdict(o, describe_packets(packets), prefix) for o, prefix in walks[0]])
    return _conjoin(
        [
            _conjoin([_verdict(o, describe_packets([packet]), prefix) for o, prefix in outcomes])
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
