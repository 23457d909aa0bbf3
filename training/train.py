"""Train a translator on Hugging Face datasets with accelerate: a CycleGAN pair (G: A -> B, F: B -> A) or a one-way model (CUT, pix2pix).

    # CPU, bundled MNIST 6 <-> 9 data, a few minutes:
    python training/train.py --config training/configs/mnist-6to9.toml

    # one way: CUT on the same digits; pix2pix on pairs (a digit with a block erased -> the whole digit):
    python training/train.py --config training/configs/mnist-6to9-cut.toml
    python training/train.py --config training/configs/mnist-inpaint.toml

    # start from trained translators (a converted authors' model, a run folder, a Hub repo):
    python training/train.py --config my.toml --init-from converted/cut-horse2zebra

    # the same on two CPU processes (DDP over gloo):
    torchrun --nproc_per_node 2 training/train.py --config training/configs/mnist-6to9.toml

    # many GPUs:
    accelerate launch --multi_gpu training/train.py --config training/configs/horse2zebra.toml

    # resume the newest checkpoint of a run, weight for weight; or start it again from scratch:
    python training/train.py --config training/configs/mnist-6to9.toml --resume latest
    python training/train.py --config training/configs/mnist-6to9.toml --overwrite

Any config key can be overridden with ``--set section.key=value``; the config is checked as a whole before any data
is read (``cyclegan_hub.training.config``, whose reference is in the README). The run folder receives
``generator_AtoB/`` and ``generator_BtoA/`` (``save_pretrained`` folders with their cards), ``metrics.json``,
``eval_log.jsonl``, ``run_config.json``, ``card.json``, ``samples/``, ``logs/`` (TensorBoard) and ``checkpoints/``
(``cyclegan_hub.training.checkpoint``: every piece of state, safetensors + JSON, written atomically).

The script reads top to bottom: ``main`` calls the setup, one function a stage (config, processes, data, the
family's networks, optimizers and schedules, the training state, resume), then ``train``, the loop that calls the
family's step (``[model] family``, registered in ``cyclegan_hub.training.families``; CycleGAN by default) and logs,
samples, evaluates and checkpoints.

CycleGAN's recipe (Zhu et al., 2017; the step is ``cyclegan_hub.training.objective.cyclegan_step``): Adam 2e-4, betas
(0.5, 0.999); cycle weight 10; identity weight 0.5 x cycle, G fed the target domain; least-squares GAN loss; a pool
of 50 past fakes for D; D loss halved; D frozen in the G step; constant learning rate, then linear decay to zero;
optional EMA of the generators (exported when on).
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from cyclegan_hub import families as records
from cyclegan_hub.convert.checkpoints import ConversionError
from cyclegan_hub.hub.cards import CardInputs, metrics_table, write_run
from cyclegan_hub.hub.repos import push_pair
from cyclegan_hub.io import files
from cyclegan_hub.training import config as configs
from cyclegan_hub.training import data
from cyclegan_hub.training.checkpoint import TrainingState
from cyclegan_hub.training.checkpoint_files import CheckpointError, resolve_checkpoint
from cyclegan_hub.training.ema import make_ema
from cyclegan_hub.training.evaluate import EvalLog, held_out_metrics, sample_rows
from cyclegan_hub.training.families import StepParts
from cyclegan_hub.training.warm_start import init_from, sources

#: What a run writes into its folder; ``--overwrite`` removes these and nothing else.
RUN_ENTRIES = (
    "generator_AtoB",
    "generator_BtoA",
    "checkpoints",
    "samples",
    "logs",
    "eval_log.jsonl",
    "metrics.json",
    "run_config.json",
    "card.json",
)


class TrainingError(Exception):
    """A problem with the run that the user can act on; printed as one line."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run folder, recipe and examples: see the top of training/train.py; every config "
        "key: the README's config reference.",
    )
    p.add_argument("--config", help="TOML config (training/configs/*.toml); flags below override it")
    p.add_argument("--output-dir", help="run folder (train.output_dir)")
    p.add_argument("--max-steps", type=int, help="optimisation steps (train.max_steps)")
    p.add_argument("--batch-size", type=int, help="images per domain per process and step (train.batch_size)")
    p.add_argument("--seed", type=int, help="seed of the models, the data order and the pools (train.seed)")
    p.add_argument("--resume", help="'latest', a checkpoint folder, or a Hub repo pushed with --include-training-state")
    p.add_argument("--overwrite", action="store_true", help="start again in a run folder that holds a run")
    p.add_argument(
        "--init-from-official",
        metavar="DIR",
        help="start from an official pytorch-CycleGAN-and-pix2pix "
        "checkpoint folder (<epoch>_net_G_A.pth, ..._G_B, ..._D_A, ..._D_B)",
    )
    p.add_argument("--epoch", default="latest", help="which official checkpoint: latest or an epoch number")
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from trained translators: a model folder or Hub repo (G, A -> B), or a run or convert folder "
        "(generator_AtoB/, generator_BtoA/); the critics and optimizers start fresh",
    )
    p.add_argument(
        "--init-from-reverse", metavar="MODEL", help="with --init-from MODEL: the model that starts F (B -> A)"
    )
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (train.checkpoint_every)")
    p.add_argument(
        "--checkpoints-total-limit", type=int, help="keep this many checkpoints (train.checkpoints_total_limit)"
    )
    p.add_argument(
        "--mixed-precision", choices=["no", "fp16", "bf16"], help="autocast precision (train.mixed_precision)"
    )
    p.add_argument(
        "--push-to-hub", action="store_true", default=None, help="push the pair at the end (hub.push_to_hub)"
    )
    p.add_argument("--hub-repo-id", help="repo of the A->B generator (hub.repo_id)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config key")
    return p.parse_args(argv)


