"""Images in, tensors out, and back: any file, mode and size the users bring.

- ``open_image`` reads a path, bytes, a file object, a numpy array or a PIL image, honours EXIF orientation and turns
  every bad file (empty, not an image, truncated, a decompression bomb) into a ``ValueError`` that names the problem.
- ``image_to_array`` maps every PIL mode (1, L, LA, P, PA, RGB, RGBA, CMYK, YCbCr, I, I;16, F, ...) to float32
  ``[H, W, channels]`` in [0, 1]; transparent pixels are composited over black (MNIST's background).
- ``to_network`` / ``to_unit`` map pixels in [0, 1] onto a model's ``value_range`` and back: the one place that
  arithmetic lives (translate, evaluation, training batches and samples all call it).
- ``run_padded`` pads by reflection (replication where the image is too small to reflect) so that the network's
  strided layers divide the size, runs the network and crops back: the one pad -> run -> crop path.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .files import read_file

ImageInput = str | os.PathLike | bytes | io.IOBase | np.ndarray | Image.Image

#: Files with more pixels than this are refused before they are decoded (a 20000x20000 PNG is a few KB on disk
#: and 400 MP, 1.2 GB, in memory).
MAX_PIXELS = 64_000_000
#: ``translate`` works on images whose longer side is at most this; larger ones are resized down for the network
#: and the result is resized back up to the input size (tiling would show seams with instance norm).
DEFAULT_MAX_SIDE = 1024
#: Image files larger than this are refused before they are read (a 64 MP 8-bit RGB TIFF is 192 MB).
MAX_FILE_BYTES = 256 * 2**20
#: Padding may at most multiply an image's pixels by this (or reach the network's smallest input): a model whose
#: config asks for a huge multiple cannot turn a 28x28 digit into a 16384x16384 tensor.
MAX_PAD_FACTOR = 4
MIN_PAD_PIXELS = 256 * 256
#: Formats decoded at all: raster files whose header gives the size the decoder allocates. Containers that embed
#: other images (ICO, ICNS, CUR: a 16x16 directory entry over a 13000x13000 PNG) and exotic formats are refused.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM")
#: What a public server decodes (the formats browsers send).
WEB_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
#: Decoding time is bounded by structure, checked before decoding: a progressive JPEG has about 10 scans (a file of
#: thousands of tiny scans takes ~25 s per 575 KB to decode); a PNG a few thousand chunks (1.6 million ancillary
#: chunks take 10 s).
MAX_JPEG_SCANS = 100
MAX_PNG_CHUNKS = 20_000
MAX_PNG_ANCILLARY_CHUNKS = 1_000


def open_image(
    source: ImageInput,
    max_pixels: int = MAX_PIXELS,
    max_bytes: int = MAX_FILE_BYTES,
    formats: Sequence[str] = IMAGE_FORMATS,
) -> Image.Image:
    """Return a fully decoded PIL image, upright according to its EXIF orientation.

    Raises ValueError (naming the problem) for an empty file, data that is not an image, a format not in
    ``formats``, a truncated or corrupt file, a file of more than ``max_bytes`` or a special file (a device, a pipe),
    an image of more than ``max_pixels`` pixels (checked from the header, before decoding), or a structure that
    would take unbounded time to decode (too many JPEG scans or PNG chunks); FileNotFoundError for a missing path.
    """
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        return array_to_pil(source)
    else:
        name, data = _read_bytes(source, max_bytes)
        if not data:
            raise ValueError(f"{name} is an empty file")
        with _pil_errors(name, formats), warnings.catch_warnings():  # the size is checked below, by name
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # only the plugins of ``formats`` are tried: some (ICO) decode their embedded image while opening
            image = Image.open(io.BytesIO(data), formats=list(formats))
        _check_pixels(name, image.size, max_pixels)
        _check_structure(name, data, image.format)
        with _pil_errors(name, formats), warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    _check_pixels("the image", image.size, max_pixels)
    if image.width < 1 or image.height < 1:
        raise ValueError(f"the image has no pixels ({image.width}x{image.height})")
    # An animated GIF or a multi-page TIFF: the first frame is the image (loaded above).
    if image.getexif().get(0x0112, 1) in (None, 1):
        return image  # upright already (exif_transpose would return a copy: twice the memory of a large image)
    return ImageOps.exif_transpose(image)


def read_header(path: str | os.PathLike, formats: Sequence[str] = IMAGE_FORMATS) -> tuple[str, tuple[int, int]]:
    """(format, (width, height)) of the image file at ``path`` from its header alone, nothing decoded; ValueError
    (naming the file by its name) for anything that is not an image in one of ``formats``."""
    with _pil_errors(Path(path).name, formats), warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path, formats=list(formats)) as image:
            return image.format, image.size


@contextlib.contextmanager
def _pil_errors(name: str, formats: Sequence[str]):
    """What PIL raises while opening or decoding ``name``, as one ValueError that names the problem."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(f"{name} is too large to decode safely (a decompression bomb?)") from None
    except UnidentifiedImageError:
        raise ValueError(f"{name} is not an image in a format read here ({', '.join(formats)})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as err:  # a header that ends early: "Truncated File Read"
        raise ValueError(f"{name} is truncated or corrupt ({err})") from None


def _read_bytes(source, max_bytes: int) -> tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray)):
        if len(source) > max_bytes:
            raise ValueError(f"the data is {len(source) / 2**20:.1f} MB, above the limit of {max_bytes / 2**20:.0f} MB")
        return "the data", bytes(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise ValueError(f"{path} is a folder, not an image file")
        return str(path), read_file(path, max_bytes)
    if hasattr(source, "read"):
        data = source.read(max_bytes + 1)
        name = getattr(source, "name", "the stream")
        if len(data) > max_bytes:
            raise ValueError(f"{name} is larger than the limit of {max_bytes / 2**20:.0f} MB")
        return name, data
    raise TypeError(f"cannot read an image from a {type(source).__name__}")


def _check_structure(name: str, data: bytes, image_format: str) -> None:
    """Refuse files whose decoding time is not bounded by their pixels: JPEG scans and PNG chunks are counted in
    one pass over the bytes (a marker 0xFFDA starts each JPEG scan: entropy-coded data stuffs every 0xFF with 0x00)."""
    if image_format in ("JPEG", "MPO"):
        scans = data.count(b"\xff\xda")
        if scans > MAX_JPEG_SCANS:
            raise ValueError(f"{name} is a JPEG of {scans} scans, above the limit of {MAX_JPEG_SCANS}")
    elif image_format == "PNG":
        offset, chunks, ancillary = 8, 0, 0
        while offset + 8 <= len(data):
            length = int.from_bytes(data[offset : offset + 4], "big")
            chunks += 1
            ancillary += data[offset + 4] & 0x20 != 0  # lower-case first letter: ancillary
            if chunks > MAX_PNG_CHUNKS or ancillary > MAX_PNG_ANCILLARY_CHUNKS:
                raise ValueError(
                    f"{name} is a PNG of more than {MAX_PNG_CHUNKS} chunks or {MAX_PNG_ANCILLARY_CHUNKS} ancillary "
                    "chunks; refused (decoding it would take unbounded time)"
                )
            if data[offset + 4 : offset + 8] == b"IEND":
                break
            offset += 12 + length


def _check_pixels(name: str, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ValueError(
            f"{name} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), above the limit of "
            f"{max_pixels / 1e6:.0f} MP (a decompression bomb?)"
        )


def array_to_pil(array: np.ndarray) -> Image.Image:
    """A numpy image ``[H, W]`` or ``[H, W, C]`` (C in 1, 3, 4) of uint8, uint16, bool or float to PIL.

    Floats are read as [0, 1] when they fit in it, else as [0, 255]."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected an image array of shape [H, W] or [H, W, 1|3|4], got {list(array.shape)}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        array = (array / 257.0).round().astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError("the image array contains NaN or infinite values")
        scale = 255.0 if array.size and array.min() >= 0 and array.max() <= 1 else 1.0
        array = np.clip(array * scale, 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def image_to_array(image: Image.Image, channels: int) -> np.ndarray:
    """Float32 ``[H, W, channels]`` in [0, 1] from any PIL mode; ``channels`` is 1 (gray) or 3 (RGB)."""
    if channels not in (1, 3):
        raise ValueError(f"images can be converted to 1 or 3 channels, not {channels}")
    mode = image.mode
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        values = np.asarray(image, dtype=np.float64)
        if mode == "F":
            # Float images: [0, 1] if they fit in it, else [0, 255] (clipped).
            scale = 1.0 if values.size and values.min() >= 0 and values.max() <= 1 else 1 / 255
        else:
            # 16-bit images (I;16, or I as PNG decoders return it); 8-bit values stored as I keep their scale.
            scale = 1 / 65535 if mode.startswith("I;16") or values.max() > 255 else 1 / 255
        gray = np.clip(np.nan_to_num(values * scale), 0, 1).astype(np.float32)[..., None]
    elif mode in ("LA", "La", "PA", "RGBA", "RGBa") or (mode == "P" and "transparency" in image.info):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
        rgb = rgba[..., :3] * rgba[..., 3:]
        return rgb if channels == 3 else _luma(rgb)
    elif mode in ("1", "L"):
        gray = np.asarray(image.convert("L"), dtype=np.float32)[..., None] / 255
    else:
        try:
            rgb = np.asarray(image.convert("RGB"), dtype=np.float32) / 255
        except (ValueError, OSError) as err:
            raise ValueError(f"images of mode {mode} are not supported ({err})") from None
        return rgb if channels == 3 else _luma(rgb)
    return gray if channels == 1 else np.repeat(gray, 3, axis=2)


def image_to_pixels(image: Image.Image, channels: int) -> np.ndarray:
    """``[H, W, channels]``: the 8-bit pixels themselves (uint8) when the mode already has the wanted channels
    (L for 1, RGB for 3), else ``image_to_array``'s float32 in [0, 1]. ``pixels_to_batch`` takes either."""
    if (image.mode, channels) in (("L", 1), ("RGB", 3)):
        pixels = np.array(image)  # a writable copy: torch refuses to share read-only numpy memory without a warning
        return pixels[..., None] if channels == 1 else pixels
    return image_to_array(image, channels)


def pixels_to_batch(arrays: list[np.ndarray], size: tuple[int, int]) -> torch.Tensor:
    """``[N, C, *size]`` float32 in [0, 1] from ``image_to_pixels`` arrays, resized where they differ from
    ``size``; arrays that are all 8-bit and of that size are converted in one operation."""
    if all(a.dtype == np.uint8 and a.shape[:2] == tuple(size) for a in arrays):
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 255
    units = [torch.from_numpy(a).permute(2, 0, 1)[None] for a in arrays]
    return torch.cat([resize_tensor(u.float() / 255 if u.dtype == torch.uint8 else u, size) for u in units])


def _luma(rgb: np.ndarray) -> np.ndarray:
    # ITU-R 601-2 luma, as PIL's convert("L").
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None]


def tensor_to_images(batch: torch.Tensor) -> list[Image.Image]:
    """A ``[N, 1|3, H, W]`` float tensor in [0, 1] to 8-bit PIL images (L or RGB), converted as one batch."""
    pixels = batch.float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(p[..., 0] if p.shape[2] == 1 else p) for p in pixels]


