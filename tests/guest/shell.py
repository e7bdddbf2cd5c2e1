"""A plain SSH session to the guest, for the tests' own ground truth and for breaking it on purpose."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import paramiko

COMMAND_TIMEOUT_S = 300


@dataclass
class GuestShell:
    client: paramiko.SSHClient

    @classmethod
    def connect(cls, host: str, port: int, key: Path, user: str = "ec2-user") -> GuestShell:
        client = paramiko.SSHClient()
        # The guest made its host key at first boot; the tests pin nothing here (amiscan's own
        # host key handling is what the scans test), and the forward is loopback only.
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            host,
            port=port,
            username=user,
            key_filename=str(key),
            allow_agent=False,
            look_for_keys=False,
            timeout=60,
            banner_timeout=60,
            auth_timeout=60,
        )
        return cls(client)

    def run(self, command: str, check: bool = True) -> str:
        """The command's output (stdout and stderr); a non-zero exit fails unless check=False."""
        transport = self.client.get_transport()
        assert transport is not None
        channel = transport.open_session(timeout=60)
        channel.set_combine_stderr(True)
        channel.settimeout(COMMAND_TIMEOUT_S)
        channel.exec_command(command)
        output = channel.makefile("rb").read().decode(errors="replace")
        status = channel.recv_exit_status()
        channel.close()
        if check and status != 0:
            raise AssertionError(f"{command!r} exited {status} on the guest:\n{output}")
        return output

    def close(self) -> None:
        self.client.close()
