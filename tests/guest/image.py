"""The real-guest image: built once by build-image.sh, cached outside the work tree.

    python3 -m tests.guest.image          # build (or find) the cached image, print where it is

The cache (AMISCAN_GUEST_CACHE, default /var/tmp/amiscan-guest) holds one directory per recipe,
named by a hash of the recipe, so a changed recipe rebuilds and an unchanged one never does. A
build writes into a temporary directory and renames it into place, under a lock: an interrupted
build leaves no half image, and two test runs never build at once.

Mirrors default to the host's own apt sources for Debian; AMISCAN_GUEST_MIRROR and
AMISCAN_GUEST_SECURITY_MIRROR override them.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECIPE = HERE / "build-image.sh"
CACHE_ENV = "AMISCAN_GUEST_CACHE"
DEFAULT_CACHE = Path("/var/tmp/amiscan-guest")
MIRROR_ENV = "AMISCAN_GUEST_MIRROR"
SECURITY_MIRROR_ENV = "AMISCAN_GUEST_SECURITY_MIRROR"
HOST_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
# Tools the build needs, and the Debian packages that hold them (for the skip reason).
BUILD_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
}


class ImageUnavailable(Exception):
    """The image cannot be built here; the message says why (and what to install)."""


@dataclass(frozen=True)
class GuestImage:
    """One built image: the root tree, its ext4 file system, and the kernel to boot it with."""

    directory: Path

    @property
    def root(self) -> Path:
        return self.directory / "root"

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs.img"

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def build_seconds(self) -> float | None:
        """How long the image's build took."""
        stamp = self.directory / "build-seconds"
        return float(stamp.read_text()) if stamp.is_file() else None


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)


def recipe_key() -> str:
    return hashlib.sha256(RECIPE.read_bytes()).hexdigest()[:16]


@dataclass(frozen=True)
class Mirrors:
    debian: str
    security: str


def _host_source_entries(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each `deb` source in a one-line or deb822 apt sources file."""
    entries: list[tuple[str, list[str]]] = []
    if not deb822:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
        return entries
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        enabled = fields.get("enabled", "yes").lower() != "no"
        if enabled and "deb" in fields.get("types", "").split():
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split()))
    return entries


def mirrors() -> Mirrors:
    """The Debian and Debian security archives: the environment's, else the host's apt sources."""
    debian = os.environ.get(MIRROR_ENV)
    security = os.environ.get(SECURITY_MIRROR_ENV)
    # Another distribution's sources (Ubuntu's, say) are no Debian mirror.
    for path in HOST_SOURCES if _host_is_debian() else ():
        if debian and security:
            break
        if not path.is_file():
            continue
        for uri, suites in _host_source_entries(path.read_text(), path.suffix == ".sources"):
            if any(s.endswith("-security") for s in suites):
                security = security or uri
            elif suites:
                debian = debian or uri
    if not debian or not security:
        raise ImageUnavailable(
            "no Debian mirror: the host's apt sources name none; "
            f"set {MIRROR_ENV} and {SECURITY_MIRROR_ENV}"
        )
    return Mirrors(debian.rstrip("/"), security.rstrip("/"))


def _host_is_debian() -> bool:
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return re.search(r"^ID=\"?debian\"?$", release, re.MULTILINE) is not None


def missing_build_tools() -> list[str]:
    return sorted({pkg for tool, pkg in BUILD_TOOLS.items() if not _which(tool)})


def _which(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_image() -> GuestImage | None:
    """The image for the current recipe, if it has been built."""
    image = GuestImage(cache_dir() / f"debian12-{recipe_key()}")
    return image if (image.directory / "complete").is_file() else None


def ensure_image(log: Path | None = None) -> GuestImage:
    """The cached image for the current recipe, building it first if needed."""
    found = cached_image()
    if found:
        return found
    missing = missing_build_tools()
    if missing:
        raise ImageUnavailable(f"building the guest image needs: {' '.join(missing)}")
    if os.geteuid() != 0:
        raise ImageUnavailable("building the guest image needs root (mmdebstrap --mode=root)")
    sources = mirrors()
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with _locked(cache / "build.lock"):
        # Another process may have finished the build while this one waited for the lock.
        found = cached_image()
        if found:
            return found
        _remove_stale_builds(cache)
        image = GuestImage(cache / f"debian12-{recipe_key()}")
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        env = {
            **os.environ,
            MIRROR_ENV: sources.debian,
            SECURITY_MIRROR_ENV: sources.security,
        }
        started = time.monotonic()
        log_path = log or work.with_suffix(".log")
        with log_path.open("wb") as output:
            result = subprocess.run(
                ["bash", str(RECIPE), str(work)],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                check=False,
            )
        if result.returncode != 0:
            tail = log_path.read_text(errors="replace")[-3000:]
            shutil.rmtree(work, ignore_errors=True)
            raise RuntimeError(f"building the guest image failed ({log_path}):\n{tail}")
        (work / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        (work / "complete").touch()
        shutil.rmtree(image.directory, ignore_errors=True)
        work.rename(image.directory)
        return image


def _remove_stale_builds(cache: Path) -> None:
    """Interrupted builds (temporary directories) and images of older recipes."""
    current = f"debian12-{recipe_key()}"
    for entry in cache.iterdir():
        if entry.name.startswith(".build-") or (
            entry.name.startswith("debian12-") and entry.name != current
        ):
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


def main() -> int:
    started = time.monotonic()
    try:
        image = ensure_image()
    except ImageUnavailable as exc:
        print(f"guest image: {exc}", file=sys.stderr)
        return 2
    built = f", built in {image.build_seconds:.0f} s" if image.build_seconds else ""
    print(f"guest image: {image.directory} ({time.monotonic() - started:.0f} s{built})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
