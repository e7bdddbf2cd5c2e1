"""The image's users and groups, read from /etc/passwd and /etc/group as sshd reads them."""

from __future__ import annotations

from scanner.fs import FileSource, read_text_or_none


def passwd_entries(files: FileSource) -> list[list[str]]:
    text = read_text_or_none(files, "/etc/passwd") or ""
    return [f for f in (line.split(":") for line in text.splitlines()) if len(f) >= 7]


class Accounts:
    """/etc/passwd and /etc/group indexed once, so each lookup costs the same however many."""

    def __init__(self, files: FileSource) -> None:
        self._passwd: dict[str, list[str]] = {}
        for entry in passwd_entries(files):
            self._passwd.setdefault(entry[0], entry)  # getpwnam: the first entry wins
        text = read_text_or_none(files, "/etc/group") or ""
        self._group_by_gid: dict[str, str] = {}
        self._groups_of_member: dict[str, list[str]] = {}
        for fields in (line.split(":") for line in text.splitlines()):
            if len(fields) < 4:
                continue
            self._group_by_gid.setdefault(fields[2], fields[0])  # getgrgid: the first wins
            for member in dict.fromkeys(fields[3].split(",")):
                self._groups_of_member.setdefault(member, []).append(fields[0])

    def home(self, user: str) -> str | None:
        entry = self._passwd.get(user)
        return None if entry is None else entry[5]

    def groups(self, user: str) -> tuple[str, ...]:
        """A user's primary and supplementary group names; empty when the user does not exist."""
        entry = self._passwd.get(user)
        if entry is None:
            return ()
        primary = self._group_by_gid.get(entry[3])
        names = ([primary] if primary is not None else []) + self._groups_of_member.get(user, [])
        return tuple(dict.fromkeys(names))


def user_groups(files: FileSource, user: str) -> tuple[str, ...]:
    """A user's primary and supplementary group names, from the image's /etc/passwd and /etc/group.

    Empty when the user does not exist (sshd's Match Group then never matches). Reads both files;
    for many users, build one `Accounts` instead.
    """
    return Accounts(files).groups(user)
