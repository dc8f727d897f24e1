"""A zip file whose big members are deflated on another thread while they are being written.

:class:`DeflatingPart` takes a member's text as it comes and hands it, in chunks, to one background
thread that deflates it (zlib releases the GIL while it compresses, so the thread runs on another core)
into an anonymous temporary file. The member's beginning, known only at the end (a worksheet's
dimension, say), is deflated separately and put in front: raw deflate streams ended by a sync flush
can follow one another, and the CRC-32 of the whole member is combined from its pieces'.
:class:`ZipWriter` writes the members, already deflated, as a zip file (zip64 where a size or an
offset needs it) that ``zipfile``, Excel and LibreOffice read.
"""

from __future__ import annotations

import struct
import tempfile
import time
import zlib
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import BinaryIO

CHUNK_CHARS = 1 << 20
"""Text handed to the background thread at a time."""
MAX_PENDING = 4
"""Chunks of one member waiting for the thread before the writer waits too (bounds the memory)."""
ZIP64_LIMIT = (1 << 32) - 1
"""Sizes and offsets from this one on need zip64 fields."""

_CRC_POLYNOMIAL = 0xEDB88320
_LOCAL, _CENTRAL, _END = 0x04034B50, 0x02014B50, 0x06054B50
_END64, _LOCATOR64 = 0x06064B50, 0x07064B50


def deflate(data: bytes, level: int, mode: int = zlib.Z_FINISH) -> bytes:
    """``data`` as a raw deflate stream, ended by ``mode`` (``Z_SYNC_FLUSH``: more streams may follow)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush(mode)


def crc32_combine(crc1: int, crc2: int, length2: int) -> int:
    """CRC-32 of ``a + b`` from ``crc32(a)``, ``crc32(b)`` and ``len(b)`` (zlib's ``crc32_combine``)."""
    if length2 <= 0:
        return crc1
    operator = [_CRC_POLYNOMIAL] + [1 << n for n in range(31)]  # appends one zero bit to a CRC
    for _ in range(3):  # 2, 4, then 8 zero bits: one zero byte
        operator = _gf2_square(operator)
    while length2:  # append len(b) zero bytes to crc1, one bit of the length at a time
        if length2 & 1:
            crc1 = _gf2_times(operator, crc1)
        length2 >>= 1
        if length2:
            operator = _gf2_square(operator)
    return crc1 ^ crc2


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, column) for column in matrix]


