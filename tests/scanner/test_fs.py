"""Guest file views: ImageRoot (an image root on disk, read strictly inside it), MemoryTree (files
copied back from a live host), and the shell-style `glob` both share."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scanner.fs import (
    READ_LIMIT,
    FileRead,
    FileTooLarge,
    ImageRoot,
    MemoryTree,
    ReadRefused,
    TooManyEntries,
    WalkBounds,
    glob,
    read_text,
    read_text_or_none,
)


def make_tree(
    root: Path, files: dict[str, str | bytes], links: dict[str, str] | None = None
) -> None:
    """Files (guest path -> contents) and symlinks (guest path -> target, verbatim) under root."""
    for guest, content in files.items():
        path = root / guest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    for guest, target in (links or {}).items():
        path = root / guest.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """An image root and, beside it, a directory standing for this machine's files."""
    root, host = tmp_path / "root", tmp_path / "host"
    make_tree(host, {"etc/shadow": "HOST-SHADOW\n", "secret": "HOST-SECRET\n"})
    make_tree(
        root,
        {
            "etc/passwd": "root:x:0:0::/root:/bin/bash\n",
            "etc/hostname": "image\n",
            "usr/lib/os-release": "ID=amzn\n",
            "usr/share/base/shadow": "IMAGE-SHADOW\n",
            "data/home/u/.bashrc": "# rc\n",
            "data/home/u/.ssh/authorized_keys": "ssh-ed25519 AAAA\n",
        },
    )
    return root, host


# --------------------------------------------------------------------------------------------
# ImageRoot: symlinks resolve inside the root


