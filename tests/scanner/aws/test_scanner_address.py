"""The address the temporary security group admits: this machine's, as the instance will see it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from scanner.aws.errors import AwsError
from scanner.aws.launch import Network, private_source_cidr, public_source_cidr


def _server(body: bytes) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def checkip() -> Iterator[str]:
    # The documentation address stands in for this machine's public IP.
    yield from _server(b"203.0.113.7\n")


@pytest.fixture
def garbage() -> Iterator[str]:
    yield from _server(b"<html>captive portal</html>")


def test_the_public_address_is_a_slash_32_of_what_checkip_says(checkip: str) -> None:
    assert public_source_cidr(checkip) == "203.0.113.7/32"


def test_an_answer_that_is_not_an_address_asks_for_allow_cidr(garbage: str) -> None:
    with pytest.raises(AwsError, match="pass --allow-cidr"):
        public_source_cidr(garbage)


def test_an_unreachable_checkip_asks_for_allow_cidr() -> None:
    from tests.sshd import free_port

    with pytest.raises(AwsError, match="cannot learn this machine's public address"):
        public_source_cidr(f"http://127.0.0.1:{free_port()}/", timeout_s=2)


def test_the_private_address_is_this_machines_address_toward_the_subnet() -> None:
    network = Network("subnet-1", "vpc-1", "127.0.0.0/28", "us-east-1a", False)
    assert private_source_cidr(network) == "127.0.0.1/32"
