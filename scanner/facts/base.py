"""Facts: what checks judge, and how each is gathered live and offline.

A check never touches a host. It names the facts it needs; the collector gathers every live fact of a
scan in one batched script, and a fact's `derive` function turns what was gathered (the probe's
output, the guest's files, the scan's context) into a typed value. The same `derive` serves a live
host (files copied back by the script) and an image root (files read in place).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from scanner.cancel import NEVER, Cancel
from scanner.errors import ScanAborted
from scanner.fs import FileSource, ReadRefused

T = TypeVar("T")


class Mode(StrEnum):
    LIVE = "live"
    OFFLINE = "offline"


class FactUnavailable(Exception):
    """The target cannot provide this fact (the check is `skip`, with this reason)."""


class FactFailed(Exception):
    """Gathering this fact broke (the check is `error`, with this reason)."""


@dataclass(frozen=True)
class ProbeOutput:
    """What one probe of the batched script printed."""

    name: str
    rc: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False
    timed_out: bool = False
    privileged: bool = False

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def error_text(self) -> str:
        return self.stderr.decode("utf-8", errors="replace").strip()

    def require_success(self, what: str) -> str:
        """The output as text, or FactFailed naming what went wrong."""
        if self.timed_out:
            raise FactFailed(f"{what} timed out")
        if self.rc != 0:
            detail = self.error_text.splitlines()[-1] if self.error_text else f"exit code {self.rc}"
            raise FactFailed(f"{what} failed: {detail}")
        return self.text


@dataclass(frozen=True)
class ScanContext:
    """What the scan knows about the target that no probe prints."""

    mode: Mode
    target_kind: str
    login_user: str | None = None
    scan_port: int = 22
    scanner_address: str | None = None
    # The public key (OpenSSH "type base64" form) the scanner logged in with or injected.
    scanner_public_key: str | None = None
    # Authentication methods the SSH server offered to an unauthenticated client, by user.
    offered_auth_methods: dict[str, tuple[str, ...]] | None = None
    offered_auth_error: str | None = None
    reached_from_scanner: bool | None = None
    baseline_login_user: str | None = None
    # Refreshing package metadata writes to the guest; only done on throwaway instances.
    refresh_package_metadata: bool = False
    scan_date: str | None = None
    # What the collection script learnt about its own session (user, uid, hostname, boot time).
    session: dict[str, str] = field(default_factory=dict)
    # Whether the privileged part of the script ran as root, and why not when it did not.
    privileged: bool | None = None
    sudo_error: str | None = None
    # Offline disk images: the encrypted volumes found on the disks, one evidence line each;
    # None when no disk was inspected (a dir: root, or a live host whose lsblk tells instead).
    encrypted_volumes: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """A shell (or PowerShell) snippet that one fact needs run on a live host."""

    script: str
    privileged: bool = True
    timeout_s: float = 60.0
    # A slow probe that depends on no other (a search, a package query) starts first and runs
    # beside the others; only a few are marked, so a small instance is not flooded.
    background: bool = False


@dataclass(frozen=True, eq=False)
class Fact(Generic[T]):
    """A named piece of knowledge about the guest.

    `patterns` are guest paths (shell globs) the live script copies back so `derive` can read
    them through `Gathered.files`; offline, `derive` reads the image root directly.
    """

    name: str
    description: str
    derive: Callable[[Gathered], T]
    probe: Probe | None = None
    patterns: tuple[str, ...] = ()
    modes: frozenset[Mode] = frozenset({Mode.LIVE, Mode.OFFLINE})
    platform: str = "linux"
    depends: tuple[Fact[Any], ...] = ()

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Fact({self.name!r})"


@dataclass
class Gathered:
    """Everything `Fact.derive` may read: the probe output (live), files, context, other facts."""

    fact: Fact[Any]
    files: FileSource
    context: ScanContext
    output: ProbeOutput | None
    facts: Facts

    @property
    def cancel(self) -> Cancel:
        """The scan's cancellation: long walks check it so SIGINT/SIGTERM stop them promptly."""
        return self.facts.cancel

    @property
    def live(self) -> bool:
        return self.context.mode is Mode.LIVE

    def require_output(self) -> ProbeOutput:
        if self.output is None:
            raise FactFailed(f"the probe for {self.fact.name} produced no output")
        return self.output

    def get(self, fact: Fact[T]) -> T:
        return self.facts.get(fact)


