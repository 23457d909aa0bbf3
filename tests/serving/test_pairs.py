import threading

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan_hub import CycleGenerator
from cyclegan_hub.serving.pairs import PairTranslator, ServingLimits, frame_like_mnist, load_pairs, resolve_pair


def tiny(src, dst, channels=1, size=28):
    torch.manual_seed(0)
    return CycleGenerator(
        in_channels=channels,
        out_channels=channels,
        base_channels=4,
        n_blocks=1,
        image_size=size,
        source_domain=src,
        target_domain=dst,
    )


def test_directions_are_named_after_the_domains():
    pair = PairTranslator(tiny("6", "9"), tiny("9", "6"))
    assert list(pair.directions) == ["6 -> 9", "9 -> 6"]
    with pytest.raises(
        ValueError, match=r"forward \(6 -> 9\) and reverse \(6 -> 9\) are not the two directions of one pair"
    ):
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
    threads = [
        threading.Thread(target=lambda k=k: results.__setitem__(k, pair.translate(images[k], "6 -> 9")))
        for k in range(12)
    ]
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


def test_photos_are_bounded_before_and_after_decoding():
    limits = ServingLimits(max_bytes=2**20, max_pixels=4_000_000, photo_side=64)
    pair = PairTranslator(tiny("horse", "zebra", 3, 256), tiny("zebra", "horse", 3, 256), limits=limits)
    assert not pair.digits and pair.max_batch == 1  # photos one at a time: activations bounded whatever the load
    result = pair.translate(Image.new("RGB", (400, 300), (90, 120, 30)), "horse -> zebra")
    assert result.translated.size == (64, 48) and result.size == (64, 48)  # translated at the bounded side
    import io

    bomb = io.BytesIO()
    Image.new("L", (3000, 2000)).save(bomb, "PNG")  # 6 MP in a few KB
    with pytest.raises(ValueError, match=r"3000x2000 pixels \(6 MP\), above the limit of 4 MP"):
        pair.translate(bomb.getvalue(), "horse -> zebra")
    with pytest.raises(ValueError, match="above the limit of 1 MB"):
        pair.translate(b"\x89PNG" + bytes(2**20), "horse -> zebra")


def test_a_slow_photo_pair_never_queues_the_digit_pair():
    """While a photo is inside its forward pass (held there until the digit answer has come back), a digit request
    is answered: each pair has its own worker."""
    inside, release = threading.Event(), threading.Event()

    def hold(module, inputs, output):
        inside.set()
        assert release.wait(60)

    slow_forward = tiny("horse", "zebra", 3, 256)
    photos = PairTranslator(slow_forward, tiny("zebra", "horse", 3, 256))  # calibrated at load: before the hook
    slow_forward.register_forward_hook(hold)
    digits = PairTranslator(tiny("6", "9"), tiny("9", "6"))
    photo = threading.Thread(target=photos.translate, args=(Image.new("RGB", (64, 64)), "horse -> zebra"))
    photo.start()
    assert inside.wait(60)  # the photo is in its forward pass now
    result = digits.translate(Image.new("L", (28, 28)), "6 -> 9", timeout=60)
    assert result.translated.size == (28, 28) and photo.is_alive()
    release.set()
    photo.join(60)
    assert not photo.is_alive()


def test_pairs_by_name_and_unique_direction_labels(tmp_path):
    for a, b in (("6", "9"), ("9", "6")):
        tiny(a, b).save_pretrained(tmp_path / f"mnist-{a}to{b}")
    (tmp_path / "run").mkdir()
    for name, (a, b) in (("generator_AtoB", ("6", "9")), ("generator_BtoA", ("9", "6"))):
        tiny(a, b).save_pretrained(tmp_path / "run" / name)
    assert resolve_pair(str(tmp_path / "mnist-6to9")) == (str(tmp_path / "mnist-6to9"), str(tmp_path / "mnist-9to6"))
    assert resolve_pair(str(tmp_path / "run")) == (
        str(tmp_path / "run" / "generator_AtoB"),
        str(tmp_path / "run" / "generator_BtoA"),
    )
    assert resolve_pair("user/horse2zebra") == ("user/horse2zebra", "user/zebra2horse")
    assert resolve_pair("user/a,user/b") == ("user/a", "user/b")
    pairs = load_pairs([str(tmp_path / "mnist-6to9"), str(tmp_path / "run")])
    labels = [label for pair in pairs for label in pair.directions]
    assert len(set(labels)) == 4 and labels[0] == "6 -> 9 (mnist-6to9)" and labels[2] == "6 -> 9 (run)"
    with pytest.raises(ValueError, match="pair nobody/nothing: nobody/nothing: no such local folder"):
        load_pairs(["nobody/nothing"])
