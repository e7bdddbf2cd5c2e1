"""Secret facts: line classification, the offline search and the live grep, histories, AWS files."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scanner.cancel import Cancel, ScanInterrupted
from scanner.facts.base import FactFailed, Facts, ProbeOutput
from scanner.facts.linux.secrets import (
    AWS_FILES,
    HISTORIES,
    MAX_MATCHES_PER_FILE,
    MAX_SEARCHED_FILE,
    SECRET_MATCHES,
    HistoryFile,
    SecretMatch,
    SecretSearch,
    TextFile,
    classify,
    is_bundled,
    search_files,
    secret_search_script,
)
from scanner.fs import WALK_MAX_DEPTH, ImageRoot, MemoryTree, WalkBounds
from scanner.redact import redact
from tests.factbuilders import (
    LiveFacts,
    OfflineFacts,
    Symlink,
    live_context,
    offline_context,
    write_tree,
)
from tests.hostile.test_reads import _nest, _unnest
from tests.imagetree import PRIVATE_KEY

KEY_ID = "AKIAZ7QWERTY5LKJH4GF"
# The live search's last line when it got to its end.
DONE = "#amiscan-search-done\n"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzXamplEKEY"

# --- classify -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kinds"),
    [
        pytest.param(f"aws_access_key_id = {KEY_ID}", ["aws-access-key-id"], id="access-key-id"),
        pytest.param(f"export K=ASIA{KEY_ID[4:]}", ["aws-access-key-id"], id="temporary-key-id"),
        pytest.param(f'"{KEY_ID}"', ["aws-access-key-id"], id="quoted-key-id"),
        pytest.param("AKIAIOSFODNN7EXAMPLE", [], id="documentation-key-id"),
        pytest.param(f"X{KEY_ID}", [], id="key-id-glued-to-capitals"),
        pytest.param(f"{KEY_ID}9", [], id="key-id-too-long"),
        pytest.param(KEY_ID[:-1], [], id="key-id-too-short"),
        pytest.param(
            f"aws_secret_access_key = {SECRET}", ["aws-secret-access-key"], id="secret-assignment"
        ),
        pytest.param(
            f'"AWS_SECRET_ACCESS_KEY": "{SECRET}"', ["aws-secret-access-key"], id="secret-in-json"
        ),
        pytest.param('key = os.environ["aws_secret_access_key"]', [], id="secret-name-in-code"),
        pytest.param(f"aws_secret_access_key = {SECRET}x", [], id="secret-too-long"),
        pytest.param("-----BEGIN OPENSSH PRIVATE KEY-----", ["private-key"], id="openssh-key"),
        pytest.param("-----BEGIN RSA PRIVATE KEY-----", ["private-key"], id="rsa-key"),
        pytest.param("-----BEGIN PRIVATE KEY-----", ["private-key"], id="pkcs8-key"),
        pytest.param("-----BEGIN PUBLIC KEY-----", [], id="public-key"),
        pytest.param(
            f"{KEY_ID} {SECRET} aws_secret_access_key={SECRET}",
            ["aws-access-key-id", "aws-secret-access-key"],
            id="several-kinds-on-one-line",
        ),
    ],
)
def test_classify_names_the_secrets_a_line_holds(line: str, kinds: list[str]) -> None:
    assert [m.kind for m in classify("/etc/x", 7, line)] == kinds


def test_classify_keeps_path_line_number_and_text() -> None:
    assert classify("/etc/x", 7, f"k={KEY_ID}") == [
        SecretMatch("/etc/x", 7, "aws-access-key-id", f"k={KEY_ID}")
    ]


def test_classify_reports_a_real_key_beside_a_documentation_key() -> None:
    matches = classify("/etc/x", 1, f"AKIAIOSFODNN7EXAMPLE {KEY_ID}")
    assert [m.kind for m in matches] == ["aws-access-key-id"]


@pytest.mark.parametrize(
    ("path", "bundled"),
    [
        ("/usr/local/lib/python3.11/site-packages/botocore/data/x.json", True),
        ("/usr/lib/python3/dist-packages/x/y.py", True),
        ("/opt/app/node_modules/ssh2/test/fixtures/id_rsa", True),
        ("/usr/local/go/pkg/mod/golang.org/x/crypto/testdata/k", True),
        ("/root/.pyenv/versions/3.12/lib/x.pem", True),
        ("/opt/app/config.ini", False),
        ("/home/u/.ssh/id_rsa", False),
        ("/etc/tests.conf", False),
    ],
)
def test_is_bundled_recognises_package_and_test_trees(path: str, bundled: bool) -> None:
    assert is_bundled(path) is bundled


@pytest.mark.parametrize(
    "text",
    [
        f"key={KEY_ID}",
        f"key_{KEY_ID}_old",
        f"json\\n{KEY_ID}",
        f"{KEY_ID},{KEY_ID}",
    ],
)
def test_redaction_hides_every_key_id_classify_finds(text: str) -> None:
    assert classify("/etc/app.conf", 1, text)
    assert KEY_ID not in redact(text)


def test_redaction_keeps_enough_of_a_key_id_to_recognise_it() -> None:
    assert redact(f"k={KEY_ID}") == "k=AKIAZ7QW********H4GF"


# --- search_files (offline) -----------------------------------------------------------------


def _tree(files: dict[str, bytes | str]) -> MemoryTree:
    tree = MemoryTree()
    for path, content in files.items():
        tree.add(path, content.encode() if isinstance(content, str) else content)
    return tree


def test_search_files_reports_path_and_line_of_each_match() -> None:
    tree = _tree({"/opt/app/a.ini": f"[x]\nkey = {KEY_ID}\n"})
    assert search_files(tree) == [
        SecretMatch("/opt/app/a.ini", 2, "aws-access-key-id", f"key = {KEY_ID}")
    ]


@pytest.mark.parametrize(
    "path", ["/root/a", "/home/u/a", "/etc/a", "/opt/a", "/srv/a", "/usr/local/a"]
)
def test_search_files_searches_homes_etc_opt_srv_and_usr_local(path: str) -> None:
    assert [m.path for m in search_files(_tree({path: KEY_ID}))] == [path]


@pytest.mark.parametrize("path", ["/var/log/a", "/usr/share/doc/a", "/tmp/a"])
def test_search_files_leaves_other_directories_alone(path: str) -> None:
    assert search_files(_tree({path: KEY_ID})) == []


def test_search_files_skips_binary_files_as_grep_does() -> None:
    assert search_files(_tree({"/opt/app.bin": b"\x7fELF\x00\x00" + KEY_ID.encode()})) == []


def test_search_files_skips_files_of_the_size_limit_and_more() -> None:
    tree = MemoryTree()
    tree.add("/opt/big.log", KEY_ID.encode(), size=MAX_SEARCHED_FILE)
    assert search_files(tree) == []


def test_search_files_stops_after_the_grep_match_limit_of_one_file() -> None:
    tree = _tree({"/opt/keys.txt": f"{KEY_ID}\n" * (MAX_MATCHES_PER_FILE + 5)})
    assert len(search_files(tree)) == MAX_MATCHES_PER_FILE


def test_search_files_ignores_symlinked_files_in_an_image(tmp_path: Path) -> None:
    root = write_tree(
        tmp_path,
        {"/var/keys.txt": KEY_ID, "/opt/link.txt": Symlink("/var/keys.txt")},
    )
    assert search_files(root) == []


def test_secret_matches_offline_search_the_image(offline_facts: OfflineFacts) -> None:
    facts = offline_facts({"/home/u/.ssh/id_rsa": "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"})
    search = facts.get(SECRET_MATCHES)
    assert [(m.path, m.line_number, m.kind) for m in search.matches] == [
        ("/home/u/.ssh/id_rsa", 1, "private-key")
    ]
    assert search.incomplete == ()


# --- the live grep --------------------------------------------------------------------------


def test_secret_matches_live_parse_the_grep_records(live_facts: LiveFacts) -> None:
    grep = (
        f"/opt/a.ini\x002:key = {KEY_ID}\n"
        "/etc/pki/k.pem\x001:-----BEGIN EC PRIVATE KEY-----\n"
        f"/srv/url.txt\x003:http://x:8080/?k={KEY_ID}\n"
    )
    matches = live_facts(outputs={SECRET_MATCHES: grep}).get(SECRET_MATCHES).matches
    # Sorted by path and line: greps side by side print in no fixed order.
    assert [(m.path, m.line_number, m.kind, m.text) for m in matches] == [
        ("/etc/pki/k.pem", 1, "private-key", "-----BEGIN EC PRIVATE KEY-----"),
        ("/opt/a.ini", 2, "aws-access-key-id", f"key = {KEY_ID}"),
        ("/srv/url.txt", 3, "aws-access-key-id", f"http://x:8080/?k={KEY_ID}"),
    ]


def test_secret_matches_live_ignore_records_that_are_not_grep_output(
    live_facts: LiveFacts,
) -> None:
    grep = f"grep: /opt/x: Permission denied\n/opt/a\x00notanumber:{KEY_ID}\n{DONE}"
    assert live_facts(outputs={SECRET_MATCHES: grep}).get(SECRET_MATCHES) == SecretSearch(())


def test_secret_matches_live_say_when_the_grep_output_was_cut() -> None:
    output = ProbeOutput(SECRET_MATCHES.name, 0, f"/opt/a\x001:{KEY_ID}\n".encode(), b"", True)
    facts = Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output})
    search = facts.get(SECRET_MATCHES)
    assert len(search.matches) == 1
    assert search.incomplete and "cut" in search.incomplete[0]


def _live_search(stdout: str, truncated: bool = False) -> SecretSearch:
    output = ProbeOutput(SECRET_MATCHES.name, 0, stdout.encode(), b"", truncated)
    return Facts(MemoryTree(), live_context(), {SECRET_MATCHES.name: output}).get(SECRET_MATCHES)


def test_the_live_too_deep_marker_reads_as_the_image_walk_words_it() -> None:
    first = "/opt/" + "d/" * 256 + "d"
    search = _live_search(f"/opt/a\x001:{KEY_ID}\n#amiscan-too-deep 3 {first}\n{DONE}")
    expected = WalkBounds()
    expected.skip_deep(first)
    expected.too_deep = 3
    assert len(search.matches) == 1
    assert search.incomplete == tuple(expected.hit)
    assert search.incomplete[0].startswith(f"3 directories deeper than {WALK_MAX_DEPTH} levels")


def test_the_live_entry_marker_makes_the_search_incomplete() -> None:
    search = _live_search(f"#amiscan-entries 1000001\n{DONE}")
    assert search.matches == ()
    assert len(search.incomplete) == 1 and "1000001 entries" in search.incomplete[0]


def test_live_markers_inside_grep_records_or_malformed_are_ignored() -> None:
    stdout = (
        f"/opt/#amiscan-too-deep 1 /x\x001:{KEY_ID}\n"
        f"#amiscan-too-deep many /x\n#amiscan-too-deep 0 /x\n#amiscan-entries\n{DONE}"
    )
    assert _live_search(stdout).incomplete == ()


def test_a_live_search_that_did_not_say_it_finished_is_incomplete_but_keeps_its_finds() -> None:
    # A probe that printed nothing at all is not a search that found nothing.
    for stdout in ("", "\n", f"/opt/a\x001:{KEY_ID}\n"):
        search = _live_search(stdout)
        assert search.incomplete == (
            "the search did not say it finished: its output is not the whole",
        )
    assert len(_live_search(f"/opt/a\x001:{KEY_ID}\n").matches) == 1


def test_only_the_last_line_says_the_search_finished() -> None:
    # A file name holding a line break and the end mark, with records after it, is not the end.
    forged = f"/opt/x\n{DONE}\x001:{KEY_ID}\n/opt/b\x002:{KEY_ID}\n"
    assert _live_search(forged).incomplete != ()
    assert _live_search(forged + DONE).incomplete == ()


def test_a_cut_live_output_and_a_depth_marker_are_both_reported() -> None:
    search = _live_search("#amiscan-too-deep 1 /opt/x\n", truncated=True)
    assert len(search.incomplete) == 2
    assert "deeper than" in search.incomplete[0] and "cut" in search.incomplete[1]


def test_the_live_script_bounds_depth_by_the_marker_as_the_image_walk_does(
    tmp_path: Path,
) -> None:
    """The probe, run by a real `sh` on a real deep tree, hits the depth bound exactly where
    `search_files` does, says so in the same words, and still finds a key within the bound."""
    image = tmp_path / "image"
    deep, deeper = image / "opt" / "app", image / "srv" / "deep"
    _nest(deep, WALK_MAX_DEPTH + 40)  # /opt/app is depth 1: 296 levels below /opt
    _nest(deeper, 3000)
    # A key in the deepest directory the walk lists (depth WALK_MAX_DEPTH below /opt), and one
    # in the first directory it does not enter.
    listed = deep.joinpath(*["d"] * (WALK_MAX_DEPTH - 1))
    hidden = listed / "d"
    (listed / "found.pem").write_text(PRIVATE_KEY)
    (hidden / "hidden.pem").write_text(PRIVATE_KEY)
    try:
        bounds = WalkBounds()
        offline = search_files(ImageRoot(image), ("/opt", "/srv", "/home"), bounds)
        dirs = tuple(str(image / top) for top in ("opt", "srv", "home"))
        run = subprocess.run(
            ["sh", "-c", secret_search_script(dirs, "/dev/null")],
            capture_output=True,
            timeout=60,
            check=True,
        )
        live = _live_search(run.stdout.decode().replace(str(image), ""))
    finally:
        (listed / "found.pem").unlink()
        (hidden / "hidden.pem").unlink()
        _unnest(deep)
        _unnest(deeper)
    found = "/opt/app/" + "d/" * (WALK_MAX_DEPTH - 1) + "found.pem"
    assert [m.path for m in offline] == [m.path for m in live.matches] == [found]
    assert bounds.too_deep == 2
    assert live.incomplete == tuple(bounds.hit)
    assert (
        "2 directories deeper than 256 levels not searched (first: /opt/app/d/d/"
        in (live.incomplete[0])
    )


def test_the_live_script_on_a_shallow_tree_reports_no_bound(tmp_path: Path) -> None:
    (tmp_path / "opt" / "a").mkdir(parents=True)
    (tmp_path / "opt" / "a" / "k.ini").write_text(f"key = {KEY_ID}\n")
    script = secret_search_script((str(tmp_path / "opt"),), "/dev/null")
    run = subprocess.run(["sh", "-c", script], capture_output=True, timeout=60, check=True)
    live = _live_search(run.stdout.decode().replace(str(tmp_path), ""))
    assert [(m.path, m.kind) for m in live.matches] == [("/opt/a/k.ini", "aws-access-key-id")]
    assert live.incomplete == ()


# --- greps side by side ---------------------------------------------------------------------


def _shim(bin_dir: Path, name: str, body: str) -> None:
    """An executable `name` in bin_dir, put first on PATH, to stand in for (or log) a tool."""
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / name
    shim.unlink(missing_ok=True)  # never write through a link to the real tool
    shim.write_text(f"#!/bin/sh\n{body}\n")
    shim.chmod(0o755)


def _run_search(
    tmp_path: Path,
    tops: tuple[str, ...],
    cores: int,
    markers: list[str] | None = None,
    **script: int,
) -> tuple[list[bytes], list[str], list[str]]:
    """The live script over `tops` as a guest with `cores` CPUs: its grep records (sorted),
    the command lines of the xargs that ran greps side by side, and one line per grep run;
    its other lines (the bounds' markers) go to `markers`."""
    markers = [] if markers is None else markers
    bin_dir, log = tmp_path / "bin", tmp_path / "tools.log"
    log.unlink(missing_ok=True)
    real_xargs, real_grep = _which("xargs"), _which("grep")
    _shim(bin_dir, "nproc", f"echo {cores}")
    _shim(bin_dir, "xargs", f'echo "xargs $*" >>{log}; exec {real_xargs} "$@"')
    _shim(bin_dir, "grep", f'echo grep >>{log}; exec {real_grep} "$@"')
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    env.pop("AMISCAN_T", None)
    run = subprocess.run(
        ["sh", "-c", secret_search_script(tops, "/dev/null", **script)],
        capture_output=True,
        timeout=120,
        check=True,
        env=env,
    )
    assert list(scratch.iterdir()) == []  # the greps' files are gone
    lines = log.read_text().splitlines()
    records = sorted(r for r in run.stdout.split(b"\n") if b"\0" in r)
    markers.extend(r.decode() for r in run.stdout.split(b"\n") if r and b"\0" not in r)
    return (
        records,
        # The xargs that runs greps side by side (not the one that checks for -P).
        [ln for ln in lines if ln.startswith("xargs ") and " sh -c " in ln],
        [ln for ln in lines if ln == "grep"],
    )


def _which(tool: str) -> str:
    import shutil

    found = shutil.which(tool)
    assert found is not None
    return found


def _secret_files(root: Path, count: int, seed: int) -> None:
    import random

    rng = random.Random(seed)
    for index in range(count):
        folder = root / rng.choice(["etc", "root", "home/u", "opt/app/x", "srv"])
        folder.mkdir(parents=True, exist_ok=True)
        lines = [os.urandom(rng.randint(0, 40)).hex() for _ in range(rng.randint(0, 30))]
        for _ in range(rng.randint(0, 25)):  # past the per-file match limit at times
            lines.insert(rng.randint(0, len(lines)), rng.choice([KEY_ID, PRIVATE_KEY[:40]]))
        data = "\n".join(lines).encode()
        (folder / f"file-{index:04}").write_bytes(b"\0" + data if index % 9 == 0 else data)


def test_greps_side_by_side_find_exactly_what_one_grep_finds(tmp_path: Path) -> None:
    image = tmp_path / "image"
    _secret_files(image, 400, seed=5)
    tops = tuple(str(image / top) for top in ("root", "home", "etc", "opt", "srv"))
    one, one_xargs, _ = _run_search(tmp_path, tops, cores=1)
    # Small batches: many greps, on four "cores".
    four, four_xargs, greps = _run_search(tmp_path, tops, cores=4, batch_bytes=2048)
    # Two runs of the greps side by side: the search's self-test, then the search.
    assert one_xargs == [] and len(four_xargs) == 2
    assert all("-P 4 " in line for line in four_xargs)
    assert len(greps) > 8
    assert four == one and len(one) > 100
    offline = search_files(ImageRoot(image), ("/root", "/home", "/etc", "/opt", "/srv"))
    live = _live_search(b"\n".join(four).decode().replace(str(image), "") + "\n")
    assert sorted((m.path, m.line_number, m.kind) for m in offline) == [
        (m.path, m.line_number, m.kind) for m in live.matches
    ]


def test_greps_side_by_side_are_bounded_to_the_cores_and_a_limit(tmp_path: Path) -> None:
    image = tmp_path / "image"
    _secret_files(image, 20, seed=6)
    _, xargs, _ = _run_search(tmp_path, (str(image),), cores=64)
    assert "-P 8 " in xargs[0]


def test_greps_side_by_side_stop_once_their_records_pass_the_output_limit(
    tmp_path: Path,
) -> None:
    image = tmp_path / "image" / "opt"
    image.mkdir(parents=True)
    line = f"{KEY_ID} " + "x" * 400
    for index in range(300):
        (image / f"f{index:03}").write_text("\n".join([line] * MAX_MATCHES_PER_FILE))
    tops = (str(image),)
    unbounded_markers: list[str] = []
    records, _, all_greps = _run_search(tmp_path, tops, 4, unbounded_markers, batch_bytes=1024)
    assert len(records) == 300 * MAX_MATCHES_PER_FILE  # 3 MB of records without a limit
    assert unbounded_markers == ["#amiscan-search-done"]
    limit = 16 * 1024
    markers: list[str] = []
    bounded, _, greps = _run_search(
        tmp_path, tops, 4, markers, batch_bytes=1024, output_limit=limit
    )
    # Batches already running when the limit is passed finish, each cut at the limit;
    # the batches after them never start, and the search says it is incomplete.
    assert sum(len(r) + 1 for r in bounded) <= limit + 4 * (limit + 1)
    assert len(all_greps) > 40 and len(greps) <= 8
    assert markers == ["#amiscan-output-full", "#amiscan-search-done"]
    # A batch's records cut at the limit never run into the next batch's first.
    assert all(r.count(str(image).encode()) == 1 for r in bounded)
    text = b"\n".join(bounded).decode() + "\n" + "\n".join(markers) + "\n"
    assert "were not searched" in _live_search(text).incomplete[-1]


def test_a_search_stopped_by_its_timeout_leaves_no_scratch_files(tmp_path: Path) -> None:
    import signal
    import time

    image = tmp_path / "image"
    _secret_files(image, 20, seed=7)
    bin_dir, scratch = tmp_path / "bin", tmp_path / "scratch"
    scratch.mkdir()
    _shim(bin_dir, "nproc", "echo 2")
    # A grep that hangs on files (it passes the search's self-test, on standard input).
    hang = 'for a; do [ -f "$a" ] && exec sleep 60; done; exec ' + _which("grep") + ' "$@"'
    _shim(bin_dir, "grep", hang)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(scratch)}
    env.pop("AMISCAN_T", None)
    search = subprocess.Popen(
        ["sh", "-c", secret_search_script((str(image),), "/dev/null")],
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not list(scratch.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(scratch.iterdir()), "the search never made its scratch directory"
        os.killpg(search.pid, signal.SIGTERM)  # as `timeout` signals the probe's group
        assert search.wait(timeout=30) != 0
    finally:
        if search.poll() is None:
            os.killpg(search.pid, signal.SIGKILL)
    assert list(scratch.iterdir()) == []


# --- bounds of the offline search -----------------------------------------------------------


def test_search_files_stops_descending_at_the_depth_bound_and_says_so(tmp_path: Path) -> None:
    deep = tmp_path / "opt" / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (deep / "k.txt").write_text(KEY_ID)
    (tmp_path / "opt" / "top.txt").write_text(KEY_ID)
    bounds = WalkBounds(max_depth=2)
    found = search_files(ImageRoot(tmp_path), ("/opt",), bounds)
    assert [m.path for m in found] == ["/opt/top.txt"]
    assert bounds.too_deep == 1 and "/opt/a/b/c" in bounds.hit[0]


def test_search_files_stops_at_the_entry_bound_and_says_so(tmp_path: Path) -> None:
    for n in range(20):
        (tmp_path / "opt").mkdir(exist_ok=True)
        (tmp_path / "opt" / f"f{n:02}").write_text("x")
    bounds = WalkBounds(max_entries=5)
    search_files(ImageRoot(tmp_path), ("/opt", "/srv"), bounds)
    assert bounds.exhausted and "stopped after 5 entries" in bounds.hit[0]


def test_search_files_counts_unreadable_copies_as_not_searched() -> None:
    tree = _tree({"/opt/a": "x"})
    tree.refuse("/opt/b", "two different copies")
    bounds = WalkBounds()
    search_files(tree, ("/opt",), bounds)
    assert bounds.unreadable == 1 and "/opt/b" in bounds.hit[0]


def test_a_cancelled_scan_stops_the_search(tmp_path: Path) -> None:
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "a").write_text("x")
    cancel = Cancel()
    cancel.set("SIGTERM")
    with pytest.raises(ScanInterrupted):
        search_files(ImageRoot(tmp_path), ("/opt",), WalkBounds(cancel=cancel))


# --- HISTORIES and AWS_FILES ----------------------------------------------------------------


def test_histories_report_each_file_once_with_size_and_lines(offline_facts: OfflineFacts) -> None:
    facts = offline_facts(
        {
            "/root/.bash_history": "ls\npwd\n",
            "/home/u/.psql_history": "",
            "/home/u/.viminfo": "x\n",
            "/home/u/.lesshst": "",
            "/home/u/.zsh_history/": "",  # a directory, not a history
        }
    )
    assert facts.get(HISTORIES) == (
        HistoryFile("/home/u/.lesshst", 0, 0),
        HistoryFile("/home/u/.psql_history", 0, 0),
        HistoryFile("/home/u/.viminfo", 2, 1),
        HistoryFile("/root/.bash_history", 7, 2),
    )


def test_a_giant_history_is_judged_from_its_size_and_first_bytes(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"/root/.bash_history": "ls\n"})
    os.truncate(tmp_path / "root" / ".bash_history", 5 * 1024**3)
    (history,) = Facts(root, offline_context()).get(HISTORIES)
    assert history.size == 5 * 1024**3
    assert history.lines == 1 and not history.lines_complete