def load_config(args: argparse.Namespace) -> configs.TrainingConfig:
    flags = {
        "train.output_dir": args.output_dir,
        "train.max_steps": args.max_steps,
        "train.batch_size": args.batch_size,
        "train.seed": args.seed,
        "train.checkpoint_every": args.checkpoint_every,
        "train.checkpoints_total_limit": args.checkpoints_total_limit,
        "train.mixed_precision": args.mixed_precision,
        "hub.push_to_hub": args.push_to_hub,
        "hub.repo_id": args.hub_repo_id,
    }
    try:
        return configs.load(args.config, args.set, flags)
    except configs.ConfigError as err:
        raise TrainingError(str(err)) from None


def prepare_run_dir(run_dir: Path, args: argparse.Namespace) -> None:
    """A folder that already holds a run is continued (--resume), started again (--overwrite) or refused."""
    existing = [name for name in RUN_ENTRIES if (run_dir / name).exists() or (run_dir / name).is_symlink()]
    if existing and not args.resume and not args.overwrite:
        raise TrainingError(
            f"{run_dir} already holds a run ({', '.join(existing[:3])}); continue it with --resume latest "
            f"or start again with --overwrite"
        )
    if args.overwrite and args.resume:
        raise TrainingError("--overwrite and --resume contradict each other: choose one")
    if args.overwrite:
        for name in existing:
            files.remove(run_dir / name)


def check_hub_login(config: configs.TrainingConfig) -> None:
    if config.hub.push_to_hub:
        from huggingface_hub import get_token

        if not get_token():
            raise TrainingError("--push-to-hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login` first")


# ---- main ----------------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    launched = time.time()  # the clock of eval_log.jsonl: time to quality includes loading data and compiling
    config = load_config(args)
    prepare_run_dir(config.output_dir, args)
    check_hub_login(config)
    accelerator = make_accelerator(config)
    domains, sampler, previews = load_data(config, accelerator)
    nets, optimizers, schedulers = build_networks(config, args, accelerator)
    state, step_fn = prepare_state(config, accelerator, nets, optimizers, schedulers)
    eval_log = EvalLog(config.output_dir / "eval_log.jsonl", launched)
    run = Run(config, accelerator, domains, sampler, previews, state, step_fn, eval_log)
    if args.resume:
        resume(run, args.resume)
    train(run)

    # ---- export the pair (EMA weights when on), evaluate, write the cards, push ----
    accelerator.wait_for_everyone()
    if run.is_main:
        finish(config, run.state, config.output_dir, run.processes, domains, run.eval_log, accelerator.print)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


