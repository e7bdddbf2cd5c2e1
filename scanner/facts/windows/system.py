"""The Windows release and the BitLocker state of its volumes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scanner.facts.base import FactFailed, FactUnavailable, Gathered
from scanner.facts.windows.common import (
    as_int,
    as_list,
    as_text,
    probe_json,
    require_fields,
    windows_fact,
)
from scanner.facts.windows.volume import software_key, system_key

_OS_PROBE = r"""
$os = Get-CimInstance -ClassName Win32_OperatingSystem
$cv = Get-ItemProperty -LiteralPath 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
ConvertTo-Json -Compress -InputObject ([ordered]@{
    caption = [string]$os.Caption
    version = [string]$os.Version
    build = [string]$os.BuildNumber
    ubr = $cv.UBR
    product_type = [int]$os.ProductType
    architecture = [string]$os.OSArchitecture
    installation_type = [string]$cv.InstallationType
})
"""

# Win32_OperatingSystem.ProductType: 1 workstation, 2 domain controller, 3 server.
_WORKSTATION = 1


@dataclass(frozen=True)
class WindowsRelease:
    """The Windows release, as Win32_OperatingSystem and CurrentVersion describe it."""

    caption: str
    version: str
    build: int
    ubr: int | None
    product_type: int | None
    architecture: str
    installation_type: str
    source: str = "Win32_OperatingSystem"

    @property
    def is_server(self) -> bool:
        return self.product_type != _WORKSTATION

    def describe(self) -> str:
        build = f"{self.build}.{self.ubr}" if self.ubr is not None else str(self.build)
        extra = f", {self.installation_type}" if self.installation_type else ""
        return f"{self.caption} (build {build}, {self.architecture}{extra})"


def parse_release(document: Any) -> WindowsRelease:
    """The OS probe's JSON as a WindowsRelease."""
    document = require_fields(document, "the OS probe")
    build = as_int(document.get("build"))
    if build is None:
        raise FactFailed(f"Win32_OperatingSystem gave no build number: {document.get('build')!r}")
    return WindowsRelease(
        caption=as_text(document.get("caption")).strip(),
        version=as_text(document.get("version")),
        build=build,
        ubr=as_int(document.get("ubr")),
        product_type=as_int(document.get("product_type")),
        architecture=as_text(document.get("architecture")),
        installation_type=as_text(document.get("installation_type")),
    )


_CURRENT_VERSION = r"Microsoft\Windows NT\CurrentVersion"
# HKLM\SYSTEM\CurrentControlSet\Control\ProductOptions ProductType, as Win32_OperatingSystem's
# ProductType numbers it.
_PRODUCT_TYPES = {"winnt": 1, "lanmannt": 2, "servernt": 3}
_ARCHITECTURES = {"amd64": "64-bit", "arm64": "64-bit", "x86": "32-bit", "ia64": "64-bit"}


def release_at_rest(g: Gathered) -> WindowsRelease:
    """The offline form: the SOFTWARE hive's CurrentVersion and SYSTEM's ProductOptions."""
    current = software_key(g, _CURRENT_VERSION)
    if current is None:
        raise FactFailed(f"HKLM\\SOFTWARE\\{_CURRENT_VERSION} is missing from the image")
    build_text = current.text_value("CurrentBuild") or current.text_value("CurrentBuildNumber")
    build = as_int(build_text)
    if build is None:
        raise FactFailed(f"HKLM\\SOFTWARE\\{_CURRENT_VERSION} gives no build: {build_text!r}")
    major, minor = (
        current.int_value("CurrentMajorVersionNumber"),
        current.int_value("CurrentMinorVersionNumber"),
    )
    # Windows 10 / Server 2016 and later keep 6.3 in CurrentVersion for old callers.
    version = f"{major}.{minor}" if major is not None else current.text_value("CurrentVersion")
    options = system_key(g, r"Control\ProductOptions")
    product = (options.text_value("ProductType") if options else None) or ""
    environment = system_key(g, r"Control\Session Manager\Environment")
    machine = (environment.text_value("PROCESSOR_ARCHITECTURE") if environment else None) or ""
    product_name = (current.text_value("ProductName") or "").strip()
    return WindowsRelease(
        caption=f"Microsoft {product_name}" if product_name else "",
        version=f"{version}.{build}" if version else str(build),
        build=build,
        ubr=current.int_value("UBR"),
        product_type=_PRODUCT_TYPES.get(product.lower()),
        architecture=_ARCHITECTURES.get(machine.lower(), machine),
        installation_type=current.text_value("InstallationType") or "",
        source=f"HKLM\\SOFTWARE\\{_CURRENT_VERSION}",
    )