def test_a_fifo_named_like_a_history_is_not_opened(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    os.mkfifo(tmp_path / "root" / ".bash_history")
    assert Facts(ImageRoot(tmp_path), offline_context()).get(HISTORIES) == ()


def test_a_history_copy_of_unknown_size_and_no_content_is_not_judged() -> None:
    copied = MemoryTree()
    copied.add("/root/.bash_history", b"", truncated=True)
    with pytest.raises(FactFailed, match="could not be measured"):
        Facts(copied, live_context()).get(HISTORIES)


def test_an_aws_file_over_the_read_limit_is_marked_incomplete(tmp_path: Path) -> None:
    root = write_tree(tmp_path, {"/root/.aws/credentials": "[default]\n"})
    os.truncate(tmp_path / "root" / ".aws" / "credentials", 3 * 1024**3)
    (file,) = Facts(root, offline_context()).get(AWS_FILES)
    assert not file.complete and file.size == 3 * 1024**3
    assert file.text.startswith("[default]") and len(file.text) <= 1024 * 1024


def test_histories_live_use_the_full_size_of_a_truncated_copy() -> None:
    copied = MemoryTree()
    copied.add("/root/.bash_history", b"ls\n", size=1_000_000)
    assert Facts(copied, live_context()).get(HISTORIES)[0].size == 1_000_000


def test_aws_files_are_read_from_root_and_every_home(offline_facts: OfflineFacts) -> None:
    facts = offline_facts(
        {
            "/root/.aws/credentials": "[default]\n",
            "/home/u/.aws/config": "[profile p]\n",
            "/home/u/.aws/cli/cache/x.json": "{}",
        }
    )
    assert facts.get(AWS_FILES) == (
        TextFile("/root/.aws/credentials", "[default]\n"),
        TextFile("/home/u/.aws/config", "[profile p]\n"),
    )


def _reference_search(files: ImageRoot, dirs: tuple[str, ...]) -> list[object]:
    """The search as it was before it opened each file once and filtered on literals: every
    file resolved and read whole, every line of every text file run through the pattern."""
    from scanner.facts.linux.secrets import _ANY, MAX_MATCHES_PER_FILE, classify

    found: list[object] = []
    for top in dirs:
        for path in files.walk_files(top):
            if files.size(path) >= MAX_SEARCHED_FILE:
                continue
            content = files.read_head(path, MAX_SEARCHED_FILE).content
            if b"\0" in content[:8192]:
                continue
            hits = 0
            for number, line in enumerate(
                content.decode("utf-8", errors="replace").splitlines(), start=1
            ):
                if _ANY.search(line):
                    hits += 1
                    found += classify(path, number, line[:600])
                    if hits >= MAX_MATCHES_PER_FILE:
                        break
    return found


def test_the_fast_search_finds_exactly_what_reading_every_line_finds(tmp_path: Path) -> None:
    import random

    rng = random.Random(11)
    secrets = [
        "AKIA" + "Q" * 16,
        "ASIAZ7QWERTY5LKJH4GF",
        "Aws_Secret_Access_Key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzXamplEKEY",
        "aws_secret_access_key=abc",
        PRIVATE_KEY.splitlines()[0],
        "-----BEGIN EC PRIVATE KEY-----",
        "akia" + "q" * 16,  # lower case: not a key id
        "XAKIA" + "Q" * 16,
    ]
    for index in range(300):
        folder = tmp_path / rng.choice(["etc", "root", "home/u", "opt/app", "srv", "tmp"])
        folder.mkdir(parents=True, exist_ok=True)
        lines = [os.urandom(rng.randint(0, 40)).hex() for _ in range(rng.randint(0, 30))]
        for _ in range(rng.randint(0, 3)):
            lines.insert(rng.randint(0, len(lines)), rng.choice(secrets))
        body = "\r\n".join(lines) if index % 7 == 0 else "\n".join(lines)
        data = body.encode()
        if index % 11 == 0:
            data = b"\0" + data  # binary
        if index % 13 == 0:
            data = data.replace(b"\n", b"\n\xff\xfe", 3)  # not UTF-8
        (folder / f"f{index}").write_bytes(data)
    # One file per kind of secret alone, so that a prefilter missing any kind shows.
    for index, secret in enumerate(secrets):
        (tmp_path / "srv").mkdir(exist_ok=True)
        (tmp_path / "srv" / f"alone{index}").write_text(f"x = 1\n{secret}\n")
    root = ImageRoot(tmp_path)
    dirs = ("/etc", "/root", "/home", "/opt", "/srv", "/usr/local")
    expected = _reference_search(root, dirs)
    assert expected  # the tree holds secrets, so the comparison means something
    assert search_files(root, dirs) == expected
