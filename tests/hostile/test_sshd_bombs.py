"""Hostile sshd configurations and account files: each run ends in seconds, and never in a pass
it did not earn.

Rows 4-6 of the hostile-images issue: a huge /etc/passwd, sshd_config.d files that include each
other, and a Match Address line with thousands of networks. Before, these took minutes or never
finished (users x addresses re-reading passwd, exponential Include expansion, every address list
re-parsed per connection).
"""

from __future__ import annotations

from pathlib import Path

from tests.hostile.harness import Run, assert_failed_cleanly, run_amiscan
from tests.imagetree import build_compliant

# Each of these scans takes about a second now; the bound only catches a regression.
TIMEOUT_S = 60.0
SSH_CHECKS = ("linux.ssh.password-authentication", "linux.ssh.root-login")


def _scan(root: Path, work: Path) -> Run:
    run = run_amiscan([f"dir:{root}"], work, timeout_s=TIMEOUT_S)
    assert not run.killed, f"the scan overran {TIMEOUT_S}s"
    return run


def _append_config(root: Path, text: str) -> None:
    config = root / "etc/ssh/sshd_config"
    config.write_text(config.read_text() + "\n" + text)


def test_five_thousand_login_accounts_are_judged_in_seconds(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_compliant(root)
    passwd = root / "etc/passwd"
    passwd.write_text(
        passwd.read_text()
        + "".join(f"u{i}:x:{10000 + i}:{10000 + i}::/home/u{i}:/bin/bash\n" for i in range(5000))
    )
    # A Match User block for one of the many accounts keeps the per-user judgement honest.
    _append_config(root, "Match User u4999\n    PasswordAuthentication yes\n")
    run = _scan(root, tmp_path / "work")
    assert_failed_cleanly(run, 1)
    statuses = run.statuses()
    assert statuses["linux.ssh.password-authentication"] == "fail"
    assert statuses["linux.ssh.authorized-keys"] == "pass"


def test_sshd_config_d_files_that_include_each_other_end_at_sshds_depth_limit(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    build_compliant(root)
    conf_d = root / "etc/ssh/sshd_config.d"
    conf_d.mkdir(parents=True, exist_ok=True)
    for index in range(4):
        (conf_d / f"{index}.conf").write_text("Include /etc/ssh/sshd_config.d/*.conf\n")
    run = _scan(root, tmp_path / "work")
    assert_failed_cleanly(run, 0)
    report = {r["id"]: r for r in run.json_report()["results"]}
    # sshd -T exits with "Too many recursive configuration includes": never a plain pass.
    for check in SSH_CHECKS:
        assert report[check]["status"] == "warn", report[check]
        assert "Too many recursive configuration includes" in str(report[check]["evidence"])


def test_an_include_tree_past_the_file_bound_is_not_judged(tmp_path: Path) -> None:
    # No file includes itself and the depth stays within sshd's 16, yet 2**12 files are read:
    # past our bound the configuration is "could not judge", never pass.
    root = tmp_path / "root"
    build_compliant(root)
    levels = root / "etc/ssh/levels"
    for level in range(12):
        directory = levels / str(level)
        directory.mkdir(parents=True)
        for name in ("a.conf", "b.conf"):
            (directory / name).write_text(f"Include /etc/ssh/levels/{level + 1}/*.conf\n")
    _append_config(root, "Include /etc/ssh/levels/0/*.conf\n")
    run = _scan(root, tmp_path / "work")
    assert_failed_cleanly(run, 3)
    report = {r["id"]: r for r in run.json_report()["results"]}
    for check in SSH_CHECKS:
        assert report[check]["status"] == "error", report[check]
        assert "files in all" in report[check]["summary"]


def test_a_match_address_line_of_two_thousand_networks_is_judged_in_seconds(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    build_compliant(root)
    networks = ",".join(f"10.{i >> 8 & 255}.{i & 255}.0/24" for i in range(2000))
    # 10.2.7.0/24 is one of them: the vetting address inside it must be found and judged.
    _append_config(root, f"Match Address {networks}\n    PasswordAuthentication yes\n")
    run = _scan(root, tmp_path / "work")
    assert_failed_cleanly(run, 1)
    assert run.statuses()["linux.ssh.password-authentication"] == "fail"


def test_thousands_of_wildcard_address_entries_are_not_judged(tmp_path: Path) -> None:
    root = tmp_path / "root"
    build_compliant(root)
    wildcards = ",".join(f"10.{i % 256}.{i // 256}.*" for i in range(2000))
    _append_config(root, f"Match Address {wildcards}\n    PasswordAuthentication no\n")
    run = _scan(root, tmp_path / "work")
    assert_failed_cleanly(run, 3)
    report = {r["id"]: r for r in run.json_report()["results"]}
    assert report["linux.ssh.password-authentication"]["status"] == "error"
    assert "wildcard" in report["linux.ssh.password-authentication"]["summary"]
