"""Train a CycleGAN pair (G: A -> B, F: B -> A) on two unpaired Hugging Face datasets, with accelerate.

    # CPU, bundled MNIST 6 <-> 9 data, a few minutes:
    python training/train.py --config training/configs/mnist-6to9.toml

    # the same on two CPU processes (DDP over gloo):
    torchrun --nproc_per_node 2 training/train.py --config training/configs/mnist-6to9.toml

    # many GPUs:
    accelerate launch --multi_gpu training/train.py --config training/configs/horse2zebra.toml

    # resume the newest checkpoint of a run, weight for weight:
    python training/train.py --config training/configs/mnist-6to9.toml --resume latest

Any config key can be overridden with ``--set section.key=value`` (TOML literals: numbers, true/false, "strings").
The run folder receives: ``generator_AtoB/`` and ``generator_BtoA/`` (``save_pretrained`` folders with config and
model card), ``metrics.json``, ``run_config.json``, ``samples/`` (input | translated | reconstructed grids),
``logs/`` (TensorBoard) and ``checkpoints/`` (safetensors + JSON, every piece of state, written atomically).

Recipe (Zhu et al., 2017): Adam 2e-4, betas (0.5, 0.999); cycle weight 10; identity weight 0.5 x cycle, G fed the
target domain; least-squares GAN loss; a pool of 50 past fakes for D; D loss halved; D frozen in the G step;
constant learning rate, then linear decay to zero; optional EMA of the generators (exported when on).
"""

from __future__ import annotations

import argparse
import copy
import errno
import json
import math
import os
import random
import shutil
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from cyclegan_hub import CycleGenerator, ImagePool, PatchDiscriminator
from cyclegan_hub import data as cdata
from cyclegan_hub import losses
from cyclegan_hub.evaluate import evaluate_pair, metrics_table, reversed_metrics
from cyclegan_hub.hub import latest_checkpoint

DEFAULTS = {
    "domain_a": {"label": "A", "eval_split": None},
    "domain_b": {"label": "B", "eval_split": None},
    "data": {"image_size": 256, "load_size": 286, "channels": 3, "flip": True, "eval_images": 500},
    "model": {
        "architecture": "resnet", "base_channels": 64, "n_blocks": 9, "n_downsampling": 2, "norm": "instance",
        "upsampling": "transpose", "dropout": 0.0, "d_base_channels": 64, "d_layers": 3, "d_norm": "instance",
    },
    "train": {
        "output_dir": "runs/cyclegan", "seed": 0, "batch_size": 1, "max_steps": 1000,
        "lr_constant_steps": 500, "lr_decay_steps": 500,
        "lr": 2e-4, "beta1": 0.5, "beta2": 0.999, "lambda_cycle": 10.0, "lambda_identity": 0.5,
        "gan_mode": "lsgan", "pool_size": 50, "ema": False, "ema_decay": 0.999, "mixed_precision": "no",
        "channels_last": False, "compile": False,
        "log_every": 25, "sample_every": 500, "eval_every": 0, "checkpoint_every": 500, "checkpoints_total_limit": 3,
    },
    "hub": {"push_to_hub": False, "repo_id": None, "reverse_repo_id": None, "private": False},
}  # fmt: skip


# train.compile: false (eager), true (torch.compile's default mode), or a torch.compile mode by name;
# "reduce-overhead" captures CUDA graphs, which pays off where small batches leave the GPU waiting for Python.
COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class TrainingError(Exception):
    """A problem with the run that the user can act on; printed as one line."""


