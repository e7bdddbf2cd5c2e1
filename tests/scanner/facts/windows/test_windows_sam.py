"""The SAM reader: machine SID, accounts and alias members, and what it refuses."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from scanner.facts.base import FactFailed
from scanner.facts.windows.sam import alias_members, machine_sid, parse_sid, sam_users
from scanner.parsers.regf import Hive
from tests.hives import Binary, Keys, write_hive
from tests.windowsystem import SID, alias_c, binary_sid, compliant, sam_keys


def hive(tmp_path: Path, keys: Keys) -> Hive:
    return Hive(write_hive(tmp_path / "SAM", keys).read_bytes(), "SAM")


def with_alias_c(rid: int, data: bytes) -> Keys:
    keys = {k: dict(v) for k, v in sam_keys(compliant()).items()}
    keys[rf"SAM\Domains\Builtin\Aliases\{rid:08X}"] = {"C": Binary(data)}
    return keys


@pytest.mark.parametrize(
    "sid", ["S-1-5-32-555", f"{SID}-1001", "S-1-1-0", "S-1-5-21-1-2-3-4294967295"]
)
def test_binary_sids_read_back(sid: str) -> None:
    data = b"junk" + binary_sid(sid)
    assert parse_sid(data, 4) == (sid, len(data) - 4)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x01\x01\0\0\0\0\0\x05", b"\x02\x00\0\0\0\0\0\x05", b"\x01\x10" + bytes(70)],
    ids=["empty", "cut-short", "revision-2", "sixteen-sub-authorities"],
)
def test_malformed_sids_are_none(data: bytes) -> None:
    assert parse_sid(data) is None


def test_the_machine_sid_and_users_read_from_a_real_sam(tmp_path: Path) -> None:
    sam = hive(tmp_path, sam_keys(compliant()))
    assert machine_sid(sam) == SID
    users = {u.name: (u.sid, u.disabled) for u in sam_users(sam)}
    assert users["Administrator"] == (f"{SID}-500", False)
    assert users["Guest"] == (f"{SID}-501", True)
    assert alias_members(sam, 546) == (f"{SID}-501",)
    assert alias_members(sam, 555) == ()


def test_members_that_are_not_local_accounts_keep_their_sid(tmp_path: Path) -> None:
    members = ("S-1-5-4", "S-1-5-21-9-9-9-1104")
    sam = hive(tmp_path, with_alias_c(555, alias_c(555, "Remote Desktop Users", "", members)))
    assert alias_members(sam, 555) == members


def test_a_member_count_beyond_the_data_is_an_error_not_a_shorter_list(tmp_path: Path) -> None:
    data = bytearray(alias_c(555, "Remote Desktop Users", "", (f"{SID}-1001",)))
    struct.pack_into("<I", data, 0x30, 2)
    sam = hive(tmp_path, with_alias_c(555, bytes(data)))
    with pytest.raises(FactFailed, match="malformed member SID"):
        alias_members(sam, 555)


def test_a_hostile_member_count_is_refused(tmp_path: Path) -> None:
    data = bytearray(alias_c(546, "Guests", "", ()))
    struct.pack_into("<I", data, 0x30, 0xFFFFFFFF)
    sam = hive(tmp_path, with_alias_c(546, bytes(data)))
    with pytest.raises(FactFailed, match="claims 4294967295 members"):
        alias_members(sam, 546)


def test_a_missing_alias_is_an_error(tmp_path: Path) -> None:
    keys = {k: v for k, v in sam_keys(compliant()).items() if "0000022B" not in k}
    with pytest.raises(FactFailed, match="Aliases"):
        alias_members(hive(tmp_path, keys), 555)


def test_an_account_without_flags_is_an_error_not_an_enabled_or_disabled_guess(
    tmp_path: Path,
) -> None:
    keys = {k: dict(v) for k, v in sam_keys(compliant()).items()}
    keys[r"SAM\Domains\Account\Users\000001F5"]["F"] = Binary(b"\0" * 8)
    with pytest.raises(FactFailed, match="000001F5 has no readable F value"):
        sam_users(hive(tmp_path, keys))


def test_a_domain_v_without_a_machine_sid_is_an_error(tmp_path: Path) -> None:
    keys = {k: dict(v) for k, v in sam_keys(compliant()).items()}
    keys[r"SAM\Domains\Account"]["V"] = Binary(b"\0" * 0x30 + binary_sid("S-1-5-32"))
    with pytest.raises(FactFailed, match="does not end with a machine SID"):
        machine_sid(hive(tmp_path, keys))
