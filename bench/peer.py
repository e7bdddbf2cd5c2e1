"""Benchmark: amiscan's whole Linux scan versus the pytest-testinfra suite a seller would write.

Starts a real OpenSSH sshd on 127.0.0.1 (as the tests do, root logging in with a generated key),
then runs, alternating round by round, both as subprocesses of this interpreter:

(a) amiscan's whole scan: `python3 -m scanner ssh://root@127.0.0.1:PORT -i KEY --scan-port PORT
    --json OUT --no-html` (every probe of every Linux check in ONE exec, judged locally);
(b) bench/peer_checks/: one pytest-testinfra test per amiscan Linux check, the same files,
    commands and limits, through testinfra's API and its paramiko backend
    (`python3 -m pytest -p testinfra.plugin --hosts=paramiko://…`, plug-in autoloading off so
    only testinfra is loaded);
(c) the floor: on one open paramiko connection, one exec of `true`, one of the secret search's
    `find … | xargs grep -l` over the same folders, and one of `sshd -T` (each timed, summed).
    Timed beside it, not in it: the package query, and the same search with one grep per core
    (`xargs -P`), as amiscan's search runs it.

Exec channels are counted on the server side (the sshd runs with LogLevel DEBUG1, and each
`request exec` line of its log is one exec), and for the peer also on the client side (its
conftest wraps paramiko's Channel.exec_command). Prints medians, ratios, amiscan's own phase
timings, the verdicts of both side by side, and where the peer's exec channels went.

    python3 bench/peer.py [--rounds 5] [--mode small|big]

`small` (default) runs the sshd in a private mount namespace in which the biggest subtrees of
the searched folders are covered by empty tmpfs mounts, until the folders hold about as many
files as a fresh AMI (--small-files, default 2000); `big` searches this machine as it is. In
both, root's ~/.bashrc (which bash sources for every command run over SSH, and which here runs
`pyenv init`, ~140 ms) is covered by an empty file, as an AMI's login user's is light
(--login-rc keep leaves it). testinfra's paramiko connection keeps paramiko's default, Nagle's
algorithm on, which costs up to ~40 ms per exec on loopback (--peer-nodelay turns it off; the
floor's connection always has TCP_NODELAY).
Needs root (the mount namespace, root login) and pytest-testinfra (`pip install
pytest-testinfra`). Connects to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import paramiko

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.search import floor_command
from scanner.facts.linux.secrets import SEARCH_DIRS
from scanner.facts.linux.system import _UPDATES_SCRIPT
from tests.sshd import SshdServer, require_sshd, start_sshd

ROOT = Path(__file__).resolve().parent.parent
PEER_DIR = Path(__file__).resolve().parent / "peer_checks"
# Folders whose subtrees may be hidden in small mode: /etc is never touched (sshd, sudo and the
# login read it), nor any .ssh directory.
HIDEABLE_TOPS = tuple(d for d in SEARCH_DIRS if d != "/etc")


# --- the sshd, in small mode inside a mount namespace that hides big subtrees -------------------


def count_files(path: str) -> int:
    """Regular files below `path` on its own file system (as the search's `find -xdev` sees)."""
    out = subprocess.run(
        ["find", path, "-xdev", "-type", "f", "-printf", "."],
        capture_output=True,
        check=False,
    ).stdout
    return len(out)


def subtrees_to_hide(target: int) -> tuple[list[tuple[str, int]], int, int]:
    """The biggest subtrees (children of the searched folders) to cover, biggest first, while the
    searched folders hold more than `target` files, stopping before a subtree whose hiding would
    leave the count farther below `target` than it is above; with the totals before and after."""
    total = sum(count_files(top) for top in SEARCH_DIRS if Path(top).is_dir())
    children: list[tuple[str, int]] = []
    for top in HIDEABLE_TOPS:
        if not Path(top).is_dir():
            continue
        for child in sorted(Path(top).iterdir()):
            if child.is_dir() and not child.is_symlink() and child.name != ".ssh":
                children.append((str(child), count_files(str(child))))
    children.sort(key=lambda c: -c[1])
    hidden, left = [], total
    for path, files in children:
        if left <= target or files == 0 or target - (left - files) > left - target:
            break
        hidden.append((path, files))
        left -= files
    return hidden, total, left


def namespace_wrapper(workdir: Path, hidden: list[str], empty_rc: list[str]) -> Path:
    """A script that starts sshd in a private mount namespace with `hidden` covered by tmpfs and
    the files `empty_rc` by an empty file; sshd ends up with the wrapper's pid and its usual
    command line (`exec`)."""
    binary = require_sshd()
    inner = workdir / "sshd-in-namespace.sh"
    empty = workdir / "empty-rc"
    empty.write_text("")
    mounts = "\n".join(
        [
            *(
                f"mount -t tmpfs -o size=64k,mode=0755 amiscan-bench {shlex.quote(p)}"
                for p in hidden
            ),
            *(f"mount --bind {shlex.quote(str(empty))} {shlex.quote(p)}" for p in empty_rc),
        ]
    )
    inner.write_text(f'#!/bin/sh\nset -e\n{mounts}\nexec {shlex.quote(binary)} "$@"\n')
    outer = workdir / "sshd-namespaced.sh"
    outer.write_text(
        "#!/bin/sh\n"
        f'exec unshare --mount --propagation private -- /bin/sh {shlex.quote(str(inner))} "$@"\n'
    )
    outer.chmod(0o755)
    return outer


def start_server(workdir: Path, wrapper: Path | None) -> SshdServer:
    config = "LogLevel DEBUG1"  # one `request exec` line per exec channel, and connections
    if wrapper is None:
        return start_sshd(workdir, "root", extra_config=config)
    with mock.patch("tests.sshd.require_sshd", return_value=str(wrapper)):
        return start_sshd(workdir, "root", extra_config=config)


@dataclass
class LogCounts:
    execs: int = 0
    connections: int = 0


class SshdLog:
    """Counts what the sshd logged since the last mark: exec requests and TCP connections."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since_mark(self) -> LogCounts:
        time.sleep(0.05)  # the last lines of a closing session
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode(errors="replace")
        return LogCounts(
            execs=len(re.findall(r"server_input_channel_req: channel \d+ request exec", text)),
            connections=text.count("\nConnection from ") + text.startswith("Connection from "),
        )


# --- the three contenders -----------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    execs: int
    connections: int
    extra: dict[str, Any] = field(default_factory=dict)


def run_amiscan(server: SshdServer, log: SshdLog, out: Path) -> Run:
    command = [
        sys.executable,
        "-m",
        "scanner",
        f"ssh://root@{server.host}:{server.port}",
        "-i",
        str(server.key_path),
        "--scan-port",
        str(server.port),
        "--json",
        str(out),
        "--no-html",
    ]
    log.mark()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    counts = log.since_mark()
    if result.returncode not in (0, 1) or not out.is_file():
        raise RuntimeError(
            f"amiscan failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
        )
    report = json.loads(out.read_text())
    return Run(seconds, counts.execs, counts.connections, {"report": report})


@dataclass
class Peer:
    command: list[str]
    counter: Path
    results: Path


def peer_command(server: SshdServer, workdir: Path, sudo: str, nodelay: bool) -> Peer:
    ssh_config = workdir / "ssh_config"
    ssh_config.write_text(
        f"Host {server.host}\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n"
    )
    public_key = workdir / "login_key.pub"
    public_key.write_text(server.public_key + "\n")
    config = server.config_path
    spec = (
        f"paramiko://{server.user}@{server.host}:{server.port}"
        f"?ssh_identity_file={server.key_path}&ssh_config={ssh_config}"
    )
    counter, results = workdir / "peer-counter.json", workdir / "peer-results.json"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "testinfra.plugin",
        f"--hosts={spec}",
        f"--peer-sshd-config={config}",
        f"--peer-scan-port={server.port}",
        f"--peer-client-addr={server.host}",
        f"--peer-login-key={public_key}",
        f"--peer-sudo={sudo}",
        f"--peer-counter={counter}",
        f"--peer-results={results}",
        *(["--peer-nodelay"] if nodelay else []),
        str(PEER_DIR),
    ]
    return Peer(command, counter, results)


def run_testinfra(peer: Peer, log: SshdLog) -> Run:
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    for stale in (peer.counter, peer.results):
        stale.unlink(missing_ok=True)
    log.mark()
    started = time.perf_counter()
    result = subprocess.run(peer.command, cwd=PEER_DIR, env=env, capture_output=True, check=False)
    seconds = time.perf_counter() - started
    counts = log.since_mark()
    if result.returncode not in (0, 1) or not peer.results.is_file():
        raise RuntimeError(
            f"the testinfra suite failed ({result.returncode}): {result.stdout.decode()[-3000:]}"
        )
    counted = json.loads(peer.counter.read_text())
    results = json.loads(peer.results.read_text())
    return Run(seconds, counts.execs, counts.connections, {"client": counted, **results})


def exec_timed(client: paramiko.SSHClient, command: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    _, stdout, _ = client.exec_command(command)
    out = stdout.read()
    stdout.channel.recv_exit_status()
    return time.perf_counter() - started, out


def floor_commands(server: SshdServer) -> dict[str, str]:
    return {
        "true": "true",
        "find | xargs grep -l": floor_command(),
        "sshd -T": (
            f"/usr/sbin/sshd -T -f {server.config_path} "
            f"-C user=root,host=10.0.0.1,addr=10.0.0.1,lport={server.port}"
        ),
    }


# Not part of the floor, timed beside it: the package query both sides run, which on apt hosts
# is most of the scan (`apt-get -s dist-upgrade` resolves every installed package).
PACKAGE_QUERY = f"sh -c {shlex.quote(_UPDATES_SCRIPT)}"


def run_floor(client: paramiko.SSHClient, server: SshdServer, log: SshdLog) -> Run:
    log.mark()
    parts = {name: exec_timed(client, cmd)[0] for name, cmd in floor_commands(server).items()}
    counts = log.since_mark()
    package_s, _ = exec_timed(client, PACKAGE_QUERY)
    parallel_s, _ = exec_timed(client, floor_command(per_core=True))
    extra = {"parts": parts, "package": package_s, "parallel": parallel_s}
    return Run(sum(parts.values()), counts.execs, counts.connections, extra)


def connect(server: SshdServer) -> tuple[paramiko.SSHClient, float]:
    """The floor's connection, with TCP_NODELAY (paramiko leaves Nagle's algorithm on)."""
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    started = time.perf_counter()
    client.connect(
        server.host,
        server.port,
        server.user,
        key_filename=str(server.key_path),
        look_for_keys=False,
        allow_agent=False,
    )
    seconds = time.perf_counter() - started
    transport = client.get_transport()
    if transport is not None and isinstance(transport.sock, socket.socket):
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client, seconds


def startup(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False)
    return time.perf_counter() - started


# --- report ------------------------------------------------------------------------------------


def median(runs: list[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(r) for r in runs)


def print_counts(client: paramiko.SSHClient) -> None:
    script = "; ".join(
        f"printf '%-12s %8s\\n' {d} \"$(find {d} -xdev -type f 2>/dev/null | wc -l)\""
        for d in SEARCH_DIRS
    )
    _, out = exec_timed(client, script)
    rows = out.decode().split("\n")
    total = sum(int(r.split()[1]) for r in rows if r.strip())
    print("files in the searched folders, as the sshd sees them (find -xdev -type f | wc -l):")
    for row in rows:
        if row.strip():
            print(f"  {row}")
    print(f"  {'total':<12} {total:>8}")


_AGREES = {"pass": "passed", "skip": "skipped"}


def print_verdicts(amiscan: dict[str, Any], outcomes: dict[str, str]) -> None:
    print("verdicts (amiscan status | testinfra test outcome; a peer test passes only where")
    print("amiscan passes, so warn/fail/error should match a failed test):")
    same = 0
    results = sorted(amiscan["results"], key=lambda r: r["id"])
    for result in results:
        check = result["id"]
        name = "test_" + check.replace(".", "_").replace("-", "_")
        peer = outcomes.get(name, "missing")
        agree = _AGREES.get(result["status"], "failed") == peer
        same += agree
        print(f"  {check:36}{result['status']:>6}  {peer:<8}{'' if agree else '  DIFFERS'}")
    print(f"  {same} of {len(results)} agree")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--mode", choices=("small", "big"), default="small")
    parser.add_argument(
        "--small-files",
        type=int,
        default=2000,
        help="small mode: hide the biggest subtrees until the searched folders hold this many",
    )
    parser.add_argument(
        "--login-rc",
        choices=("empty", "keep"),
        default="empty",
        help="root's ~/.bashrc, which bash sources for every exec over SSH: covered by an empty "
        "file (default; this machine's runs `pyenv init`) or kept",
    )
    parser.add_argument(
        "--peer-nodelay",
        action="store_true",
        help="set TCP_NODELAY on testinfra's connection (paramiko's default leaves Nagle on)",
    )
    parser.add_argument(
        "--sudo",
        choices=("auto", "always"),
        default="auto",
        help="the peer's privileged commands: through sudo only when not root (auto, as amiscan "
        "does), or always",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit(
            "bench/peer.py logs in as root and (small mode) needs a mount namespace: run as root"
        )

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="amiscan-peer-") as tmp:
        workdir = Path(tmp)
        hidden: list[tuple[str, int]] = []
        if args.mode == "small":
            hidden, before, after = subtrees_to_hide(args.small_files)
            print(f"small trees: {before} files in {', '.join(SEARCH_DIRS)}; hiding from the sshd:")
            for path, files in hidden:
                print(f"  {path:32} {files:>8} files")
            print(f"  leaves about {after}")
        rc = [p for p in ("/root/.bashrc",) if args.login_rc == "empty" and Path(p).is_file()]
        if rc:
            print(f"covered by an empty file for the sshd: {', '.join(rc)}")
        wrapper = None
        if hidden or rc:
            wrapper = namespace_wrapper(workdir, [p for p, _ in hidden], rc)
        server = start_server(workdir / "sshd", wrapper)
        try:
            log = SshdLog(server.log_path)
            client, connect_s = connect(server)
            print_counts(client)
            peer = peer_command(server, workdir, args.sudo, args.peer_nodelay)
            out = workdir / "amiscan.json"
            # Warm both interpreters' caches and the page cache; not measured.
            run_amiscan(server, log, out)
            run_testinfra(peer, log)
            run_floor(client, server, log)
            env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
            starts = {
                "amiscan (python3 -m scanner checks)": statistics.median(
                    startup([sys.executable, "-m", "scanner", "checks"], ROOT) for _ in range(3)
                ),
                "testinfra (pytest --collect-only)": statistics.median(
                    startup([*peer.command[:-1], "--collect-only", str(PEER_DIR)], PEER_DIR, env)
                    for _ in range(3)
                ),
            }
            amiscan: list[Run] = []
            testinfra: list[Run] = []
            floor: list[Run] = []
            for round_number in range(args.rounds):
                pair: list[tuple[list[Run], Callable[[], Run]]] = [
                    (amiscan, lambda: run_amiscan(server, log, out)),
                    (testinfra, lambda: run_testinfra(peer, log)),
                ]
                if round_number % 2:
                    pair.reverse()
                for runs, run in pair:
                    runs.append(run())
                floor.append(run_floor(client, server, log))
            client.close()
        finally:
            server.stop()
    elapsed = time.perf_counter() - began

    a_s = median(amiscan, lambda r: r.seconds)
    t_s = median(testinfra, lambda r: r.seconds)
    f_s = median(floor, lambda r: r.seconds)
    print(
        f"\nmode: {args.mode}  rounds: {args.rounds}  peer sudo: {args.sudo}  login rc: "
        f"{args.login_rc}  peer TCP_NODELAY: {'on' if args.peer_nodelay else 'off (paramiko default)'}"
        "\n(sshd on 127.0.0.1; amiscan and pytest as subprocesses, start-up included)"
    )
    print(f"{'':34}{'median wall s':>14}{'exec channels':>15}{'ssh connections':>17}")
    rows = [
        ("amiscan (whole scan)", a_s, amiscan),
        ("testinfra (peer suite)", t_s, testinfra),
        ("floor (3 execs, one connection)", f_s, floor),
    ]
    for label, seconds, runs in rows:
        print(f"{label:34}{seconds:>14.3f}{runs[0].execs:>15}{runs[0].connections:>17}")
    print(f"amiscan / testinfra: {a_s / t_s:.2f}x wall time")
    print(f"amiscan / floor:     {a_s / f_s:.2f}x wall time")
    package_s = statistics.median(r.extra["package"] for r in floor)
    print(
        f"amiscan / (floor + the package query, {package_s:.3f} s): "
        f"{a_s / (f_s + package_s):.2f}x wall time"
    )
    parallel_s = statistics.median(r.extra["parallel"] for r in floor)
    print(
        f"amiscan / (floor with one grep per core, {parallel_s:.3f} s for its search): "
        f"{a_s / (f_s - median(floor, lambda r: r.extra['parts']['find | xargs grep -l']) + parallel_s):.2f}x wall time"
    )
    client_counted = testinfra[0].extra["client"]
    print(
        f"testinfra exec channels counted client-side (paramiko): {client_counted.get('execs', 0)}"
        f" execs, {client_counted.get('sessions', 0)} session channels"
    )
    for name in floor_commands(server):
        print(
            f"  floor {name:24}{statistics.median(r.extra['parts'][name] for r in floor):>8.3f} s"
        )
    print(f"  floor connect + auth (not in the floor)  {connect_s:.3f} s")
    phases: dict[str, list[float]] = {}
    for scan in amiscan:
        for phase in scan.extra["report"].get("phases", []):
            phases.setdefault(phase["name"], []).append(phase["duration_s"])
    if phases:
        print(
            "amiscan phases (median s): "
            + ", ".join(
                f"{name} {statistics.median(values):.3f}" for name, values in phases.items()
            )
        )
        print(
            f"  amiscan outside its phases (start-up, reports): {a_s - sum(statistics.median(v) for v in phases.values()):.3f} s"
        )
    probe_ms: dict[str, list[int]] = {}
    for scan in amiscan:
        for name, ms in scan.extra["report"].get("collection", {}).get("probe_ms", {}).items():
            probe_ms.setdefault(name, []).append(ms)
    if probe_ms:
        slowest = sorted(probe_ms.items(), key=lambda item: -statistics.median(item[1]))[:6]
        print(
            "amiscan's slowest probes on the guest (median ms; the search and the package "
            "query run side by side): "
            + ", ".join(f"{name} {statistics.median(ms):.0f}" for name, ms in slowest)
        )
    for label, seconds in starts.items():
        print(f"start-up only, {label}: {seconds:.3f} s")
    per_test = client_counted.get("per_test", {})
    print("testinfra by test: exec channels, median s (setup + call; a module fixture counts at")
    print("the first test that uses it):")
    for name in sorted(per_test, key=lambda n: -per_test[n]):
        seconds = statistics.median(r.extra["durations"].get(name, 0.0) for r in testinfra)
        print(f"  {name.removeprefix('test_'):36}{per_test[name]:>4}{seconds:>9.3f}")
    print_verdicts(amiscan[-1].extra["report"], testinfra[-1].extra["outcomes"])
    print(f"benchmark took {elapsed:.0f} s")


if __name__ == "__main__":
    main()
