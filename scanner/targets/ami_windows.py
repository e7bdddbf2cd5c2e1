"""The Windows half of an AMI scan: wait for WinRM and the password, log in as Administrator.

Called by AmiTarget once the instance is launched (with an RSA key pair, the security group open
on WinRM and RDP); AmiTarget's `finally` cleans up whatever happens here.
"""

from __future__ import annotations

import time
from typing import Any

from scanner.aws.launch import instance_address, wait_for_banner, wait_for_state
from scanner.aws.resources import ScanResources
from scanner.aws.windows_password import PasswordTimeout, wait_for_password
from scanner.errors import ScanAborted
from scanner.facts.base import Mode, ScanContext
from scanner.facts.windows.launch_agent import PasswordData
from scanner.model import Evidence, Outcome, Status
from scanner.run import ScanRun
from scanner.targets.ami_handoff import LaunchKey
from scanner.targets.base import ScanOptions, Target
from scanner.targets.winrm import OUTSIDE_IN_PORTS, probe_ports
from scanner.transports.base import AuthError, ConnectError
from scanner.transports.winrm import WinRMEndpoint, WinRMTransport
from scanner.windows import scan_live_windows

# Windows posts its password several minutes after boot; the default wait allows for it.
DEFAULT_WINDOWS_WAIT_S = 1200.0
ADMINISTRATOR = "Administrator"
PASSWORD_CHECK = "windows.launch-agent.password"  # noqa: S105 - a check id


def scan_windows_instance(
    target: Target,
    client: Any,
    run: ScanRun,
    options: ScanOptions,
    context: ScanContext,
    resources: ScanResources,
    key: LaunchKey,
) -> None:
    """Wait for the instance, its WinRM port and its password; log in; collect and judge."""
    assert resources.instance_id is not None
    instance_id = resources.instance_id
    deadline = time.monotonic() + (options.connect_timeout_s or DEFAULT_WINDOWS_WAIT_S)
    port = options.winrm_port
    with run.phase("running", "Waiting for the instance to run"):
        instance = wait_for_state(
            client, instance_id, deadline, run.cancel, options.poll_interval_s
        )
    address = instance_address(instance, options.address)
    run.details["address"] = f"{address} ({options.address})"
    with run.phase("port open", f"Waiting for WinRM on {address}:{port}"):
        wait_for_banner(address, port, deadline, run.cancel, options.poll_interval_s, expect=b"")
    with run.phase("password", "Waiting for the administrator password (GetPasswordData)"):
        password = _password(client, run, options, instance_id, key, deadline)
    transport = WinRMTransport(
        WinRMEndpoint(address, port, False),
        ADMINISTRATOR,
        password,
        connect_timeout_s=min(30.0, max(deadline - time.monotonic(), 5.0)),
    )
    with run.phase("logged in", f"Logging in to {address}:{port} as {ADMINISTRATOR} (WinRM)"):
        _connect_until(transport, deadline, run, options)
    try:
        run.details.update(
            {
                "login_user": ADMINISTRATOR,
                "host_key_verification": "not applicable (WinRM over NTLM)",
            }
        )
        with run.phase("reachability", "Trying RDP and WinRM ports from outside"):
            reachable, local = probe_ports(address, sorted({*OUTSIDE_IN_PORTS, port}), 5.0)
        run.details["reachable_ports"] = {str(p): ok for p, ok in reachable.items()}
        live = ScanContext(
            mode=Mode.LIVE,
            target_kind=target.kind,
            login_user=ADMINISTRATOR,
            scan_port=port,
            scanner_address=transport.local_address or local,
            reached_from_scanner=True,
            baseline_login_user=options.baseline_login_user,
            scan_date=options.scan_date,
            extra={
                **context.extra,
                "reachable_ports": reachable,
                "password_data": PasswordData.RETRIEVED,
            },
        )
        scan_live_windows(run, transport, live, options.collect_timeout_s)
    finally:
        transport.close()


def _password(
    client: Any,
    run: ScanRun,
    options: ScanOptions,
    instance_id: str,
    key: LaunchKey,
    deadline: float,
) -> str:
    """The decrypted administrator password; without one, the password check fails and the scan stops."""
    if key.rsa_key is None:
        raise ScanAborted(
            "a Windows AMI needs an RSA key pair to decrypt its administrator password"
        )
    try:
        return wait_for_password(
            client,
            instance_id,
            key.rsa_key,
            timeout_s=max(deadline - time.monotonic(), 1.0),
            poll_s=options.poll_interval_s,
            sleep=run.cancel.sleep,
        )
    except PasswordTimeout as exc:
        # No password is itself the verdict of the password check (CHECKS.md: GetPasswordData
        # returns a password); the other Windows checks cannot be judged without logging in.
        check = next((c for c in run.checks if c.id == PASSWORD_CHECK), None)
        if check is not None:
            summary = "GetPasswordData returned no password: the launch agent did not generate one"
            run.record(
                check, Outcome(Status.FAIL, summary, (Evidence("GetPasswordData", str(exc)),))
            )
        raise ScanAborted(str(exc)) from None


def _connect_until(
    transport: WinRMTransport, deadline: float, run: ScanRun, options: ScanOptions
) -> None:
    """WinRM may answer before Windows is ready to log in; refused connections are retried."""
    while True:
        run.cancel.check()
        try:
            transport.connect()
            return
        except ConnectError:
            if time.monotonic() >= deadline:
                raise
        except AuthError:
            raise
        run.cancel.sleep(options.poll_interval_s)
