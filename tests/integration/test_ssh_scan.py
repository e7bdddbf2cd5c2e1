"""`amiscan ssh://…` against a real OpenSSH sshd on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.conftest import SshdFactory
from tests.plugins import PLUGIN_MODULE, SLOW_CHECK, install_plugin, plugin_env
from tests.sshd import SshdServer, free_port

LIVE_STATUSES = {"pass", "fail", "warn", "skip"}


def amiscan(
    *args: str, env: dict[str, str] | None = None, home: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    environment = dict(env or os.environ)
    if home is not None:
        # A private HOME: no ssh-agent, default keys or known_hosts of the developer's own.
        environment["HOME"] = str(home)
        environment.pop("SSH_AUTH_SOCK", None)
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
    )


def scan(
    server: SshdServer, tmp_path: Path, *extra: str, **kwargs: Any
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / "report.json"
    result = amiscan(
        server.url,
        "-i",
        str(server.key_path),
        "--json",
        str(report),
        "--html",
        str(tmp_path / "report.html"),
        *extra,
        home=tmp_path,
        **kwargs,
    )
    assert report.is_file(), result.stderr
    return result, json.loads(report.read_text())


def by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in report["results"]}


@pytest.fixture(scope="module")
def full_scan(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], SshdServer]:
    import getpass

    from tests.sshd import start_sshd

    workdir = tmp_path_factory.mktemp("full")
    server = start_sshd(workdir / "sshd", getpass.getuser())
    try:
        # The test sshd listens on a high port; judge that port, as for a host with sshd there.
        result, report = scan(server, workdir, "--scan-port", str(server.port))
    finally:
        server.stop()
    return result, report, server


def test_every_live_linux_check_ends_with_a_status_and_evidence(full_scan: Any) -> None:
    result, report, _ = full_scan
    assert result.returncode in (0, 1), result.stderr
    linux = [r for r in report["results"] if r["id"].startswith("linux.")]
    assert len(linux) == 17
    for item in linux:
        assert item["status"] in LIVE_STATUSES | {"error"}, item
        if item["status"] == "error":
            assert item["summary"], f"{item['id']} errored without a reason"
        if item["status"] in ("fail", "warn"):
            assert item["evidence"], f"{item['id']} {item['status']} without evidence"
    errors = [r["id"] for r in linux if r["status"] == "error"]
    assert not errors, f"checks errored on a healthy sshd: {errors}"


def test_all_in_guest_facts_cost_one_ssh_exec(full_scan: Any) -> None:
    _, report, _ = full_scan
    assert report["collection"]["round_trips"] == 1
    assert report["collection"]["probes"] >= 5


def test_the_report_names_the_login_and_how_the_host_key_was_verified(full_scan: Any) -> None:
    _, report, server = full_scan
    target = report["target"]
    assert target["kind"] == "ssh"
    assert target["login_user"] == server.user
    assert "trusted on first use" in target["host_key_verification"]
    assert report["verdict"] in ("pass", "fail")
    assert [p["name"] for p in report["phases"]] == ["logged in", "collected", "judged"]


def test_the_serving_sshds_own_configuration_is_judged(full_scan: Any) -> None:
    _, report, server = full_scan
    results = by_id(report)
    password = results["linux.ssh.password-authentication"]
    assert password["status"] == "pass"
    assert any(str(server.config_path) in e["source"] for e in password["evidence"])
    assert any("offers publickey" in e["text"] for e in password["evidence"])
    assert results["linux.ssh.root-login"]["status"] == "pass"


def test_the_key_the_scanner_logged_in_with_is_not_a_finding(full_scan: Any) -> None:
    _, report, _ = full_scan
    keys = by_id(report)["linux.ssh.authorized-keys"]
    assert "ignored the key amiscan logged in with" in keys["summary"]


def test_loopback_only_listener_fails_the_reachability_check(full_scan: Any) -> None:
    _, report, server = full_scan
    listening = by_id(report)["linux.ssh.listening"]
    assert listening["status"] == "fail"
    assert f"127.0.0.1:{server.port}" in listening["evidence"][0]["text"]


def test_the_url_port_is_how_the_host_is_reached_and_port_22_is_judged(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    # As through a port forward: amiscan reaches sshd on a high port, while Marketplace vetting
    # will connect to 22, where nothing listens on this machine.
    server = sshd_factory("")
    _, report = scan(server, tmp_path, "--checks", "linux.ssh.listening")
    listening = by_id(report)["linux.ssh.listening"]
    assert listening["status"] == "fail"
    assert "nothing listens on port 22" in listening["evidence"][0]["text"]
    assert (report["target"]["port"], report["target"]["scan_port"]) == (server.port, 22)


def test_password_authentication_enabled_is_seen_from_inside_and_outside(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory("PasswordAuthentication yes\nPermitRootLogin yes")
    result, report = scan(server, tmp_path, "--checks", "linux.ssh")
    assert result.returncode == 1
    results = by_id(report)
    password = results["linux.ssh.password-authentication"]
    assert password["status"] == "fail"
    sources = [e["source"] for e in password["evidence"]]
    assert any(s.startswith(f"{server.config_path}:1") for s in sources)
    assert any("probed from the scanner" in s for s in sources)
    assert results["linux.ssh.root-login"]["status"] == "fail"


def test_a_baked_in_key_next_to_the_scanners_key_fails(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    from tests.sshd import generate_key

    _, extra = generate_key(tmp_path / "seller")
    server = sshd_factory()
    keys_file = server.config_path.parent / "authorized" / server.user
    keys_file.write_text(keys_file.read_text() + f"{extra} seller@build\n")
    result, report = scan(server, tmp_path, "--checks", "linux.ssh.authorized-keys")
    assert result.returncode == 1
    keys = by_id(report)["linux.ssh.authorized-keys"]
    assert keys["status"] == "fail"
    assert "seller@build" in keys["evidence"][0]["text"]
    assert len(keys["evidence"]) == 1


def test_rejected_key_is_exit_3_with_one_line_and_a_report(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory(authorized="")
    result, report = scan(server, tmp_path)
    assert result.returncode == 3
    assert "Traceback" not in result.stderr
    assert "permission denied (publickey)" in result.stderr
    assert report["verdict"] == "error"
    assert "permission denied" in report["errors"][0]
    assert all(r["status"] == "error" for r in report["results"])


def test_refused_connection_is_exit_3(tmp_path: Path, sshd_factory: SshdFactory) -> None:
    key = sshd_factory().key_path
    port = free_port()
    result = amiscan(
        f"ssh://tester@127.0.0.1:{port}", "-i", str(key), "--json", "-", "--no-html", home=tmp_path
    )
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert f"connection to 127.0.0.1:{port} refused" in report["errors"][0]
    assert "Traceback" not in result.stderr


def test_host_key_mismatch_refuses_to_log_in(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    server = sshd_factory()
    impostor = paramiko.Ed25519Key.from_private_key_file(str(server.key_path))
    known = tmp_path / ".ssh" / "known_hosts"
    known.parent.mkdir()
    known.write_text(f"[127.0.0.1]:{server.port} ssh-ed25519 {impostor.get_base64()}\n")
    result = amiscan(
        server.url, "-i", str(server.key_path), "--json", "-", "--no-html", home=tmp_path
    )
    assert result.returncode == 3
    assert "host key mismatch" in json.loads(result.stdout)["errors"][0]


def test_a_known_host_key_is_reported_as_verified(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    server = sshd_factory()
    known = tmp_path / ".ssh" / "known_hosts"
    known.parent.mkdir()
    known.write_text(f"[127.0.0.1]:{server.port} ssh-ed25519 {server.host_key.get_base64()}\n")
    _, report = scan(server, tmp_path, "--checks", "linux.ssh.root-login")
    assert report["target"]["host_key_verification"].startswith(f"matched {known}")


def test_a_hung_probe_errors_only_its_own_check(sshd_factory: SshdFactory, tmp_path: Path) -> None:
    site = install_plugin(tmp_path / "site", body=PLUGIN_MODULE + SLOW_CHECK)
    server = sshd_factory()
    result, report = scan(
        server,
        tmp_path,
        "--checks",
        "acme,linux.ssh.root-login",
        env=plugin_env(site, dict(os.environ)),
    )
    results = by_id(report)
    assert results["acme.slow.probe"]["status"] == "error"
    assert "timed out" in results["acme.slow.probe"]["summary"]
    assert results["acme.motd.internal-hosts"]["status"] in ("pass", "fail")
    assert results["linux.ssh.root-login"]["status"] == "pass"
    # The other checks were judged, but one that applies was not: never a pass.
    assert result.returncode == 3, result.stderr
    assert report["verdict"] == "error"
    assert [u["id"] for u in report["unjudged"]] == ["acme.slow.probe"]
    assert "could not judge acme.slow.probe" in result.stdout


def test_the_whole_collection_is_bounded_by_the_timeout(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    body = PLUGIN_MODULE + SLOW_CHECK.replace("timeout_s=2", "timeout_s=600")
    body = body.replace(
        'Probe("sleep 600", privileged=False, timeout_s=2)',
        'Probe("sleep 600", privileged=False, timeout_s=600)',
    )
    site = install_plugin(tmp_path / "site", body=body)
    server = sshd_factory()
    result, report = scan(
        server,
        tmp_path,
        "--checks",
        "acme",
        "--timeout",
        "5",
        env=plugin_env(site, dict(os.environ)),
    )
    assert result.returncode == 3
    assert "did not finish within 5s" in report["errors"][0]


def test_a_third_party_check_runs_and_appears_in_the_report(
    sshd_factory: SshdFactory, tmp_path: Path
) -> None:
    site = install_plugin(tmp_path / "site")
    server = sshd_factory()
    _, report = scan(server, tmp_path, "--checks", "acme", env=plugin_env(site, dict(os.environ)))
    assert by_id(report)["acme.motd.internal-hosts"]["status"] in ("pass", "fail")
    html = (tmp_path / "report.html").read_text()
    assert "acme.motd.internal-hosts" in html