def test_an_absolute_symlink_resolves_against_the_image_root(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    make_tree(root, {}, {"etc/shadow": "/usr/share/base/shadow"})
    assert ImageRoot(root).read_bytes("/etc/shadow") == b"IMAGE-SHADOW\n"


def test_a_relative_symlink_resolves_from_its_own_directory(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    make_tree(root, {}, {"etc/os-release": "../usr/lib/os-release"})
    assert read_text(ImageRoot(root), "/etc/os-release") == "ID=amzn\n"


def test_dotdot_in_a_path_or_a_link_never_climbs_above_the_root(
    layout: tuple[Path, Path],
) -> None:
    root, host = layout
    # From root/home/u/.aws, four `..` reach the directory that holds both root and host.
    link = "home/u/.aws/credentials"
    make_tree(root, {"host/secret": "IMAGE-SECRET\n"}, {link: "../../../../host/secret"})
    assert (root / link).read_text() == (host / "secret").read_text()  # the kernel escapes
    image = ImageRoot(root)
    assert image.read_bytes("/" + link) == b"IMAGE-SECRET\n"
    assert image.read_bytes("/../../../etc/passwd") == (root / "etc/passwd").read_bytes()


def test_a_symlink_to_this_machines_absolute_path_reads_nothing_outside_the_root(
    layout: tuple[Path, Path],
) -> None:
    root, host = layout
    make_tree(root, {}, {"root/.bash_history": str(host / "secret"), "opt/host": str(host)})
    image = ImageRoot(root)
    with pytest.raises(FileNotFoundError):
        image.read_bytes("/root/.bash_history")
    assert not image.is_file("/root/.bash_history")
    assert not image.is_dir("/opt/host")
    assert image.list_dir("/opt/host") == []
    assert list(image.walk_files("/opt/host")) == []
    with pytest.raises(FileNotFoundError):
        image.size("/root/.bash_history")


def test_an_absolute_symlink_to_a_path_this_machine_also_has_reads_the_image_file(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    # /etc/hostname exists on every test machine too; the image's own must be read.
    make_tree(root, {}, {"root/.bash_history": "/etc/hostname"})
    image = ImageRoot(root)
    assert image.read_bytes("/root/.bash_history") == b"image\n"
    assert image.size("/root/.bash_history") == len(b"image\n")


def test_a_symlinked_directory_in_the_middle_of_a_path_resolves_inside_the_root(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    make_tree(root, {}, {"home": "/data/home"})
    image = ImageRoot(root)
    assert image.is_dir("/home/u/.ssh")
    assert image.read_bytes("/home/u/.ssh/authorized_keys") == b"ssh-ed25519 AAAA\n"
    assert image.list_dir("/home") == ["u"]


def test_a_dangling_symlink_is_neither_a_file_nor_a_directory(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    make_tree(root, {}, {"home": "/nonexistent", "etc/gone": "missing/file"})
    image = ImageRoot(root)
    for path in ("/home", "/home/u/.bashrc", "/etc/gone"):
        assert not image.is_file(path)
        assert not image.is_dir(path)
        assert image.list_dir(path) == []
        with pytest.raises(FileNotFoundError):
            image.read_bytes(path)
    assert read_text_or_none(image, "/home/u/.bashrc") is None


@pytest.mark.parametrize(
    "links",
    [
        {"etc/shadow": "shadow"},
        {"etc/a": "b", "etc/b": "/etc/a"},
        {"etc/loop": "../etc/loop/x"},
    ],
    ids=["self", "two-links", "through-itself"],
)
def test_a_symlink_loop_is_an_error_for_reads_and_absent_for_queries(
    tmp_path: Path, links: dict[str, str]
) -> None:
    make_tree(tmp_path, {"etc/passwd": "root:x:0:0::/root:/bin/sh\n"}, links)
    image = ImageRoot(tmp_path)
    for guest in links:
        path = "/" + guest
        with pytest.raises(OSError, match=r"symbolic links|No such|loop"):
            image.read_bytes(path)
        assert not image.is_file(path)
        assert not image.is_dir(path)
        assert image.list_dir(path) == []
        assert list(image.walk_files(path)) == []
        assert read_text_or_none(image, path) is None


def _chain(directory: Path, length: int) -> Path:
    """`link0 -> link1 -> ... -> link{length-1} -> target`: `length` symlinks to follow."""
    (directory / "target").write_text("end\n")
    for index in range(length):
        following = "target" if index == length - 1 else f"link{index + 1}"
        os.symlink(following, directory / f"link{index}")
    return directory / "link0"


@pytest.mark.parametrize("length", [40, 41])
def test_symlink_chains_resolve_exactly_as_far_as_the_linux_kernel_follows(
    tmp_path: Path, length: int
) -> None:
    start = _chain(tmp_path, length)
    kernel_reads_it = os.path.exists(start)  # the kernel's own verdict on this machine
    assert ImageRoot(tmp_path).is_file(f"/{start.name}") is kernel_reads_it


def test_the_root_may_itself_be_reached_through_a_symlink(layout: tuple[Path, Path]) -> None:
    root, host = layout
    alias = host.parent / "alias"
    alias.symlink_to(root)
    make_tree(root, {}, {"etc/shadow": "/usr/share/base/shadow"})
    image = ImageRoot(alias)
    assert image.root == root.resolve()
    assert image.read_bytes("/etc/shadow") == b"IMAGE-SHADOW\n"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_an_image_root_must_be_an_existing_directory(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "root"
    if kind == "file":
        path.write_text("not a directory\n")
    with pytest.raises(NotADirectoryError):
        ImageRoot(path)


# --------------------------------------------------------------------------------------------
# ImageRoot: reading, sizes, listings, walks


def test_read_bytes_honours_the_limit_and_refuses_directories(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    image = ImageRoot(root)
    assert image.read_bytes("/etc/passwd", limit=4) == b"root"
    with pytest.raises(IsADirectoryError):
        image.read_bytes("/etc")
    assert read_text_or_none(image, "/etc") is None


def test_text_that_is_not_utf8_is_replaced_not_an_error(tmp_path: Path) -> None:
    make_tree(tmp_path, {"etc/motd": b"caf\xe9\n"})
    assert read_text(ImageRoot(tmp_path), "/etc/motd") == "caf\ufffd\n"


def test_size_is_the_size_of_the_regular_file_a_path_names(layout: tuple[Path, Path]) -> None:
    root, _ = layout
    make_tree(root, {"var/log/big": b"x" * 5000}, {"var/log/link": "big"})
    image = ImageRoot(root)
    assert image.size("/var/log/big") == 5000
    assert image.size("/var/log/link") == 5000
    for path in ("/var/log", "/var/log/absent"):
        with pytest.raises(FileNotFoundError):
            image.size(path)


def test_list_dir_names_every_entry_sorted_including_dotfiles_and_links(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    make_tree(root, {"root/.bash_history": "", "root/b": "", "root/A": ""}, {"root/.z": "/nowhere"})
    (root / "root" / "dir").mkdir()
    image = ImageRoot(root)
    assert image.list_dir("/root") == [".bash_history", ".z", "A", "b", "dir"]
    assert image.list_dir("/etc/passwd") == []
    assert image.list_dir("/no/such/dir") == []


def test_walk_files_yields_regular_files_and_never_follows_symlinks(
    layout: tuple[Path, Path],
) -> None:
    root, host = layout
    make_tree(
        root,
        {"opt/app/a.conf": "", "opt/app/sub/b.conf": "", "opt/z": ""},
        {
            "opt/app/to-data": "/data",
            "opt/app/to-host": str(host),
            "opt/app/self": ".",
            "opt/app/link.conf": "a.conf",
        },
    )
    walked = list(ImageRoot(root).walk_files("/opt"))
    assert sorted(walked) == ["/opt/app/a.conf", "/opt/app/sub/b.conf", "/opt/z"]
    assert len(walked) == len(set(walked))


def test_walk_files_from_a_symlinked_top_walks_its_target_inside_the_root(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    make_tree(root, {}, {"home": "/data/home"})
    image = ImageRoot(root)
    walked = list(image.walk_files("/home"))
    assert walked == ["/data/home/u/.bashrc", "/data/home/u/.ssh/authorized_keys"]
    assert all(image.is_file(path) for path in walked)


def test_walk_files_of_a_file_or_a_missing_directory_yields_nothing(
    layout: tuple[Path, Path],
) -> None:
    root, _ = layout
    image = ImageRoot(root)
    assert list(image.walk_files("/etc/passwd")) == []
    assert list(image.walk_files("/srv")) == []


# --------------------------------------------------------------------------------------------
# MemoryTree


@pytest.fixture
def memory() -> MemoryTree:
    tree = MemoryTree()
    tree.add("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
    tree.add("/etc/ssh/../ssh/sshd_config", b"PasswordAuthentication no\n")
    tree.add("/etcetera/file", b"not under /etc\n")
    tree.add("/var/log/messages", b"first 10 bytes", size=10_000)
    return tree


def test_memory_tree_normalises_the_paths_it_is_given(memory: MemoryTree) -> None:
    assert memory.is_file("/etc/passwd")
    assert memory.is_file("/etc/ssh/sshd_config")
    assert memory.read_bytes("/etc/./ssh/sshd_config") == b"PasswordAuthentication no\n"


def test_memory_tree_reports_the_hosts_size_and_marks_truncated_copies(
    memory: MemoryTree,
) -> None:
    assert memory.size("/var/log/messages") == 10_000
    assert memory.files["/var/log/messages"].truncated
    assert not memory.files["/etc/passwd"].truncated
    assert memory.read_bytes("/var/log/messages", limit=5) == b"first"
    with pytest.raises(FileNotFoundError):
        memory.size("/etc/shadow")
    with pytest.raises(FileNotFoundError):
        memory.read_bytes("/etc/shadow")
    assert read_text_or_none(memory, "/etc/shadow") is None


def test_memory_tree_directories_are_the_parents_of_its_files(memory: MemoryTree) -> None:
    assert memory.is_dir("/")
    assert memory.is_dir("/etc/ssh")
    assert not memory.is_dir("/etc/passwd")
    assert not memory.is_file("/etc")
    assert not memory.is_dir("/etc/ss")


def test_memory_tree_lists_immediate_children_only(memory: MemoryTree) -> None:
    assert memory.list_dir("/") == ["etc", "etcetera", "var"]
    assert memory.list_dir("/etc") == ["passwd", "ssh"]
    assert memory.list_dir("/missing") == []


def test_memory_tree_walks_files_below_a_directory_not_beside_it(memory: MemoryTree) -> None:
    assert list(memory.walk_files("/etc")) == ["/etc/passwd", "/etc/ssh/sshd_config"]
    assert list(memory.walk_files("/")) == [
        "/etc/passwd",
        "/etc/ssh/sshd_config",
        "/etcetera/file",
        "/var/log/messages",
    ]


# --------------------------------------------------------------------------------------------
# glob, on both sources


def _glob_tree(tmp_path: Path) -> ImageRoot:
    make_tree(
        tmp_path,
        {
            "root/.bash_history": "",
            "root/.python_history": "",
            "root/history.txt": "",
            "home/alice/.ssh/authorized_keys": "",
            "home/bob/.ssh/authorized_keys2": "",
            "home/.hidden/.ssh/authorized_keys": "",
            "etc/ssh/sshd_config.d/10-a.conf": "",
            "etc/ssh/sshd_config.d/.00-hidden.conf": "",
            "etc/ssh/sshd_config.d/20-b.conf.bak": "",
            "etc/ssh/sshd_config.d/3.conf": "",
        },
    )
    return ImageRoot(tmp_path)


def _same_tree_in_memory(image: ImageRoot) -> MemoryTree:
    memory = MemoryTree()
    for path in image.walk_files("/"):
        memory.add(path, image.read_bytes(path))
    return memory


@pytest.mark.parametrize("source", ["image", "memory"])
@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("/root/*history*", ["/root/history.txt"]),
        ("/root/.*history", ["/root/.bash_history", "/root/.python_history"]),
        ("/home/*/.ssh/authorized_keys", ["/home/alice/.ssh/authorized_keys"]),
        ("/home/.*/.ssh/authorized_keys", ["/home/.hidden/.ssh/authorized_keys"]),
        (
            "/home/*/.ssh/authorized_keys?",
            ["/home/bob/.ssh/authorized_keys2"],
        ),
        (
            "/etc/ssh/sshd_config.d/*.conf",
            ["/etc/ssh/sshd_config.d/10-a.conf", "/etc/ssh/sshd_config.d/3.conf"],
        ),
        (
            "/etc/ssh/sshd_config.d/[0-9][0-9]-*",
            [
                "/etc/ssh/sshd_config.d/10-a.conf",
                "/etc/ssh/sshd_config.d/20-b.conf.bak",
            ],
        ),
        ("/etc/ssh/sshd_config.d/[!0-9]*", []),
        ("/etc/ssh/sshd_config.d", ["/etc/ssh/sshd_config.d"]),
        ("/etc/ssh/missing.conf", []),
        ("/nowhere/*/x", []),
    ],
)
def test_glob_matches_like_the_shell_and_wildcards_skip_leading_dots(
    tmp_path: Path, source: str, pattern: str, expected: list[str]
) -> None:
    image = _glob_tree(tmp_path)
    files = image if source == "image" else _same_tree_in_memory(image)
    assert glob(files, pattern) == expected


def test_glob_through_a_symlinked_directory_reports_guest_paths(tmp_path: Path) -> None:
    make_tree(tmp_path, {"data/home/u/.aws/credentials": "[default]\n"}, {"home": "/data/home"})
    assert glob(ImageRoot(tmp_path), "/home/*/.aws/credentials") == ["/home/u/.aws/credentials"]


def test_glob_skips_dangling_symlinks_and_links_that_leave_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside.conf"
    outside.write_text("PasswordAuthentication yes\n")
    root = tmp_path / "root"
    make_tree(
        root,
        {"etc/ssh/sshd_config.d/10-real.conf": ""},
        {
            "etc/ssh/sshd_config.d/20-host.conf": str(outside),
            "etc/ssh/sshd_config.d/30-dangling.conf": "/nowhere.conf",
        },
    )
    assert glob(ImageRoot(root), "/etc/ssh/sshd_config.d/*.conf") == [
        "/etc/ssh/sshd_config.d/10-real.conf"
    ]


# --------------------------------------------------------------------------------------------
# Bounded reads: nothing is ever loaded whole, nothing blocks, a bound is never silent


def test_read_head_reads_only_the_limit_of_a_giant_sparse_file(tmp_path: Path) -> None:
    make_tree(tmp_path, {"var/big": "start"})
    os.truncate(tmp_path / "var" / "big", 8 * 1024**3)
    head = ImageRoot(tmp_path).read_head("/var/big", 16)
    assert head == FileRead(b"start" + b"\0" * 11, 8 * 1024**3, False)
    assert len(ImageRoot(tmp_path).read_bytes("/var/big")) == READ_LIMIT


def test_read_text_refuses_a_file_over_the_limit_rather_than_judge_its_start(
    tmp_path: Path,
) -> None:
    make_tree(tmp_path, {"etc/passwd": "root:x:0:0::/root:/bin/sh\n"})
    os.truncate(tmp_path / "etc" / "passwd", READ_LIMIT + 1)
    with pytest.raises(FileTooLarge, match="read limit"):
        read_text_or_none(ImageRoot(tmp_path), "/etc/passwd")
    os.truncate(tmp_path / "etc" / "passwd", READ_LIMIT)
    assert len(read_text(ImageRoot(tmp_path), "/etc/passwd")) == READ_LIMIT


def test_a_fifo_or_a_device_is_never_opened_as_a_file(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    os.mkfifo(tmp_path / "etc" / "fifo")
    os.symlink("/dev/zero", tmp_path / "etc" / "zero")
    root = ImageRoot(tmp_path)
    with pytest.raises(IsADirectoryError):
        root.read_head("/etc/fifo", 10)
    assert read_text_or_none(root, "/etc/fifo") is None
    assert read_text_or_none(root, "/etc/zero") is None  # the image's /dev/zero: absent


def test_a_huge_directory_listing_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scanner.fs.LIST_LIMIT", 5)
    make_tree(tmp_path, {f"etc/many/{n}": "" for n in range(6)})
    with pytest.raises(TooManyEntries):
        ImageRoot(tmp_path).list_dir("/etc/many")
    tree = MemoryTree()
    for n in range(6):
        tree.add(f"/etc/many/{n}", b"")
    with pytest.raises(TooManyEntries):
        tree.list_dir("/etc/many")


def test_walks_are_iterative_bounded_in_depth_and_never_follow_links(tmp_path: Path) -> None:
    top = tmp_path / "opt"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY)
    for _ in range(1500):  # deeper than any recursion limit
        os.mkdir("d", dir_fd=fd)
        inner = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = inner
    os.close(fd)
    make_tree(tmp_path, {"opt/f": "x", "etc/secret": "y"}, {"opt/link": "/etc"})
    bounds = WalkBounds(max_depth=50)
    assert list(ImageRoot(tmp_path).walk_files("/opt", bounds)) == ["/opt/f"]
    assert bounds.too_deep == 1 and "deeper than 50 levels" in bounds.hit[0]
    # pytest's own (recursive) cleanup would overflow on this tree; rm(1) walks iteratively.
    subprocess.run(["rm", "-rf", str(top)], check=True)


def test_a_walk_stops_at_its_entry_budget(tmp_path: Path) -> None:
    make_tree(tmp_path, {f"opt/{n:02}": "" for n in range(10)})
    bounds = WalkBounds(max_entries=3)
    assert len(list(ImageRoot(tmp_path).walk_files("/opt", bounds))) <= 3
    assert bounds.exhausted and bounds.hit == ["stopped after 3 entries"]


def test_memory_tree_walks_are_bounded_in_depth_too() -> None:
    tree = MemoryTree()
    tree.add("/opt/a/b/c/f", b"")
    tree.add("/opt/g", b"")
    bounds = WalkBounds(max_depth=2)
    assert list(tree.walk_files("/opt", bounds)) == ["/opt/g"]
    assert bounds.too_deep == 1


def test_a_cut_live_copy_is_never_judged_as_the_whole_file() -> None:
    tree = MemoryTree()
    tree.add("/etc/ssh/sshd_config", b"Port 22\n", size=5 * 1024**2)
    assert tree.read_head("/etc/ssh/sshd_config", READ_LIMIT).complete is False
    with pytest.raises(FileTooLarge):
        read_text_or_none(tree, "/etc/ssh/sshd_config")


def test_a_refused_copy_cannot_be_read_nor_mistaken_for_an_absent_file() -> None:
    tree = MemoryTree()
    tree.refuse("/etc/shadow", "two different copies")
    assert tree.is_file("/etc/shadow")
    with pytest.raises(ReadRefused, match="two different copies"):
        read_text_or_none(tree, "/etc/shadow")