# ---- the setup of main: processes, data, networks, the training state, resume ----------------------------------------


@dataclass
class Run:
    """What the loop works with, made by the setup: the config, the processes, the two domains with their sampler
    and preview images, the training state (the plain networks, their optimizers, schedules, pools and EMA), the
    family's step and the evaluation log."""

    config: configs.TrainingConfig
    accelerator: Any
    domains: tuple[data.TrainingDomain, data.TrainingDomain]
    sampler: data.UnpairedSampler
    previews: list[torch.Tensor]
    state: TrainingState
    step_fn: Callable
    eval_log: EvalLog

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def processes(self) -> int:
        return self.accelerator.num_processes

    @property
    def rank(self) -> int:
        return self.accelerator.process_index


def make_accelerator(config: configs.TrainingConfig):
    """The processes and devices of the run (DDP when launched on several), logging to TensorBoard in the run."""
    from accelerate import Accelerator

    t = config.train
    try:
        return Accelerator(
            mixed_precision=t.mixed_precision,
            cpu=not torch.cuda.is_available(),
            log_with="tensorboard",
            project_dir=str(config.output_dir),
        )
    except ValueError as err:
        raise TrainingError(f"cannot use mixed precision {t.mixed_precision!r} here: {err}") from None


def load_data(config: configs.TrainingConfig, accelerator):
    """The two independent domains, decoded once into memory (on the GPU when they fit), this process's sampler
    of them, and each domain's preview images."""
    t, device = config.train, accelerator.device
    with accelerator.main_process_first():
        if config.data.paired:
            a, b = load_pairs(config, accelerator.print)
        else:
            a, b = (load_domain(config, key, accelerator.print) for key in ("A", "B"))
    if device.type == "cuda" and a.images.numel() + b.images.numel() < 4 * 2**30:
        a.images, b.images = a.images.to(device), b.images.to(device)  # crops and batches never wait for the host
    processes, rank = accelerator.num_processes, accelerator.process_index
    if config.data.paired:
        sampler = data.PairedSampler(len(a.images), t.batch_size, t.seed, processes, rank)
    else:
        sampler = data.UnpairedSampler(len(a.images), len(b.images), t.batch_size, t.seed, processes, rank)
    previews = [preview_images(domain, config.data.image_size) for domain in (a, b)]
    return (a, b), sampler, previews


def build_networks(config: configs.TrainingConfig, args: argparse.Namespace, accelerator):
    """The family's networks (seeded; from an official checkpoint when asked), their optimizers and schedules."""
    from accelerate.utils import set_seed

    t, family, say = config.train, config.family, accelerator.print
    set_seed(t.seed)
    try:
        nets = family.build(config)
    except ValueError as err:  # a base model or encoder that cannot be loaded: one line
        raise TrainingError(str(err)) from None
    if args.init_from_official:
        init_official(nets, args, family, say)
    if args.init_from or args.init_from_reverse:
        init_translators(nets, args, say)
    say(family.summary(nets, config.data.image_size))
    optimizers = family.optimizers(nets, config, accelerator.device)
    schedulers = {name: LambdaLR(opt, config.lr_factor) for name, opt in optimizers.items()}
    if t.max_steps > t.lr_constant_steps + t.lr_decay_steps:
        say(f"note: the learning rate reaches 0 at step {t.lr_constant_steps + t.lr_decay_steps}, before {t.max_steps}")
    if t.channels_last:  # NHWC: faster convolutions on tensor cores
        for net in nets.values():
            net.to(memory_format=torch.channels_last)
    return nets, optimizers, schedulers


