"""Benchmark: `amiscan snapshot:` through the EBS direct APIs versus `amiscan dir:` on the same root.

Builds an 8 GiB sparse GPT disk whose ext4 root is the real Debian 12 guest of the test tier
(when its image cache holds one; otherwise the tests' compliant image tree), uploads it to a
local moto server with PutSnapshotBlock, and serves it with an injected latency on every request
(default 50 ms, as a remote region might cost). Then it runs, alternately, `amiscan snapshot:`
against that server and `amiscan dir:` on the tree, and prints the median wall times, the
blocks and bytes fetched, the fraction of the volume read, and whether both gave the same
statuses.

    python3 bench/offline.py [--rounds 3] [--latency-ms 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import boto3
from moto.ebs.models import ebs_backends
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from tests.diskimages import EBS_BLOCK, make_ext4, make_gpt_disk, upload_snapshot
from tests.imagetree import build_compliant

ACCOUNT, REGION = "123456789012", "us-east-1"
DISK_GIB = 8


class Latency:
    """WSGI middleware: every request waits `seconds` first, as a remote endpoint would."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds, self.requests = app, seconds, 0

    def __call__(self, environ: Any, start_response: Any) -> Any:
        self.requests += 1
        time.sleep(self.seconds)
        return self.app(environ, start_response)


def root_image(work: Path) -> tuple[Path, Path, str]:
    """The root tree, an ext4 file system holding it, and what it is."""
    from tests.guest.image import cached_image

    image = cached_image()
    if image is not None and image.root.is_dir() and image.rootfs.is_file():
        return image.root, image.rootfs, "the Debian 12 guest of the test tier"
    root = work / "root"
    build_compliant(root)
    fs = make_ext4(root, work / "root.ext4", 256)
    return root, fs, "the tests' compliant image tree (build the guest image for a realistic root)"


def amiscan(args: list[str], env: dict[str, str], report: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "scanner", *args, "--json", str(report), "--no-html"],
        env=env,
        capture_output=True,
        check=False,
    )
    return time.perf_counter() - started, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="amiscan-bench-") as scratch:
        work = Path(scratch)
        root, fs, what = root_image(work)
        print(f"root: {what}")
        fs_mib = fs.stat().st_size // 2**20
        disk = make_gpt_disk(fs, work / "disk.img", extra_mib=DISK_GIB * 1024 - fs_mib - 8)
        app = Latency(DomainDispatcherApplication(create_backend_app), 0.0)
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        ebs = boto3.client(
            "ebs",
            endpoint_url=url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 (moto's fake credentials)
        )
        started = time.perf_counter()
        snapshot = upload_snapshot(ebs, disk, DISK_GIB)
        written = len(ebs_backends[ACCOUNT][REGION].snapshots[snapshot].blocks)
        print(
            f"uploaded {written} blocks of {DISK_GIB} GiB in {time.perf_counter() - started:.1f} s"
        )
        app.seconds = options.latency_ms / 1000
        times: dict[str, list[float]] = {"snapshot": [], "dir": []}
        reports: dict[str, dict[str, Any]] = {}
        requests: list[int] = []
        for _ in range(options.rounds):
            before = app.requests
            elapsed, reports["snapshot"] = amiscan([f"snapshot:{snapshot}"], env, work / "s.json")
            times["snapshot"].append(elapsed)
            requests.append(app.requests - before)
            elapsed, reports["dir"] = amiscan([f"dir:{root}"], env, work / "d.json")
            times["dir"].append(elapsed)
        statuses = {k: {r["id"]: r["status"] for r in v["results"]} for k, v in reports.items()}
        volume_blocks = DISK_GIB * 1024 * 1024 * 1024 // EBS_BLOCK
        read = reports["snapshot"]["target"].get("read", "")
        print(f"latency per request: {options.latency_ms:g} ms; rounds: {options.rounds}")
        print(
            f"snapshot: {read}; {statistics.median(requests):.0f} HTTP requests per scan "
            f"(of {volume_blocks} blocks in the volume)"
        )
        for kind in ("snapshot", "dir"):
            print(
                f"amiscan {kind + ':':9} median {statistics.median(times[kind]):6.2f} s  "
                f"(runs: {', '.join(f'{t:.2f}' for t in times[kind])}); "
                f"verdict {reports[kind]['verdict']}"
            )
        print(
            f"ratio snapshot:/dir: {statistics.median(times['snapshot']) / statistics.median(times['dir']):.2f}"
        )
        same = statuses["snapshot"] == statuses["dir"]
        print(f"same statuses on every check: {same}")
        if not same:
            for check_id in sorted(statuses["dir"]):
                if statuses["dir"][check_id] != statuses["snapshot"].get(check_id):
                    print(
                        f"  {check_id}: dir {statuses['dir'][check_id]}, "
                        f"snapshot {statuses['snapshot'].get(check_id)}"
                    )
        server.shutdown()


if __name__ == "__main__":
    main()
