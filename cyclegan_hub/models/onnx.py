"""ONNX export of a CycleGenerator, verified with onnxruntime, and ``OnnxGenerator`` to translate with the file.

The graph takes ``images`` [batch, channels, height, width] in the model's value range, with batch, height and
width dynamic (height and width multiples of the generator's ``size_multiple``, as for the PyTorch model), and
returns ``translated`` of the same shape. The generator's config travels in the ONNX metadata
(``cyclegan_hub_config``), so ``OnnxGenerator.translate`` pads, converts and crops exactly like the original.
Opset 18 (onnxruntime >= 1.14).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from .. import translation
from ..io.errors import first_line
from ..io.files import atomic_write
from ..translation import TranslationSpec
from .cyclegan import CycleGenerator

OPSET = 18
TOLERANCE = 1e-4


#: What one ONNX file can hold (protobuf's 2 GB limit), less room for the graph.
MAX_ONNX_BYTES = int(1.9 * 2**30)


def export_onnx(
    generator: CycleGenerator,
    path: str | os.PathLike,
    *,
    opset: int = OPSET,
    check_sizes: tuple[tuple[int, int], ...] = ((30, 37), (61, 70)),
) -> dict[str, float]:
    """Write ``generator`` to ``path`` as one ONNX file and check it against PyTorch with onnxruntime, both through
    the pad -> run -> crop path ``translate`` uses, on random inputs of sizes that need padding (max abs difference
    <= 1e-4). Returns the differences by input shape; raises ValueError (nothing written) when they fail."""
    try:
        import onnx
    except ImportError:
        raise ValueError(
            "ONNX export needs the onnx, onnxscript and onnxruntime packages: pip install 'cyclegan-hub[export]'"
        ) from None
    size = sum(p.numel() * 4 for p in generator.parameters())
    if size > MAX_ONNX_BYTES:  # one .onnx file holds at most 2 GB (protobuf): a one-step translator with its base
        raise ValueError(
            f"this network holds {size / 2**30:.1f} GB of float32 weights; one ONNX file holds at most "
            f"{MAX_ONNX_BYTES / 2**30:.1f} GB, so it is not exported"
        )
    path = Path(path)
    generator = generator.eval().float().cpu()
    spec = generator.translation_spec
    multiple = spec.size_multiple
    side = max(2 * spec.min_size, 2 * multiple) + 2 * spec.border
    example = torch.randn(2, spec.in_channels, side, side)
    dims = {0: torch.export.Dim("batch", min=1, max=1024)}
    # height = multiple * k (+ the border the network loses): torch.export then knows every stride-2 layer divides
    # it exactly
    for axis, name in ((2, "height"), (3, "width")):
        blocks = torch.export.Dim(f"{name}_blocks", min=max(1, spec.min_size // multiple), max=4096)
        dims[axis] = multiple * blocks + 2 * spec.border if spec.border else multiple * blocks
    path.parent.mkdir(parents=True, exist_ok=True)
    # The exporter writes the graph and a weights file beside it: both stay in a temporary folder, whatever happens.
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        draft = Path(tmp) / "model.onnx"
        with torch.no_grad(), _quiet_exporter():
            torch.onnx.export(
                generator,
                (example,),
                str(draft),
                input_names=["images"],
                output_names=["translated"],
                opset_version=opset,
                dynamo=True,
                dynamic_shapes={"images": dims},
                verbose=False,
            )
        model = onnx.load(str(draft))  # the weights, read back in
        meta = {
            "cyclegan_hub_config": json.dumps(generator.config),
            "size_multiple": str(multiple),
            "min_size": str(spec.min_size),
            "border": str(spec.border),
        }
        for key, value in meta.items():
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
        single = Path(tmp) / "single.onnx"
        onnx.save(model, str(single))  # one self-contained file
        diffs = verify_onnx(generator, single, check_sizes)
        worst = max(diffs.values())
        if worst > TOLERANCE:
            raise ValueError(f"the ONNX graph differs from PyTorch by {worst:.2e} (> {TOLERANCE}); nothing written")
        atomic_write(path, lambda f: f.write(single.read_bytes()))
    return diffs


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter warns about torchvision ops it skips (this package uses none) and about deprecated pytree APIs."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def verify_onnx(generator: CycleGenerator, path, sizes=((30, 37), (61, 70))) -> dict[str, float]:
    """Max |onnxruntime - PyTorch| per input shape, both run through the pad -> run -> crop of ``translate``."""
    runtime = OnnxGenerator(path)
    generator_rng = torch.Generator().manual_seed(0)
    diffs = {}
    for i, (height, width) in enumerate(sizes):
        x = torch.rand((1 + i, generator.config["in_channels"], height, width), generator=generator_rng) * 2 - 1
        with torch.no_grad():
            expected = translation.run(generator, x)
        got = translation.run(runtime, x)
        diffs["x".join(map(str, x.shape))] = float((got - expected).abs().max())
    return diffs


class OnnxGenerator:
    """A CycleGenerator exported to ONNX, run by onnxruntime: ``translate`` works as on the PyTorch model."""

    def __init__(self, path: str | os.PathLike, providers: list[str] | None = None, threads: int | None = None):
        """``threads``: intra-op threads of the CPU provider (default: onnxruntime's choice, the physical cores)."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError("running an ONNX model needs onnxruntime: pip install 'cyclegan-hub[export]'") from None
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise ValueError(f"{path} is not a readable ONNX model ({first_line(err)})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "cyclegan_hub_config" not in meta:
            raise ValueError(f"{path} was not exported by cyclegan-hub (no cyclegan_hub_config metadata)")
        self.config = json.loads(meta["cyclegan_hub_config"])
        self.translation_spec = TranslationSpec(
            in_channels=self.config["in_channels"],
            out_channels=self.config["out_channels"],
            value_range=tuple(self.config["value_range"]),
            size_multiple=int(meta["size_multiple"]),
            min_size=int(meta["min_size"]),
            border=int(meta.get("border", 0)),
        )

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"images": images.detach().float().cpu().numpy()})[0]
        return torch.from_numpy(out)

    translate = CycleGenerator.translate
