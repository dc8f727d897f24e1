"""Tests of formats.zip_package: members deflated on a thread as written, read back by zipfile."""

from __future__ import annotations

import io
import random
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from atlasflow.formats.zip_package import (
    CHUNK_CHARS,
    ZIP64_LIMIT,
    DeflatingPart,
    ZipWriter,
    crc32_combine,
    deflate,
)


@pytest.mark.parametrize("sizes", [(0, 0), (5, 0), (0, 7), (1, 1), (1000, 3), (70_000, 123_457)])
def test_crc32_combine_is_the_crc_of_the_concatenation(sizes: tuple[int, int]) -> None:
    rng = random.Random(sum(sizes))
    first, second = (rng.randbytes(n) for n in sizes)
    assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)


def test_a_part_written_in_chunks_reads_back_whole_with_its_head_and_tail(tmp_path: Path) -> None:
    rng = random.Random(3)
    rows = [f"<row>{rng.randbytes(rng.randrange(10, 400)).hex()} ü ✓</row>" for _ in range(20_000)]
    assert sum(map(len, rows)) > 3 * CHUNK_CHARS  # several chunks go through the thread
    path = tmp_path / "parts.zip"
    with ThreadPoolExecutor(1) as pool, path.open("wb") as file:
        first, second = DeflatingPart(pool, 6), DeflatingPart(pool, 1)
        for n, row in enumerate(rows):  # filled in turns, as the export fills its sheets
            (first if n % 3 else second).write(row)
        archive = ZipWriter(file)
        archive.add("small.xml", b"<small/>", 6)
        archive.add_deflated("first.xml", *first.finish(b"<head>", b"</head>"))
        archive.add_deflated("second.xml", *second.finish(b"", b"<end/>"))
        archive.add("empty.xml", b"", 6)
        archive.close()
        first.close()
        second.close()
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every CRC matches
        assert archive.namelist() == ["small.xml", "first.xml", "second.xml", "empty.xml"]
        assert (
            archive.read("first.xml").decode() == "<head>" + "".join(r for n, r in enumerate(rows) if n % 3) + "</head>"
        )
        assert archive.read("second.xml").decode() == "".join(rows[::3]) + "<end/>"
        assert archive.read("small.xml") == b"<small/>" and archive.read("empty.xml") == b""
        assert not any(info.extra for info in archive.infolist())  # no zip64 fields when none is needed


def test_an_error_on_the_thread_is_raised_to_the_writer() -> None:
    with ThreadPoolExecutor(1) as pool:
        part = DeflatingPart(pool, 6)
        part._file.close()  # the disk going away under the thread
        with pytest.raises(ValueError, match="closed file"):
            for _ in range(8):
                part.write("x" * CHUNK_CHARS)
            part.finish(b"", b"")
        part.close()


def test_a_member_past_4_gib_gets_zip64_fields(tmp_path: Path) -> None:
    zeros = bytes(64 << 20)
    pieces = 65  # 4.06 GiB of zeros, deflated once: a full flush makes every piece's stream the same
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    piece = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    end = deflate(b"", 1)
    crc = 0
    for _ in range(pieces):
        crc = crc32_combine(crc, zlib.crc32(zeros), len(zeros))
    size, deflated_size = pieces * len(zeros), pieces * len(piece) + len(end)
    assert size > ZIP64_LIMIT
    path = tmp_path / "big.zip"
    with path.open("wb") as file:
        archive = ZipWriter(file)
        archive.add_deflated("big.bin", crc, size, deflated_size, [*[piece] * pieces, end])
        archive.add("after.xml", b"<after/>", 6)
        archive.close()
    with zipfile.ZipFile(path) as archive:
        big, _ = archive.infolist()
        assert (big.file_size, big.compress_size, big.CRC) == (size, deflated_size, crc)
        assert archive.read("after.xml") == b"<after/>"
        with archive.open(big) as member:  # inflated to the end: zipfile checks size and CRC there
            read = sum(len(chunk) for chunk in iter(lambda: member.read(64 << 20), b""))
    assert read == size


def test_a_wrong_announced_size_is_refused() -> None:
    archive = ZipWriter(io.BytesIO())
    with pytest.raises(ValueError, match="3 deflated bytes written, 4 announced"):
        archive.add_deflated("x.xml", 0, 0, 4, [b"abc"])
