"""The one-step family (CycleGAN-Turbo) at full SD-Turbo size, built from configs with random weights (no download):
what one training step costs in memory and time, and what a translation costs.

    python benchmarks/turbo_memory.py                               # CPU: training step at 256 px, translate at 512
    python benchmarks/turbo_memory.py --device cuda --sizes 256 512 --precision bf16   # a GPU: both sizes in bf16
    python benchmarks/turbo_memory.py --scale tiny --sizes 32 --translate-size 64     # the script's own check

Every training configuration runs in a fresh child process (so that each peak is its own): it reports the memory of
the weights alone ("build"), then of one full step of the shipped recipe, the authors' (cycle and identity updates
with L1 and LPIPS on a VGG16, the GAN update against their vision-aided critics on a CLIP ViT-B/32, each critic's
DiffAugment included, then the critics on fakes and on reals; CLIP and VGG16 also built with random weights) with
gradient checkpointing off and on. Peak memory is the child's peak RSS on a CPU and
``torch.cuda.max_memory_allocated`` on a GPU; the figure of merit is the ratio of checkpointing on to off, from the
same run. Translation latency is the median of a few 1-image translations at ``--translate-size``, against the
paper's ResNet-9 CycleGAN generator at the same size in the same process (its ratio says how much heavier the
one-step family is to serve).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, machine  # noqa: E402

#: SD-Turbo's (SD 2.1 base) UNet and VAE, as their config.json files describe them.
FULL = {
    "unet": dict(
        _class_name="UNet2DConditionModel",
        sample_size=64,
        in_channels=4,
        out_channels=4,
        block_out_channels=[320, 640, 1280, 1280],
        layers_per_block=2,
        down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        cross_attention_dim=1024,
        attention_head_dim=[5, 10, 20, 20],
        use_linear_projection=True,
        norm_num_groups=32,
    ),
    "vae": dict(
        _class_name="AutoencoderKL",
        in_channels=3,
        out_channels=3,
        block_out_channels=[128, 256, 512, 512],
        down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4,
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        sample_size=768,
        scaling_factor=0.18215,
    ),
}
TINY = {
    "unet": dict(
        _class_name="UNet2DConditionModel",
        sample_size=8,
        block_out_channels=[16, 32],
        layers_per_block=1,
        down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
        up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    ),
    "vae": dict(
        _class_name="AutoencoderKL",
        block_out_channels=[8, 16, 16],
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
    ),
}
#: The vision-aided critic's CLIP image encoder: ViT-B/32 (openai/clip-vit-base-patch32), or a tiny one.
CLIP = {
    "full": dict(
        hidden_size=768,
        intermediate_size=3072,
        num_hidden_layers=12,
        num_attention_heads=12,
        image_size=224,
        patch_size=32,
        projection_dim=512,
    ),
    "tiny": dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        projection_dim=16,
    ),
}
SCHEDULER = dict(
    _class_name="DDPMScheduler",
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    beta_end=0.012,
    num_train_timesteps=1000,
    clip_sample=False,
    prediction_type="epsilon",
    timestep_spacing="trailing",
)


def write_configs(folder: Path, scale: str) -> Path:
    """A base folder holding only the components' config.json files (no weights)."""
    for name, config in {**(FULL if scale == "full" else TINY), "scheduler": SCHEDULER}.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        filename = "scheduler_config.json" if name == "scheduler" else "config.json"
        (folder / name / filename).write_text(json.dumps(config))
    (folder / "clip").mkdir(exist_ok=True)
    (folder / "clip" / "config.json").write_text(json.dumps(CLIP[scale]))
    write_lpips_trunk(folder / "vgg16")
    return folder


def write_lpips_trunk(folder: Path) -> None:
    """LPIPS's VGG16 trunk with random weights, as ``lpips_model`` reads it (``model.safetensors``)."""
    from safetensors.torch import save_file

    from cyclegan_hub.training.perceptual import vgg16_trunk

    folder.mkdir(exist_ok=True)
    state = {f"features.{k}": v.contiguous() for k, v in vgg16_trunk().state_dict().items()}
    save_file(state, folder / "model.safetensors")


def random_translator(base: Path, device: torch.device, rank: int, shared=None):
    """A OneStepTranslator built from the base's configs with random weights (the layout and cost of the real one)."""
    from cyclegan_hub.models.turbo import OneStepTranslator

    options = dict(base_model=str(base), unet_rank=rank, caption_tokens=77)
    with torch.device("meta"):
        model = OneStepTranslator(**options, unet=shared)
    if shared is None:
        model.to_empty(device=device)
    else:  # the shared UNet is real already: only this direction's own parts are materialised
        model.vae.to_empty(device=device)
        model.caption_embedding = torch.empty(model.caption_embedding.shape, device=device)
    generator = torch.Generator(device="cpu").manual_seed(0)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if shared is not None and name.startswith("unet."):
                continue
            if "skip_conv" in name:
                tensor.fill_(1e-5)
            elif "lora_B" in name:
                tensor.zero_()
            elif tensor.dim() <= 1:
                tensor.fill_(1.0 if "norm" in name and name.endswith("weight") else 0.0)
            else:  # variance-preserving, so that every layer carries signal
                tensor.copy_(torch.randn(tensor.shape, generator=generator) / tensor[0].numel() ** 0.5)
    return model


