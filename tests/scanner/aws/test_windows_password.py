"""GetPasswordData: a real RSA key pair, EC2's encryption, and botocore's Stubber."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scanner.aws.errors import AwsError
from scanner.aws.windows_password import (
    PasswordTimeout,
    decrypt_password_data,
    generate_rsa_key_pair,
    wait_for_password,
)

INSTANCE = "i-0123456789abcdef0"
PASSWORD = "k9%Lq2!zR7@wXp4$"  # shaped like an EC2Launch password


@pytest.fixture(scope="module")
def key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    return generate_rsa_key_pair()


def encrypt_like_ec2(public_line: str, password: str) -> str:
    """What EC2 posts: base64 of the password encrypted with the key pair's public key."""
    public = serialization.load_ssh_public_key(public_line.encode())
    assert isinstance(public, rsa.RSAPublicKey)
    return base64.b64encode(public.encrypt(password.encode(), padding.PKCS1v15())).decode()


def reply(data: str) -> dict[str, object]:
    return {"InstanceId": INSTANCE, "PasswordData": data, "Timestamp": "2026-01-15T10:00:00Z"}


@pytest.fixture
def ec2() -> Iterator[tuple[object, Stubber]]:
    client = boto3.client("ec2", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_key_is_2048_bit_rsa_with_an_openssh_public_line(
    key_pair: tuple[rsa.RSAPrivateKey, str],
) -> None:
    private, public_line = key_pair
    assert private.key_size == 2048
    assert public_line.startswith("ssh-rsa AAAA")
    assert (
        serialization.load_ssh_public_key(public_line.encode()).public_numbers()
        == private.public_key().public_numbers()
    )  # type: ignore[union-attr]


def test_password_data_decrypts_with_the_private_key(
    key_pair: tuple[rsa.RSAPrivateKey, str],
) -> None:
    private, public_line = key_pair
    data = encrypt_like_ec2(public_line, PASSWORD)
    # EC2 wraps the base64 over lines; whitespace must not matter.
    wrapped = "\r\n".join(data[i : i + 64] for i in range(0, len(data), 64))
    assert decrypt_password_data(wrapped, private) == PASSWORD


def test_another_key_cannot_decrypt(key_pair: tuple[rsa.RSAPrivateKey, str]) -> None:
    other, _ = generate_rsa_key_pair()
    with pytest.raises(AwsError, match="could not be decrypted with the scan's key pair"):
        decrypt_password_data(encrypt_like_ec2(key_pair[1], PASSWORD), other)


def test_password_data_that_is_not_base64_is_a_clear_error(
    key_pair: tuple[rsa.RSAPrivateKey, str],
) -> None:
    with pytest.raises(AwsError, match="not base64"):
        decrypt_password_data("***", key_pair[0])


def test_empty_password_data_means_not_ready_yet(
    ec2: tuple[object, Stubber], key_pair: tuple[rsa.RSAPrivateKey, str]
) -> None:
    client, stubber = ec2
    private, public_line = key_pair
    expected = {"InstanceId": INSTANCE}
    stubber.add_response("get_password_data", reply(""), expected)
    stubber.add_response("get_password_data", reply(""), expected)
    stubber.add_response(
        "get_password_data", reply(encrypt_like_ec2(public_line, PASSWORD)), expected
    )
    clock = FakeClock()
    found = wait_for_password(
        client, INSTANCE, private, timeout_s=600, poll_s=15, sleep=clock.sleep, clock=clock
    )
    assert found == PASSWORD
    assert clock.sleeps == [15, 15]


def test_the_wait_is_bounded(
    ec2: tuple[object, Stubber], key_pair: tuple[rsa.RSAPrivateKey, str]
) -> None:
    client, stubber = ec2
    # Polled at 0, 10 and 20 s, and once more at the deadline.
    for _ in range(4):
        stubber.add_response("get_password_data", reply(""), {"InstanceId": INSTANCE})
    clock = FakeClock()
    with pytest.raises(
        PasswordTimeout, match=r"no administrator password within 25s \(4 GetPasswordData"
    ):
        wait_for_password(
            client, INSTANCE, key_pair[0], timeout_s=25, poll_s=10, sleep=clock.sleep, clock=clock
        )
    assert clock.sleeps == [10, 10, 5]


def test_a_permission_error_says_which_action_is_missing(
    ec2: tuple[object, Stubber], key_pair: tuple[rsa.RSAPrivateKey, str]
) -> None:
    client, stubber = ec2
    stubber.add_client_error(
        "get_password_data",
        service_error_code="UnauthorizedOperation",
        service_message="You are not authorized to perform this operation. Encoded authorization failure message: AbCd",
        http_status_code=403,
    )
    with pytest.raises(AwsError) as raised:
        wait_for_password(
            client, INSTANCE, key_pair[0], timeout_s=60, poll_s=5, sleep=lambda s: None
        )
    message = str(raised.value)
    assert "access denied for ec2:GetPasswordData (UnauthorizedOperation)" in message
    assert "Encoded authorization failure message" not in message
    assert raised.value.code == "UnauthorizedOperation"
