"""Regenerate the README's screenshot of the HTML report: `python -m tests.screenshot docs/report.png`.

The results are real: an image root with the usual build leftovers (password login, a shell
history, a root password hash) scanned offline by the command line, with one waiver and a
baseline. The target facts are then shown as those of an AMI, as the README's readers scan AMIs.
"""

from __future__ import annotations

import base64
import dataclasses
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from reports.html import render_html
from reports.json_report import dumps, loads
from scanner.cli import main as amiscan
from scanner.model import Report, Status, TargetInfo
from tests.browser import chromium, find_chromium
from tests.imagetree import SHA512_HASH, build_compliant

WIDTH, HEIGHT = 1100, 1500
AMI_FACTS = {
    "name": "acme-appliance-2.4.0-x86_64",
    "region": "us-east-1",
    "architecture": "x86_64",
    "platform_details": "Linux/UNIX",
    "instance_type": "t3.micro",
    "login_user": "ec2-user",
    "host_key_verification": "pinned from the console output (ED25519)",
}


def failing_report(workdir: Path) -> Report:
    """A real failing scan, presented as the scan of an AMI."""
    tree = build_compliant(workdir / "img")
    tree.set_sshd_option("PasswordAuthentication", "yes")
    tree.set_shadow_password("root", SHA512_HASH)
    tree.write("/home/ec2-user/.bash_history", "sudo yum install -y acme\nhistory -c\n")
    tree.write("/var/lib/cloud/instances/i-0abc/boot-finished", "")
    baseline = workdir / "acme-appliance-2.3.0.json"
    config = workdir / "amiscan.toml"
    config.write_text(
        "[[waivers]]\n"
        'id = "linux.cloud-init.clean"\n'
        'reason = "state is reset by the first-boot unit (ACME-412)"\n'
        "expires = 2099-12-31\n"
        'approver = "security@acme.example"\n'
    )
    scanned = workdir / "scan.json"
    CliRunner().invoke(
        amiscan,
        [f"dir:{tree.root}", "--config", str(config), "--no-html", "--json", str(scanned)],
    )
    first = loads(scanned.read_text())
    # The previous version: everything passed but the history check.
    previous = dataclasses.replace(
        first,
        target=TargetInfo("ami", "ami-0fedcba9876543210", "linux", AMI_FACTS),
        results=tuple(
            dataclasses.replace(r, status=Status.PASS, evidence=())
            if r.id in ("linux.ssh.password-authentication", "linux.accounts.root-password")
            else r
            for r in first.results
        ),
    )
    baseline.write_text(dumps(previous))
    CliRunner().invoke(
        amiscan,
        [f"dir:{tree.root}", "--config", str(config), "--baseline", str(baseline), "--no-html",
         "--json", str(scanned)],
    )  # fmt: skip
    report = loads(scanned.read_text())
    details = {**AMI_FACTS, "os": report.target.details.get("os", "Amazon Linux 2023")}
    return dataclasses.replace(
        report, target=TargetInfo("ami", "ami-0123456789abcdef0", "linux", details)
    )


def main(output: Path) -> None:
    executable = find_chromium()
    if executable is None:
        raise SystemExit("no chromium on PATH")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        page_path = workdir / "report.html"
        page_path.write_text(render_html(failing_report(workdir)), encoding="utf-8")
        with chromium(executable, workdir / "profile") as browser:
            page = browser.new_page(width=WIDTH, height=HEIGHT)
            page.navigate(page_path.as_uri())
            shot = page.send("Page.captureScreenshot", format="png")
    output.write_bytes(base64.b64decode(shot["data"]))
    print(f"{output}: {output.stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/report.png"))
