"""System facts: OS release, pending updates, encrypted file systems, listeners, firewall, cloud-init."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from scanner.collect import SHELL_CLOCK
from scanner.facts.base import Fact, FactFailed, FactUnavailable, Gathered, Mode, Probe
from scanner.fs import STREAM_SUFFIXES, FileSource, read_text_or_none, stream_lines
from scanner.parsers.apt import (
    BadVersion,
    ReleaseInfo,
    compare_versions,
    dependency_groups,
    parse_release,
    stanzas,
)
from scanner.parsers.listening import Listener, parse_proc_net_tcp
from scanner.parsers.os_release import OsRelease

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


@dataclass(frozen=True)
class OsReleaseFile:
    release: OsRelease
    path: str


def _derive_os_release(g: Gathered) -> OsReleaseFile:
    for path in OS_RELEASE_PATHS:
        text = read_text_or_none(g.files, path)
        if text is not None:
            return OsReleaseFile(OsRelease.from_text(text), path)
    raise FactFailed("neither /etc/os-release nor /usr/lib/os-release exists")


OS_RELEASE = Fact(
    name="linux.os.release",
    description="the OS release (os-release)",
    derive=_derive_os_release,
    patterns=OS_RELEASE_PATHS,
)


# --- pending updates ----------------------------------------------------------------------------

_UPDATES_SCRIPT = (
    SHELL_CLOCK
    + r"""
# The package query runs beside the secret search, which is the scan's critical path on a big
# host: it yields the CPU to it (children inherit the niceness).
renice -n 10 -p $$ >/dev/null 2>&1
# Refresh the metadata when asked (throwaway instances), and say whether it worked: apt-get update
# exits 0 when no mirror answered and keeps the old lists, so its messages are read too.
_amiscan_refresh() {
  [ "$AMISCAN_REFRESH" = 1 ] || return 0
  pattern=$1; shift
  # The refresh reaches the mirrors and can take most of the probe: timed on its own.
  started=$(amiscan_now)
  out=$("$@" 2>&1); rc=$?
  [ -z "${AMISCAN_STEPS:-}" ] || echo "refresh $(( ($(amiscan_now) - started) / 1000000 ))" >>"$AMISCAN_STEPS"
  if [ $rc -eq 0 ] && ! printf '%s\n' "$out" | grep -qiE "$pattern"; then
    echo "### refresh ok"
  else
    echo "### refresh failed"
    echo "### refreshlog"
    printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -n 3
  fi
}
# The system's own manager first: a Debian host may have dnf installed, yet dpkg owns it.
if [ -f /var/lib/dpkg/status ] && command -v apt-get >/dev/null 2>&1; then pm=apt
elif command -v dnf >/dev/null 2>&1; then pm=dnf
elif command -v yum >/dev/null 2>&1; then pm=yum
elif command -v apt-get >/dev/null 2>&1; then pm=apt
elif command -v zypper >/dev/null 2>&1; then pm=zypper
else echo "### manager none"; exit 0; fi
echo "### manager $pm"
case $pm in
dnf|yum)
  _amiscan_refresh 'failed to download|cannot download|^error' $pm -q makecache
  echo "### security"
  if [ $pm = dnf ]; then dnf -q -C updateinfo list --security 2>&1; else yum -q -C updateinfo list security 2>&1; fi
  echo "### rc $?"
  echo "### all"
  $pm -q -C check-update 2>&1
  echo "### rc $?"
  ;;
apt)
  _amiscan_refresh '^(W: (Failed to fetch|Some index files failed)|E: |Err:)' apt-get update -qq
  echo "### lists"
  ls /var/lib/apt/lists/ 2>/dev/null | grep -c '_Packages' || true
  # Each installed package whose candidate is newer, with the suites that hold the candidate:
  # no dependency solving, so a fraction of `apt-get -s dist-upgrade`'s time for the same
  # upgrades (the new packages a dist-upgrade would also install are not updates of the image).
  echo "### upgradable"
  # Its exit code is kept: without `apt` (apt-get alone), or when it fails, no line would
  # read as nothing to upgrade.
  upgradable=$(apt list --upgradable 2>&1); rc=$?
  printf '%s\n' "$upgradable" | grep -F '[upgradable from: '
  echo "### rc $rc"
  if [ $rc -ne 0 ]; then
    echo "### aptlog"
    printf '%s\n' "$upgradable" | grep -v '^[[:space:]]*$' | tail -n 3
  fi
  ;;
