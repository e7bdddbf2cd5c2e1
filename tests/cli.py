"""Running `amiscan` in-process for tests, and an image root that fails one known check."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from scanner.cli import main
from tests.imagetree import ImageTree, build_compliant

PASSWORD_AUTH = "linux.ssh.password-authentication"


def amiscan(*args: str | Path) -> Result:
    """`amiscan ARGS…` in this process; stdout and stderr are kept apart."""
    return CliRunner().invoke(main, [str(arg) for arg in args], catch_exceptions=False)


def password_image(root: Path) -> ImageTree:
    """An otherwise compliant image root whose sshd accepts passwords (one critical fail)."""
    tree = build_compliant(root)
    tree.set_sshd_option("PasswordAuthentication", "yes")
    return tree
