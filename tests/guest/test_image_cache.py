"""The image cache's own rules, with a stand-in recipe (fast; part of the default suite).

A failed or interrupted build must leave no image behind, a finished one is found again without
rebuilding, and a changed recipe builds anew; mirrors come from the host's apt sources.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.guest import image

FAKE_RECIPE = """#!/usr/bin/env bash
set -euo pipefail
echo "$AMISCAN_GUEST_MIRROR $AMISCAN_GUEST_SECURITY_MIRROR" >>"$COUNTER"
[ -z "${FAIL:-}" ] || exit 1
mkdir -p "$1/root/etc"
touch "$1/rootfs.img" "$1/vmlinuz" "$1/initrd.img"
"""


@pytest.fixture
def fake_build(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A recipe that records each run in a counter file, and a private cache."""
    recipe = tmp_path / "build-image.sh"
    recipe.write_text(FAKE_RECIPE)
    counter = tmp_path / "runs"
    monkeypatch.setattr(image, "RECIPE", recipe)
    monkeypatch.setattr(image, "missing_build_tools", list)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv(image.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(image.MIRROR_ENV, "http://mirror.invalid/debian")
    monkeypatch.setenv(image.SECURITY_MIRROR_ENV, "http://mirror.invalid/debian-security")
    monkeypatch.setenv("COUNTER", str(counter))
    return counter


def test_a_failed_build_leaves_no_image_and_the_next_build_is_cached(
    fake_build: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(RuntimeError, match="building the guest image failed"):
        image.ensure_image()
    assert image.cached_image() is None
    assert not [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]

    monkeypatch.delenv("FAIL")
    built = image.ensure_image()
    assert (built.root / "etc").is_dir() and built.kernel.is_file()
    assert image.ensure_image() == built
    assert (
        fake_build.read_text().splitlines()
        == ["http://mirror.invalid/debian http://mirror.invalid/debian-security"] * 2
    )


def test_a_changed_recipe_builds_a_new_image_and_drops_the_old(
    fake_build: Path, tmp_path: Path
) -> None:
    first = image.ensure_image()
    image.RECIPE.write_text(FAKE_RECIPE + "# a changed step\n")
    second = image.ensure_image()
    assert second.directory != first.directory
    assert not first.directory.exists()
    assert len(fake_build.read_text().splitlines()) == 2


def test_mirrors_are_read_from_one_line_and_deb822_sources() -> None:
    one_line = (
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://m.invalid/debian bookworm main\n"
        "# deb http://old.invalid/debian bookworm main\n"
        "deb-src http://m.invalid/debian bookworm main\n"
        "deb http://m.invalid/debian-security bookworm-security main\n"
    )
    assert image._host_source_entries(one_line, deb822=False) == [
        ("http://m.invalid/debian", ["bookworm"]),
        ("http://m.invalid/debian-security", ["bookworm-security"]),
    ]
    deb822 = (
        "Types: deb\nURIs: http://m.invalid/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://m.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n"
    )
    assert image._host_source_entries(deb822, deb822=True) == [
        ("http://m.invalid/debian", ["bookworm", "bookworm-updates"]),
        ("http://m.invalid/debian-security", ["bookworm-security"]),
    ]