zypper)
  _amiscan_refresh '^(Problem|Error)' zypper -q --non-interactive refresh
  echo "### security"
  zypper --non-interactive --no-refresh list-patches --category security 2>&1
  echo "### rc $?"
  echo "### all"
  zypper --non-interactive --no-refresh list-updates 2>&1
  echo "### rc $?"
  ;;
esac
exit 0
"""
)


@dataclass(frozen=True)
class PendingUpdates:
    manager: str
    security: tuple[str, ...]
    other: tuple[str, ...]
    refreshed: bool
    notes: tuple[str, ...] = ()
    # Why a refresh that was asked for did not happen (the package manager's last words).
    refresh_error: str | None = None
    # Offline: the date of the image's metadata, "an unknown date" if it has none (apt: the
    # newest Date: of its Release files; rpm: the newest repomd.xml timestamp of the cached
    # repodata); and upgrades `apt-get upgrade` keeps back (they need packages not installed).
    lists_date: str | None = None
    kept_back_security: tuple[str, ...] = ()
    kept_back_other: tuple[str, ...] = ()


def _sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = "head"
    for line in text.splitlines():
        if line.startswith("### "):
            head, _, rest = line[4:].partition(" ")
            if head in {"manager", "rc", "refresh"}:
                sections.setdefault(head, []).append(rest)
                continue
            current = head
            sections.setdefault(current, [])
        else:
            sections.setdefault(current, []).append(line)
    return sections


_RPM_UPDATE = re.compile(r"^(\S+)\.(\S+)\s+(\S+)\s+(\S+)\s*$")
# dnf4/yum: "ALAS2023-2024-512 Important/Sec. openssl-1:3.0.8-1.amzn2023.x86_64";
# dnf5: "FEDORA-2024-1a2b3c4d5e security Important openssl-1:3.2.2-3.fc40.x86_64 2024-06-12 …".
_ADVISORY = re.compile(r"^\S+\s+(?:\S*/Sec\.?|security)\s+\S+", re.IGNORECASE)


def parse_updates(text: str, refreshed: bool) -> PendingUpdates:
    """Pending updates from the probe's sectioned output, by package manager."""
    sections = _sections(text)
    manager = (sections.get("manager") or ["none"])[0]
    if manager == "none":
        raise FactFailed(
            "pending updates cannot be judged: no supported package manager (dnf, yum, apt, zypper)"
        )
    codes = sections.get("rc", [])
    refresh_error = None
    if refreshed and (sections.get("refresh") or ["ok"])[0] != "ok":
        log_lines = [ln.strip() for ln in sections.get("refreshlog", []) if ln.strip()]
        refresh_error = " / ".join(log_lines)[-300:] or "the refresh failed"
        refreshed = False
    if manager in {"dnf", "yum"}:
        pending = _parse_rpm(manager, sections, codes, refreshed)
    elif manager == "apt":
        pending = _parse_apt(sections, codes, refreshed)
    else:
        pending = _parse_zypper(sections, codes, refreshed)
    return dataclasses.replace(pending, refresh_error=refresh_error)


def _parse_rpm(
    manager: str, sections: dict[str, list[str]], codes: list[str], refreshed: bool
) -> PendingUpdates:
    security_lines = [ln.strip() for ln in sections.get("security", []) if ln.strip()]
    if codes and codes[0] not in {"0", "100"}:
        raise FactFailed(
            f"{manager} updateinfo failed: {' '.join(security_lines)[-300:] or codes[0]}"
        )
    security = tuple(ln for ln in security_lines if _ADVISORY.match(ln))
    all_code = codes[1] if len(codes) > 1 else "0"
    if all_code not in {"0", "100"}:
        detail = " ".join(sections.get("all", []))[-300:]
        raise FactFailed(f"{manager} check-update failed (exit {all_code}): {detail}")
    packages = tuple(
        ln.split()[0] for ln in sections.get("all", []) if _RPM_UPDATE.match(ln.strip())
    )
    return PendingUpdates(manager, security, packages, refreshed)


