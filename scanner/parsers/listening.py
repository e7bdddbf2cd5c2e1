"""Which TCP sockets a host listens on, read from /proc/net/tcp and /proc/net/tcp6.

The live collector prints those two files; the functions here are pure functions of that text.
`/proc` is used rather than `ss -ltn` because it is present on every Linux image, needs no
privileges and has one stable format.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

# Column 4 ("st") of /proc/net/tcp: 0A is TCP_LISTEN (include/net/tcp_states.h).
_LISTEN_STATE = "0A"
_ADDRESS_HEX_LENGTH = {4: 8, 6: 32}


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket."""

    address: str  # "0.0.0.0", "::", "127.0.0.1", "::ffff:10.0.0.5": ipaddress's text
    port: int
    family: int  # 4 or 6

    @property
    def endpoint(self) -> str:
        """`address:port` as ss prints it: IPv6 addresses in brackets."""
        if self.family == 6:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


def parse_proc_net_tcp(text: str, family: int) -> list[Listener]:
    """The LISTEN sockets in the content of /proc/net/tcp (family 4) or /proc/net/tcp6 (6).

    Raises ValueError for an unknown family or a line that is not a socket entry, so that a
    truncated or foreign file is reported rather than read as "nothing listens".
    """
    if family not in _ADDRESS_HEX_LENGTH:
        raise ValueError(f"family must be 4 or 6, not {family!r}")
    listeners: list[Listener] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0] == "sl":  # blank line or the header
            continue
        if len(fields) < 4 or not fields[0].endswith(":"):
            raise ValueError(f"not a /proc/net/tcp entry: {line.strip()!r}")
        if fields[3].upper() != _LISTEN_STATE:
            continue
        address, port = _decode_endpoint(fields[1], family)
        listeners.append(Listener(address=address, port=port, family=family))
    return listeners


def _decode_endpoint(text: str, family: int) -> tuple[str, int]:
    address_hex, _, port_hex = text.partition(":")
    if len(address_hex) != _ADDRESS_HEX_LENGTH[family] or not port_hex:
        raise ValueError(f"not an IPv{family} endpoint of /proc/net/tcp: {text!r}")
    try:
        raw = bytes.fromhex(address_hex)
        port = int(port_hex, 16)
    except ValueError as exc:
        raise ValueError(f"not an IPv{family} endpoint of /proc/net/tcp: {text!r}") from exc
    return _address_text(_kernel_words_to_bytes(raw)), port


def _kernel_words_to_bytes(raw: bytes) -> bytes:
    # The kernel prints each 32-bit word of the address with %08X in host byte order, so on
    # little-endian hosts (x86_64, arm64: every architecture an AMI can have) each 4-byte group
    # is reversed. The port, in contrast, is printed after ntohs and needs no swapping.
    return b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))


def _address_text(packed: bytes) -> str:
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Spelled out by hand: ipaddress prints "::ffff:7f00:1" before Python 3.13.
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


def _is_wildcard(listener: Listener) -> bool:
    address = ipaddress.ip_address(listener.address)
    if address.is_unspecified:
        # "::" without IPV6_V6ONLY also takes IPv4; /proc cannot show V6ONLY, and sshd's
        # `ListenAddress ::` alone is the common dual-stack set-up, so "::" counts as all.
        return True
    # A v6 socket bound to ::ffff:0.0.0.0 receives every IPv4 address.
    return (
        isinstance(address, ipaddress.IPv6Address)
        and address.ipv4_mapped is not None
        and address.ipv4_mapped.is_unspecified
    )


def listening_on_all_addresses(listeners: list[Listener], port: int) -> bool:
    """True when a socket listens on `port` bound to a wildcard address (0.0.0.0 or ::)."""
    return any(listener.port == port and _is_wildcard(listener) for listener in listeners)


def describe(listeners: list[Listener], port: int) -> str:
    """One line of evidence: the sockets listening on `port`, e.g. "listening on 0.0.0.0:22"."""
    endpoints = list(dict.fromkeys(lst.endpoint for lst in listeners if lst.port == port))
    if endpoints:
        return "listening on " + ", ".join(endpoints)
    others = sorted({lst.port for lst in listeners})
    if not others:
        return f"nothing listens on port {port}; no TCP socket is listening"
    return f"nothing listens on port {port}; listening ports: " + ", ".join(map(str, others))
