"""rpm-md metadata: repomd.xml, primary.xml and updateinfo.xml as createrepo_c writes them."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.parsers.rpm import Evr
from scanner.parsers.rpmmd import (
    BadMetadata,
    Repomd,
    RepomdData,
    RepoPackage,
    advisories,
    parse_repomd,
    primary_packages,
)
from tests.rpmimage import Pkg, build_rpm, make_repo, require_tools, updateinfo_xml

V2 = Pkg("openssl", 1, "3.0.8", "2.amzn2023", "x86_64")
V3 = Pkg("tzdata", 0, "2024b", "1.amzn2023", "noarch")


@pytest.fixture(scope="module")
def repodata(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_tools("rpmbuild", "createrepo_c", "modifyrepo_c")
    work = tmp_path_factory.mktemp("rpmmd")
    rpms = [build_rpm(work, p) for p in (V2, V3)]
    advisories_ = [("ALAS2023-2026-1", "security", [V2]), ("ALAS2023-2026-2", "bugfix", [V3])]
    return make_repo(work / "repo", rpms, updateinfo_xml(advisories_)) / "repodata"


def chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    """Small chunks, so that elements and text straddle chunk boundaries."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _one(directory: Path, suffix: str) -> Path:
    (found,) = [p for p in directory.iterdir() if p.name.endswith(suffix)]
    return found


def test_repomd_written_by_createrepo_c(repodata: Path) -> None:
    repomd = parse_repomd(chunks((repodata / "repomd.xml").read_bytes()))
    assert {"primary", "primary_db", "updateinfo", "filelists"} <= set(repomd.data)
    primary = repomd.data["primary"]
    assert primary.href.startswith("repodata/") and primary.href.endswith("-primary.xml.gz")
    assert repomd.revision is not None and repomd.revision.isdigit()
    assert repomd.date() == datetime.fromtimestamp(int(repomd.revision), UTC)


def test_repomd_date_falls_back_to_a_numeric_revision() -> None:
    assert Repomd("1700000000", {}).date() == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert Repomd("release-7", {"primary": RepomdData("p", None)}).date() is None


def test_primary_written_by_createrepo_c(repodata: Path) -> None:
    data = gzip.decompress(_one(repodata, "-primary.xml.gz").read_bytes())
    assert sorted(primary_packages(chunks(data)), key=lambda p: p.name) == [
        RepoPackage("openssl", "x86_64", Evr(1, "3.0.8", "2.amzn2023")),
        RepoPackage("tzdata", "noarch", Evr(0, "2024b", "1.amzn2023")),
    ]


def test_updateinfo_written_by_modifyrepo_c(repodata: Path) -> None:
    data = gzip.decompress(_one(repodata, "-updateinfo.xml.gz").read_bytes())
    found = {a.id: a for a in advisories(chunks(data))}
    assert found["ALAS2023-2026-1"].type == "security"
    assert found["ALAS2023-2026-1"].packages == (
        RepoPackage("openssl", "x86_64", Evr(1, "3.0.8", "2.amzn2023")),
    )
    assert found["ALAS2023-2026-2"].type == "bugfix"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE updates [
 <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
 <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
 <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<updates><update type="security"><id>&c;</id></update></updates>
"""


@pytest.mark.parametrize(
    "document",
    [
        BOMB,
        b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "file:///etc/passwd"><repomd/>',
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://x/">%p;]><repomd/>',
    ],
)
def test_a_doctype_is_refused_before_any_entity_is_expanded(document: bytes) -> None:
    for parse in (parse_repomd, lambda c: list(primary_packages(c)), lambda c: list(advisories(c))):
        with pytest.raises(BadMetadata, match="DOCTYPE"):
            parse(chunks(document, 4096))


def test_not_well_formed_xml_is_refused() -> None:
    with pytest.raises(BadMetadata, match="not well-formed"):
        list(primary_packages([b"<metadata><package><name>x</metadata>"]))


def test_a_truncated_document_is_refused() -> None:
    with pytest.raises(BadMetadata, match="not well-formed"):
        list(primary_packages([b'<metadata><package type="rpm"><name>x</name>']))


def test_a_negative_epoch_is_refused() -> None:
    document = (
        b'<metadata><package type="rpm"><name>x</name><arch>noarch</arch>'
        b'<version epoch="-1" ver="1" rel="1"/></package></metadata>'
    )
    with pytest.raises(BadMetadata, match="bad epoch"):
        list(primary_packages([document]))


def test_rpm_entries_inside_format_are_not_taken_for_the_package() -> None:
    document = (
        b'<metadata xmlns:rpm="r"><package type="rpm"><name>x</name><arch>noarch</arch>'
        b'<version ver="1" rel="1"/><format><rpm:provides>'
        b'<rpm:entry name="y" ver="9" rel="9"/></rpm:provides></format></package></metadata>'
    )
    assert list(primary_packages([document])) == [RepoPackage("x", "noarch", Evr(0, "1", "1"))]
