"""Whether an OpenSSH server is installed and starts at boot: binary, config, and what starts it.

Offline the image's files answer: the sshd binary, /etc/ssh/sshd_config, and systemd wants links
(service or socket activation), SysV rc links or OpenRC runlevels, each resolved inside the image.
Live, one probe of the batched collection script asks the same of the running host, plus
`systemctl is-enabled`/`is-active` when systemd runs, and whether an sshd process runs.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from scanner.facts.base import Fact, FactFailed, Gathered, Probe
from scanner.fs import FileSource

SSHD_CONFIG_PATH = "/etc/ssh/sshd_config"
BINARY_CANDIDATES = ("/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd", "/usr/local/sbin/sshd")
SERVICE_UNITS = ("ssh.service", "sshd.service")
SOCKET_UNITS = ("ssh.socket", "sshd.socket")
# Targets a booting system reaches, whose wants start a service; sockets.target starts sockets.
_BOOT_TARGETS = ("multi-user.target", "graphical.target", "default.target", "basic.target")
_SOCKET_TARGETS = ("sockets.target", *_BOOT_TARGETS)
# systemd reads admin units first, then the distribution's (merged /usr or not).
_UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")
_SYSTEMD_BINARIES = ("/usr/lib/systemd/systemd", "/lib/systemd/systemd")
# Multi-user runlevels; links in rc0/1/6 stop services, they do not start them.
_RC_DIRS = tuple(f"{base}/rc{level}.d" for base in ("/etc", "/etc/rc.d") for level in (2, 3, 4, 5))
_RC_START_LINK = re.compile(r"^S\d+(ssh|sshd|openssh-server)$")
_OPENRC_LINKS = (
    "/etc/runlevels/default/sshd",
    "/etc/runlevels/default/ssh",
    "/etc/runlevels/boot/sshd",
)


@dataclass(frozen=True)
class Observation:
    """One thing looked at: where, and what it showed."""

    source: str
    text: str


@dataclass(frozen=True)
class SshServer:
    """An OpenSSH server as found on the target, and what would start it at boot."""

    where: str
    binaries: tuple[str, ...]
    config: str
    config_present: bool
    # What starts sshd at boot; empty when nothing does.
    boot: tuple[Observation, ...] = ()
    # Live: what shows sshd running now.
    running: tuple[Observation, ...] = ()
    # What was looked at and does not start sshd (the evidence of a fail).
    looked_at: tuple[Observation, ...] = ()
    # Why whether sshd starts at boot cannot be told (no init system recognised).
    undetermined: str | None = None

    @property
    def installed(self) -> bool:
        return bool(self.binaries) and self.config_present

    @property
    def missing(self) -> tuple[str, ...]:
        """What an OpenSSH server lacks here, e.g. "no sshd binary (looked for …)"."""
        parts = []
        if not self.binaries:
            parts.append(f"no sshd binary (looked for {', '.join(BINARY_CANDIDATES)})")
        if not self.config_present:
            parts.append(f"no {self.config}")
        return tuple(parts)

    @property
    def missing_reason(self) -> str:
        return f"no OpenSSH server {self.where}: {', '.join(self.missing)}"

    def require_installed(self) -> None:
        """FactFailed naming what is missing, for facts that judge sshd's configuration."""
        if not self.installed:
            raise FactFailed(self.missing_reason)


# --- offline ---------------------------------------------------------------------------------


def _present(files: FileSource, path: str) -> bool:
    """True when `path` has an entry in its directory, even a link that leads nowhere."""
    return posixpath.basename(path) in files.list_dir(posixpath.dirname(path))


def _masked(files: FileSource, unit: str) -> bool:
    # A unit linked to /dev/null (absent from an image's /dev) or an empty unit file is masked.
    for directory in ("/etc/systemd/system", "/run/systemd/system"):
        path = f"{directory}/{unit}"
        if _present(files, path) and (not files.is_file(path) or files.size(path) == 0):
            return True
    return False


