"""Benchmark: one batched collection round trip versus one SSH exec per check.

Starts a real OpenSSH sshd on 127.0.0.1 (as the tests do), logs in once, then alternates, round by
round, between (a) amiscan's collection — every probe of every selected check in ONE exec — and
(b) the same probes run one exec per check. Both use the same connection, so the difference is
the per-exec cost (channel, shell, sudo) and the probes repeated across checks. Prints the median
wall time and the number of exec channels of each, and their ratio, measured side by side.

    python3 bench/collection.py [--rounds 5] [--all]

By default the two slow probes (the whole-disk secret search and the package manager query) are
left out so the per-exec overhead is visible; `--all` includes every Linux check.
"""

from __future__ import annotations

import argparse
import getpass
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.collect import LiveSettings, build_script, parse_output
from scanner.facts.base import Mode
from scanner.linux import linux_checks, needed_facts
from scanner.registry import Check, load_checks
from scanner.transports.ssh import Credentials, HostKeyPolicy, SSHTransport
from tests.sshd import start_sshd

SLOW_CHECKS = ("linux.secrets.", "linux.packages.")


def batched(
    transport: SSHTransport, checks: list[Check], settings: LiveSettings
) -> tuple[float, int, int]:
    """Wall seconds, exec channels and probes answered for one batched collection."""
    before = transport.exec_count
    started = time.perf_counter()
    script = build_script(needed_facts(checks, Mode.LIVE), settings)
    result = transport.run_script(script.text, 600)
    probes = len(parse_output(result.stdout, script.marker).outputs)
    return time.perf_counter() - started, transport.exec_count - before, probes


def per_check(
    transport: SSHTransport, checks: list[Check], settings: LiveSettings
) -> tuple[float, int, int]:
    """The same facts gathered the naive way: one exec (and one sudo) per check."""
    before = transport.exec_count
    probes = 0
    started = time.perf_counter()
    for item in checks:
        script = build_script(needed_facts([item], Mode.LIVE), settings)
        result = transport.run_script(script.text, 600)
        probes += len(parse_output(result.stdout, script.marker).outputs)
    return time.perf_counter() - started, transport.exec_count - before, probes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--all", action="store_true", help="include the slow whole-disk probes")
    args = parser.parse_args()

    checks = linux_checks(sorted(load_checks().values(), key=lambda c: c.id))
    if not args.all:
        checks = [c for c in checks if not c.id.startswith(SLOW_CHECKS)]
    with tempfile.TemporaryDirectory() as workdir:
        server = start_sshd(Path(workdir), getpass.getuser())
        try:
            transport = SSHTransport(
                server.host,
                server.port,
                server.user,
                Credentials(identity_file=server.key_path, use_agent=False, use_default_keys=False),
                HostKeyPolicy(),
            )
            transport.connect()
            settings = LiveSettings(login_user=server.user, scan_port=server.port)
            batched(transport, checks, settings)  # warm the page cache for both sides
            one, many = [], []
            for _ in range(args.rounds):
                one.append(batched(transport, checks, settings))
                many.append(per_check(transport, checks, settings))
            transport.close()
        finally:
            server.stop()

    one_s = statistics.median(r[0] for r in one)
    many_s = statistics.median(r[0] for r in many)
    print(f"checks: {len(checks)}  rounds: {args.rounds}  (sshd on 127.0.0.1, same connection)")
    print(f"{'':24}{'median wall s':>14}{'exec channels':>15}{'probes run':>12}")
    print(f"{'batched (amiscan)':24}{one_s:>14.3f}{one[0][1]:>15}{one[0][2]:>12}")
    print(f"{'one exec per check':24}{many_s:>14.3f}{many[0][1]:>15}{many[0][2]:>12}")
    print(
        f"per-check / batched: {many_s / one_s:.2f}x wall time, {many[0][1] / one[0][1]:.0f}x exec channels"
    )


if __name__ == "__main__":
    main()
