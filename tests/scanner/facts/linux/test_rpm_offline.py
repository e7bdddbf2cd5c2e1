"""Pending updates of RPM images offline: rpm database + cached repodata, written by the real tools.

The image: v1 packages installed (rpm --justdb into rpmdb.sqlite); a repository (createrepo_c)
with v2 packages, some covered by a security advisory (modifyrepo_c), and v3 packages that no
security advisory covers; its metadata cached as dnf caches it. Where dnf is installed, dnf itself
judges the same image and must agree.
"""

from __future__ import annotations

import bz2
import gzip
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from checks.linux.system import packages_up_to_date
from scanner.facts.base import FactFailed, FactUnavailable
from scanner.facts.linux.system import PENDING_UPDATES, PendingUpdates
from scanner.model import Status
from tests.factbuilders import build_offline_facts, run
from tests.rpmimage import (
    DNF_REPO_DIR,
    Pkg,
    build_rpm,
    dnf_command,
    dnf_env,
    dnf_makecache,
    install_rpmdb,
    make_repo,
    require_tools,
    to_berkeley_db,
    updateinfo_xml,
)

AMZN = "amzn2023"
INSTALLED = [
    Pkg("openssl", 1, "3.0.8", f"1.{AMZN}", "x86_64"),
    Pkg("curl", 0, "8.5.0", f"1.{AMZN}", "x86_64"),
    Pkg("tzdata", 0, "2024a", f"1.{AMZN}", "noarch"),
    Pkg("kernel", 0, "6.1.10", f"1.{AMZN}", "x86_64"),
    Pkg("kernel", 0, "6.1.20", f"1.{AMZN}", "x86_64"),
    Pkg("zlib", 0, "1.2.13", f"3.{AMZN}", "x86_64"),
    Pkg("local-tool", 0, "1.0", "1", "x86_64"),
]
SECURITY_V2 = [
    Pkg("openssl", 1, "3.0.8", f"2.{AMZN}", "x86_64"),
    Pkg("curl", 0, "8.5.0", f"2.{AMZN}", "x86_64"),
]
OTHER_V3 = [
    Pkg("openssl", 1, "3.0.8", f"3.{AMZN}", "x86_64"),
    Pkg("tzdata", 0, "2024b", f"1.{AMZN}", "noarch"),
    Pkg("kernel", 0, "6.1.30", f"1.{AMZN}", "x86_64"),
    # Older than installed: never a candidate. A tilde sorts before the release it precedes.
    Pkg("zlib", 0, "1.2.13~rc1", f"9.{AMZN}", "x86_64"),
    # The same name in another arch is not an update of the installed x86_64 package.
    Pkg("curl", 0, "9.0.0", f"1.{AMZN}", "i686"),
]
ADVISORIES = [
    ("ALAS2023-2026-101", "security", [SECURITY_V2[0]]),
    ("ALAS2023-2026-102", "security", [SECURITY_V2[1]]),
    ("ALAS2023-2026-103", "bugfix", [OTHER_V3[1]]),
    # Fixed in a version older than installed: nothing pending.
    ("ALAS2023-2026-001", "security", [Pkg("zlib", 0, "1.2.13", f"1.{AMZN}", "x86_64")]),
]
EXPECTED_SECURITY = (
    f"curl 8.5.0-1.{AMZN} -> 8.5.0-2.{AMZN} (ALAS2023-2026-102)",
    f"openssl 1:3.0.8-1.{AMZN} -> 1:3.0.8-3.{AMZN} (ALAS2023-2026-101)",
)
EXPECTED_OTHER = (
    f"kernel 6.1.20-1.{AMZN} -> 6.1.30-1.{AMZN} (local)",
    f"tzdata 2024a-1.{AMZN} -> 2024b-1.{AMZN} (local)",
)
CACHED_TYPES = ("repomd.xml", "-primary.xml.gz", "-updateinfo.xml.gz")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built packages, repository and a pristine image root (built once per module)."""
    require_tools("rpmbuild", "rpm", "createrepo_c", "modifyrepo_c")
    work = tmp_path_factory.mktemp("rpm")
    installed = [build_rpm(work, p) for p in INSTALLED]
    available = [build_rpm(work, p) for p in SECURITY_V2 + OTHER_V3]
    root = work / "image"
    install_rpmdb(root, installed)
    repo = make_repo(work / "repo", available, updateinfo_xml(ADVISORIES))
    cache = root / DNF_REPO_DIR.lstrip("/") / "repodata"
    cache.mkdir(parents=True)
    # What dnf keeps of a repository: repomd.xml and the files it fetched (not the sqlite ones).
    for item in (repo / "repodata").iterdir():
        if item.name.endswith(CACHED_TYPES):
            shutil.copy(item, cache / item.name)
    return work


@pytest.fixture
def image(built: Path, tmp_path: Path) -> Path:
    """A fresh copy of the image root for one test to change."""
    root = tmp_path / "image"
    shutil.copytree(built / "image", root, symlinks=True)
    return root


def pending(root: Path) -> PendingUpdates:
    return build_offline_facts(root, {}).get(PENDING_UPDATES)


def _cache(root: Path) -> Path:
    return root / DNF_REPO_DIR.lstrip("/") / "repodata"


def _one(directory: Path, suffix: str) -> Path:
    (found,) = [p for p in directory.iterdir() if p.name.endswith(suffix)]
    return found


def test_security_and_other_updates_come_from_the_cached_repodata(image: Path) -> None:
    result = pending(image)
    assert result.manager == "dnf"
    assert result.security == EXPECTED_SECURITY
    assert result.other == EXPECTED_OTHER
    assert result.refreshed is False
    repomd = (_cache(image) / "repomd.xml").read_text()
    stamp = int(repomd.split("<timestamp>")[1].split("<")[0])
    from datetime import UTC, datetime

    assert result.lists_date == datetime.fromtimestamp(stamp, UTC).date().isoformat()


def test_the_check_fails_naming_the_metadata_and_its_date(image: Path) -> None:
    outcome = run(packages_up_to_date, build_offline_facts(image, {}))
    assert outcome.status is Status.FAIL
    assert "2 pending security update(s)" in outcome.summary
    assert "per the image's dnf repository metadata fetched on 20" in outcome.summary


def test_dnf_itself_lists_the_same_updates(built: Path, image: Path, tmp_path: Path) -> None:
    """The strongest check: dnf's own answer from the same rpm database and metadata cache."""
    require_tools("dnf", required_by="AMISCAN_REQUIRE_DNF")
    shutil.rmtree(image / "var/cache/dnf")
    home = tmp_path / "home"
    dnf_makecache(image, built / "repo", home)
    ours = pending(image)
    command = [*dnf_command(image, home), "-C"]
    listed = subprocess.run(
        [*command, "updateinfo", "list", "--security"],
        env=dnf_env(home),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    # "ALAS2023-2026-101 Important/Sec. openssl-1:3.0.8-2.amzn2023.x86_64"
    dnf_security = sorted(
        (line.split()[2].split("-")[0], line.split()[0]) for line in listed if line.strip()
    )
    assert dnf_security == sorted(
        (s.split()[0], s.split("(")[1].rstrip(")")) for s in ours.security
    )
    upgrades = subprocess.run(
        [*command, "check-update"], env=dnf_env(home), capture_output=True, text=True, check=False
    )
    assert upgrades.returncode == 100, upgrades.stderr
    dnf_all = sorted(
        (line.split()[0].rsplit(".", 1)[0], line.split()[1])
        for line in upgrades.stdout.splitlines()
        if line.strip()
    )
    ours_all = sorted(
        (s.split()[0], s.split(" -> ")[1].split()[0]) for s in ours.security + ours.other
    )
    assert dnf_all == ours_all


def test_no_cached_metadata_is_skipped_with_that_reason(image: Path) -> None:
    shutil.rmtree(image / "var/cache/dnf")
    with pytest.raises(FactUnavailable, match="no dnf or yum repository metadata"):
        pending(image)


def test_the_check_skips_without_metadata(image: Path) -> None:
    shutil.rmtree(image / "var/cache/dnf")
    outcome = run(packages_up_to_date, build_offline_facts(image, {}))
    assert outcome.status is Status.SKIP


def test_a_zchunk_primary_is_an_error_naming_the_file(image: Path) -> None:
    primary = _one(_cache(image), "-primary.xml.gz")
    zck = primary.with_name(primary.name.replace(".xml.gz", ".xml.zck"))
    primary.rename(zck)
    repomd = _cache(image) / "repomd.xml"
    repomd.write_text(repomd.read_text().replace(primary.name, zck.name))
    with pytest.raises(FactFailed, match=r"primary\.xml\.zck is zchunk-compressed"):
        pending(image)


def test_a_corrupt_rpm_database_is_an_error(image: Path) -> None:
    (image / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"SQLite format 3\0" + b"\xff" * 4000)
    with pytest.raises(FactFailed, match="not a readable rpm sqlite database"):
        pending(image)


def test_a_header_whose_counts_run_past_its_end_is_an_error(image: Path) -> None:
    database = image / "var/lib/rpm/rpmdb.sqlite"
    with sqlite3.connect(database) as connection:
        hnum, blob = connection.execute("SELECT hnum, blob FROM Packages LIMIT 1").fetchone()
        hostile = b"\x00\x00\x10\x00\x00\x10\x00\x00" + bytes(blob)[8:]
        connection.execute("UPDATE Packages SET blob = ? WHERE hnum = ?", (hostile, hnum))
    with pytest.raises(FactFailed, match=f"package record {hnum}: .*run past"):
        pending(image)


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE repomd [<!ENTITY a "aaaaaaaaaa">]>',
        '<!DOCTYPE repomd SYSTEM "file:///etc/passwd">',
    ],
)
def test_metadata_with_a_doctype_is_refused(image: Path, prolog: str) -> None:
    repomd = _cache(image) / "repomd.xml"
    text = repomd.read_text()
    head, _, rest = text.partition("?>")
    repomd.write_text(f"{head}?>\n{prolog}{rest}")
    with pytest.raises(FactFailed, match="DOCTYPE"):
        pending(image)