def _systemd_offline(
    files: FileSource,
) -> tuple[bool, set[str], list[Observation], list[Observation]]:
    """(systemd present, native ssh units, what starts sshd, what was looked at)."""
    present = any(files.is_file(p) for p in _SYSTEMD_BINARIES) or any(
        files.is_dir(d) for d in _UNIT_DIRS
    )
    if not present:
        return False, set(), [], []
    units = SERVICE_UNITS + SOCKET_UNITS
    native = {u for u in units if any(files.is_file(f"{d}/{u}") for d in _UNIT_DIRS)}
    boot: list[Observation] = []
    looked: list[Observation] = []
    for unit in units:
        if _masked(files, unit):
            looked.append(Observation(f"/etc/systemd/system/{unit}", f"{unit} is masked"))
            continue
        targets = _BOOT_TARGETS if unit in SERVICE_UNITS else _SOCKET_TARGETS
        for directory in _UNIT_DIRS:
            for target in targets:
                for kind in ("wants", "requires"):
                    link = f"{directory}/{target}.{kind}/{unit}"
                    if not _present(files, link):
                        continue
                    if files.is_file(link):
                        boot.append(Observation(link, f"{target} {kind} {unit}"))
                    else:
                        looked.append(
                            Observation(link, f"leads to no unit file in the image ({unit})")
                        )
    if not boot:
        for unit in sorted(native):
            looked.append(
                Observation(
                    "systemd",
                    f"{unit} is installed, but no .wants link enables it "
                    f"(`systemctl enable {unit}` creates one)",
                )
            )
        if not native:
            looked.append(Observation("systemd", "no ssh or sshd unit in the image"))
    return True, native, boot, looked


def _rc_links_offline(files: FileSource) -> tuple[bool, list[Observation]]:
    """(SysV or OpenRC present, start links for sshd whose script is in the image)."""
    found: list[Observation] = []
    present = False
    for directory in _RC_DIRS:
        if not files.is_dir(directory):
            continue
        present = True
        for name in files.list_dir(directory):
            path = f"{directory}/{name}"
            if _RC_START_LINK.match(name) and files.is_file(path):
                found.append(Observation(path, "SysV start link"))
    if files.is_dir("/etc/runlevels"):
        present = True
        for path in _OPENRC_LINKS:
            if files.is_file(path):
                found.append(Observation(path, "OpenRC runlevel entry"))
    return present, found


def _derive_offline(g: Gathered) -> SshServer:
    files = g.files
    binaries = tuple(p for p in BINARY_CANDIDATES if files.is_file(p))
    systemd, native, boot, looked = _systemd_offline(files)
    rc_present, rc_links = _rc_links_offline(files)
    if systemd and native & set(SERVICE_UNITS):
        # systemd-sysv-generator skips an init script whose name has a native unit.
        looked += [Observation(o.source, "ignored: systemd runs the native unit") for o in rc_links]
    else:
        boot += rc_links
    if rc_present and not rc_links:
        looked.append(Observation("/etc/rc?.d, /etc/runlevels", "no start link for sshd"))
    undetermined = None
    if not boot and not systemd and not rc_present:
        undetermined = (
            "no systemd units, SysV rc directories or OpenRC runlevels in the image: "
            "cannot tell what starts at boot"
        )
    return SshServer(
        where="in the image",
        binaries=binaries,
        config=SSHD_CONFIG_PATH,
        config_present=files.is_file(SSHD_CONFIG_PATH),
        boot=tuple(boot),
        looked_at=tuple(looked),
        undetermined=undetermined,
    )


# --- live ------------------------------------------------------------------------------------

# One line per finding, tab-separated. systemctl is asked only when systemd is PID 1 (sd_booted:
# /run/systemd/system exists); otherwise rc links, and a running sshd process in any case.
_SERVER_SCRIPT = r"""
cfg=${AMISCAN_SSHD_CONFIG:-/etc/ssh/sshd_config}
for b in "${AMISCAN_SSHD_BIN:-}" "$(command -v sshd 2>/dev/null)" @BINARIES@; do
  [ -n "$b" ] && [ -f "$b" ] && [ -x "$b" ] && printf 'binary\t%s\n' "$b"
done
if [ -f "$cfg" ]; then printf 'config\t%s\tpresent\n' "$cfg"; else printf 'config\t%s\tabsent\n' "$cfg"; fi
if ! command -v systemctl >/dev/null 2>&1; then printf 'systemd\tabsent\n'
elif [ ! -d /run/systemd/system ]; then printf 'systemd\tnot-booted\n'
else
  printf 'systemd\tbooted\n'
  for u in @UNITS@; do
    e=$(systemctl is-enabled "$u" 2>/dev/null | head -n 1)
    a=$(systemctl is-active "$u" 2>/dev/null | head -n 1)
    printf 'unit\t%s\t%s\t%s\n' "$u" "${e:-not-found}" "${a:-unknown}"
  done
fi
for d in @RC_DIRS@; do
  [ -d "$d" ] || continue
  printf 'rcdir\t%s\n' "$d"
  for f in "$d"/S*ssh*; do [ -e "$f" ] && printf 'rc\t%s\n' "$f"; done
done
if [ -d /etc/runlevels ]; then
  printf 'rcdir\t/etc/runlevels\n'
  for f in @OPENRC@; do [ -e "$f" ] && printf 'rc\t%s\n' "$f"; done
fi
if command -v pgrep >/dev/null 2>&1; then
  printf 'process\tpgrep -x sshd\t%s\n' "$(pgrep -x sshd 2>/dev/null | head -n 20 | tr '\n' ' ')"
elif command -v ps >/dev/null 2>&1; then
  printf 'process\tps -e\t%s\n' "$(ps -e -o pid= -o comm= 2>/dev/null | awk '$2=="sshd"{print $1}' | head -n 20 | tr '\n' ' ')"
else
  printf 'process\tnone\t\n'
fi
exit 0
"""

