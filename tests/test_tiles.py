"""Full resolution in tiles: with the whole image's statistics every tile is a window of one run on the whole image
(up to the padding its borders add, which the overlap and the blend hide); statistics pooled from a first pass over
the tiles come close, a thumbnail's less; a network without image norms tiles exactly; translate() keeps the full
resolution by default, in bounded passes."""

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator, tiles, translation
from cyclegan_hub.io import imaging
from cyclegan_hub.models.pix2pix import Pix2PixGenerator
from tests.conftest import ROOT


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth RGB picture: coarse random colours, upsampled."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)).resize((width, height), Image.BICUBIC)


def psnr(a, b) -> float:
    mse = ((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def tiled(model, image: Image.Image, thumbnail_side: int | None, tile: int, overlap: int) -> Image.Image:
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None]
    value_range = list(model.translation_spec.value_range)

    def prepare(u):
        return imaging.to_network(u, value_range)

    def finish(y):
        return imaging.to_unit(y.float(), value_range)

    size = x.shape[-2:] if thumbnail_side is None else imaging.fit_within(tuple(x.shape[-2:]), thumbnail_side)
    thumbnail = prepare(imaging.resize_tensor(x.float() / 255, size))
    with torch.inference_mode():
        multiple = model.translation_spec.size_multiple
        run = lambda t: translation.run(model, t)  # noqa: E731
        out = tiles.run_tiled(run, model, x, prepare, finish, thumbnail, tile, overlap, multiple)
    return Image.fromarray(out[0].permute(1, 2, 0).numpy())


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return CycleGenerator(base_channels=8, n_blocks=2, image_size=256).eval()


def test_with_the_whole_image_statistics_tiles_equal_the_whole_run(model):
    image = photo(400, 300)
    whole = model.translate(image, tile_pixels=10**9)
    assert psnr(tiled(model, image, None, 160, 32), whole) > 40
    # a thumbnail at half the size (its statistics miss the finest detail): far from the 15 dB of tiles alone
    assert psnr(tiled(model, image, 200, 160, 32), whole) > 22


def test_a_network_without_image_norms_tiles_exactly():
    torch.manual_seed(0)
    plain = CycleGenerator(base_channels=4, n_blocks=1, norm="none", image_size=64).eval()
    image = photo(300, 220)
    assert tiles.image_norms(plain) == []
    whole = np.asarray(plain.translate(image, tile_pixels=10**9), dtype=int)
    assert np.abs(np.asarray(tiled(plain, image, 64, 96, 40), dtype=int) - whole).max() <= 1  # rounding only


def test_pix2pix_image_statistics_are_fed_and_running_statistics_tile_as_they_are():
    torch.manual_seed(0)
    own = Pix2PixGenerator(base_channels=4, n_downsampling=5, image_size=64).eval()
    running = Pix2PixGenerator(base_channels=4, n_downsampling=5, image_size=64, inference="running").eval()
    assert len(tiles.image_norms(own)) > 0 and tiles.image_norms(running) == []


def test_translate_keeps_full_resolution_in_bounded_passes(model, monkeypatch):
    image = photo(520, 400)
    seen = []
    original = translation.run

    def spy(net, x):
        seen.append(tuple(x.shape[-2:]))
        return original(net, x)

    monkeypatch.setattr(translation, "run", spy)
    out = model.translate(image, tile_pixels=256 * 256, overlap=32)
    assert out.size == image.size
    assert max(h * w for h, w in seen) <= 256 * 256 and len(seen) > 4  # the thumbnail (3.2x: auto), then the tiles
    seen.clear()
    small = model.translate(image, max_side=256)  # an explicit max_side still resizes down, in one pass
    assert small.size == image.size and seen == [(197, 256)]
    monkeypatch.undo()
    whole = model.translate(image, tile_pixels=10**9)
    assert psnr(out, whole) > 25 and psnr(small, whole) < psnr(out, whole)


def test_statistics_pooled_from_the_tiles_come_closer_to_the_whole_run_than_a_thumbnail(model):
    """The default: a first pass over the image in tiles, pooled, gives every norm layer the image's own statistics at
    its resolution; a thumbnail 7x smaller has other statistics (its picture is another picture)."""
    rng = np.random.default_rng(1)
    base = np.asarray(photo(400, 300), np.float32)
    image = Image.fromarray(np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8))
    whole = model.translate(image, tile_pixels=10**9)
    pooled = model.translate(image, tile_pixels=128 * 128, overlap=32)  # 7x a tile's pixels: "auto" pools
    assert pooled == model.translate(image, tile_pixels=128 * 128, overlap=32, tile_statistics="tiles")
    thumb = model.translate(image, tile_pixels=128 * 128, overlap=32, tile_statistics="thumbnail")
    assert psnr(pooled, whole) > 35 and psnr(pooled, whole) > psnr(thumb, whole) + 8
    with pytest.raises(ValueError, match="unknown tile_statistics 'kernel'; valid: 'auto', 'tiles', 'thumbnail'"):
        model.translate(image, tile_statistics="kernel")