def prepare_state(config: configs.TrainingConfig, accelerator, nets: dict, optimizers: dict, schedulers: dict):
    """(the training state, the family's step): the networks and optimizers wrapped for DDP (and compiled) for the
    step; the state and the exports use the plain networks."""
    t, family = config.train, config.family
    prepared = accelerator.prepare(*nets.values(), *optimizers.values())
    wrapped = dict(zip(nets, prepared[: len(nets)]))
    optimizers = dict(zip(optimizers, prepared[len(nets) :]))
    plain = {name: accelerator.unwrap_model(net) for name, net in wrapped.items()}
    if t.compile:
        mode = None if t.compile is True else t.compile
        wrapped = {name: torch.compile(net, mode=mode) for name, net in wrapped.items()}
    state = TrainingState(
        nets=plain,
        optimizers=optimizers,
        schedulers=schedulers,
        scaler=accelerator.scaler,
        pools=family.pools(config),
        ema={name: make_ema(plain[name], t.ema_decay) for name in family.exported} if t.ema else {},
        exported_names=family.exported,
    )
    parts = StepParts(wrapped, plain, optimizers, state.pools, config, accelerator.autocast, accelerator.backward)
    return state, family.make_step(parts)


def resume(run: Run, which: str) -> None:
    """Continue from checkpoint ``which`` ('latest', a folder or a Hub repo); later evaluations are dropped."""
    try:
        source = resolve_checkpoint(run.config.output_dir, which)
        run.state.load(source, run.rank, run.accelerator.device)
    except (CheckpointError, ValueError, FileNotFoundError) as err:
        raise TrainingError(str(err)) from None
    run.accelerator.print(f"resumed from {source.name} at step {run.state.step}")
    if run.is_main:
        run.eval_log.trim(run.state.step)


# ---- the loop: a step, then log, check for divergence, sample, evaluate, checkpoint -----------------------------------


def train(run: Run) -> None:
    """Steps until ``train.max_steps``, each followed by what is due at its count."""
    config, state, is_main = run.config, run.state, run.is_main
    t, run_dir = config.train, config.output_dir
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        files.atomic_write_json(run_dir / "run_config.json", config.to_dict())
    run.accelerator.init_trackers("logs", config=config.flat())
    progress = tqdm(total=t.max_steps, initial=state.step, disable=not is_main, desc="train", dynamic_ncols=True)
    value_range = list(state.nets["G"].translation_spec.value_range)
    batch = dict(
        size=config.data.image_size, flip=config.data.flip, device=run.accelerator.device, value_range=value_range
    )
    running, last_good, started = [], None, (time.time(), state.step)
    while state.step < t.max_steps:
        running.append(training_step(run, batch))
        step = state.step
        progress.update(1)
        checkpoint_now = step % t.checkpoint_every == 0 or step == t.max_steps
        if step % t.log_every == 0 or checkpoint_now:
            log_losses(run, running, progress, last_good, started)
        if is_main and (step % t.sample_every == 0 or step == t.max_steps):
            grid = data.preview_grid(sample_rows(state.exported(), run.previews), value_range)
            write_png(run_dir / "samples" / f"step-{step:06d}.png", grid)
        if is_main and t.eval_every and step % t.eval_every == 0 and step < t.max_steps:
            evaluate_now(run)
        if checkpoint_now:
            last_good = checkpoint(run, progress, last_good)
    progress.close()


def training_step(run: Run, batch: dict) -> torch.Tensor:
    """One optimisation step: this process's batches of the step (their augmentation seeded by the step and the
    process), the family's step, the schedules, the EMA. Returns the step's losses."""
    t, state, (a, b) = run.config.train, run.state, run.domains
    step = state.step
    idx_a, idx_b = run.sampler.indices(step)
    aug = torch.Generator().manual_seed(t.seed * 7_919 + step * run.processes + run.rank)
    strokes = run.config.data.stroke_augment
    if run.config.data.paired:  # each pair cropped and flipped alike
        real_a, real_b = data.paired_batch(a.images, b.images, idx_a, generator=aug, strokes=strokes, **batch)
    else:
        real_a = data.training_batch(a.images, idx_a, generator=aug, strokes=strokes, **batch)
        real_b = data.training_batch(b.images, idx_b, generator=aug, strokes=strokes, **batch)
    if t.channels_last:
        real_a, real_b = (x.contiguous(memory_format=torch.channels_last) for x in (real_a, real_b))
    if t.compile == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()  # last step's graph outputs may be reused from here on
    losses = run.step_fn(real_a, real_b)
    for scheduler in state.schedulers.values():
        scheduler.step()
    for name, ema in state.ema.items():
        ema.update_parameters(state.nets[name])
    state.step = step + 1
    return losses


