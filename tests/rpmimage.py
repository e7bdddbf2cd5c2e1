"""RPM image trees written by the real tools: rpmbuild, rpm (--justdb), createrepo_c, dnf.

The Debian packages `rpm` and `createrepo-c` (and `dnf` for the cross-check, `db-util` for the
Berkeley DB database) provide them; tests that need a missing one skip (or fail under
AMISCAN_REQUIRE_RPM=1, as CI sets).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

_SPEC = """\
Name: %{pname}
Version: %{pver}
Release: %{prel}
Epoch: %{pepoch}
Summary: amiscan test package
License: MIT
%{?pnoarch:BuildArch: noarch}
%description
amiscan test package
%files
"""


def require_tools(*tools: str, required_by: str = "AMISCAN_REQUIRE_RPM") -> None:
    """Skip the test unless every tool is installed (fail instead when `required_by` is 1).

    CI sets AMISCAN_REQUIRE_RPM (rpm, createrepo-c, db-util) and AMISCAN_REQUIRE_DNF (dnf, whose
    own answer the offline judgement is checked against).
    """
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        message = f"needs {', '.join(missing)} (Debian packages rpm, createrepo-c, dnf, db-util)"
        if os.environ.get(required_by) == "1":
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class Pkg:
    name: str
    epoch: int
    version: str
    release: str
    arch: str

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.version}-{self.release}.{self.arch}.rpm"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, env=env, timeout=120
    )
    if done.returncode not in (0, 100):
        raise AssertionError(f"{args[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def build_rpm(workdir: Path, pkg: Pkg) -> Path:
    """A package with no files, built by rpmbuild (cached in workdir by its file name)."""
    out = workdir / "rpms" / pkg.filename
    if out.exists():
        return out
    spec = workdir / "pkg.spec"
    spec.write_text(_SPEC)
    top = workdir / "top"
    defines = {
        "_topdir": str(top),
        "pname": pkg.name,
        "pver": pkg.version,
        "prel": pkg.release,
        "pepoch": str(pkg.epoch),
        **({"pnoarch": "1"} if pkg.arch == "noarch" else {}),
        "_build_id_links": "none",
    }
    # --target: build any arch on any host (the packages hold no compiled code).
    target = [] if pkg.arch == "noarch" else ["--target", pkg.arch]
    args: list[str | Path] = ["rpmbuild", "-bb", "--quiet", *target]
    for key, value in defines.items():
        args += ["--define", f"{key} {value}"]
    _run(*args, spec)
    out.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(top / "RPMS" / pkg.arch / pkg.filename, out)
    return out


def install_rpmdb(root: Path, rpms: list[Path], dbpath: str = "/var/lib/rpm") -> Path:
    """Record the packages as installed in ROOT's rpm database (sqlite), as rpm itself writes it."""
    base = ["rpm", "--root", str(root), "--dbpath", dbpath, "--define", "_db_backend sqlite"]
    _run(*base, "--initdb")
    _run(*base, "-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch", "--ignoreos", *rpms)
    return root / dbpath.lstrip("/") / "rpmdb.sqlite"


def to_berkeley_db(sqlite_db: Path, target: Path) -> None:
    """The same packages as a Berkeley DB hash `Packages` (rpm's pre-4.16 format), written by
    Berkeley DB's own db_load: keys are native-endian instance numbers, key 0 the last one."""
    with sqlite3.connect(sqlite_db) as connection:
        rows = list(connection.execute("SELECT hnum, blob FROM Packages"))
    lines = ["VERSION=3", "format=bytevalue", "type=hash", "db_pagesize=4096", "HEADER=END"]
    last = max(h for h, _ in rows)
    lines += [" " + struct.pack("<I", 0).hex(), " " + struct.pack("<I", last).hex()]
    for hnum, blob in rows:
        lines += [" " + struct.pack("<I", hnum).hex(), " " + bytes(blob).hex()]
    lines.append("DATA=END")
    target.parent.mkdir(parents=True, exist_ok=True)
    dump = target.with_suffix(".dump")
    dump.write_text("\n".join(lines) + "\n")
    _run("db_load", "-f", dump, target)
    dump.unlink()


def updateinfo_xml(advisories: list[tuple[str, str, list[Pkg]]]) -> str:
    """An updateinfo.xml in the format distributions publish (one <update> per advisory)."""
    updates = []
    for ident, kind, packages in advisories:
        entries = "".join(
            f'<package name="{p.name}" version="{p.version}" release="{p.release}" '
            f'epoch="{p.epoch}" arch="{p.arch}" src="{p.name}-{p.version}-{p.release}.src.rpm">'
            f"<filename>{p.filename}</filename></package>\n"
            for p in packages
        )
        updates.append(
            textwrap.dedent(f"""\
            <update from="security@example.com" status="final" type="{kind}" version="2.0">
              <id>{ident}</id>
              <title>{ident}</title>
              <issued date="2026-01-01 00:00:00"/>
              <severity>Important</severity>
              <description>test advisory</description>
              <references/>
              <pkglist><collection short="test"><name>test</name>
            """)
            + entries
            + "</collection></pkglist>\n</update>\n"
        )
    return '<?xml version="1.0" encoding="UTF-8"?>\n<updates>\n' + "".join(updates) + "</updates>\n"


def make_repo(directory: Path, rpms: list[Path], updateinfo: str | None) -> Path:
    """A repository made by createrepo_c (with modifyrepo_c adding the updateinfo)."""
    directory.mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copy(rpm, directory / rpm.name)
    _run("createrepo_c", "-q", directory)
    if updateinfo is not None:
        source = directory.parent / "updateinfo.xml"
        source.write_text(updateinfo)
        _run("modifyrepo_c", "--mdtype=updateinfo", source, directory / "repodata")
    return directory


DNF_REPO_DIR = "/var/cache/dnf/local-0123456789abcdef"


def dnf_makecache(root: Path, repo: Path, home: Path) -> None:
    """Let dnf itself fetch the repository's metadata into ROOT's cache (file:// baseurl)."""
    repos = root / "etc/yum.repos.d"
    repos.mkdir(parents=True, exist_ok=True)
    (repos / "local.repo").write_text(
        f"[local]\nname=local\nbaseurl=file://{repo}\ngpgcheck=0\nenabled=1\n"
    )
    _run(*dnf_command(root, home), "makecache", env=dnf_env(home))


def dnf_env(home: Path) -> dict[str, str]:
    # Debian's rpm keeps its database in ~/.rpmdb; an image keeps it in /var/lib/rpm.
    home.mkdir(parents=True, exist_ok=True)
    (home / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    return {**os.environ, "HOME": str(home)}


def dnf_command(root: Path, home: Path) -> list[str]:
    return [
        "dnf",
        "-q",
        f"--installroot={root}",
        "--releasever=2023",
        f"--setopt=reposdir={root}/etc/yum.repos.d",
    ]
