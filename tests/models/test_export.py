import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from cyclegan_hub import CycleGenerator
from cyclegan_hub.cli import main
from cyclegan_hub.models.onnx import OnnxGenerator, export_onnx, verify_onnx


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    g = CycleGenerator(
        in_channels=1, out_channels=1, base_channels=8, n_blocks=1, image_size=28, source_domain="6", target_domain="9"
    ).eval()
    path = tmp_path_factory.mktemp("onnx") / "g.onnx"
    diffs = export_onnx(g, path)
    return g, path, diffs


def test_onnx_matches_pytorch_at_two_sizes_and_batches(exported):
    g, path, diffs = exported
    assert len(diffs) == 2 and max(diffs.values()) <= 1e-4
    again = verify_onnx(g, path, sizes=((28, 28), (100, 90)))  # other sizes than at export: the axes are dynamic
    assert max(again.values()) <= 1e-4 and set(again) == {"1x1x28x28", "2x1x100x90"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["g.onnx"]  # no weights file or temporary left beside it
    assert path.stat().st_mode & 0o777 == 0o644


def test_onnx_generator_translates_like_the_model(exported, tmp_path):
    g, path, _ = exported
    onnx_g = OnnxGenerator(path)
    assert onnx_g.config == g.config
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 22), dtype=np.uint8))
    a, b = np.asarray(g.translate(image, precision="fp32"), int), np.asarray(onnx_g.translate(image), int)
    assert a.shape == b.shape == (30, 22) and np.abs(a - b).max() <= 1


def test_cli_export_and_translate_with_onnx(tmp_path, capfd):
    torch.manual_seed(0)
    CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1).save_pretrained(tmp_path / "m")
    assert main(["export", "--model", str(tmp_path / "m"), "--onnx", str(tmp_path / "m.onnx")]) == 0
    out, err = capfd.readouterr()
    assert "max |onnx - torch|" in out and "torchvision" not in err
    Image.new("L", (20, 20), 30).save(tmp_path / "in.png")
    assert (
        main(
            [
                "translate",
                "--model",
                str(tmp_path / "m.onnx"),
                str(tmp_path / "in.png"),
                "-o",
                str(tmp_path / "out.png"),
            ]
        )
        == 0
    )
    assert Image.open(tmp_path / "out.png").size == (20, 20)


def test_bad_onnx_files(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        OnnxGenerator(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        OnnxGenerator(tmp_path / "missing.onnx")


@pytest.mark.parametrize(
    "options",
    [
        dict(downsampling="antialias", upsampling="antialias", norm="instance_affine"),  # CUT's, with affine norms
        dict(in_channels=1, out_channels=1, upsampling="resize_zero", edge_padding=1),  # HugGAN's gray generator
    ],
    ids=["cut-affine", "huggan-gray"],
)
def test_the_converted_layouts_options_export_to_onnx(options, tmp_path):
    torch.manual_seed(0)
    g = CycleGenerator(base_channels=8, n_blocks=1, **options).eval()
    with torch.no_grad():  # non-trivial affine norms
        for module in g.modules():
            if isinstance(module, torch.nn.InstanceNorm2d) and module.weight is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    diffs = export_onnx(g, tmp_path / "g.onnx")
    assert max(diffs.values()) <= 1e-4
    image = Image.fromarray(
        np.random.default_rng(1).integers(0, 255, (37, 29, g.config["in_channels"]), dtype=np.uint8).squeeze()
    )
    a = np.asarray(g.translate(image, precision="fp32"), int)  # the session is fp32: compare like with like
    b = np.asarray(OnnxGenerator(tmp_path / "g.onnx").translate(image), int)
    assert a.shape == b.shape == np.asarray(image).shape and np.abs(a - b).max() <= 1
