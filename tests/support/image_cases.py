"""Images users bring, good and bad, made in memory for the tests (no files shipped)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def png_bytes(image: Image.Image, **save_kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_kwargs)
    return buffer.getvalue()


def digit_like(size=(28, 28), mode="L") -> Image.Image:
    """A white ring on black, enough texture for shape tests."""
    yy, xx = np.mgrid[: size[1], : size[0]]
    r = np.hypot(yy - size[1] / 2, xx - size[0] / 2)
    ring = ((r > min(size) * 0.2) & (r < min(size) * 0.35)).astype(np.uint8) * 255
    return Image.fromarray(ring).convert(mode)


def images_of_every_mode() -> dict[str, Image.Image]:
    base = digit_like((30, 22))
    rgb = Image.merge("RGB", [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT), base])
    sixteen = Image.fromarray(np.asarray(base, dtype=np.uint16) * 257)
    return {
        "1": base.convert("1"),
        "L": base,
        "LA": Image.merge("LA", [base, Image.new("L", base.size, 200)]),
        "P": rgb.convert("P"),
        "RGB": rgb,
        "RGBA": rgb.convert("RGBA"),
        "I;16": sixteen,
        "I": base.convert("I"),
        "F": Image.fromarray(np.asarray(base, dtype=np.float32) / 255.0),
        "CMYK": rgb.convert("CMYK"),
        "YCbCr": rgb.convert("YCbCr"),
    }


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(width: int = 20000, height: int = 20000) -> bytes:
    """A valid PNG header announcing width x height gray pixels, with a tiny payload: a decompression bomb."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _chunk(b"IEND", b"")
    )


def truncated_png() -> bytes:
    data = png_bytes(Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    return data[: len(data) // 2]


def exif_rotated_jpeg(size=(40, 24), orientation=6) -> bytes:
    """A landscape JPEG whose EXIF says "rotate 90 degrees": upright it is portrait."""
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [digit_like((28, 28)).convert("P"), Image.new("P", (28, 28), 3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def float_tiff() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.linspace(0, 1, 32 * 24, dtype=np.float32).reshape(24, 32)).save(buffer, format="TIFF")
    return buffer.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><circle cx="14" cy="14" r="8"/></svg>'

#: name -> (bytes, phrase the ValueError must contain)
BAD_FILES = {
    "empty.png": (b"", "empty"),
    "notes.png": (b"these are not pixels\n", "not an image"),
    "drawing.png": (SVG, "not an image"),
    "truncated.png": (truncated_png(), "truncated"),
    "bomb.png": (bomb_png(), "decompression bomb"),
}
