"""A `BlockDevice` as a read-only file object, for readers that take one (the libyal bindings).

libyal's Python bindings call read/seek/tell/get_offset/get_size on the object they are given;
an exception raised here reaches the caller as an IOError from the binding, which the reader
turns back into a DiskError.
"""

from __future__ import annotations

import io

from scanner.disk.device import BlockDevice


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