def peak_memory(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


def child(args) -> dict:
    """One configuration, in this (fresh) process: build, then ``--mode`` (build / step)."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    from cyclegan_hub.models.clip_discriminator import POLICY, CLIPDiscriminator
    from cyclegan_hub.training import turbo
    from cyclegan_hub.training.families import StepParts

    device = torch.device(args.device)
    base = Path(args.base)
    g = random_translator(base, device, args.rank)
    f = random_translator(base, device, args.rank, shared=g.unet)
    clip = CLIPVisionModelWithProjection(CLIPVisionConfig.from_json_file(base / "clip" / "config.json"))
    clip = clip.to(device).eval().requires_grad_(False)
    nets = {"G": g, "F": f, "D_A": CLIPDiscriminator(clip).to(device), "D_B": CLIPDiscriminator(clip).to(device)}
    if args.checkpointing:
        g.enable_gradient_checkpointing()
        f.enable_gradient_checkpointing()
    built = peak_memory(device)
    result = {"build_gib": round(built, 2)}
    if args.mode == "build":
        return result
    config = SimpleNamespace(  # the shipped config's (training/configs/horse2zebra-turbo.toml)
        train=SimpleNamespace(
            lr=1e-5, beta1=0.9, beta2=0.999, gan_mode="vanilla", lambda_cycle=1.0, lambda_identity=1.0
        ),
        model=SimpleNamespace(
            weight_decay=1e-2,
            lambda_gan=0.5,
            max_grad_norm=10.0,
            discriminator="clip",
            augment=POLICY,
            lambda_cycle_lpips=10.0,
            lambda_idt_lpips=1.0,
            lpips_model=str(base / "vgg16"),
        ),
    )
    optimizers = turbo._optimizers(nets, config, device)
    dtype = {"fp32": None, "bf16": torch.bfloat16}[args.precision]

    def autocast():
        return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)

    step = turbo._step(StepParts(nets, nets, optimizers, {}, config, autocast, torch.Tensor.backward))
    x = torch.rand(1, 3, args.size, args.size, device=device) * 2 - 1
    times = []
    for _ in range(args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses = step(x, x.flip(-1))
        float(losses.sum())
        times.append(time.perf_counter() - start)
    result.update(
        peak_gib=round(peak_memory(device), 2),
        step_s=round(statistics.median(times[1:] if len(times) > 1 else times), 2),
        trained=sum(p.numel() for p in turbo.generator_parameters(nets)),
    )
    return result


def run_child(argv: list[str], device: str) -> dict:
    proc = subprocess.Popen(
        [sys.executable, __file__, *argv, "--child"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        return {"error": (err.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(out.strip().splitlines()[-1])


def translate_latency(base: Path, device: torch.device, size: int, repeats: int, precision: str) -> dict:
    from PIL import Image

    from cyclegan_hub import CycleGenerator, translation

    turbo_model = random_translator(base, device, 4).eval()
    cyclegan = CycleGenerator().to(device).eval()
    image = Image.new("RGB", (size, size), (120, 90, 40))
    timings = {"one-step": [], "cyclegan-resnet9": []}
    with torch.inference_mode():
        for model in (turbo_model, cyclegan):  # warm-up
            translation.translate(model, image, max_side=size, precision=precision)
        for _ in range(repeats):  # interleaved: both see the same machine load
            for name, model in (("one-step", turbo_model), ("cyclegan-resnet9", cyclegan)):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                translation.translate(model, image, max_side=size, precision=precision)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                timings[name].append(time.perf_counter() - start)
    medians = {name: round(statistics.median(t), 3) for name, t in timings.items()}
    return {"size": size, "seconds": medians, "ratio": round(medians["one-step"] / medians["cyclegan-resnet9"], 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--scale", choices=("full", "tiny"), default="full")
    p.add_argument("--sizes", type=int, nargs="+", default=[256], help="training image sizes")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--steps", type=int, default=1, help="training steps per configuration (the first warms up)")
    p.add_argument("--rank", type=int, default=128, help="UNet LoRA rank (the authors': 128)")
    p.add_argument("--translate-size", type=int, default=512)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--output", help="write the JSON here")
    # one configuration, in a child process
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    p.add_argument("--mode", default="step", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, default=256, help=argparse.SUPPRESS)
    p.add_argument("--checkpointing", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    device = torch.device(args.device)
    report = {"machine": machine(), "scale": args.scale, "precision": args.precision, "rank": args.rank, "rows": []}
    with tempfile.TemporaryDirectory(prefix="turbo-base-") as tmp:
        base = write_configs(Path(tmp), args.scale)
        common = [
            "--base",
            str(base),
            "--device",
            args.device,
            "--rank",
            str(args.rank),
            "--precision",
            args.precision,
            "--steps",
            str(args.steps),
        ]
        for size in args.sizes:
            row = {"size": size}
            for label, flag in (("off", []), ("on", ["--checkpointing"])):
                row[f"checkpointing_{label}"] = run_child([*common, "--size", str(size), *flag], args.device)
                print(f"{size}px, gradient checkpointing {label}: {row[f'checkpointing_{label}']}", flush=True)
            off, on = row["checkpointing_off"], row["checkpointing_on"]
            if "peak_gib" in off and "peak_gib" in on:
                row["peak_ratio_on_off"] = round(on["peak_gib"] / off["peak_gib"], 2)
                row["time_ratio_on_off"] = round(on["step_s"] / max(off["step_s"], 1e-9), 2)
            report["rows"].append(row)
        precision = "bf16" if args.precision == "bf16" else "fp32"
        report["translate"] = translate_latency(base, device, args.translate_size, args.repeats, precision)
        print(f"translate: {report['translate']}", flush=True)
    text = json.dumps(report, indent=1)
    if args.output:
        Path(args.output).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
