"""Images in, tensors out, and back: files of every kind, value ranges, padding, bounded sizes."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub.io import imaging
from tests.support.image_cases import BAD_FILES, images_of_every_mode


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_files_are_value_errors_naming_the_problem(tmp_path, name):
    data, phrase = BAD_FILES[name]
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=phrase):
        imaging.open_image(tmp_path / name)


def test_a_header_only_jpeg_is_a_value_error_not_an_os_error():
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, "JPEG")
    with pytest.raises(ValueError, match=r"the data is truncated or corrupt \(Truncated File Read\)"):
        imaging.open_image(buffer.getvalue()[:300])


def test_special_files_and_oversized_files_are_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match="/dev/zero is not a regular file"):
        imaging.open_image("/dev/zero")
    with pytest.raises(ValueError, match="is a folder, not an image file"):
        imaging.open_image(tmp_path)
    (tmp_path / "big.png").write_bytes(bytes(2048))
    with pytest.raises(ValueError, match="above the limit of"):
        imaging.open_image(tmp_path / "big.png", max_bytes=1024)
    buffer = io.BytesIO()
    Image.new("L", (3000, 3000)).save(buffer, "PNG")
    with pytest.raises(ValueError, match=r"3000x3000 pixels \(9 MP\), above the limit of 4 MP"):
        imaging.open_image(buffer.getvalue(), max_pixels=4_000_000)


def test_value_ranges_round_trip():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    for value_range in ((-1.0, 1.0), (0.0, 1.0), (-2.0, 3.0)):
        x = imaging.to_network(pixels, value_range)
        assert x.min() == value_range[0] and x.max() == value_range[1]
        assert torch.equal((imaging.to_unit(x, value_range) * 255).round().to(torch.uint8), pixels)


def test_run_padded_pads_by_reflection_runs_and_crops():
    x = torch.arange(30 * 26, dtype=torch.float32).reshape(1, 1, 30, 26)
    seen = []
    out = imaging.run_padded(lambda t: seen.append(t.shape) or t * 2, x, multiple=4)
    assert seen == [torch.Size([1, 1, 32, 28])] and torch.equal(out, x * 2)
    assert imaging.pad_to_multiple(torch.zeros(1, 1, 2, 2), 4, min_size=8).shape[-2:] == (8, 8)  # too small: replicate
    with pytest.raises(ValueError, match="is more than 4x its pixels; refused"):
        imaging.pad_to_multiple(torch.zeros(1, 1, 300, 300), 4096)


@pytest.mark.parametrize("mode", list(images_of_every_mode()))
def test_shrink_image_bounds_the_longer_side_in_every_mode(mode):
    image = images_of_every_mode()[mode].resize((300, 120), Image.Resampling.NEAREST)
    small = imaging.shrink_image(image, 64)
    assert max(small.size) <= 64 and small.mode == image.mode
    assert imaging.shrink_image(image, 4096) is image  # small enough: untouched


def test_an_upright_image_is_not_copied():
    image = Image.new("RGB", (10, 10))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    opened = imaging.open_image(buffer.getvalue())
    assert imaging.open_image(opened) is opened and np.asarray(opened).shape == (10, 10, 3)


def test_the_image_gate_refuses_containers_and_unbounded_structures_before_decoding():
    """An .ico that hides a 13000x13000 PNG behind a 16x16 directory entry, a JPEG of 2000 scans and a PNG of 30000
    chunks are refused from their structure, in one line, before a pixel is decoded."""
    from cyclegan_hub.io.imaging import WEB_FORMATS, open_image
    from tests.support.hostile_images import huge_png, ico_over_png, many_chunk_png, many_scan_jpeg

    cases = {
        "ico": (ico_over_png(huge_png(3000)), "is not an image in a format read here (PNG, JPEG, WEBP, GIF, BMP)"),
        "scans": (many_scan_jpeg(), "is a JPEG of 2010 scans, above the limit of 100"),
        "chunks": (many_chunk_png(), "is a PNG of more than 20000 chunks or 1000 ancillary chunks"),
        "pixels": (huge_png(9000), "is 9000x9000 pixels (81 MP), above the limit of 24 MP"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(ValueError) as info:
            open_image(data, max_pixels=24_000_000, formats=WEB_FORMATS)
        assert message in str(info.value) and "\n" not in str(info.value), name
    # what these files are built from decodes
    assert open_image(many_chunk_png(10)).size == (16, 16)
    assert open_image(many_scan_jpeg(3)).size == (64, 64)