def _parse_apt(sections: dict[str, list[str]], codes: list[str], refreshed: bool) -> PendingUpdates:
    lists = (sections.get("lists") or ["0"])[0].strip()
    if lists == "0":
        raise FactFailed(
            "pending updates cannot be judged: apt has no package lists (apt-get update never "
            "ran on this host)"
        )
    if codes != ["0"]:
        # No exit code at all is a probe cut short: its list of upgrades cannot be complete.
        log = " / ".join(ln.strip() for ln in sections.get("aptlog", []) if ln.strip())
        code = codes[0] if codes else "none"
        raise FactFailed(f"apt list --upgradable failed (exit {code}): {log[-300:] or 'no output'}")
    security: list[str] = []
    other: list[str] = []
    for line in sections.get("upgradable", []):
        match = _APT_UPGRADABLE.match(line.strip())
        if match is None:
            continue
        suites = match["suites"].split(",")
        text = f"{match['name']} {match['old']} -> {match['new']} ({', '.join(suites)})"
        secure = any("-security" in suite.lower() for suite in suites)
        (security if secure else other).append(text)
    return PendingUpdates("apt", tuple(security), tuple(other), refreshed)


# `apt list --upgradable`: "libssl3/jammy-updates,jammy-security 3.0.2-0ubuntu1.12 amd64
# [upgradable from: 3.0.2-0ubuntu1.10]" (the suites that hold the candidate, comma-separated).
_APT_UPGRADABLE = re.compile(
    r"^(?P<name>[^/\s]+)/(?P<suites>\S+) (?P<new>\S+) (?P<arch>\S+) "
    r"\[upgradable from: (?P<old>[^\]]+)\]"
)


def _parse_zypper(
    sections: dict[str, list[str]], codes: list[str], refreshed: bool
) -> PendingUpdates:
    def table_rows(lines: list[str]) -> list[str]:
        return [ln for ln in lines if ln.count("|") >= 3 and not set(ln) <= {"-", "+", "|"}][1:]

    if codes and codes[0] not in {"0", "100", "101"}:
        raise FactFailed(
            "zypper list-patches failed: " + " ".join(sections.get("security", []))[-300:]
        )
    # Only patches whose Status cell is "needed" are pending ("not needed", "applied" are not).
    security = tuple(
        row
        for row in table_rows(sections.get("security", []))
        if "needed" in (cell.strip().lower() for cell in row.split("|"))
    )
    other = tuple(table_rows(sections.get("all", [])))
    return PendingUpdates("zypper", security, other, refreshed)


# --- pending updates offline: apt's lists and dpkg's status in the image ---------------------------

DPKG_STATUS = "/var/lib/dpkg/status"
APT_LISTS = "/var/lib/apt/lists"
# Real lists are tens of MiB (bookworm main: ~50 MiB uncompressed); no image needs more than this.
APT_STREAM_LIMIT = 512 * 1024 * 1024
_PACKAGES_LIST = re.compile(r"^(?P<base>.+)_Packages(?P<ext>\.[A-Za-z0-9]+)?$")
_INSTALLED_FIELDS = frozenset({"Package", "Status", "Version", "Architecture", "Provides"})
_LIST_FIELDS = frozenset({"Package", "Version", "Architecture", "Depends", "Pre-Depends"})
_OFFLINE_UNAVAILABLE = "pending package updates cannot be gathered from an image's files alone"


@dataclass(frozen=True)
class _Installed:
    version: str
    held: bool


@dataclass
class _Candidate:
    version: str
    depends: str
    lists: set[int]


