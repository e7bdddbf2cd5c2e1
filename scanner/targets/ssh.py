"""`ssh://[user@]host[:port]`: a running Linux instance, logged in to as Marketplace vetting does."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from scanner.cancel import NEVER, Cancel
from scanner.collect import LiveSettings
from scanner.facts.base import Mode, ScanContext
from scanner.linux import scan_live
from scanner.run import ScanRun
from scanner.targets.base import ScanAborted, ScanOptions, TargetError
from scanner.transports.base import AuthError, TransportError
from scanner.transports.ssh import Credentials, HostKeyPolicy, SSHTransport, public_key_line

log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_S = 15.0

# Tried in order when no user is given: Marketplace prefers ec2-user, then distribution defaults.
DEFAULT_USERS = (
    "ec2-user",
    "ubuntu",
    "admin",
    "centos",
    "rocky",
    "almalinux",
    "fedora",
    "cloud-user",
    "debian",
    "bitnami",
)


def parse_ssh_url(text: str) -> tuple[str | None, str, int]:
    """(user, host, port) of `ssh://[user@]host[:port]`, IPv6 hosts in brackets."""
    parts = urlsplit(text)
    if parts.scheme != "ssh" or not parts.hostname:
        raise TargetError(f"{text!r} is not ssh://[user@]host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise TargetError(f"{text!r}: an ssh:// target has no path, query or fragment")
    try:
        port = parts.port or 22
    except ValueError:
        raise TargetError(f"{text!r}: the port must be a number from 1 to 65535") from None
    if parts.password is not None:
        raise TargetError(
            "passwords in ssh:// URLs are not supported; amiscan logs in with keys only"
        )
    return (unquote(parts.username) if parts.username else None), parts.hostname, port


def login(
    host: str,
    port: int,
    users: Sequence[str],
    credentials: Credentials,
    host_keys: HostKeyPolicy,
    connect_timeout_s: float,
    cancel: Cancel = NEVER,
) -> SSHTransport:
    """Log in as the first user that works; every failure is named in the final error."""
    failures = []
    for user in users:
        transport = SSHTransport(
            host, port, user, credentials, host_keys, connect_timeout_s, cancel
        )
        try:
            transport.connect(probe_users=("root",))
            return transport
        except AuthError as exc:
            failures.append(f"{user}: {exc}")
            log.debug("login as %s failed: %s", user, exc)
    if len(failures) == 1:
        raise AuthError(failures[0].split(": ", 1)[1])
    raise AuthError(f"no user could log in to {host}:{port} ({'; '.join(failures)})")


def live_context(
    transport: SSHTransport, kind: str, options: ScanOptions, **extra: object
) -> ScanContext:
    """What the SSH session taught us, for the checks.

    The port judged is the one Marketplace vetting connects to (`--scan-port`, 22 by default),
    not the one this session used: through a port forward, NAT or a jump host they differ.
    """
    key = transport.authenticated_key
    return ScanContext(
        mode=Mode.LIVE,
        target_kind=kind,
        login_user=transport.user,
        scan_port=options.scan_port,
        scanner_address=transport.local_address,
        scanner_public_key=public_key_line(key) if key is not None else None,
        offered_auth_methods=dict(transport.offered_auth_methods),
        reached_from_scanner=True,
        baseline_login_user=options.baseline_login_user,
        scan_date=options.scan_date,
        **extra,  # type: ignore[arg-type]
    )


class SSHTarget:
    kind = "ssh"
    platform = "linux"

    def __init__(self, url: str, options: ScanOptions) -> None:
        user, self.host, self.port = parse_ssh_url(url)
        self.users: tuple[str, ...] = (
            (user,) if user else ((options.user,) if options.user else DEFAULT_USERS)
        )
        self.id = url

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        # Both ports are named: the one amiscan reached the host on, and the one judged.
        run.details.update({"host": self.host, "port": self.port, "scan_port": options.scan_port})
        credentials = Credentials(identity_file=options.identity_file)
        host_keys = HostKeyPolicy(known_hosts=options.known_hosts)
        try:
            with run.phase("logged in", f"Logging in to {self.host}:{self.port}"):
                transport = login(
                    self.host,
                    self.port,
                    self.users,
                    credentials,
                    host_keys,
                    options.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S,
                    run.cancel,
                )
        except TransportError as exc:
            raise ScanAborted(str(exc)) from None
        try:
            run.details.update(
                {
                    "login_user": transport.user,
                    "address": transport.peer_address,
                    "host_key_verification": transport.host_key_verification,
                }
            )
            context = live_context(transport, self.kind, options)
            settings = LiveSettings(
                login_user=transport.user,
                scanner_address=transport.local_address or "",
                scan_port=options.scan_port,
            )
            scan_live(run, transport, context, settings, options.collect_timeout_s)
        except TransportError as exc:
            raise ScanAborted(str(exc)) from None
        finally:
            transport.close()
