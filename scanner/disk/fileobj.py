"""A `BlockDevice` as a read-only file object, for readers that take one (the libyal bindings).

libyal's Python bindings call read/seek/tell/get_offset/get_size on the object they are given;
an exception raised here reaches the caller as an IOError from the binding, which the reader
turns back into a DiskError.
"""

from __future__ import annotations

import io
import re

from scanner.disk.device import BlockDevice, DiskError


class DeviceFile(io.RawIOBase):
    def __init__(self, device: BlockDevice) -> None:
        super().__init__()
        self.device = device
        self._offset = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self.device.size - self._offset
        data = self.device.pread(self._offset, size) if self._offset < self.device.size else b""
        self._offset += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._offset, io.SEEK_END: self.device.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._offset = base + offset
        return self._offset

    def tell(self) -> int:
        return self._offset

    def get_offset(self) -> int:
        return self._offset

    def get_size(self) -> int:
        return self.device.size


class WatchedDevice:
    """The device as a libyal library sees it, remembering the last DiskError it raised.

    libyal reports a failed read of its file object as a generic IOError; the device's own
    message (a truncated image, a failed snapshot request) says more, so it is raised instead.
    """

    def __init__(self, device: BlockDevice) -> None:
        self.device = device
        self.description = device.description
        self.size = device.size
        self.error: DiskError | None = None

    def pread(self, offset: int, length: int) -> bytes:
        try:
            return self.device.pread(offset, length)
        except DiskError as exc:
            self.error = exc
            raise


def libyal_message(exc: BaseException) -> str:
    """The root cause out of a libyal error chain.

    libyal joins its backtrace as "binding_function: what failed. innermost_function: why.
    outer_function: ...", so the second part is the cause; the function names mean nothing to a
    user.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    parts = re.split(r"(?<=\.) (?=[a-z][a-z0-9_]*: )", text)
    cause = parts[1] if len(parts) > 1 else parts[0]
    cause = re.sub(r"^[a-z][a-z0-9_]*: ", "", cause).rstrip(".")
    return cause[:300]