@pytest.mark.parametrize("which", ["photo", "digit"])
def test_an_image_that_fits_is_one_plain_pass_bit_for_bit(model, monkeypatch, which):
    """Below the budget nothing of the tiles takes part: one pass on the whole image, no hook on any norm, and the
    picture is that pass's output, bit for bit (a photo, and a digit through the shipped pair)."""
    if which == "photo":
        net, image = model, photo(300, 200)
    else:
        net = CycleGenerator.from_pretrained(ROOT / "space" / "models" / "mnist-6to9")
        image = Image.open(ROOT / "space" / "examples" / "6-test0.png")
    passes = []
    original = translation.run

    def spy(network, x):
        assert not any(norm._forward_hooks for norm in tiles.image_norms(network))
        passes.append(original(network, x))
        return passes[-1]

    monkeypatch.setattr(translation, "run", spy)
    out = net.translate(image)
    monkeypatch.undo()
    (y,) = passes
    expected = imaging.to_unit(y.float(), list(net.translation_spec.value_range))[0]
    pixels = expected.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert y.shape[-2:] == (image.height, image.width)
    assert np.array_equal(np.asarray(out).reshape(pixels.shape), pixels)


def test_carried_statistics_steady_a_still_background_and_change_nothing_for_equal_frames(model):
    """A still scene where a bright object comes and goes: normalised frame by frame, the whole picture's colours
    jump with it; with the statistics carried, the background stays steadier."""
    scene = np.asarray(photo(64, 48), dtype=np.uint8)
    frames = []
    for t in range(8):
        frame = scene.copy()
        if t % 2:
            frame[8:28, 8:28] = 255  # the object, every other frame
        frames.append(Image.fromarray(frame))

    def outputs(momentum):
        if not momentum:
            return [np.asarray(f, dtype=np.float64) for f in model.translate(frames, batch_size=4)]
        with tiles.SmoothedStatistics(model, momentum) as carried:
            out = [np.asarray(f, dtype=np.float64) for f in model.translate(frames, batch_size=4)]
        assert carried.carried  # every image norm carried its statistics across the two batches
        return out

    def background_flicker(sequence):  # far from the object (and from its reach through the network)
        return np.mean([np.abs(b[36:, 40:] - a[36:, 40:]).mean() for a, b in zip(sequence, sequence[1:])])

    plain, steady = outputs(0), outputs(0.9)
    assert background_flicker(steady) < 0.5 * background_flicker(plain)
    same = [frames[0]] * 3
    with tiles.SmoothedStatistics(model, 0.9):
        carried = model.translate(same)
    assert all(np.array_equal(np.asarray(a), np.asarray(model.translate(frames[0]))) for a in carried)
    with pytest.raises(ValueError, match="momentum is from 0"):
        tiles.SmoothedStatistics(model, 1.0)