def _release_for(files: FileSource, base: str) -> ReleaseInfo | None:
    """The Release header of the list named base_Packages: the longest prefix of `base` (cut at
    `_`) with an _InRelease or _Release file, as apt names them after the repository's URI."""
    prefix = base
    while prefix:
        for suffix in ("_InRelease", "_Release"):
            path = f"{APT_LISTS}/{prefix}{suffix}"
            if files.is_file(path):
                # The header is the first lines; the rest is checksums.
                head = files.read_head(path, 256 * 1024).content
                return parse_release(head.decode("utf-8", errors="replace"))
        if "_" not in prefix:
            break
        prefix = prefix.rsplit("_", 1)[0]
    return None


def _installed_packages(files: FileSource) -> tuple[dict[tuple[str, str], _Installed], set[str]]:
    """Installed packages by (name, architecture), and every name installed or provided."""
    installed: dict[tuple[str, str], _Installed] = {}
    names: set[str] = set()
    for entry in stanzas(stream_lines(files, DPKG_STATUS, APT_STREAM_LIMIT), _INSTALLED_FIELDS):
        want, _, state = [*entry.get("Status", "").split(), "", "", ""][:3]
        if state != "installed" or "Package" not in entry or "Version" not in entry:
            continue
        key = (entry["Package"], entry.get("Architecture", ""))
        installed[key] = _Installed(entry["Version"], want == "hold")
        names.add(entry["Package"])
        for group in dependency_groups(entry.get("Provides", "")):
            names.update(group)
    return installed, names


def derive_apt_offline(files: FileSource) -> PendingUpdates:
    """What `apt-get upgrade` would upgrade, from the image's apt lists and dpkg status.

    The candidate of an installed package is the highest version (dpkg's ordering) of the same
    name and architecture in the lists (Release files marked NotAutomatic, such as experimental,
    never supply one); it is a security update when that version is in a -security suite's list.
    An upgrade whose dependencies name a package that is neither installed nor provided is kept
    back, as `apt-get upgrade` keeps it back (a dist-upgrade would install the new package).
    """
    names = files.list_dir(APT_LISTS)
    lists = [(n, m) for n in names if (m := _PACKAGES_LIST.match(n))]
    if not files.is_file(DPKG_STATUS):
        if lists:
            raise FactFailed(f"the image has apt lists in {APT_LISTS} but no {DPKG_STATUS}")
        raise FactUnavailable(_OFFLINE_UNAVAILABLE)
    if not lists:
        raise FactUnavailable(
            f"pending updates cannot be judged: the image holds no apt package lists ({APT_LISTS} "
            "has no *_Packages index: apt-get update never ran, or its lists were removed)"
        )
    unreadable = sorted(n for n, m in lists if m["ext"] and m["ext"] not in STREAM_SUFFIXES)
    if unreadable:
        raise FactFailed(
            "apt lists compressed in a format amiscan cannot read (plain, .gz, .xz and .bz2 "
            f"only): {', '.join(unreadable)}"
        )
    installed, provided = _installed_packages(files)
    releases: list[ReleaseInfo | None] = []
    candidates: dict[tuple[str, str], _Candidate] = {}
    for index, (name, match) in enumerate(lists):
        release = _release_for(files, match["base"])
        releases.append(release)
        if release is not None and release.not_automatic:
            continue
        path = f"{APT_LISTS}/{name}"
        for entry in stanzas(stream_lines(files, path, APT_STREAM_LIMIT), _LIST_FIELDS):
            package, version = entry.get("Package", ""), entry.get("Version", "")
            arch = entry.get("Architecture", "")
            if (package, arch) not in installed or not version:
                continue
            try:
                best = candidates.get((package, arch))
                order = 1 if best is None else compare_versions(version, best.version)
            except BadVersion as exc:
                raise FactFailed(f"{path}: {package}: {exc}") from exc
            depends = ", ".join(v for v in (entry.get("Pre-Depends"), entry.get("Depends")) if v)
            if best is None or order > 0:
                candidates[(package, arch)] = _Candidate(version, depends, {index})
            elif order == 0:
                best.lists.add(index)
    security: list[str] = []
    other: list[str] = []
    kept_security: list[str] = []
    kept_other: list[str] = []
    for (package, arch), have in sorted(installed.items()):
        candidate = candidates.get((package, arch))
        try:
            if candidate is None or compare_versions(candidate.version, have.version) <= 0:
                continue
        except BadVersion as exc:
            raise FactFailed(f"{DPKG_STATUS}: {package}: {exc}") from exc
        found = [releases[i] for i in sorted(candidate.lists)]
        secure = [r for r in found if r is not None and r.security]
        suites = sorted({r.name if r else "unknown suite" for r in (secure or found)})
        text = f"{package} {have.version} -> {candidate.version} ({', '.join(suites)})"
        missing = [
            group[0]
            for group in dependency_groups(candidate.depends)
            if not any(n in provided for n in group)
        ]
        if have.held or missing:
            why = "held" if have.held else "needs " + ", ".join(missing[:3])
            (kept_security if secure else kept_other).append(f"{text}: kept back, {why}")
        else:
            (security if secure else other).append(text)
    dates = [r.date for r in releases if r is not None and r.date is not None]
    return PendingUpdates(
        "apt",
        tuple(security),
        tuple(other),
        refreshed=False,
        lists_date=max(dates).date().isoformat() if dates else "an unknown date",
        kept_back_security=tuple(kept_security),
        kept_back_other=tuple(kept_other),
    )