def log_losses(run: Run, running: list, progress, last_good, started: tuple[float, int]) -> None:
    """The mean losses since the last log (emptied), to the progress bar and TensorBoard; a loss that became NaN or
    infinite stops the run, naming the last good checkpoint."""
    t, step, (start_time, start_step) = run.config.train, run.state.step, started
    values = dict(zip(run.config.family.loss_names, torch.stack(running).mean(0).tolist()))
    running.clear()
    bad = [f"loss_{name}" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written"
        progress.close()  # before the message, so that it is the last line
        raise TrainingError(
            f"training diverged by step {step}: {', '.join(bad)} became NaN/inf; {where} "
            f"(resume it with a lower train.lr, or --mixed-precision no)"
        )
    rate = (step - start_step) * t.batch_size * run.processes / max(1e-9, time.time() - start_time)
    progress.set_postfix({k: f"{v:.3f}" for k, v in values.items()} | {"img/s": f"{rate:.0f}"})
    lr = next(iter(run.state.schedulers.values())).get_last_lr()[0]
    run.accelerator.log({f"loss/{k}": v for k, v in values.items()} | {"lr": lr, "images_per_s": rate}, step=step)


def evaluate_now(run: Run) -> None:
    """The held-out figures of the pair as it is now, to eval_log.jsonl and TensorBoard."""
    a, b = run.domains
    d = run.config.data
    metrics = held_out_metrics(run.state.exported(), a.held, b.held, paired=d.paired, digits=d.judge == "digits")
    run.eval_log.append(run.state.step, metrics)
    run.accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=run.state.step)


def checkpoint(run: Run, progress, last_good):
    """Every process's share gathered, the checkpoint written by the main process: the new last good one (the
    previous one on the other processes)."""
    from accelerate.utils import gather_object

    process_states = [run.state.process_state()]
    if run.processes > 1:
        process_states = gather_object(process_states)
    if not run.is_main:
        return last_good
    keep = run.config.train.checkpoints_total_limit
    try:
        return save_checkpoint(run.state, run.config.output_dir, process_states, keep, last_good)
    except TrainingError:
        progress.close()  # before the message, so that it is the last line
        raise


# ---- the steps of main, each a few lines -----------------------------------------------------------------------------


def load_domain(config: configs.TrainingConfig, key: str, say) -> data.TrainingDomain:
    """Domain ``key`` ("A" or "B") of the config, decoded into memory."""
    section, d = (config.domain_a if key == "A" else config.domain_b), config.data
    what = f"domain {key} ({section.label})"
    try:
        domain = data.load_training_domain(
            section.spec(),
            section.label,
            section.eval_split,
            d.channels,
            d.load_size,
            d.image_size,
            d.eval_images,
            what,
        )
    except ValueError as err:
        raise TrainingError(str(err)) from None
    skipped = f"; skipped {domain.skipped} unreadable" if domain.skipped else ""
    say(f"{what}: {len(domain.images)} images from {domain.spec.describe()}{skipped}")
    return domain


