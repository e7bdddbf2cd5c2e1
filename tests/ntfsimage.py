"""NTFS images for the tests, made without root or a mount: mkntfs formats a sparse file,
wimlib-imagex applies a tree to it (its NTFS-3G mode writes through libntfs-3g straight into the
image), and libntfs-3g itself, through ctypes, does what no command-line tool offers: DOS 8.3
short names, and LZNT1-compressed or sparse data."""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
from pathlib import Path

from tests.diskimages import tool

# mkntfs: -F a file, not a block device; -Q quick (no zeroing, no bad-sector scan); -s 512
# sectors; -p/-H/-S no partition geometry (the BIOS fields mean nothing to a file).
MKNTFS_OPTIONS = ("-F", "-Q", "-s", "512", "-p", "0", "-H", "0", "-S", "0")
# FILE_ATTRIBUTE_COMPRESSED, and the unnamed $DATA attribute's type.
_COMPRESSED = 0x800
_AT_DATA = 0x80
# FILE_ATTR_DUP_FILE_NAME_INDEX_PRESENT: how libntfs-3g marks a directory in its flags.
_DIRECTORY = 0x10000000


def make_ntfs(tree: Path, image: Path, size_mib: int = 64) -> Path:
    """An NTFS volume image holding `tree` (symlinks become NTFS symbolic links)."""
    image.unlink(missing_ok=True)
    with image.open("wb") as f:
        f.truncate(size_mib * 1024 * 1024)
    subprocess.run([tool("mkntfs"), *MKNTFS_OPTIONS, str(image)], check=True, capture_output=True)
    wim = image.with_suffix(".wim")
    wimlib = tool("wimlib-imagex")
    # --compress=none: the WIM is only a carrier, compressing it just costs time.
    subprocess.run(
        [wimlib, "capture", str(tree), str(wim), "--compress=none"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [wimlib, "apply", str(wim), "1", str(image)],
        check=True,
        capture_output=True,
    )
    wim.unlink()
    return image


class Ntfs3g:
    """libntfs-3g opened on an image file (a library call, not a mount)."""

    def __init__(self, image: Path) -> None:
        name = ctypes.util.find_library("ntfs-3g") or "libntfs-3g.so.89"
        try:
            self._lib = ctypes.CDLL(name, use_errno=True)
        except OSError:
            import pytest

            pytest.skip("libntfs-3g is not installed (Debian package libntfs-3g89)")
        lib = self._lib
        lib.ntfs_mount.restype = ctypes.c_void_p
        lib.ntfs_mount.argtypes = [ctypes.c_char_p, ctypes.c_ulong]
        lib.ntfs_umount.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.ntfs_pathname_to_inode.restype = ctypes.c_void_p
        lib.ntfs_pathname_to_inode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p]
        lib.ntfs_inode_close.argtypes = [ctypes.c_void_p]
        lib.ntfs_set_ntfs_dos_name.argtypes = [
            ctypes.c_void_p,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        lib.ntfs_set_ntfs_attrib.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_int,
        ]
        lib.ntfs_create.restype = ctypes.c_void_p
        lib.ntfs_create.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_char_p,
            ctypes.c_uint8,
            ctypes.c_uint32,
        ]
        lib.ntfs_attr_open.restype = ctypes.c_void_p
        lib.ntfs_attr_open.argtypes = [
            ctypes.c_void_p,
            ctypes.c_uint32,
            ctypes.c_void_p,
            ctypes.c_uint32,
        ]
        lib.ntfs_attr_pwrite.restype = ctypes.c_int64
        lib.ntfs_attr_pwrite.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_char_p,
        ]
        lib.ntfs_attr_close.argtypes = [ctypes.c_void_p]
        self._volume = lib.ntfs_mount(str(image).encode(), 0)
        if not self._volume:
            raise OSError(f"libntfs-3g cannot open {image}")

    def _inode(self, path: str) -> int:
        inode: int | None = self._lib.ntfs_pathname_to_inode(self._volume, None, path.encode())
        if not inode:
            raise FileNotFoundError(path)
        return inode

    def set_short_name(self, path: str, short: str) -> None:
        """Gives `path` a DOS 8.3 name beside its long one (Windows does this by default)."""
        directory = self._inode(path.rsplit("/", 1)[0] or "/")
        inode = self._inode(path)
        value = short.encode()
        # It closes both inodes, whatever it returns.
        if self._lib.ntfs_set_ntfs_dos_name(inode, directory, value, len(value), 0) != 0:
            raise OSError(ctypes.get_errno(), f"cannot give {path} the short name {short}")

    def _write(self, inode: int, content: bytes, offset: int, what: str) -> None:
        unnamed = ctypes.c_uint16.in_dll(self._lib, "AT_UNNAMED")
        attribute = self._lib.ntfs_attr_open(inode, _AT_DATA, ctypes.addressof(unnamed), 0)
        if not attribute:
            raise OSError(f"cannot open the data of {what}")
        try:
            written = self._lib.ntfs_attr_pwrite(attribute, offset, len(content), content)
            if written != len(content):
                raise OSError(f"wrote {written} of {len(content)} bytes to {what}")
        finally:
            self._lib.ntfs_attr_close(attribute)

    def write(self, path: str, content: bytes, offset: int = 0) -> None:
        """Writes `content` at `offset` into an existing empty file: a hole before `offset`
        makes it sparse."""
        inode = self._inode(path)
        try:
            self._write(inode, content, offset, path)
        finally:
            self._lib.ntfs_inode_close(inode)

    def create_compressed(self, directory: str, name: str, content: bytes) -> None:
        """Marks `directory` compressed and creates `name` in it holding `content`: libntfs-3g
        compresses (LZNT1) the data of files created in a compressed directory, and lets only a
        directory's compression flag be set."""
        parent = self._inode(directory)
        try:
            flags = (_COMPRESSED | _DIRECTORY).to_bytes(4, "little")
            if self._lib.ntfs_set_ntfs_attrib(parent, flags, 4, 0) != 0:
                raise OSError(f"cannot compress {directory}")
            encoded = name.encode("utf-16-le")
            inode = self._lib.ntfs_create(parent, 0, encoded, len(encoded) // 2, 0o100000)
            if not inode:
                raise OSError(f"cannot create {directory}/{name}")
            try:
                self._write(inode, content, 0, name)
            finally:
                self._lib.ntfs_inode_close(inode)
        finally:
            self._lib.ntfs_inode_close(parent)

    def close(self) -> None:
        if self._lib.ntfs_umount(self._volume, 0) != 0:
            raise OSError("libntfs-3g could not close the volume cleanly")