def to_network(unit: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """Pixels in [0, 1] (float, or uint8 in [0, 255]) -> the network's ``value_range`` (e.g. [-1, 1] for tanh)."""
    low, high = value_range
    if unit.dtype == torch.uint8:
        unit = unit.float() / 255
    return unit * (high - low) + low


def to_unit(x: torch.Tensor, value_range: Sequence[float]) -> torch.Tensor:
    """The network's ``value_range`` -> pixels in [0, 1] (float32, clamped)."""
    low, high = value_range
    return ((x.float() - low) / (high - low)).clamp(0, 1)


def run_padded(
    net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, multiple: int, min_size: int = 1, border: int = 0
) -> torch.Tensor:
    """``net`` on ``[N, C, H, W]`` padded to its size multiple, cropped back to H x W: what every caller of a
    generator (translate, evaluation, samples, the ONNX check) runs. A network that loses ``border`` pixels on
    each side gets them first, reflected (replicated where the image is too small to reflect)."""
    height, width = x.shape[-2:]
    padded = pad_to_multiple(x, multiple, min_size)
    if border:
        small = border >= min(padded.shape[-2:])
        padded = F.pad(padded, (border,) * 4, mode="replicate" if small else "reflect")
    return net(padded)[..., :height, :width]


def pad_to_multiple(x: torch.Tensor, multiple: int, min_size: int = 1) -> torch.Tensor:
    """Pad ``[N, C, H, W]`` at the bottom and right so that H and W are multiples of ``multiple`` and at least
    ``min_size``. Reflection where the image is large enough to reflect, else replication.

    Raises ValueError when the padded image would have more than ``MAX_PAD_FACTOR`` times the pixels (and more than
    ``MIN_PAD_PIXELS``): the padding is bounded by the input, not by what a config asks for."""
    height, width = x.shape[-2:]
    target_h = max(-(-height // multiple) * multiple, min_size)
    target_w = max(-(-width // multiple) * multiple, min_size)
    if target_h * target_w > max(MAX_PAD_FACTOR * height * width, MIN_PAD_PIXELS):
        raise ValueError(
            f"the network needs sizes that are multiples of {multiple} (at least {min_size}): padding a {height}x{width} "
            f"image to {target_h}x{target_w} is more than {MAX_PAD_FACTOR}x its pixels; refused"
        )
    pad_h, pad_w = target_h - height, target_w - width
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


def resize_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize ``[N, C, H, W]``: antialiased bilinear when shrinking, bicubic when enlarging."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrinking = size[0] * size[1] < x.shape[-2] * x.shape[-1]
    mode = "bilinear" if shrinking else "bicubic"
    return F.interpolate(x, size=size, mode=mode, antialias=shrinking, align_corners=False)


def shrink_image(image: Image.Image, max_side: int) -> Image.Image:
    """A PIL image whose longer side is at most ``max_side`` (aspect kept, Lanczos), for previews and to bound the
    memory of everything downstream; smaller images are returned as they are."""
    height, width = fit_within((image.height, image.width), max_side)
    if (height, width) == (image.height, image.width):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def fit_within(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(height, width) scaled down, keeping the aspect ratio, so that the longer side is at most ``max_side``."""
    height, width = size
    longest = max(height, width)
    if longest <= max_side:
        return size
    scale = max_side / longest
    return max(1, round(height * scale)), max(1, round(width * scale))
