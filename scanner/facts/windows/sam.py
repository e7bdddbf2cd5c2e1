"""Local accounts and group members from the SAM hive, for the offline form of `windows.accounts`.

The layout is what the Security Accounts Manager writes (the same one RegRipper's samparse and
impacket read):
- `SAM\\Domains\\Account` value V ends with the machine SID (S-1-5-21-a-b-c).
- `SAM\\Domains\\Account\\Users\\<RID, 8 hex digits>`: value F carries the account-control flags
  (little-endian u16 at 0x38; 0x0001 is "disabled"); value V starts with a 0xCC-byte table of
  (offset, length, unused) triplets whose second entry is the user name (UTF-16LE, offset
  relative to 0xCC).
- `SAM\\Domains\\Builtin\\Aliases\\<RID>` value C: a 0x34-byte header (members' offset at 0x28,
  their count at 0x30, offsets relative to 0x34) and the member SIDs back to back.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from scanner.facts.base import FactFailed
from scanner.parsers.regf import Hive, RegistryKey

_ACCOUNT = r"SAM\Domains\Account"
_ALIASES = r"SAM\Domains\Builtin\Aliases"
_ACB_DISABLED = 0x0001
_FLAGS_OFFSET = 0x38
_V_TABLE = 0xCC
_C_HEADER = 0x34
# Windows allows no more than this many members per alias in practice; a hostile count is cut.
_MAX_MEMBERS = 4096


@dataclass(frozen=True)
class SamUser:
    """A local account as the SAM stores it."""

    name: str
    sid: str
    disabled: bool


def parse_sid(data: bytes, offset: int = 0) -> tuple[str, int] | None:
    """A binary SID at `offset` as text and its length; None when it is not a well-formed SID."""
    if offset + 8 > len(data) or data[offset] != 1:
        return None
    count = data[offset + 1]
    length = 8 + 4 * count
    if count > 15 or offset + length > len(data):
        return None
    authority = int.from_bytes(data[offset + 2 : offset + 8], "big")
    subs = struct.unpack_from(f"<{count}I", data, offset + 8)
    return "-".join(["S", "1", str(authority), *(str(s) for s in subs)]), length


def machine_sid(sam: Hive) -> str:
    """The local domain's SID: the last 24 bytes of `SAM\\Domains\\Account` value V."""
    account = sam.key(_ACCOUNT)
    value = account.value("V") if account is not None else None
    if value is None or len(value.data) < 24:
        raise FactFailed(f"the SAM hive has no {_ACCOUNT} value V holding the machine SID")
    found = parse_sid(value.data, len(value.data) - 24)
    if found is None or not found[0].startswith("S-1-5-21-"):
        raise FactFailed(f"the SAM hive's {_ACCOUNT} value V does not end with a machine SID")
    return found[0]


def _user(key: RegistryKey, domain: str) -> SamUser | None:
    try:
        rid = int(key.name, 16)
    except ValueError:
        return None  # "Names", and anything else that is not an account
    f_value, v_value = key.value("F"), key.value("V")
    if f_value is None or len(f_value.data) < _FLAGS_OFFSET + 2:
        raise FactFailed(f"SAM account {key.name} has no readable F value (account flags)")
    (flags,) = struct.unpack_from("<H", f_value.data, _FLAGS_OFFSET)
    name = _user_name(v_value.data if v_value is not None else b"")
    return SamUser(name or f"(RID {rid})", f"{domain}-{rid}", bool(flags & _ACB_DISABLED))


def _user_name(v: bytes) -> str:
    if len(v) < _V_TABLE:
        return ""
    offset, length = struct.unpack_from("<II", v, 0x0C)
    start = _V_TABLE + offset
    if start + length > len(v):
        return ""
    return v[start : start + length].decode("utf-16-le", errors="replace")


_ALIAS_NAMES = {544: "Administrators", 546: "Guests", 555: "Remote Desktop Users"}


def alias_members(sam: Hive, rid: int) -> tuple[str, ...]:
    """The member SIDs of the built-in alias `rid` (546 Guests, 555 Remote Desktop Users)."""
    key = sam.key(f"{_ALIASES}\\{rid:08X}")
    if key is None:
        name = _ALIAS_NAMES.get(rid, f"built-in group {rid}")
        raise FactFailed(f"the SAM hive has no {_ALIASES}\\{rid:08X} ({name})")
    value = key.value("C")
    if value is None or len(value.data) < _C_HEADER:
        raise FactFailed(f"the SAM's built-in group {rid} has no readable C value (its members)")
    data = value.data
    offset, _, count = struct.unpack_from("<III", data, 0x28)
    if count > _MAX_MEMBERS:
        raise FactFailed(f"the SAM's built-in group {rid} claims {count} members")
    members: list[str] = []
    position = _C_HEADER + offset
    for _ in range(count):
        found = parse_sid(data, position)
        if found is None:
            raise FactFailed(f"the SAM's built-in group {rid} holds a malformed member SID")
        members.append(found[0])
        position += found[1]
    return tuple(members)


def sam_users(sam: Hive) -> tuple[SamUser, ...]:
    """Every local account of the SAM hive, with its SID under the machine SID."""
    domain = machine_sid(sam)
    users_key = sam.key(f"{_ACCOUNT}\\Users")
    if users_key is None:
        raise FactFailed(f"the SAM hive has no {_ACCOUNT}\\Users key")
    users = tuple(u for u in (_user(k, domain) for k in users_key.subkeys()) if u is not None)
    if not users:
        raise FactFailed("the SAM hive lists no local accounts")
    return users
