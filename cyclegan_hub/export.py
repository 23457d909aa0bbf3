"""ONNX export of a CycleGenerator, verified with onnxruntime, and ``OnnxGenerator`` to translate with the file.

The graph takes ``images`` [batch, channels, height, width] in the model's value range, with batch, height and
width dynamic (height and width multiples of the generator's ``size_multiple``, as for the PyTorch model), and
returns ``translated`` of the same shape. The generator's config travels in the ONNX metadata
(``cyclegan_hub_config``), so ``OnnxGenerator.translate`` pads, converts and crops exactly like the original.
Opset 18 (onnxruntime >= 1.14).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from .generator import CycleGenerator

OPSET = 18
TOLERANCE = 1e-4


def export_onnx(generator: CycleGenerator, path: str | os.PathLike, *, opset: int = OPSET,
                check_sizes: tuple[int, ...] = (32, 64)) -> dict[str, float]:
    """Write ``generator`` to ``path`` as ONNX and check it against PyTorch with onnxruntime on random inputs of two
    sizes (max abs difference <= 1e-4). Returns the differences by input shape; raises ValueError when they fail."""
    try:
        import onnx
    except ImportError:
        raise ValueError("ONNX export needs the onnx, onnxscript and onnxruntime packages: pip install 'cyclegan-hub[export]'") from None
    path = Path(path)
    generator = generator.eval().float().cpu()
    multiple = generator.size_multiple
    side = max(2 * generator.min_size, 2 * multiple)
    example = torch.randn(2, generator.config["in_channels"], side, side)
    dims = {0: torch.export.Dim("batch", min=1, max=1024)}
    # height = multiple * k: torch.export then knows every stride-2 layer divides it exactly
    for axis, name in ((2, "height"), (3, "width")):
        dims[axis] = multiple * torch.export.Dim(f"{name}_blocks", min=max(1, generator.min_size // multiple), max=4096)
    tmp = path.with_name(f".{path.name}.tmp")
    with torch.no_grad():
        torch.onnx.export(generator, (example,), str(tmp), input_names=["images"], output_names=["translated"],
                          opset_version=opset, dynamo=True, dynamic_shapes={"images": dims}, verbose=False)
    model = onnx.load(str(tmp))
    meta = {"cyclegan_hub_config": json.dumps(generator.config), "size_multiple": str(multiple),
            "min_size": str(generator.min_size)}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(tmp))
    diffs = verify_onnx(generator, tmp, check_sizes)
    worst = max(diffs.values())
    if worst > TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"the ONNX graph differs from PyTorch by {worst:.2e} (> {TOLERANCE}); nothing written")
    os.replace(tmp, path)
    return diffs


def verify_onnx(generator: CycleGenerator, path, sizes=(32, 64)) -> dict[str, float]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    generator_rng = torch.Generator().manual_seed(0)
    diffs = {}
    for i, size in enumerate(sizes):
        size = -(-max(size, generator.min_size) // generator.size_multiple) * generator.size_multiple
        shape = (1 + i, generator.config["in_channels"], size, size + generator.size_multiple * (i + 1))
        x = torch.rand(shape, generator=generator_rng) * 2 - 1
        with torch.no_grad():
            expected = generator(x).numpy()
        got = session.run(None, {"images": x.numpy()})[0]
        diffs["x".join(map(str, shape))] = float(np.abs(got - expected).max())
    return diffs


class OnnxGenerator:
    """A CycleGenerator exported to ONNX, run by onnxruntime: ``translate`` works as on the PyTorch model."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("running an ONNX model needs onnxruntime: pip install 'cyclegan-hub[export]'") from None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{path} is not a readable ONNX model ({str(err).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "cyclegan_hub_config" not in meta:
            raise ValueError(f"{path} was not exported by cyclegan-hub (no cyclegan_hub_config metadata)")
        self.config = json.loads(meta["cyclegan_hub_config"])
        self.size_multiple, self.min_size = int(meta["size_multiple"]), int(meta["min_size"])

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"images": images.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out)

    def to(self, *args, **kwargs):
        return self

    def eval(self):
        return self

    translate = CycleGenerator.translate

