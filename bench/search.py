"""Benchmark: the search for secrets, live and offline, against `find | xargs grep` over the same folders.

(a) live: the collection's search script as amiscan runs it (one grep per core), the same script
    on one grep (a stand-in `nproc` printing 1), and the floor's bare `find … | xargs grep -l`,
    alternated round by round, over this machine's searched folders; and whether both scripts
    printed the same records.
(b) offline: `amiscan dir:ROOT --json … --no-html` (the whole scan, start-up included) against
    `find … | xargs grep -l` over the same folders below ROOT, alternated.
(c) stopping: SIGINT and SIGTERM sent to `amiscan dir:ROOT` while it walks; how long it takes
    to exit, and with which code.

    python3 bench/search.py [--rounds 3] [--root /]

Reads this machine's files only; sends nothing anywhere. Run as root to read every folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.facts.linux.secrets import (
    _GREP_PATTERN,
    MAX_SEARCHED_FILE,
    SEARCH_DIRS,
    secret_search_script,
)

ROOT = Path(__file__).resolve().parent.parent


def floor_command(root: str = "/", *, per_core: bool = False) -> str:
    """The floor's search: `find | xargs grep -l` over the searched folders below `root`, with
    the search's size limit and pattern; `per_core` runs one grep per core, as amiscan does."""
    tops = " ".join(shlex.quote(str(Path(root) / d.lstrip("/"))) for d in SEARCH_DIRS)
    xargs = 'xargs -0 -r -P "$(nproc)" -s 1048576' if per_core else "xargs -0 -r"
    return (
        f"find {tops} -xdev -type f -size -{MAX_SEARCHED_FILE // 1024}k -print0 2>/dev/null"
        f" | {xargs} grep -lIE -e {shlex.quote(_GREP_PATTERN)} 2>/dev/null"
    )


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, bytes]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    return time.perf_counter() - started, done.stdout


def records(stdout: bytes) -> list[bytes]:
    return sorted(line for line in stdout.split(b"\n") if b"\0" in line)


def live(rounds: int) -> None:
    script = secret_search_script()
    with tempfile.TemporaryDirectory(prefix="amiscan-bench-") as tmp:
        one_core = Path(tmp) / "nproc"
        one_core.write_text("#!/bin/sh\necho 1\n")
        one_core.chmod(0o755)
        single_env = {**os.environ, "PATH": f"{tmp}:{os.environ['PATH']}"}
        times: dict[str, list[float]] = {"per core": [], "one grep": [], "floor": []}
        outputs: dict[str, list[bytes]] = {}
        for _ in range(rounds):
            seconds, out = timed(["sh", "-c", script])
            times["per core"].append(seconds)
            outputs["per core"] = records(out)
            seconds, out = timed(["sh", "-c", script], single_env)
            times["one grep"].append(seconds)
            outputs["one grep"] = records(out)
            times["floor"].append(timed(["sh", "-c", floor_command("/")])[0])
    cores = os.cpu_count() or 1
    print(f"(a) live search over {', '.join(SEARCH_DIRS)} ({cores} cores), median of {rounds}:")
    for name, values in times.items():
        print(f"  {name:10}{statistics.median(values):>8.3f} s")
    floor = statistics.median(times["floor"])
    print(f"  per core / floor: {statistics.median(times['per core']) / floor:.2f}x")
    print(f"  one grep / floor: {statistics.median(times['one grep']) / floor:.2f}x")
    same = outputs["per core"] == outputs["one grep"]
    digest = hashlib.sha256(b"\n".join(outputs["per core"])).hexdigest()[:12]
    print(f"  records: {len(outputs['per core'])} (sha256 {digest}); same on one grep: {same}")


def offline(rounds: int, root: str) -> None:
    with tempfile.TemporaryDirectory(prefix="amiscan-bench-") as tmp:
        report = str(Path(tmp) / "report.json")
        scan = [sys.executable, "-m", "scanner", f"dir:{root}", "--json", report, "--no-html"]
        amiscan, floor = [], []
        for _ in range(rounds):
            floor.append(timed(["sh", "-c", floor_command(root)])[0])
            started = time.perf_counter()
            subprocess.run(scan, cwd=ROOT, capture_output=True, check=False)
            amiscan.append(time.perf_counter() - started)
    ratios = ", ".join(f"{a / f:.2f}" for a, f in zip(amiscan, floor, strict=True))
    a_s, f_s = statistics.median(amiscan), statistics.median(floor)
    print(f"(b) offline, amiscan dir:{root} (whole scan) vs find | xargs grep, median of {rounds}:")
    print(f"  amiscan {a_s:.3f} s, find | xargs grep {f_s:.3f} s: {a_s / f_s:.2f}x")
    print(f"  per round: {ratios}")


def stopping(root: str) -> None:
    print(f"(c) amiscan dir:{root} stopped 2.5 s into its walk:")
    with tempfile.TemporaryDirectory(prefix="amiscan-bench-") as tmp:
        report = str(Path(tmp) / "report.json")
        scan = [sys.executable, "-m", "scanner", f"dir:{root}", "--json", report, "--no-html"]
        for sig in (signal.SIGINT, signal.SIGTERM):
            process = subprocess.Popen(
                scan, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(2.5)
            sent = time.perf_counter()
            process.send_signal(sig)
            code = process.wait(timeout=120)
            waited = (time.perf_counter() - sent) * 1000
            print(f"  {sig.name}: exit {code} {waited:.0f} ms after the signal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", default="/", help="the tree `amiscan dir:` scans (default /)")
    args = parser.parse_args()
    live(args.rounds)
    offline(args.rounds, args.root)
    stopping(args.root)


if __name__ == "__main__":
    main()
