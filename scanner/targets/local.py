"""`local`: this machine, e.g. the last provisioning step of a Packer build."""

from __future__ import annotations

import getpass

from scanner.collect import LiveSettings
from scanner.facts.base import Mode, ScanContext
from scanner.linux import scan_live
from scanner.run import ScanRun
from scanner.targets.base import ScanOptions
from scanner.transports.local import LocalTransport


class LocalTarget:
    kind = "local"
    id = "local"
    platform = "linux"

    def scan(self, run: ScanRun, options: ScanOptions) -> None:
        user = getpass.getuser()
        run.details.update({"login_user": user})
        context = ScanContext(
            mode=Mode.LIVE,
            target_kind=self.kind,
            login_user=user,
            scan_port=options.scan_port,
            baseline_login_user=options.baseline_login_user,
            scan_date=options.scan_date,
            offered_auth_error="no outside-in SSH probe when scanning this machine",
        )
        settings = LiveSettings(login_user=user, scan_port=options.scan_port)
        scan_live(run, LocalTransport(), context, settings, options.collect_timeout_s)