WINDOWS_RELEASE = windows_fact(
    "windows.os.release",
    "the Windows release (Win32_OperatingSystem)",
    _OS_PROBE,
    lambda g: parse_release(probe_json(g, "reading Win32_OperatingSystem")),
    offline=release_at_rest,
)


# --- BitLocker ----------------------------------------------------------------------------------

_BITLOCKER_PROBE = r"""
$volumes = @()
$installed = $true
try {
    $volumes = @(Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume | ForEach-Object {
        [ordered]@{
            drive = [string]$_.DriveLetter
            device = [string]$_.DeviceID
            protection_status = $_.ProtectionStatus
            conversion_status = $_.ConversionStatus
        }
    })
} catch {
    # The namespace only exists where the BitLocker feature is installed.
    if ([string]$_.Exception.NativeErrorCode -eq 'InvalidNamespace' -or $_.Exception.Message -match 'Invalid namespace') { $installed = $false } else { throw }
}
ConvertTo-Json -Compress -Depth 4 -InputObject ([ordered]@{ installed = $installed; volumes = $volumes })
"""

# Win32_EncryptableVolume.ConversionStatus values.
_CONVERSION = {
    0: "fully decrypted",
    1: "fully encrypted",
    2: "encryption in progress",
    3: "decryption in progress",
    4: "encryption paused",
    5: "decryption paused",
}
# ProtectionStatus: 0 off, 1 on, 2 unknown (locked).
_PROTECTION = {0: "protection off", 1: "protection on", 2: "protection unknown (locked?)"}


@dataclass(frozen=True)
class EncryptableVolume:
    """A volume BitLocker knows about (Win32_EncryptableVolume)."""

    drive: str
    device: str
    protection_status: int | None
    conversion_status: int | None
    # Offline: what the volume's first sector says (BitLocker's -FVE-FS- signature), and so
    # encrypted whatever its conversion state.
    signature: str = ""

    @property
    def encrypted(self) -> bool:
        """Any volume that is not fully decrypted, or whose protection is on, is encrypted."""
        return (
            bool(self.signature)
            or self.conversion_status not in (0, None)
            or self.protection_status in (1, 2)
        )

    def describe(self) -> str:
        name = self.drive or self.device
        if self.signature:
            return f"{name}: {self.signature}"
        conversion = _label(_CONVERSION, self.conversion_status, "conversion status")
        protection = _label(_PROTECTION, self.protection_status, "protection status")
        return f"{name}: {conversion}, {protection}"


def _label(names: dict[int, str], value: int | None, what: str) -> str:
    if value is None:
        return f"{what} unknown"
    return names.get(value, f"{what} {value}")


@dataclass(frozen=True)
class BitLocker:
    """Whether BitLocker is installed, and its volumes."""

    installed: bool
    volumes: tuple[EncryptableVolume, ...]
    # Where the state was read: WMI live, the disks' volume signatures offline.
    source: str = "Win32_EncryptableVolume"


def parse_bitlocker(document: Any) -> BitLocker:
    """The BitLocker probe's JSON."""
    document = require_fields(document, "the BitLocker probe", "installed", "volumes")
    if not isinstance(document["installed"], bool):
        raise FactFailed(f"the BitLocker probe's installed is {document['installed']!r}")
    return BitLocker(
        installed=document["installed"],
        volumes=tuple(
            EncryptableVolume(
                drive=as_text(v.get("drive")),
                device=as_text(v.get("device")),
                protection_status=as_int(v.get("protection_status")),
                conversion_status=as_int(v.get("conversion_status")),
            )
            for v in as_list(document.get("volumes"))
            if isinstance(v, dict)
        ),
    )


def bitlocker_at_rest(g: Gathered) -> BitLocker:
    """The offline form: the encrypted volumes the disk reader recognised by their signature."""
    found = g.context.encrypted_volumes
    if found is None:
        raise FactUnavailable(
            "BitLocker volumes are recognised on a disk image or snapshot; a directory holds none"
        )
    volumes = tuple(
        EncryptableVolume(device, "", None, None, signature=f"{kind.strip()}-encrypted")
        for device, _, kind in (line.rpartition(": ") for line in found)
    )
    return BitLocker(True, volumes, source="volume signatures on the image's disks")


BITLOCKER = windows_fact(
    "windows.filesystem.bitlocker",
    "BitLocker volumes (Win32_EncryptableVolume)",
    _BITLOCKER_PROBE,
    lambda g: parse_bitlocker(probe_json(g, "querying BitLocker volumes")),
    offline=bitlocker_at_rest,
)