_MISSING = object()


class Facts:
    """Derived facts of one scan, computed on first use and remembered (errors included)."""

    def __init__(
        self,
        files: FileSource,
        context: ScanContext,
        outputs: dict[str, ProbeOutput] | None = None,
        collection_error: str | None = None,
        *,
        cancel: Cancel = NEVER,
        probe_errors: dict[str, str] | None = None,
        files_error: str | None = None,
    ) -> None:
        self.files = files
        self.context = context
        self.outputs = outputs or {}
        self.collection_error = collection_error
        self.cancel = cancel
        # Probes whose record in the collection output was malformed or duplicated, and why.
        self.probe_errors = probe_errors or {}
        # Why the copied files cannot be trusted to be complete (a damaged file record).
        self.files_error = files_error
        self._values: dict[str, Any] = {}
        self._errors: dict[str, Exception] = {}

    def get(self, fact: Fact[T]) -> T:
        if fact.name in self._errors:
            raise self._errors[fact.name]
        value = self._values.get(fact.name, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        try:
            value = self._derive(fact)
        except (FactUnavailable, FactFailed) as exc:
            self._errors[fact.name] = exc
            raise
        except ScanAborted:
            raise  # the scan is stopping (SIGINT/SIGTERM): not a property of this fact
        except ReadRefused as exc:
            # A bound or an untrusted copy hid part of the evidence: could not judge, with why.
            failure = FactFailed(f"{fact.description}: {exc}")
            self._errors[fact.name] = failure
            raise failure from exc
        except RecursionError as exc:
            failure = FactFailed(f"{fact.description}: nested too deeply to interpret")
            self._errors[fact.name] = failure
            raise failure from exc
        except Exception as exc:  # a parser bug must not sink the other checks
            failure = FactFailed(f"could not interpret {fact.name}: {type(exc).__name__}: {exc}")
            self._errors[fact.name] = failure
            raise failure from exc
        self._values[fact.name] = value
        return value

    def _derive(self, fact: Fact[T]) -> T:
        mode = self.context.mode
        if mode not in fact.modes:
            where = "an image's files alone" if mode is Mode.OFFLINE else "a running host"
            raise FactUnavailable(f"{fact.description} cannot be gathered from {where}")
        output: ProbeOutput | None = None
        if mode is Mode.LIVE and fact.probe is not None:
            if fact.name in self.probe_errors:
                raise FactFailed(f"{fact.description}: {self.probe_errors[fact.name]}")
            output = self.outputs.get(fact.name)
            if output is None:
                reason = self.collection_error or "the collection script did not reach this probe"
                raise FactFailed(f"{fact.description}: {reason}")
        if mode is Mode.LIVE and fact.patterns and (self.collection_error or self.files_error):
            raise FactFailed(f"{fact.description}: {self.collection_error or self.files_error}")
        return fact.derive(Gathered(fact, self.files, self.context, output, self))


def closure(facts: list[Fact[Any]]) -> list[Fact[Any]]:
    """The facts and everything they depend on, dependencies first, each once."""
    ordered: list[Fact[Any]] = []
    seen: set[str] = set()

    def visit(fact: Fact[Any]) -> None:
        if fact.name in seen:
            return
        seen.add(fact.name)
        for dependency in fact.depends:
            visit(dependency)
        ordered.append(fact)

    for fact in facts:
        visit(fact)
    return ordered