SERVER_SCRIPT = (
    _SERVER_SCRIPT.replace("@BINARIES@", " ".join(BINARY_CANDIDATES))
    .replace("@UNITS@", " ".join(SERVICE_UNITS + SOCKET_UNITS))
    .replace("@RC_DIRS@", " ".join(_RC_DIRS))
    .replace("@OPENRC@", " ".join(_OPENRC_LINKS))
)

# The `systemctl is-enabled` state that starts a unit at boot. "generated" units come from SysV
# scripts and are judged by their rc links; "alias", "static" and "indirect" say nothing by
# themselves (the unit they belong to does); "enabled-runtime" does not survive a reboot.
_ENABLED = {"enabled"}


def _derive_live(g: Gathered) -> SshServer:
    output = g.require_output()
    if output.timed_out:
        raise FactFailed("looking for the SSH server timed out")
    binaries: list[str] = []
    config, config_present = SSHD_CONFIG_PATH, False
    systemd = "absent"
    boot: list[Observation] = []
    running: list[Observation] = []
    looked: list[Observation] = []
    rc_dirs: list[str] = []
    rc_links: list[str] = []
    generated = False
    for raw in output.text.splitlines():
        fields = raw.split("\t")
        kind, args = fields[0], fields[1:]
        if kind == "binary" and args:
            binaries.append(args[0])
        elif kind == "config" and len(args) == 2:
            config, config_present = args[0], args[1] == "present"
        elif kind == "systemd" and args:
            systemd = args[0]
        elif kind == "unit" and len(args) == 3:
            unit, enabled, active = args
            source = f"systemctl is-enabled/is-active {unit}"
            if enabled in _ENABLED:
                boot.append(Observation(source, f"{enabled}, {active}"))
            elif enabled != "not-found":
                looked.append(Observation(source, f"{enabled}, {active}"))
            generated = generated or enabled == "generated"
            if active == "active":
                running.append(Observation(source, f"{unit} is active"))
        elif kind == "rcdir" and args:
            rc_dirs.append(args[0])
        elif kind == "rc" and args:
            rc_links.append(args[0])
        elif kind == "process" and len(args) == 2 and args[1].strip():
            running.append(Observation(args[0], f"sshd process(es) {args[1].strip()}"))
    starts = [
        p
        for p in rc_links
        if _RC_START_LINK.match(posixpath.basename(p)) or p.startswith("/etc/runlevels/")
    ]
    # With systemd as PID 1, rc links count only through the SysV generator.
    if systemd != "booted" or generated:
        boot += [Observation(p, _start_link_kind(p)) for p in starts]
    if rc_dirs and not starts:
        looked.append(Observation(", ".join(rc_dirs), "no start link for sshd"))
    if systemd == "booted" and not boot and not looked:
        looked.append(Observation("systemctl", "no ssh or sshd unit is known to systemd"))
    undetermined = None
    if not boot and systemd != "booted" and not rc_dirs:
        undetermined = (
            f"systemd is {systemd.replace('-', ' ')} and there are no SysV or OpenRC "
            "runlevels: cannot tell what starts at boot"
        )
    return SshServer(
        where="on the host",
        binaries=tuple(dict.fromkeys(binaries)),
        config=config,
        config_present=config_present,
        boot=tuple(boot),
        running=tuple(running),
        looked_at=tuple(looked),
        undetermined=undetermined,
    )


def _start_link_kind(path: str) -> str:
    return "OpenRC runlevel entry" if path.startswith("/etc/runlevels/") else "SysV start link"


def _derive_server(g: Gathered) -> SshServer:
    return _derive_live(g) if g.live else _derive_offline(g)


SSH_SERVER = Fact(
    name="linux.sshd.server",
    description="the OpenSSH server: binary, configuration, and what starts it at boot",
    derive=_derive_server,
    probe=Probe(SERVER_SCRIPT, privileged=True, timeout_s=30),
)


__all__ = ["SSH_SERVER", "Observation", "SshServer"]
