"""The image's users and groups, read from /etc/passwd and /etc/group as sshd reads them."""

from __future__ import annotations

from scanner.fs import FileSource, read_text_or_none


def passwd_entries(files: FileSource) -> list[list[str]]:
    text = read_text_or_none(files, "/etc/passwd") or ""
    return [f for f in (line.split(":") for line in text.splitlines()) if len(f) >= 7]


def user_groups(files: FileSource, user: str) -> tuple[str, ...]:
    """A user's primary and supplementary group names, from the image's /etc/passwd and /etc/group.

    Empty when the user does not exist (sshd's Match Group then never matches).
    """
    entry = next((e for e in passwd_entries(files) if e[0] == user), None)
    if entry is None:
        return ()
    text = read_text_or_none(files, "/etc/group") or ""
    groups = [g for g in (line.split(":") for line in text.splitlines()) if len(g) >= 4]
    names = [g[0] for g in groups if g[2] == entry[3]][:1]  # getgrgid: the first entry wins
    names += [g[0] for g in groups if user in g[3].split(",")]
    return tuple(dict.fromkeys(names))