def test_a_berkeley_db_rpm_database_gives_the_same_answer(image: Path) -> None:
    require_tools("db_load")
    sqlite_db = image / "var/lib/rpm/rpmdb.sqlite"
    to_berkeley_db(sqlite_db, image / "var/lib/rpm/Packages")
    sqlite_db.unlink()
    result = pending(image)
    assert (result.security, result.other) == (EXPECTED_SECURITY, EXPECTED_OTHER)


def test_rpm_itself_reads_the_berkeley_db_this_suite_writes(image: Path, tmp_path: Path) -> None:
    """The BDB test above is only as good as its database: rpm's own bdb_ro reads it too."""
    require_tools("db_load", "rpm")
    target = tmp_path / "bdb" / "Packages"
    to_berkeley_db(image / "var/lib/rpm/rpmdb.sqlite", target)
    listed = subprocess.run(
        ["rpm", "--define", "_db_backend bdb_ro", "--dbpath", str(target.parent), "-qa"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(listed) == len(INSTALLED)


def test_an_ndb_rpm_database_is_an_error_saying_so(image: Path) -> None:
    (image / "var/lib/rpm/rpmdb.sqlite").unlink()
    (image / "var/lib/rpm/Packages.db").write_bytes(b"RpmP" + b"\0" * 60)
    with pytest.raises(FactFailed, match="ndb rpm database"):
        pending(image)


def test_a_corrupt_berkeley_db_is_an_error(image: Path) -> None:
    (image / "var/lib/rpm/rpmdb.sqlite").unlink()
    (image / "var/lib/rpm/Packages").write_bytes(b"\0" * 8192)
    with pytest.raises(FactFailed, match="not a readable Berkeley DB"):
        pending(image)


def test_dnf5_cache_is_read_too(image: Path) -> None:
    (image / "var/cache/dnf").rename(image / "var/cache/libdnf5")
    result = pending(image)
    assert (result.security, result.other) == (EXPECTED_SECURITY, EXPECTED_OTHER)


def test_rpmdb_under_usr_lib_sysimage_is_read(image: Path) -> None:
    (image / "usr/lib/sysimage").mkdir(parents=True)
    (image / "var/lib/rpm").rename(image / "usr/lib/sysimage/rpm")
    (image / "var/lib/rpm").symlink_to("../../usr/lib/sysimage/rpm")
    assert pending(image).security == EXPECTED_SECURITY


def test_yum_cache_with_a_sqlite_primary(built: Path, image: Path) -> None:
    """yum 3 (Amazon Linux 2, RHEL 7): files beside repomd.xml, the primary as sqlite.bz2."""
    shutil.rmtree(image / "var/cache/dnf")
    repodata = built / "repo" / "repodata"
    target = image / "var/cache/yum/x86_64/2/local"
    target.mkdir(parents=True)
    for suffix in ("repomd.xml", "-primary.sqlite.bz2", "-updateinfo.xml.gz"):
        shutil.copy(_one(repodata, suffix), target)
    result = pending(image)
    assert result.manager == "yum"
    assert (result.security, result.other) == (EXPECTED_SECURITY, EXPECTED_OTHER)


def test_yum_gen_copies_are_read_when_the_fetched_files_are_gone(built: Path, image: Path) -> None:
    shutil.rmtree(image / "var/cache/dnf")
    repodata = built / "repo" / "repodata"
    target = image / "var/cache/yum/x86_64/2/local"
    (target / "gen").mkdir(parents=True)
    shutil.copy(repodata / "repomd.xml", target)
    primary = bz2.decompress(_one(repodata, "-primary.sqlite.bz2").read_bytes())
    (target / "gen/primary_db.sqlite").write_bytes(primary)
    updateinfo = gzip.decompress(_one(repodata, "-updateinfo.xml.gz").read_bytes())
    (target / "gen/updateinfo.xml").write_bytes(updateinfo)
    result = pending(image)
    assert (result.security, result.other) == (EXPECTED_SECURITY, EXPECTED_OTHER)


def test_an_uncached_updateinfo_is_an_error_when_updates_are_pending(image: Path) -> None:
    _one(_cache(image), "-updateinfo.xml.gz").unlink()
    with pytest.raises(FactFailed, match=r"updateinfo .* not in the image"):
        pending(image)


def test_a_primary_named_but_not_cached_is_an_error(image: Path) -> None:
    _one(_cache(image), "-primary.xml.gz").unlink()
    with pytest.raises(FactFailed, match="primary package list that is not in the image"):
        pending(image)


def test_an_image_with_neither_package_database_is_skipped(tmp_path: Path) -> None:
    facts = build_offline_facts(tmp_path / "bare", {"/etc/os-release": "ID=amzn\n"})
    with pytest.raises(FactUnavailable, match=r"neither dpkg's .* nor an rpm database"):
        facts.get(PENDING_UPDATES)