def load_pairs(config: configs.TrainingConfig, say) -> tuple[data.TrainingDomain, data.TrainingDomain]:
    """Domains A and B of a paired source (``data.paired`` / ``data.aligned``), row i of each one pair."""
    a, b, d = config.domain_a, config.domain_b, config.data
    try:
        domain_a, domain_b, skipped = data.load_paired_domains(
            a.spec(),
            None if d.aligned else b.image_column,
            (a.label, b.label),
            d.aligned,
            a.eval_split,
            d.channels,
            d.load_size,
            d.image_size,
            d.eval_images,
        )
    except ValueError as err:
        raise TrainingError(str(err)) from None
    why = "".join(f"; skipped {n} with {reason}" for reason, n in skipped.items())
    say(f"pairs {a.label} -> {b.label}: {len(domain_a.images)} from {domain_a.spec.describe()}{why}")
    return domain_a, domain_b


def preview_images(domain: data.TrainingDomain, size: int) -> torch.Tensor:
    """The 8 images of a domain shown in every sample grid: held-out ones when there are, else centre crops."""
    if domain.held is not None:
        return domain.held[:8]
    return data.augment(domain.images[:8].cpu(), size, False, torch.Generator())


def init_official(nets: dict, args: argparse.Namespace, family, say) -> None:
    if args.init_from:
        raise TrainingError("--init-from-official and --init-from contradict each other: choose one")
    record = records.get(family.name)
    if record.official is None:
        raise TrainingError(f"--init-from-official reads CycleGAN runs; this run's model family is {family.name!r}")
    try:
        record.load("official")(nets, args.init_from_official, args.epoch)
    except (ConversionError, FileNotFoundError) as err:
        raise TrainingError(f"--init-from-official: {err}") from None
    say(f"initialised G, F, D_A, D_B from the official checkpoint {args.epoch} in {args.init_from_official}")


def init_translators(nets: dict, args: argparse.Namespace, say) -> None:
    """--init-from: the run's translators start from trained ones (``cyclegan_hub.training.warm_start``)."""
    if not args.init_from:
        raise TrainingError("--init-from-reverse starts F beside --init-from MODEL, which starts G: give both")
    exported = tuple(name for name in ("G", "F") if name in nets)
    try:
        for line in init_from(nets, sources(args.init_from, args.init_from_reverse, exported)):
            say(line)
    except (ValueError, OSError) as err:
        raise TrainingError(f"--init-from: {err}") from None


def write_png(path: Path, grid) -> None:
    files.atomic_write(path, lambda f: Image.fromarray(grid).save(f, format="PNG"))


def save_checkpoint(state: TrainingState, run_dir: Path, process_states: list, keep: int, last_good) -> Path:
    """Write a checkpoint; a full disk is one line that names the intact previous checkpoint."""
    try:
        return state.save(run_dir, process_states, keep)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise TrainingError(
            f"no space left on the device while writing the checkpoint of step {state.step}; "
            f"the previous one ({last_good}) is intact"
        ) from None


def finish(config: configs.TrainingConfig, state: TrainingState, run_dir: Path, processes: int, domains, eval_log, say):
    """Export the pair (EMA weights when on), evaluate it on the held-out images, write the cards, push."""
    a, b, d = *domains, config.data
    pair = state.exported()
    metrics = held_out_metrics(pair, a.held, b.held, paired=d.paired, digits=d.judge == "digits")
    if metrics:
        eval_log.append(state.step, metrics)
        say(metrics_table(metrics, a.label, b.label))
    described = dict(training=config.describe(state.step, processes), data_name=config.data_name())
    inputs = CardInputs(**described, datasets=config.hub_datasets(), metrics=metrics)
    write_run(run_dir, pair, inputs, state.step)
    say(
        "saved " + " and ".join(str(run_dir / f"generator_{d}") for n, d in (("G", "AtoB"), ("F", "BtoA")) if n in pair)
    )
    if config.hub.push_to_hub:
        hub = config.hub
        try:
            report = push_pair(run_dir, hub.repo_id, reverse_repo_id=hub.reverse_repo_id, private=hub.private)
        except ValueError as err:
            raise TrainingError(f"training finished and was saved in {run_dir}, but the push failed: {err}") from None
        for repo, url in report.commits.items():
            say(f"pushed {repo}: {url}")


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