def _derive_updates(g: Gathered) -> PendingUpdates:
    if not g.live:
        return _derive_updates_offline(g.files)
    output = g.require_output()
    if output.timed_out:
        raise FactFailed("querying the package manager timed out")
    return parse_updates(output.text, g.context.refresh_package_metadata)


def _derive_updates_offline(files: FileSource) -> PendingUpdates:
    """From the image's own metadata: apt's lists and dpkg's status, else the rpm database and
    the repodata dnf or yum cached; unavailable when the image has neither package database."""
    apt_lists = any(_PACKAGES_LIST.match(name) for name in files.list_dir(APT_LISTS))
    if files.is_file(DPKG_STATUS) or apt_lists:
        return derive_apt_offline(files)
    # Imported here: rpm_offline builds on this module's PendingUpdates.
    from scanner.facts.linux.rpm_offline import derive_rpm_offline, rpm_database

    database = rpm_database(files)
    if database is not None:
        return derive_rpm_offline(files, database)
    raise FactUnavailable(
        f"{_OFFLINE_UNAVAILABLE}: the image has neither dpkg's "
        f"{DPKG_STATUS} nor an rpm database (rpmdb.sqlite, Packages) in /var/lib/rpm or "
        "/usr/lib/sysimage/rpm"
    )


PENDING_UPDATES = Fact(
    name="linux.packages.pending",
    description="pending package updates",
    derive=_derive_updates,
    probe=Probe(_UPDATES_SCRIPT, privileged=True, timeout_s=240, background=True),
    # Offline, apt images are judged from their lists (derive_apt_offline), RPM images from their
    # rpm database and cached repodata (rpm_offline.derive_rpm_offline); others skip.
    modes=frozenset({Mode.LIVE, Mode.OFFLINE}),
)


# --- encrypted file systems ---------------------------------------------------------------------


@dataclass(frozen=True)
class CryptoState:
    crypttab: tuple[tuple[int, str], ...]
    encrypted_devices: tuple[str, ...]
    inspected_devices: bool
    # What listed the devices: lsblk on a live host, the volume scan of an offline disk image.
    devices_source: str = "lsblk"


def _crypttab_entries(text: str | None) -> tuple[tuple[int, str], ...]:
    if text is None:
        return ()
    return tuple(
        (n, ln.strip())
        for n, ln in enumerate(text.splitlines(), start=1)
        if ln.strip() and not ln.strip().startswith("#")
    )


