"""The configuration file: where it is found, what it may say, and how strictly it is read."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from scanner.config import Config, ConfigError, Waiver, load_config
from scanner.model import Severity

KNOWN = frozenset(
    {
        "linux.ssh.password-authentication",
        "linux.ssh.root-login",
        "linux.accounts.passwords",
    }
)

WAIVER = """
[[waivers]]
id = "linux.ssh.root-login"
reason = "rescue image, documented in the listing"
expires = 2099-12-31
approver = "alice@example.com"
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path / "amiscan.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, known_ids=KNOWN)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


def test_no_file_means_an_empty_configuration(tmp_path: Path) -> None:
    assert load_config(known_ids=KNOWN, cwd=tmp_path) == Config()


def test_every_key_is_read(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "amiscan.toml",
        """
        region = "us-east-1"
        profile = "marketplace"
        instance_type = "t3.small"
        subnet_id = "subnet-0abc"
        user = "ec2-user"
        checks = ["linux.ssh", "linux.accounts.passwords"]
        skip = ["linux.ssh.root-login"]
        fail_on = "high"
        baseline = "reports/1.2.json"
        """
        + WAIVER,
    )

    config = load_config(known_ids=KNOWN, cwd=tmp_path)

    assert config == Config(
        source=path,
        region="us-east-1",
        profile="marketplace",
        instance_type="t3.small",
        subnet_id="subnet-0abc",
        user="ec2-user",
        checks=("linux.ssh", "linux.accounts.passwords"),
        skip=("linux.ssh.root-login",),
        fail_on=Severity.HIGH,
        baseline=tmp_path / "reports/1.2.json",
        waivers=(
            Waiver(
                "linux.ssh.root-login",
                "rescue image, documented in the listing",
                date(2099, 12, 31),
                "alice@example.com",
            ),
        ),
    )


def test_pyproject_tool_table_is_read_when_there_is_no_amiscan_toml(tmp_path: Path) -> None:
    _write(
        tmp_path / "pyproject.toml", '[project]\nname = "x"\n[tool.amiscan]\nregion = "eu-west-1"\n'
    )

    config = load_config(known_ids=KNOWN, cwd=tmp_path)

    assert config.region == "eu-west-1"
    assert config.source == tmp_path / "pyproject.toml"


def test_amiscan_toml_wins_over_pyproject(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", '[tool.amiscan]\nregion = "eu-west-1"\n')
    _write(tmp_path / "amiscan.toml", 'region = "us-east-1"\n')

    assert load_config(known_ids=KNOWN, cwd=tmp_path).region == "us-east-1"


def test_a_pyproject_without_the_tool_table_is_no_configuration(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", "[tool.ruff]\nline-length = 100\n")

    assert load_config(known_ids=KNOWN, cwd=tmp_path) == Config()


def test_pyproject_errors_name_the_tool_table_key(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "pyproject.toml", "[[tool.amiscan.waivers]]\nid = 'linux.ssh.root-login'\n"
    )

    with pytest.raises(ConfigError, match=r"pyproject.toml: tool\.amiscan\.waivers\[0\]\.reason: "):
        load_config(path, known_ids=KNOWN)


def test_an_explicit_file_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml", known_ids=KNOWN)


def test_an_explicit_pyproject_needs_the_tool_table(tmp_path: Path) -> None:
    path = _write(tmp_path / "pyproject.toml", '[project]\nname = "x"\n')

    with pytest.raises(ConfigError, match=r"no \[tool.amiscan\] table"):
        load_config(path, known_ids=KNOWN)


def test_invalid_toml_is_one_line(tmp_path: Path) -> None:
    assert "invalid TOML" in _error(tmp_path, 'region = "us-east-1\n')


def test_unknown_keys_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    message = _error(tmp_path, 'regoin = "us-east-1"\n')

    assert "regoin: unknown key (did you mean 'region'?)" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("region = 1", "region: expected a string, got a number"),
        ('region = ""', "region: must not be empty"),
        ('checks = "linux.ssh"', "checks: expected an array of check ids, got a string"),
        ("checks = [1]", "checks[0]: expected a check id, got a number"),
        ('skip = ["linux.nope"]', "skip[0]: unknown check id 'linux.nope'"),
        ('fail_on = "severe"', "fail_on: 'severe' is not one of critical, high"),
        ('waivers = "all"', "waivers: expected an array of tables ([[waivers]])"),
    ],
)
def test_wrong_types_and_values_name_the_key(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text + "\n")


def test_check_selection_accepts_group_prefixes(tmp_path: Path) -> None:
    path = _write(tmp_path / "amiscan.toml", 'checks = ["linux.ssh"]\nskip = ["linux.accounts"]\n')

    config = load_config(path, known_ids=KNOWN)

    assert (config.checks, config.skip) == (("linux.ssh",), ("linux.accounts",))


def _waiver(**fields: str) -> str:
    values = {
        "id": '"linux.ssh.root-login"',
        "reason": '"rescue image"',
        "expires": "2099-12-31",
        "approver": '"alice"',
        **fields,
    }
    body = "".join(f"{key} = {value}\n" for key, value in values.items() if value != "-")
    return "[[waivers]]\n" + body


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"id": '"linux.ssh.nope"'}, "waivers[0].id: unknown check id 'linux.ssh.nope'"),
        ({"id": '"linux.ssh"'}, "prefixes are not allowed"),
        ({"id": "-"}, "waivers[0].id: required"),
        ({"reason": "-"}, "waivers[0].reason: required"),
        ({"reason": '"   "'}, "waivers[0].reason: must not be empty"),
        ({"approver": "-"}, "waivers[0].approver: required"),
        ({"expires": "-"}, "waivers[0].expires: required"),
        ({"expires": '"2025-13-01"'}, "waivers[0].expires: '2025-13-01' is not a date"),
        ({"expires": '"2025-02-30"'}, "is not a date"),
        ({"expires": '"20250630"'}, "'20250630' is not a date"),
        ({"expires": '"next year"'}, "'next year' is not a date"),
        ({"expires": "2025-06-30T12:00:00Z"}, "expected a date without a time"),
        ({"expires": "20250630"}, "expected a date (YYYY-MM-DD), got a number"),
        ({"ticket": '"JIRA-1"'}, "waivers[0].ticket: unknown key"),
    ],
)
def test_a_bad_waiver_is_refused(tmp_path: Path, fields: dict[str, str], expected: str) -> None:
    assert expected in _error(tmp_path, _waiver(**fields))


def test_a_quoted_iso_date_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path / "amiscan.toml", _waiver(expires='"2030-01-15"'))

    (waiver,) = load_config(path, known_ids=KNOWN).waivers

    assert waiver.expires == date(2030, 1, 15)


def test_two_waivers_for_one_check_are_refused(tmp_path: Path) -> None:
    message = _error(tmp_path, _waiver() + _waiver())

    assert "waivers[1].id: 'linux.ssh.root-login' is already waived by waivers[0]" in message


def test_a_waiver_holds_through_its_expiry_date() -> None:
    waiver = Waiver("linux.ssh.root-login", "r", date(2025, 6, 30), "a")

    assert not waiver.expired(date(2025, 6, 30))
    assert waiver.expired(date(2025, 7, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = " + "[" * 3000 + "]" * 3000, "invalid TOML: nested too deeply"),
        ("x = " + "{a = " * 3000 + "1" + "}" * 3000, "invalid TOML: nested too deeply"),
        ("region = " + "1" * 5000, "invalid TOML"),
    ],
    ids=["arrays", "tables", "long-integer"],
)
def test_a_hostile_file_is_one_line_not_a_crash(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _error(tmp_path, text + "\n")
