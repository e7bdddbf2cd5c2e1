"""The Linux half of an AMI scan: wait for SSH, pin the host key, log in, collect and judge.

Called by AmiTarget once the instance is launched (with a temporary ed25519 key pair, the
security group open on the scan port); AmiTarget's `finally` cleans up whatever happens here.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scanner.aws.console import host_key_fingerprints
from scanner.aws.launch import instance_address, wait_for_banner, wait_for_state
from scanner.aws.resources import ScanResources
from scanner.collect import LiveSettings
from scanner.errors import ScanAborted
from scanner.facts.base import ScanContext
from scanner.linux import scan_live
from scanner.model import Platform
from scanner.run import ScanRun
from scanner.targets.ami_handoff import LaunchKey
from scanner.targets.base import ScanOptions, Target
from scanner.targets.ssh import DEFAULT_USERS, live_context, login
from scanner.transports.base import AuthError, ConnectError
from scanner.transports.ssh import (
    Credentials,
    HostKeyPolicy,
    SSHTransport,
    fingerprint,
    matches_fingerprints,
)

log = logging.getLogger(__name__)

DEFAULT_WAIT_S = 600.0
# One login attempt's own bound; the whole wait is bounded by --connect-timeout.
LOGIN_ATTEMPT_TIMEOUT_S = 15.0
# GetConsoleOutput is throttled by EC2 and the console is updated every few seconds at best.
CONSOLE_POLL_S = 5.0


def scan_linux_instance(
    target: Target,
    client: Any,
    run: ScanRun,
    options: ScanOptions,
    context: ScanContext,
    resources: ScanResources,
    key: LaunchKey,
) -> None:
    """Wait for the instance and its SSH banner, log in as vetting does, collect and judge."""
    assert resources.instance_id is not None
    assert key.private_key is not None  # Linux launches always carry an SSH key
    deadline = time.monotonic() + (options.connect_timeout_s or DEFAULT_WAIT_S)
    with run.phase("running", "Waiting for the instance to run"):
        instance = wait_for_state(
            client, resources.instance_id, deadline, run.cancel, options.poll_interval_s
        )
    address = instance_address(instance, options.address)
    run.details["address"] = f"{address} ({options.address})"
    with run.phase("port open", f"Waiting for SSH on {address}:{options.scan_port}"):
        wait_for_banner(address, options.scan_port, deadline, run.cancel, options.poll_interval_s)
    pinned = console_fingerprints(client, resources.instance_id)
    users = (options.user,) if options.user else DEFAULT_USERS
    credentials = Credentials(keys=[key.private_key], use_agent=False, use_default_keys=False)
    with run.phase("logged in", "Logging in"):
        transport = login_until(
            address, options, users, credentials, HostKeyPolicy(pinned=pinned), deadline, run
        )
    try:
        run.details.update(
            {"login_user": transport.user, "host_key_verification": transport.host_key_verification}
        )
        live = live_context(
            transport, target.kind, options, refresh_package_metadata=True, extra=context.extra
        )
        settings = LiveSettings(
            login_user=transport.user,
            scanner_address=transport.local_address or "",
            scan_port=options.scan_port,
            refresh_package_metadata=True,
        )
        scan_live(run, transport, live, settings, options.collect_timeout_s)
        if not pinned:
            confirm_host_key(client, resources.instance_id, transport, run, options)
    finally:
        transport.close()


def confirm_host_key(
    client: Any, instance_id: str, transport: SSHTransport, run: ScanRun, options: ScanOptions
) -> None:
    """Check a key trusted on first use against the fingerprints the console shows later.

    sshd answers before cloud-init's last stage prints the fingerprint block, so the block is
    often missing at login. Waiting for it before logging in would cost every scan that wait;
    checking afterwards costs nothing when it has appeared by the end of collection. A key that
    does not match means the session cannot be trusted: its results are dropped.
    """
    key = transport.host_key
    if key is None:
        return
    with run.phase("host key confirmed", "Reading the host key fingerprints from the console"):
        deadline = time.monotonic() + options.host_key_wait_s
        fingerprints = console_fingerprints(client, instance_id)
        while not fingerprints and time.monotonic() < deadline:
            run.cancel.sleep(max(options.poll_interval_s, CONSOLE_POLL_S))
            fingerprints = console_fingerprints(client, instance_id)
    seen = f"{key.get_name()} {fingerprint(key)}"
    if not fingerprints:
        run.details["host_key_verification"] = (
            f"{transport.host_key_verification}: the console output showed no host key "
            f"fingerprints within {options.host_key_wait_s:g}s of the scan"
        )
        return
    if not matches_fingerprints(key, fingerprints):
        # Judged over a session whose server is not the instance's: none of it stands.
        for check_id in [c.id for c in run.checks if c.platform is not Platform.IMAGE]:
            run.results.pop(check_id, None)
        raise ScanAborted(
            f"host key mismatch: the SSH server presented {seen}, the console output of "
            f"{instance_id} lists {', '.join(fingerprints)}; the in-guest results were discarded"
        )
    run.details["host_key_verification"] = f"pinned from the console output after login ({seen})"


def login_until(
    address: str,
    options: ScanOptions,
    users: tuple[str, ...],
    credentials: Credentials,
    host_keys: HostKeyPolicy,
    deadline: float,
    run: ScanRun,
) -> SSHTransport:
    """Log in, retrying until the deadline: sshd often answers before cloud-init installed the
    key, and may restart once during first boot (refused or dropped connections)."""
    while True:
        run.cancel.check()
        try:
            return login(
                address,
                options.scan_port,
                users,
                credentials,
                host_keys,
                min(LOGIN_ATTEMPT_TIMEOUT_S, max(deadline - time.monotonic(), 1.0)),
                run.cancel,
            )
        except (AuthError, ConnectError):
            if time.monotonic() >= deadline:
                raise
        run.cancel.sleep(options.poll_interval_s)


def console_fingerprints(client: Any, instance_id: str) -> list[str]:
    """Host key fingerprints cloud-init printed on the console; none yet is not an error."""
    try:
        output = client.get_console_output(InstanceId=instance_id, Latest=True).get("Output") or ""
    except Exception as exc:
        log.debug("console output unavailable: %s", exc)
        return []
    return host_key_fingerprints(output)
