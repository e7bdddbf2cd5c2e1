"""Reading /proc/net/tcp{,6}: which sockets listen, and whether one takes every address."""

from __future__ import annotations

import pytest

from scanner.parsers.listening import (
    Listener,
    describe,
    listening_on_all_addresses,
    parse_proc_net_tcp,
)

ANY_V4 = "0.0.0.0"  # noqa: S104 - the wildcard address is what these tests are about

# As an Ubuntu instance prints them: sshd on 0.0.0.0:22, cupsd on 127.0.0.1:631, one established
# SSH session (state 01) and one in TIME_WAIT (06) that must not count as listeners.
PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17871 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 18233 1 0000000000000000 100 0 0 10 0
   2: 0500000A:0016 0901000A:D431 01 00000000:00000000 02:0009A2F1 00000000     0        0 41233 4 0000000000000000 20 4 29 10 -1
   3: 0500000A:9C40 0901000A:0050 06 00000000:00000000 03:00001711 00000000     0        0 0 3 0000000000000000
"""

# sshd on [::]:22, an MTA on [::1]:25, a service on ::ffff:10.0.0.5:8080 and one on 2001:db8::1:443.
PROC_NET_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17873 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19001 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000500000A:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 19002 1 0000000000000000 100 0 0 10 0
   3: B80D0120000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 19003 1 0000000000000000 100 0 0 10 0
"""


def test_ipv4_listeners_are_decoded_from_little_endian_hex() -> None:
    assert parse_proc_net_tcp(PROC_NET_TCP, 4) == [
        Listener(ANY_V4, 22, 4),
        Listener("127.0.0.1", 631, 4),
    ]


def test_connections_that_are_not_listening_are_left_out() -> None:
    addresses = [listener.address for listener in parse_proc_net_tcp(PROC_NET_TCP, 4)]
    assert "10.0.0.5" not in addresses


def test_ipv6_listeners_are_decoded_word_by_word() -> None:
    assert parse_proc_net_tcp(PROC_NET_TCP6, 6) == [
        Listener("::", 22, 6),
        Listener("::1", 25, 6),
        Listener("::ffff:10.0.0.5", 8080, 6),
        Listener("2001:db8::1", 443, 6),
    ]


def test_an_address_of_the_wrong_length_for_the_family_is_an_error() -> None:
    with pytest.raises(ValueError, match="IPv6 endpoint"):
        parse_proc_net_tcp(PROC_NET_TCP, 6)
    with pytest.raises(ValueError, match="IPv4 endpoint"):
        parse_proc_net_tcp(PROC_NET_TCP6, 4)


def test_a_corrupt_endpoint_is_an_error_rather_than_skipped() -> None:
    corrupt = "   0: 0000000G:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1\n"
    with pytest.raises(ValueError, match="IPv4 endpoint"):
        parse_proc_net_tcp(corrupt, 4)


def test_a_line_that_is_not_a_socket_entry_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a /proc/net/tcp entry"):
        parse_proc_net_tcp("Permission denied\n", 4)


def test_a_family_other_than_4_or_6_is_an_error() -> None:
    with pytest.raises(ValueError, match="family"):
        parse_proc_net_tcp(PROC_NET_TCP, 5)


def test_empty_output_has_no_listeners() -> None:
    assert parse_proc_net_tcp("", 4) == []


@pytest.mark.parametrize(
    ("listeners", "expected"),
    [
        pytest.param([Listener(ANY_V4, 22, 4)], True, id="ipv4-wildcard-is-all"),
        pytest.param([Listener("::", 22, 6)], True, id="ipv6-wildcard-is-all"),
        pytest.param([Listener("::ffff:0.0.0.0", 22, 6)], True, id="mapped-ipv4-wildcard-is-all"),
        pytest.param([Listener("127.0.0.1", 22, 4)], False, id="loopback-only-is-not-all"),
        pytest.param([Listener("10.0.0.5", 22, 4)], False, id="one-address-is-not-all"),
        pytest.param([Listener("::1", 22, 6)], False, id="ipv6-loopback-is-not-all"),
        pytest.param([Listener(ANY_V4, 2222, 4)], False, id="wildcard-on-other-port"),
        pytest.param(
            [Listener("127.0.0.1", 22, 4), Listener("::", 22, 6)], True, id="any-socket-suffices"
        ),
        pytest.param([], False, id="nothing-listens"),
    ],
)
def test_listening_on_all_addresses(listeners: list[Listener], expected: bool) -> None:
    assert listening_on_all_addresses(listeners, 22) is expected


def test_parsed_proc_output_shows_sshd_on_all_addresses() -> None:
    listeners = parse_proc_net_tcp(PROC_NET_TCP, 4)
    assert listening_on_all_addresses(listeners, 22)
    assert not listening_on_all_addresses(listeners, 631)


def test_describe_lists_the_sockets_on_the_port_as_ss_prints_them() -> None:
    listeners = [
        Listener(ANY_V4, 22, 4),
        Listener("::", 22, 6),
        Listener(ANY_V4, 22, 4),  # SO_REUSEPORT: listed once
        Listener("127.0.0.1", 631, 4),
    ]
    assert describe(listeners, 22) == "listening on 0.0.0.0:22, [::]:22"


def test_describe_names_the_ports_that_do_listen_when_the_port_does_not() -> None:
    listeners = [Listener("127.0.0.1", 631, 4), Listener(ANY_V4, 2222, 4)]
    assert describe(listeners, 22) == "nothing listens on port 22; listening ports: 631, 2222"


def test_describe_says_so_when_nothing_listens_at_all() -> None:
    assert describe([], 22) == "nothing listens on port 22; no TCP socket is listening"