class DeflatingPart:
    """A member's text, deflated on ``pool``'s thread as it is written.

    Args:
        pool: A single-thread executor, shared by the members of one file (their chunks are deflated
            in the order they were written).
        level: zlib compression level.
    """

    def __init__(self, pool: ThreadPoolExecutor, level: int) -> None:
        self._pool = pool
        self._level = level
        # Anonymous: nothing is left behind whatever happens; close() releases it.
        self._file = tempfile.TemporaryFile()  # noqa: SIM115
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._buffer: list[str] = []
        self._buffered = 0
        self._pending: deque[Future[None]] = deque()
        self._crc = 0
        self._size = 0

    def write(self, text: str) -> None:
        """Append ``text`` to the member."""
        self._buffer.append(text)
        self._buffered += len(text)
        if self._buffered >= CHUNK_CHARS:
            self._hand_over()

    def finish(self, head: bytes, tail: bytes) -> tuple[int, int, int, Iterable[bytes]]:
        """Close the member with ``head`` before and ``tail`` after the text written.

        Returns:
            Its CRC-32, size, deflated size and deflated bytes (to be read once, before :meth:`close`).
        """
        self._hand_over()
        self._wait(0)
        self._file.write(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        deflated_head, deflated_tail = deflate(head, self._level, zlib.Z_SYNC_FLUSH), deflate(tail, self._level)
        crc = crc32_combine(crc32_combine(zlib.crc32(head), self._crc, self._size), zlib.crc32(tail), len(tail))
        body = self._file.tell()
        self._file.seek(0)
        return (
            crc,
            len(head) + self._size + len(tail),
            len(deflated_head) + body + len(deflated_tail),
            self._pieces(deflated_head, deflated_tail),
        )

    def close(self) -> None:
        """Release the temporary file, once the thread is done with it."""
        for future in self._pending:
            future.cancel()
        wait(self._pending)  # a chunk being deflated; its error, if any, was or will be raised elsewhere
        self._pending.clear()
        self._file.close()

    def _pieces(self, head: bytes, tail: bytes) -> Iterable[bytes]:
        yield head
        while chunk := self._file.read(1 << 20):
            yield chunk
        yield tail

    def _hand_over(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode()
        self._buffer.clear()
        self._buffered = 0
        self._wait(MAX_PENDING - 1)
        self._pending.append(self._pool.submit(self._deflate, data))

    def _wait(self, pending: int) -> None:
        """Wait until at most ``pending`` chunks are left; the thread's error, if any, is raised here."""
        while len(self._pending) > pending:
            future = self._pending.popleft()
            if not future.cancelled():
                future.result()

    def _deflate(self, data: bytes) -> None:  # on the pool's thread
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._file.write(self._compressor.compress(data))


class ZipWriter:
    """Deflated members written one after the other to ``file``, then the central directory by :meth:`close`."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._entries: list[tuple[bytes, int, int, int, int]] = []  # name, crc, size, deflated size, offset
        now = time.localtime()
        self._time = now.tm_hour << 11 | now.tm_min << 5 | now.tm_sec // 2
        self._date = (now.tm_year - 1980) << 9 | now.tm_mon << 5 | now.tm_mday

    def add(self, name: str, data: bytes, level: int) -> None:
        """Deflate ``data`` and write it as member ``name``."""
        deflated = deflate(data, level)
        self.add_deflated(name, zlib.crc32(data), len(data), len(deflated), [deflated])

    def add_deflated(self, name: str, crc: int, size: int, deflated_size: int, pieces: Iterable[bytes]) -> None:
        """Write member ``name`` from its raw deflate stream ``pieces`` (``deflated_size`` bytes in all)."""
        encoded = name.encode("ascii")
        offset = self._file.tell()
        zip64 = size >= ZIP64_LIMIT or deflated_size >= ZIP64_LIMIT
        extra = struct.pack("<HHQQ", 1, 16, size, deflated_size) if zip64 else b""
        sizes = (ZIP64_LIMIT, ZIP64_LIMIT) if zip64 else (deflated_size, size)
        version = 45 if zip64 else 20
        header = struct.pack(
            "<IHHHHHI2IHH", _LOCAL, version, 0, zlib.DEFLATED, self._time, self._date, crc, *sizes, len(encoded),
            len(extra),
        )  # fmt: skip
        self._file.write(header + encoded + extra)
        written = 0
        for piece in pieces:
            self._file.write(piece)
            written += len(piece)
        if written != deflated_size:
            raise ValueError(f"{name}: {written} deflated bytes written, {deflated_size} announced")
        self._entries.append((encoded, crc, size, deflated_size, offset))

    def close(self) -> None:
        """Write the central directory (zip64 records where a count, size or offset needs them)."""
        start = self._file.tell()
        for encoded, crc, size, deflated_size, offset in self._entries:
            wide = [value for value in (size, deflated_size, offset) if value >= ZIP64_LIMIT]
            extra = struct.pack(f"<HH{len(wide)}Q", 1, 8 * len(wide), *wide) if wide else b""
            version = 45 if wide else 20
            header = struct.pack(
                "<IHHHHHHI2IHHHHHII", _CENTRAL, version, version, 0, zlib.DEFLATED, self._time, self._date, crc,
                min(deflated_size, ZIP64_LIMIT), min(size, ZIP64_LIMIT), len(encoded), len(extra), 0, 0, 0, 0,
                min(offset, ZIP64_LIMIT),
            )  # fmt: skip
            self._file.write(header + encoded + extra)
        end = self._file.tell()
        count, length = len(self._entries), end - start
        if count >= 0xFFFF or start >= ZIP64_LIMIT or length >= ZIP64_LIMIT:
            self._file.write(struct.pack("<IQHHII4Q", _END64, 44, 45, 45, 0, 0, count, count, length, start))
            self._file.write(struct.pack("<IIQI", _LOCATOR64, 0, end, 1))
        small_count = min(count, 0xFFFF)
        end_record = struct.pack(
            "<IHHHHIIH", _END, 0, 0, small_count, small_count, min(length, ZIP64_LIMIT), min(start, ZIP64_LIMIT), 0
        )
        self._file.write(end_record)
