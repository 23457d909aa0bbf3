import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator
from cyclegan_hub.serving import PairTranslator, frame_like_mnist


def tiny(src, dst):
    torch.manual_seed(0)
    return CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=28,
                          source_domain=src, target_domain=dst)


def test_directions_are_named_after_the_domains():
    pair = PairTranslator(tiny("6", "9"), tiny("9", "6"))
    assert list(pair.directions) == ["6 -> 9", "9 -> 6"]
    with pytest.raises(ValueError, match="not a pair: 6 -> 9 and 6 -> 9"):
        PairTranslator(tiny("6", "9"), tiny("6", "9"))
    with pytest.raises(ValueError, match="unknown direction '6 -> 7'; valid: '6 -> 9', '9 -> 6'"):
        pair.translate(Image.new("L", (28, 28)), "6 -> 7")
    with pytest.raises(ValueError, match="no image"):
        pair.translate(None, "6 -> 9")


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer():
    forward, reverse = tiny("6", "9"), tiny("9", "6")
    batches = []
    forward.register_forward_hook(lambda m, i, o: batches.append(i[0].shape[0]))
    pair = PairTranslator(forward, reverse, max_batch=16, max_wait_ms=50)
    images = [Image.fromarray(np.random.default_rng(i).integers(0, 255, (28, 28), dtype=np.uint8)) for i in range(12)]
    results = [None] * 12
    threads = [threading.Thread(target=lambda k=k: results.__setitem__(k, pair.translate(images[k], "6 -> 9"))) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(batches) < 12 and max(batches) > 1  # fewer forward passes than requests
    for image, result in zip(images, results):
        alone_fwd, alone_rec = forward.translate(frame_like_mnist(image), return_reconstruction_with=reverse)
        assert np.abs(np.asarray(result.translated, int) - np.asarray(alone_fwd, int)).max() <= 1
        assert result.cycle_error >= 0


def test_frame_like_mnist_inverts_scales_and_centres():
    canvas = Image.new("L", (300, 200), 255)  # black ink on white, off-centre
    canvas.paste(0, (20, 20, 60, 140))
    framed = np.asarray(frame_like_mnist(canvas), np.float32)
    assert framed.shape == (28, 28)
    rows, cols = np.where(framed > 50)
    assert rows.max() - rows.min() + 1 == 20  # the long side fills the 20-pixel box
    cy, cx = (framed * np.mgrid[:28, :28]).sum((1, 2)) / framed.sum()
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    assert frame_like_mnist(Image.new("L", (50, 50), 255)).getextrema() == (0, 0)  # blank stays blank