def _derive_crypto(g: Gathered) -> CryptoState:
    entries = _crypttab_entries(read_text_or_none(g.files, "/etc/crypttab"))
    if not g.live:
        volumes = g.context.encrypted_volumes
        if volumes is None:
            return CryptoState(entries, (), False)
        return CryptoState(entries, volumes, True, devices_source="volumes")
    output = g.require_output()
    devices = []
    for line in output.text.splitlines():
        fields = dict(re.findall(r'(\w+)="([^"]*)"', line))
        if fields.get("TYPE") == "crypt" or fields.get("FSTYPE") in {"crypto_LUKS", "BitLocker"}:
            devices.append(line.strip())
    return CryptoState(entries, tuple(devices), output.rc == 0)


ENCRYPTED_FS = Fact(
    name="linux.filesystem.crypto",
    description="encrypted block devices and /etc/crypttab",
    derive=_derive_crypto,
    probe=Probe("lsblk -P -o NAME,TYPE,FSTYPE,MOUNTPOINT", privileged=False, timeout_s=20),
    patterns=("/etc/crypttab",),
)


# --- cloud-init state ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudInitState:
    instances: tuple[str, ...]
    instance_link: bool


def _derive_cloud_init(g: Gathered) -> CloudInitState:
    base = "/var/lib/cloud"
    instances = tuple(f"{base}/instances/{n}" for n in g.files.list_dir(f"{base}/instances"))
    link = "instance" in g.files.list_dir(base)
    return CloudInitState(instances, link)


CLOUD_INIT_STATE = Fact(
    name="linux.cloud-init.state",
    description="cloud-init state under /var/lib/cloud",
    derive=_derive_cloud_init,
    modes=frozenset({Mode.OFFLINE}),
)


# --- listening sockets and the host firewall ----------------------------------------------------


def _derive_listeners(g: Gathered) -> list[Listener]:
    text = g.require_output().require_success("reading /proc/net/tcp")
    v4, _, v6 = text.partition("### tcp6")
    return parse_proc_net_tcp(v4, 4) + parse_proc_net_tcp(v6, 6)


LISTENERS = Fact(
    name="linux.net.listeners",
    description="listening TCP sockets (/proc/net/tcp, tcp6)",
    derive=_derive_listeners,
    probe=Probe(
        "cat /proc/net/tcp; echo '### tcp6'; cat /proc/net/tcp6 2>/dev/null; exit 0",
        privileged=False,
        timeout_s=15,
    ),
    modes=frozenset({Mode.LIVE}),
)

_FIREWALL_SCRIPT = r"""
echo "### iptables"
if command -v iptables >/dev/null 2>&1; then iptables -S 2>&1; echo "### rc $?"; else echo "### rc absent"; fi
echo "### nft"
if command -v nft >/dev/null 2>&1; then nft -j list ruleset 2>&1; echo "### rc $?"; else echo "### rc absent"; fi
echo "### firewalld"
if command -v firewall-cmd >/dev/null 2>&1; then
  if firewall-cmd --state >/dev/null 2>&1; then firewall-cmd --list-all 2>&1; echo "### rc $?"; else echo "### rc inactive"; fi
else echo "### rc absent"; fi
echo "### ufw"
if command -v ufw >/dev/null 2>&1; then ufw status verbose 2>&1; echo "### rc $?"; else echo "### rc absent"; fi
exit 0
"""


@dataclass(frozen=True)
class FirewallDump:
    """Each firewall front end's output and exit code ("absent" when not installed)."""

    outputs: dict[str, str]
    codes: dict[str, str]


def parse_firewall_dump(text: str) -> FirewallDump:
    outputs: dict[str, list[str]] = {}
    codes: dict[str, str] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("### rc ") and current:
            codes[current] = line[7:].strip()
        elif line.startswith("### "):
            current = line[4:].strip()
            outputs[current] = []
        elif current:
            outputs[current].append(line)
    return FirewallDump({k: "\n".join(v) for k, v in outputs.items()}, codes)


FIREWALL = Fact(
    name="linux.net.firewall",
    description="host firewall rules (iptables, nftables, firewalld, ufw)",
    derive=lambda g: parse_firewall_dump(g.require_output().text),
    probe=Probe(_FIREWALL_SCRIPT, privileged=True, timeout_s=30),
    modes=frozenset({Mode.LIVE}),
)
