"""Remote access checks on an image at rest: start types stand for states, no socket is judged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from checks.windows.remote import rdp_enabled, vetting_access, winrm_listener
from scanner.facts.base import Facts
from scanner.fs import ImageRoot
from scanner.model import Status
from tests.factbuilders import evidence_text, offline_context, run
from tests.windowsystem import WindowsSystem, compliant, render_tree, with_service

DISABLED, MANUAL = 4, 3


def at_rest(system: WindowsSystem, tmp_path: Path) -> Facts:
    root = render_tree(system, tmp_path / "c")
    return Facts(ImageRoot(root), offline_context(target_kind="dir"))


def test_a_pass_at_rest_says_it_saw_configuration_not_a_running_service(tmp_path: Path) -> None:
    outcome = run(rdp_enabled, at_rest(compliant(), tmp_path))
    assert outcome.status is Status.PASS
    assert "configuration at rest; not observed running" in outcome.summary
    assert "not observable on an image at rest" in evidence_text(outcome)


def test_a_disabled_remote_desktop_service_fails_at_rest(tmp_path: Path) -> None:
    outcome = run(rdp_enabled, at_rest(with_service(compliant(), "TermService", 4), tmp_path))
    assert outcome.status is Status.FAIL
    assert "(TermService) is disabled" in outcome.summary


def test_winrm_set_to_manual_start_fails_at_rest(tmp_path: Path) -> None:
    outcome = run(winrm_listener, at_rest(with_service(compliant(), "WinRM", MANUAL), tmp_path))
    assert outcome.status is Status.FAIL
    assert "does not start at boot" in outcome.summary


def test_the_ssm_agent_set_to_start_automatically_settles_vetting_access(tmp_path: Path) -> None:
    outcome = run(vetting_access, at_rest(compliant(), tmp_path))
    assert outcome.status is Status.PASS
    assert (
        outcome.summary == "the SSM agent is installed and starts at boot (configuration at rest)"
    )


def test_without_ssm_winrm_at_rest_settles_vetting_access(tmp_path: Path) -> None:
    system = with_service(compliant(), "AmazonSSMAgent", DISABLED)
    outcome = run(vetting_access, at_rest(system, tmp_path))
    assert outcome.status is Status.PASS
    assert outcome.summary.startswith("WinRM listens on 5985")


def test_without_any_winrm_configuration_vetting_access_is_not_guessed(tmp_path: Path) -> None:
    # No SSM, no WinRM keys at all, and SMB's firewall rule is disabled in the compliant image:
    # only a running instance could say whether WinRM would answer.
    system = dataclasses.replace(
        with_service(compliant(), "AmazonSSMAgent", DISABLED), winrm_listeners=()
    )
    outcome = run(vetting_access, at_rest(system, tmp_path))
    assert outcome.status is Status.SKIP
    assert "need a running instance" in outcome.summary
    assert run(winrm_listener, at_rest(system, tmp_path / "again")).status is Status.SKIP


def test_with_winrm_disabled_and_smb_closed_vetting_access_fails_at_rest(tmp_path: Path) -> None:
    system = with_service(with_service(compliant(), "AmazonSSMAgent", DISABLED), "WinRM", DISABLED)
    outcome = run(vetting_access, at_rest(system, tmp_path))
    assert outcome.status is Status.FAIL
    assert "neither the SSM agent" in outcome.summary
