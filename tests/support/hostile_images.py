"""Image files a hostile visitor sends, built here (small on disk, costly to decode): shared by the gate's tests,
the Space's tests and the load benchmark."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def huge_png(side: int = 13000) -> bytes:
    """A PNG of side x side black pixels: a few hundred KB on disk, side^2 bytes (and more) once decoded. Written
    chunk by chunk (no image of that size is ever held here)."""
    raw_row = b"\0" * (side + 1)  # filter byte + gray pixels
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(raw_row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ico_over_png(inner: bytes) -> bytes:
    """An .ico whose directory says 16x16 and whose one entry is ``inner`` (a PNG of any size)."""
    directory = struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 16, 16, 0, 0, 1, 32, len(inner), 22)
    return directory + inner


def many_chunk_png(chunks: int = 30_000) -> bytes:
    """A 16x16 PNG with ``chunks`` tEXt chunks before its image data (each parsed by the decoder)."""
    data = png_bytes(Image.new("RGB", (16, 16), (10, 200, 30)))
    text = b"".join(_chunk(b"tEXt", b"k\0" + str(i).encode()) for i in range(chunks))
    return data[:33] + text + data[33:]  # after the signature (8) and IHDR (25)


def many_scan_jpeg(scans: int = 2000) -> bytes:
    """A progressive JPEG whose last refinement scan is repeated ``scans`` times: each scan is decoded in turn."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (120, 60, 200)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last = data.rfind(b"\xff\xda")
    scan = data[last:-2]  # the last scan, up to the end-of-image marker
    return data[:-2] + scan * scans + b"\xff\xd9"