# ---------------------------------------------------------------------------------------------------------------
# arguments and config
# ---------------------------------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run folder, recipe and examples: see the top of training/train.py.")
    p.add_argument("--config", help="TOML config (training/configs/*.toml); flags below override it")
    p.add_argument("--output-dir", help="run folder (train.output_dir)")
    p.add_argument("--max-steps", type=int, help="optimisation steps (train.max_steps)")
    p.add_argument("--batch-size", type=int, help="images per domain per process and step (train.batch_size)")
    p.add_argument("--seed", type=int, help="seed of the models, the data order and the pools (train.seed)")
    p.add_argument("--resume", help="'latest', a checkpoint folder, or a Hub repo pushed with --include-training-state")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (train.checkpoint_every)")
    p.add_argument("--checkpoints-total-limit", type=int, help="keep this many checkpoints (train.checkpoints_total_limit)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], help="autocast precision (train.mixed_precision)")
    p.add_argument("--push-to-hub", action="store_true", default=None, help="push the pair at the end (hub.push_to_hub)")
    p.add_argument("--hub-repo-id", help="repo of the A->B generator (hub.repo_id)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config key")
    return p.parse_args(argv)


def load_config(args: argparse.Namespace) -> dict:
    config = copy.deepcopy(DEFAULTS)
    if args.config:
        try:
            with open(args.config, "rb") as f:
                user = tomllib.load(f)
        except FileNotFoundError:
            raise TrainingError(f"config file {args.config} not found") from None
        except tomllib.TOMLDecodeError as err:
            raise TrainingError(f"config file {args.config} is not valid TOML: {err}") from None
        for section, values in user.items():
            if section not in config or not isinstance(values, dict):
                raise TrainingError(f"unknown config section [{section}]; valid: {', '.join(config)}")
            config[section].update(values)
        # Local dataset paths in a config are relative to the config file (Hub ids are left as they are).
        for section in ("domain_a", "domain_b"):
            for key in ("path", "data_dir"):
                value = config[section].get(key)
                candidate = Path(args.config).parent / value if isinstance(value, str) else None
                if candidate is not None and not Path(value).is_absolute() and candidate.exists():
                    config[section][key] = os.path.relpath(candidate) if not Path(args.config).is_absolute() \
                        else os.path.normpath(candidate)
    for item in args.set:
        key, sep, raw = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or section not in config or not name:
            raise TrainingError(f"--set {item!r}: write SECTION.KEY=VALUE with SECTION one of {', '.join(config)}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw  # a bare word is a string
        config[section][name] = value
    flags = {
        "output_dir": args.output_dir, "max_steps": args.max_steps, "batch_size": args.batch_size, "seed": args.seed,
        "checkpoint_every": args.checkpoint_every, "checkpoints_total_limit": args.checkpoints_total_limit,
        "mixed_precision": args.mixed_precision,
    }  # fmt: skip
    config["train"].update({k: v for k, v in flags.items() if v is not None})
    if args.push_to_hub:
        config["hub"]["push_to_hub"] = True
    if args.hub_repo_id:
        config["hub"]["repo_id"] = args.hub_repo_id
    for section in ("data", "model", "train", "hub"):
        unknown = sorted(set(config[section]) - set(DEFAULTS[section]))
        if unknown:
            raise TrainingError(f"unknown key(s) in [{section}]: {', '.join(unknown)}; valid: {', '.join(DEFAULTS[section])}")
    train = config["train"]
    if train["max_steps"] < 1 or train["batch_size"] < 1:
        raise TrainingError("train.max_steps and train.batch_size must be at least 1")
    if train["lr_constant_steps"] < 0 or train["lr_decay_steps"] < 0:
        raise TrainingError("train.lr_constant_steps and train.lr_decay_steps must be >= 0")
    if train["compile"] not in COMPILE_MODES:
        raise TrainingError(f"train.compile = {train['compile']!r}: use one of {', '.join(map(repr, COMPILE_MODES))}")
    if isinstance(train["eval_every"], bool) or not isinstance(train["eval_every"], int) or train["eval_every"] < 0:
        raise TrainingError(f"train.eval_every = {train['eval_every']!r}: use a number of steps (0: only at the end)")
    return config


def split_domain(section: dict) -> tuple[cdata.DomainSpec, str, str | None]:
    values = dict(section)
    label, eval_split = str(values.pop("label")), values.pop("eval_split")
    return cdata.DomainSpec.from_dict(values), label, eval_split


# ---------------------------------------------------------------------------------------------------------------
# checkpoints: safetensors + JSON, written atomically, only by the main process
# ---------------------------------------------------------------------------------------------------------------


def optimizer_state(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer's state_dict into tensors (for safetensors) and JSON."""
    state = opt.state_dict()
    tensors = {
        f"{prefix}.{pid}.{key}": (value if torch.is_tensor(value) else torch.tensor(value)).contiguous()
        for pid, slots in state["state"].items()
        for key, value in slots.items()
    }
    return tensors, {"param_groups": state["param_groups"]}


def load_optimizer_state(opt: torch.optim.Optimizer, prefix: str, tensors: dict, meta: dict) -> None:
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def write_atomically(directory: Path, files: dict[str, object]) -> None:
    """Write every file into ``directory.tmp`` (fsynced), then rename it into place: a kill at any moment leaves
    either the complete folder or none."""
    tmp = directory.with_name(f".tmp-{directory.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name, content in files.items():
        path = tmp / name
        if name.endswith(".safetensors"):
            save_file(content, str(path))
        else:
            path.write_text(json.dumps(content, indent=1))
        with open(path, "rb") as f:
            os.fsync(f.fileno())
    if directory.exists():
        shutil.rmtree(directory)
    os.replace(tmp, directory)
    pointer = directory.parent / "latest"
    pointer_tmp = directory.parent / ".latest.tmp"
    pointer_tmp.write_text(directory.name)
    os.replace(pointer_tmp, pointer)


def find_checkpoint(output_dir: Path, resume: str) -> Path:
    if resume != "latest" and not Path(resume).exists() and resume.count("/") == 1:
        return download_training_state(resume)
    if resume != "latest":
        path = Path(resume)
        if not (path / "training_state.json").is_file():
            raise TrainingError(f"--resume {resume}: not a checkpoint folder (no training_state.json)")
        return path
    path = latest_checkpoint(output_dir)
    if path is None:
        raise TrainingError(f"--resume latest: no checkpoint in {output_dir / 'checkpoints'}")
    return path


def download_training_state(repo_id: str) -> Path:
    """A repo pushed with --include-training-state holds a checkpoint under training_state/."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, allow_patterns=["training_state/*"])
    except (HfHubHTTPError, LocalEntryNotFoundError) as err:
        raise TrainingError(f"--resume {repo_id}: cannot download it from the Hub ({str(err).splitlines()[0]})") from None
    path = Path(folder) / "training_state"
    if not (path / "training_state.json").is_file():
        raise TrainingError(f"--resume {repo_id}: the repo has no training state (push it with --include-training-state)")
    return path


def rng_state() -> dict[str, torch.Tensor]:
    """Every random generator of this process (torch, CUDA, Python, NumPy), as tensors for safetensors."""
    _, internal, gauss = random.getstate()
    _, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch_rng": torch.get_rng_state(),
        "python_rng": torch.tensor(internal, dtype=torch.int64),
        "python_rng_gauss": torch.tensor([gauss is not None, gauss or 0.0], dtype=torch.float64),  # (set?, value)
        "numpy_rng": torch.from_numpy(keys.astype(np.int64)),
        "numpy_rng_extra": torch.tensor([pos, has_gauss, cached], dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda_rng"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(state["torch_rng"])
    if torch.cuda.is_available() and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"])
    has_next, next_gauss = state["python_rng_gauss"].tolist()
    random.setstate((3, tuple(int(v) for v in state["python_rng"]), next_gauss if has_next else None))
    pos, has_gauss, cached = state["numpy_rng_extra"].tolist()
    np.random.set_state(("MT19937", state["numpy_rng"].numpy().astype(np.uint32), int(pos), int(has_gauss), cached))


def prune_checkpoints(root: Path, keep: int) -> None:
    if keep and keep > 0:
        for old in sorted(root.glob("step-*"))[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# one optimisation step (also what benchmarks/train_throughput.py times)
# ---------------------------------------------------------------------------------------------------------------


def cyclegan_step(nets, plain, opt_g, opt_d, pools, real_a, real_b, mode, lam_cyc, lam_id, accelerator):
    """One CycleGAN step: G and F against frozen D_A, D_B, then D_A, D_B against real images and pooled fakes.

    ``nets`` are the prepared (possibly DDP-wrapped or compiled) networks G, F, D_A, D_B; ``plain`` the same
    networks unwrapped: D is called unwrapped in the G step so that DDP does not expect gradients for it there.
    Returns the detached losses (G adversarial, cycle, identity, D_A, D_B)."""
    d_params = [p for name in ("D_A", "D_B") for p in plain[name].parameters()]
    for p in d_params:
        p.requires_grad_(False)
    with accelerator.autocast():
        fake_b, fake_a = nets["G"](real_a), nets["F"](real_b)
        rec_a, rec_b = nets["F"](fake_b), nets["G"](fake_a)
        loss_gan = losses.generator_adversarial_loss(plain["D_B"](fake_b), mode) + losses.generator_adversarial_loss(plain["D_A"](fake_a), mode)
        loss_cycle = lam_cyc * (losses.cycle_loss(rec_a, real_a) + losses.cycle_loss(rec_b, real_b))
        loss_idt = torch.zeros((), device=real_a.device)
        if lam_id > 0:  # G fed its target domain should change nothing (Section 5.2)
            loss_idt = lam_cyc * lam_id * (losses.identity_loss(nets["G"](real_b), real_b) + losses.identity_loss(nets["F"](real_a), real_a))
        loss_g = loss_gan + loss_cycle + loss_idt
    opt_g.zero_grad(set_to_none=True)
    accelerator.backward(loss_g)
    opt_g.step()
    for p in d_params:
        p.requires_grad_(True)

    # D step: real vs a fake drawn from the pool of past fakes; the loss is halved inside discriminator_loss
    with accelerator.autocast():
        loss_d_b = losses.discriminator_loss(nets["D_B"](real_b), nets["D_B"](pools["B"].query(fake_b.detach())), mode)
        loss_d_a = losses.discriminator_loss(nets["D_A"](real_a), nets["D_A"](pools["A"].query(fake_a.detach())), mode)
        loss_d = loss_d_a + loss_d_b
    opt_d.zero_grad(set_to_none=True)
    accelerator.backward(loss_d)
    opt_d.step()
    return [t.detach().float() for t in (loss_gan, loss_cycle, loss_idt, loss_d_a, loss_d_b)]


# ---------------------------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    launched = time.time()  # the clock of eval_log.jsonl: time to quality includes loading data and compiling
    config = load_config(args)
    cfg_data, cfg_model, cfg_train = config["data"], config["model"], config["train"]
    output_dir = Path(cfg_train["output_dir"])

    from accelerate import Accelerator
    from accelerate.utils import gather_object, set_seed

    try:
        accelerator = Accelerator(
            mixed_precision=cfg_train["mixed_precision"], cpu=not torch.cuda.is_available(),
            log_with="tensorboard", project_dir=str(output_dir),
        )  # fmt: skip
    except ValueError as err:
        raise TrainingError(f"cannot use mixed precision {cfg_train['mixed_precision']!r} here: {err}") from None
    is_main, device = accelerator.is_main_process, accelerator.device
    say = accelerator.print

    # ---- data: two independent domains, decoded once into memory ----
    spec_a, label_a, eval_split_a = split_domain(config["domain_a"])
    spec_b, label_b, eval_split_b = split_domain(config["domain_b"])
    channels, size, load_size = cfg_data["channels"], cfg_data["image_size"], cfg_data["load_size"]
    if load_size < size:
        raise TrainingError(f"data.load_size ({load_size}) must be at least data.image_size ({size})")
    with accelerator.main_process_first():
        domains = {}
        for key, spec, label in (("A", spec_a, label_a), ("B", spec_b, label_b)):
            try:
                ds = cdata.load_domain(spec, what=f"domain {key} ({label})")
            except ValueError as err:
                raise TrainingError(str(err)) from None
            images, skipped = cdata.decode_domain(ds, spec.image_column, channels, load_size)
            if skipped:
                say(f"domain {key} ({label}): skipped {skipped} unreadable image(s)")
            if len(images) == 0:
                raise TrainingError(f"domain {key} ({label}): no readable image in {spec.describe()}")
            domains[key] = images
    images_a, images_b = domains["A"], domains["B"]
    if device.type == "cuda" and images_a.numel() + images_b.numel() < 4 * 2**30:
        # The decoded uint8 domains live on the GPU: crops, flips and batches never wait for the host.
        images_a, images_b = images_a.to(device), images_b.to(device)
    batch_size = cfg_train["batch_size"]
    sampler = cdata.UnpairedSampler(len(images_a), len(images_b), batch_size, cfg_train["seed"],
                                    accelerator.num_processes, accelerator.process_index)
    say(f"domain A ({label_a}): {len(images_a)} images from {spec_a.describe()}")
    say(f"domain B ({label_b}): {len(images_b)} images from {spec_b.describe()}")

    # held-out images for samples and the final evaluation
    def eval_images(spec, split, what):
        if split is None:
            return None
        try:
            ds = cdata.load_domain(cdata.DomainSpec(**{**spec.__dict__, "split": split, "streaming": False}), what)
        except ValueError as err:
            raise TrainingError(str(err)) from None
        return cdata.decode_domain(ds, spec.image_column, channels, size, cfg_data["eval_images"])[0]

    held_a = eval_images(spec_a, eval_split_a, f"domain A ({label_a}) evaluation split")
    held_b = eval_images(spec_b, eval_split_b, f"domain B ({label_b}) evaluation split")
    preview_a = (held_a if held_a is not None else cdata.augment(images_a[:8], size, False, torch.Generator()))[:8]
    preview_b = (held_b if held_b is not None else cdata.augment(images_b[:8], size, False, torch.Generator()))[:8]

    # ---- models: G (A -> B), F (B -> A), D_A judges F's outputs, D_B judges G's ----
    set_seed(cfg_train["seed"])
    g_kwargs = {k: cfg_model[k] for k in ("architecture", "base_channels", "n_blocks", "n_downsampling", "norm", "upsampling", "dropout")}
    gen_ab = CycleGenerator(in_channels=channels, out_channels=channels, source_domain=label_a, target_domain=label_b, image_size=size, **g_kwargs)
    gen_ba = CycleGenerator(in_channels=channels, out_channels=channels, source_domain=label_b, target_domain=label_a, image_size=size, **g_kwargs)
    d_kwargs = dict(in_channels=channels, base_channels=cfg_model["d_base_channels"], n_layers=cfg_model["d_layers"], norm=cfg_model["d_norm"])
    disc_a, disc_b = PatchDiscriminator(**d_kwargs), PatchDiscriminator(**d_kwargs)
    patches = disc_a.output_size(size, size)
    if min(patches) < 2:
        raise TrainingError(
            f"the discriminator (model.d_layers = {cfg_model['d_layers']}) gives a {patches[0]}x{patches[1]} patch map on "
            f"{size}x{size} images; use fewer layers (model.d_layers = {max(1, cfg_model['d_layers'] - 1)}) or larger images"
        )
    say(f"G, F: {gen_ab.num_parameters():,} parameters each; D_A, D_B: {disc_a.num_parameters():,} each, "
        f"{patches[0]}x{patches[1]} patches of {disc_a.receptive_field}x{disc_a.receptive_field}")

    # ---- optimizers and the constant-then-linear-decay schedule ----
    betas = (cfg_train["beta1"], cfg_train["beta2"])
    adam = dict(lr=cfg_train["lr"], betas=betas)
    if device.type == "cuda":
        adam["fused"] = True  # one kernel per step for all parameters
    opt_g = torch.optim.Adam(list(gen_ab.parameters()) + list(gen_ba.parameters()), **adam)
    opt_d = torch.optim.Adam(list(disc_a.parameters()) + list(disc_b.parameters()), **adam)
    # The schedule is fixed by the config, not by where this invocation stops (--max-steps): a run stopped at
    # step 3 and resumed to 6 follows the same learning rates as a run of 6 (the paper: n_epochs + n_epochs_decay).
    max_steps, constant, decay = cfg_train["max_steps"], cfg_train["lr_constant_steps"], cfg_train["lr_decay_steps"]
    if max_steps > constant + decay:
        say(f"note: the learning rate reaches 0 at step {constant + decay}, before --max-steps {max_steps}")

    def lr_factor(step: int) -> float:  # 1 for `constant` steps, then linearly down to 0 over `decay` steps
        return 1.0 if step < constant else max(0.0, 1.0 - (step - constant) / max(1, decay))

    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_factor)
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lr_factor)
    channels_last = cfg_train["channels_last"]
    if channels_last:  # NHWC: faster convolutions on tensor cores and many CPUs
        for net in (gen_ab, gen_ba, disc_a, disc_b):
            net.to(memory_format=torch.channels_last)
    gen_ab, gen_ba, disc_a, disc_b, opt_g, opt_d = accelerator.prepare(gen_ab, gen_ba, disc_a, disc_b, opt_g, opt_d)
    nets = {"G": gen_ab, "F": gen_ba, "D_A": disc_a, "D_B": disc_b}
    plain = {name: accelerator.unwrap_model(net) for name, net in nets.items()}
    if cfg_train["compile"]:
        compile_mode = None if cfg_train["compile"] is True else cfg_train["compile"]
        nets = {name: torch.compile(net, mode=compile_mode) for name, net in nets.items()}

    ema = None
    if cfg_train["ema"]:
        from diffusers.training_utils import EMAModel

        ema = {name: EMAModel(plain[name].parameters(), decay=cfg_train["ema_decay"]) for name in ("G", "F")}
        for e in ema.values():
            e.to(device)
    pools = {"A": ImagePool(cfg_train["pool_size"], seed=cfg_train["seed"] * 2 + 1),
             "B": ImagePool(cfg_train["pool_size"], seed=cfg_train["seed"] * 2 + 2)}

    # ---- resume ----
    step = 0
    checkpoints = output_dir / "checkpoints"
    if args.resume:
        path = find_checkpoint(output_dir, args.resume)
        meta = json.loads((path / "training_state.json").read_text())
        weights = load_file(str(path / "models.safetensors"))
        for name, net in plain.items():
            net.load_state_dict({k[len(name) + 1 :]: v for k, v in weights.items() if k.startswith(name + ".")})
        opt_tensors = load_file(str(path / "optimizers.safetensors"))
        load_optimizer_state(opt_g, "G", opt_tensors, meta["opt_g"])
        load_optimizer_state(opt_d, "D", opt_tensors, meta["opt_d"])
        sched_g.load_state_dict(meta["sched_g"])
        sched_d.load_state_dict(meta["sched_d"])
        if accelerator.scaler is not None and meta.get("scaler"):
            accelerator.scaler.load_state_dict(meta["scaler"])
        if ema is not None and "ema" in meta:
            for name, e in ema.items():
                e.load_state_dict({**meta["ema"][name], "shadow_params": [
                    weights[f"ema_{name}.{i}"] for i in range(len(e.shadow_params))]})
        rank_file = path / f"rank-{accelerator.process_index}.safetensors"
        if not rank_file.is_file():
            raise TrainingError(f"{path} was written by fewer processes; no state for process {accelerator.process_index}")
        rank_state = load_file(str(rank_file))
        for key, pool in pools.items():
            pool.load_state_dict({k[7:]: v for k, v in rank_state.items() if k.startswith(f"pool_{key}.")}, device)
        set_rng_state(rank_state)
        step = meta["step"]
        say(f"resumed from {path} at step {step}")

    def save_checkpoint(step: int) -> None:
        rank_state = rng_state()
        for key, pool in pools.items():
            rank_state.update({f"pool_{key}.{k}": v for k, v in pool.state_dict().items()})
        all_ranks = gather_object([rank_state]) if accelerator.num_processes > 1 else [rank_state]
        if not is_main:
            return
        weights = {f"{name}.{k}": v.detach().cpu().contiguous() for name, net in plain.items() for k, v in net.state_dict().items()}
        tensors_g, meta_g = optimizer_state(opt_g, "G")
        tensors_d, meta_d = optimizer_state(opt_d, "D")
        meta = {"step": step, "opt_g": meta_g, "opt_d": meta_d, "sched_g": sched_g.state_dict(), "sched_d": sched_d.state_dict(),
                "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None,
                "num_processes": accelerator.num_processes, "config": config}
        if ema is not None:
            meta["ema"] = {}
            for name, e in ema.items():
                state = e.state_dict()
                weights.update({f"ema_{name}.{i}": p.detach().cpu().contiguous() for i, p in enumerate(state.pop("shadow_params"))})
                meta["ema"][name] = state
        files = {"models.safetensors": weights, "optimizers.safetensors": {**tensors_g, **tensors_d}, "training_state.json": meta}
        files.update({f"rank-{r}.safetensors": {k: v.cpu().contiguous() for k, v in s.items()} for r, s in enumerate(all_ranks)})
        write_atomically(checkpoints / f"step-{step:06d}", files)
        prune_checkpoints(checkpoints, cfg_train["checkpoints_total_limit"])

    def save_samples(step: int) -> None:
        if not is_main:
            return
        from PIL import Image

        rows = []
        with torch.inference_mode():
            for x, g, f in ((preview_a, plain["G"], plain["F"]), (preview_b, plain["F"], plain["G"])):
                real = cdata.to_model_range(x).to(device)
                fake = g(real)
                rows += [real, fake, f(fake)]
        grid = cdata.preview_grid(rows)  # rows: A, G(A), F(G(A)), B, F(B), G(F(B))
        (output_dir / "samples").mkdir(parents=True, exist_ok=True)
        Image.fromarray(grid).save(output_dir / "samples" / f"step-{step:06d}.png")

    def export_pair() -> dict[str, CycleGenerator]:
        """Copies of G and F as they would be saved now (the EMA weights when EMA is on), in eval mode."""
        export = {name: copy.deepcopy(plain[name]).eval() for name in ("G", "F")}
        if ema is not None:
            for name in export:
                ema[name].copy_to(export[name].parameters())
        return export

    def evaluate_now(step: int, export: dict | None = None) -> dict:
        """Held-out metrics of the pair as it would be saved now; logged, and appended to eval_log.jsonl with the
        seconds since launch (so time to quality can be read off a run). Main process only; {} without held-out data."""
        if not is_main or held_a is None or held_b is None:
            return {}
        export = export or export_pair()
        metrics = evaluate_pair(export["G"], export["F"], cdata.to_model_range(held_a).to(device), cdata.to_model_range(held_b).to(device))
        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        with open(output_dir / "eval_log.jsonl", "a") as log:
            log.write(json.dumps({"step": step, "elapsed_s": round(time.time() - launched, 2)} | metrics) + "\n")
        return metrics

    # ---- train ----
    if is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "run_config.json").write_text(json.dumps(config, indent=2))
    accelerator.init_trackers("logs", config=flat_config(config))
    from tqdm.auto import tqdm

    progress = tqdm(total=max_steps, initial=step, disable=not is_main, desc="train", dynamic_ncols=True)
    mode, lam_cyc, lam_id = cfg_train["gan_mode"], cfg_train["lambda_cycle"], cfg_train["lambda_identity"]
    losses._check_mode(mode)
    running: list[torch.Tensor] = []
    last_good = None
    start_time, start_step = time.time(), step
    while step < max_steps:
        idx_a, idx_b = sampler.indices(step)
        aug = torch.Generator().manual_seed(cfg_train["seed"] * 7_919 + step * accelerator.num_processes + accelerator.process_index)
        real_a = cdata.training_batch(images_a, idx_a, size, cfg_data["flip"], aug, device)
        real_b = cdata.training_batch(images_b, idx_b, size, cfg_data["flip"], aug, device)

        if channels_last:
            real_a, real_b = real_a.contiguous(memory_format=torch.channels_last), real_b.contiguous(memory_format=torch.channels_last)
        if cfg_train["compile"] == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # last step's graph outputs may be reused from here on
        loss_gan, loss_cycle, loss_idt, loss_d_a, loss_d_b = cyclegan_step(
            nets, plain, opt_g, opt_d, pools, real_a, real_b, mode, lam_cyc, lam_id, accelerator)
        sched_g.step()
        sched_d.step()
        if ema is not None:
            ema["G"].step(plain["G"].parameters())
            ema["F"].step(plain["F"].parameters())
        step += 1
        progress.update(1)
        running.append(torch.stack([loss_gan, loss_cycle, loss_idt, loss_d_a, loss_d_b]))

        # ---- log, check for divergence, sample, checkpoint ----
        log_now = step % cfg_train["log_every"] == 0 or step == max_steps
        ckpt_now = step % cfg_train["checkpoint_every"] == 0 or step == max_steps
        if log_now or ckpt_now:
            values = torch.stack(running).mean(0).tolist()
            running.clear()
            if not all(math.isfinite(v) for v in values):
                names = ["loss_G_gan", "loss_cycle", "loss_identity", "loss_D_A", "loss_D_B"]
                bad = ", ".join(n for n, v in zip(names, values) if not math.isfinite(v))
                where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written"
                progress.close()  # before the message, so that it is the last line
                raise TrainingError(f"training diverged by step {step}: {bad} became NaN/inf; {where} "
                                    f"(resume it with a lower train.lr, or --mixed-precision no)")
            logs = dict(zip(["G_gan", "cycle", "identity", "D_A", "D_B"], values))
            rate = (step - start_step) * batch_size * accelerator.num_processes / max(1e-9, time.time() - start_time)
            progress.set_postfix({k: f"{v:.3f}" for k, v in logs.items()} | {"img/s": f"{rate:.0f}"})
            accelerator.log({f"loss/{k}": v for k, v in logs.items()} | {"lr": sched_g.get_last_lr()[0], "images_per_s": rate}, step=step)
        if step % cfg_train["sample_every"] == 0 or step == max_steps:
            save_samples(step)
        if cfg_train["eval_every"] and step % cfg_train["eval_every"] == 0 and step < max_steps:
            evaluate_now(step)
        if ckpt_now:
            try:
                save_checkpoint(step)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    progress.close()
                    raise TrainingError(f"no space left on the device while writing the checkpoint of step {step}; "
                                        f"the previous one ({last_good}) is intact") from None
                raise
            last_good = checkpoints / f"step-{step:06d}"
    progress.close()

    # ---- export the pair (EMA weights when on), evaluate, write the cards ----
    accelerator.wait_for_everyone()
    if is_main:
        export = export_pair()
        metrics = {"step": step} | evaluate_now(step, export)
        if len(metrics) > 1:
            say(metrics_table(metrics, label_a, label_b))
        (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        recipe = describe_recipe(config, spec_a, spec_b, step, accelerator.num_processes)
        hub_datasets = sorted({s.path for s in (spec_a, spec_b) if "/" in s.path and not Path(s.path).exists()})
        (output_dir / "card.json").write_text(json.dumps({"training": recipe, "datasets": hub_datasets}, indent=2))
        for name, folder, twin, (src, dst) in (("G", "generator_AtoB", "generator_BtoA", (label_a, label_b)),
                                               ("F", "generator_BtoA", "generator_AtoB", (label_b, label_a))):
            target = output_dir / folder
            shutil.rmtree(target, ignore_errors=True)
            table = metrics_table(metrics if name == "G" else reversed_metrics(metrics), src, dst) if len(metrics) > 1 else None
            export[name].save_pretrained(target, model_card_kwargs={"training": recipe, "metrics_table": table})
        say(f"saved {output_dir / 'generator_AtoB'} and {output_dir / 'generator_BtoA'}")
        hub = config["hub"]
        if hub["push_to_hub"]:
            from cyclegan_hub.hub import push_pair

            if not hub["repo_id"]:
                raise TrainingError("--push-to-hub needs --hub-repo-id (hub.repo_id)")
            try:
                pushed = push_pair(output_dir, hub["repo_id"], reverse_repo_id=hub["reverse_repo_id"], private=hub["private"])
            except ValueError as err:
                raise TrainingError(f"training finished and was saved in {output_dir}, but the push failed: {err}") from None
            for repo, url in pushed.items():
                say(f"pushed {repo}: {url}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


def flat_config(config: dict) -> dict:
    return {f"{s}.{k}": v for s, values in config.items() for k, v in values.items() if isinstance(v, (int, float, str, bool))}


def describe_recipe(config: dict, spec_a, spec_b, step: int, processes: int) -> str:
    t, m, d = config["train"], config["model"], config["data"]
    return "\n".join([
        f"- data: A = {spec_a.describe()}; B = {spec_b.describe()}; unpaired, sampled independently",
        f"- images: {d['channels']} channel(s), resized to {d['load_size']}, random crop {d['image_size']}, flip {d['flip']}",
        f"- generators: {m['architecture']}, {m['base_channels']} base channels, {m['n_blocks']} blocks, {m['norm']} norm, {m['upsampling']} upsampling",
        f"- discriminators: PatchGAN, {m['d_layers']} layers, {m['d_base_channels']} base channels",
        f"- {step} steps of batch {t['batch_size']} x {processes} process(es); Adam lr {t['lr']}, betas ({t['beta1']}, {t['beta2']}), "
        f"constant for {t['lr_constant_steps']} steps, then linear decay to 0 over {t['lr_decay_steps']}",
        f"- losses: {t['gan_mode']} GAN, cycle x {t['lambda_cycle']}, identity x {t['lambda_identity']} x cycle; pool of {t['pool_size']}; "
        f"EMA {'on (' + str(t['ema_decay']) + ')' if t['ema'] else 'off'}; mixed precision {t['mixed_precision']}",
    ])  # fmt: skip


def cli(argv=None) -> int:
    args = parse_args(argv)
    try:
        return main(args)
    except TrainingError as err:
        print(f"train.py: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        if err.errno == errno.ENOSPC:
            print(f"train.py: error: no space left on the device ({err.filename or 'output folder'})", file=sys.stderr)
            return 1
        raise
    except KeyboardInterrupt:
        print("train.py: interrupted; resume with --resume latest", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(cli())
