"""The Windows administrator password of a launched instance, as GetPasswordData gives it.

EC2Launch (or EC2Config) generates a random password at first boot, encrypts it with the public
key of the instance's key pair (RSA, PKCS#1 v1.5) and posts it to EC2; until then GetPasswordData
returns an empty PasswordData. Only RSA key pairs work for this, so Windows scans import an RSA
key generated here, in memory.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from scanner.aws.errors import AwsError, describe

RSA_BITS = 2048
# Launch agents generate passwords of 8 characters or (much) more.
_MIN_LENGTH = 4


class PasswordTimeout(AwsError):
    """GetPasswordData stayed empty for the whole wait."""


def generate_rsa_key_pair() -> tuple[rsa.RSAPrivateKey, str]:
    """A new 2048-bit RSA key and its OpenSSH public key line ("ssh-rsa AAAA…") for ImportKeyPair."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    public_line = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode("ascii")
    )
    return private_key, public_line


def decrypt_password_data(password_data_b64: str, private_key: rsa.RSAPrivateKey) -> str:
    """The password in GetPasswordData's PasswordData (base64 of RSA PKCS#1 v1.5 ciphertext)."""
    try:
        ciphertext = base64.b64decode("".join(password_data_b64.split()), validate=True)
    except (binascii.Error, ValueError):
        raise AwsError("GetPasswordData returned PasswordData that is not base64") from None
    try:
        # PKCS#1 v1.5 is what EC2 uses; its padding-oracle weakness needs an oracle that answers
        # many chosen ciphertexts, which this one-shot local decryption is not.
        plain = private_key.decrypt(ciphertext, padding.PKCS1v15())
    except ValueError:
        plain = b""
    # With implicit rejection (OpenSSL 3.2+), a wrong key yields random bytes instead of an
    # error; EC2 passwords are printable ASCII, which random bytes almost never are.
    password = plain.decode("ascii", errors="replace")
    if len(password) < _MIN_LENGTH or not password.isprintable() or "\ufffd" in password:
        raise AwsError(
            "the password data could not be decrypted with the scan's key pair "
            "(was the instance launched with another key?)"
        )
    return password


def wait_for_password(
    ec2_client: Any,
    instance_id: str,
    private_key: rsa.RSAPrivateKey,
    timeout_s: float,
    poll_s: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Poll GetPasswordData until the password is posted, then decrypt it; bounded by `timeout_s`."""
    deadline = clock() + timeout_s
    attempts = 0
    while True:
        attempts += 1
        try:
            response = ec2_client.get_password_data(InstanceId=instance_id)
        except Exception as exc:
            raise describe(exc, f"reading the administrator password of {instance_id}") from None
        data = str(response.get("PasswordData") or "").strip()
        if data:
            return decrypt_password_data(data, private_key)
        remaining = deadline - clock()
        if remaining <= 0:
            raise PasswordTimeout(
                f"{instance_id} posted no administrator password within {timeout_s:g}s "
                f"({attempts} GetPasswordData call(s)): the launch agent may not generate one "
                "(see windows.launch-agent.password), or Windows is still booting",
                code="PasswordTimeout",
            )
        sleep(min(poll_s, remaining))
