"""What AmiTarget hands its Linux or Windows half once the instance is launched.

`ami.py` judges the image, launches the instance and cleans up; `ami_linux.py` and
`ami_windows.py` log in to it and scan. All three import this module, `ami.py` imports the two
halves, and neither half imports `ami.py`: the arrows point one way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paramiko
from cryptography.hazmat.primitives.asymmetric import rsa

from scanner.aws.resources import ScanResources
from scanner.facts.base import ScanContext
from scanner.run import ScanRun
from scanner.targets.base import ScanOptions, Target


@dataclass
class LaunchKey:
    """The key the scanner logs in with, and the key pair name EC2 knows it by."""

    key_name: str | None
    private_key: paramiko.PKey | None
    public_line: str
    pem: bytes = b""
    # Windows: the RSA key that decrypts GetPasswordData.
    rsa_key: rsa.RSAPrivateKey | None = None


# Waits for a launched instance, logs in, collects and judges (Linux over SSH, Windows over WinRM).
InstanceScanner = Callable[
    [Target, Any, ScanRun, ScanOptions, ScanContext, ScanResources, LaunchKey], None
]
