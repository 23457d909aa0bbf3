"""Train a CycleGAN pair (G: A -> B, F: B -> A) on two unpaired Hugging Face datasets, with accelerate.

    # CPU, bundled MNIST 6 <-> 9 data, a few minutes:
    python training/train.py --config training/configs/mnist-6to9.toml

    # the same on two CPU processes (DDP over gloo):
    torchrun --nproc_per_node 2 training/train.py --config training/configs/mnist-6to9.toml

    # many GPUs:
    accelerate launch --multi_gpu training/train.py --config training/configs/horse2zebra.toml

    # resume the newest checkpoint of a run, weight for weight; or start it again from scratch:
    python training/train.py --config training/configs/mnist-6to9.toml --resume latest
    python training/train.py --config training/configs/mnist-6to9.toml --overwrite

Any config key can be overridden with ``--set section.key=value``; the config is checked as a whole before any data
is read (``cyclegan_hub.config``, whose reference is in the README). The run folder receives
``generator_AtoB/`` and ``generator_BtoA/`` (``save_pretrained`` folders with their cards), ``metrics.json``,
``eval_log.jsonl``, ``run_config.json``, ``card.json``, ``samples/``, ``logs/`` (TensorBoard) and ``checkpoints/``
(``cyclegan_hub.checkpoint``: every piece of state, safetensors + JSON, written atomically).

Recipe (Zhu et al., 2017; the step itself is ``cyclegan_hub.objective.cyclegan_step``): Adam 2e-4, betas
(0.5, 0.999); cycle weight 10; identity weight 0.5 x cycle, G fed the target domain; least-squares GAN loss; a pool
of 50 past fakes for D; D loss halved; D frozen in the G step; constant learning rate, then linear decay to zero;
optional EMA of the generators (exported when on).
"""

from __future__ import annotations

import argparse
import copy
import errno
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from cyclegan_hub import CycleGenerator, ImagePool, PatchDiscriminator, config as configs, data, files, imaging
from cyclegan_hub.cards import CardInputs, metrics_table, write_generator
from cyclegan_hub.checkpoint import CheckpointError, TrainingState, make_ema, resolve_checkpoint
from cyclegan_hub.convert import ConversionError, convert_official_run
from cyclegan_hub.evaluate import evaluate_pair
from cyclegan_hub.objective import LOSS_NAMES, Networks, Weights, cyclegan_step

#: What a run writes into its folder; ``--overwrite`` removes these and nothing else.
RUN_ENTRIES = ("generator_AtoB", "generator_BtoA", "checkpoints", "samples", "logs", "eval_log.jsonl",
               "metrics.json", "run_config.json", "card.json")  # fmt: skip


class TrainingError(Exception):
    """A problem with the run that the user can act on; printed as one line."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="Run folder, recipe and examples: see the top of training/train.py; every config "
                                       "key: the README's config reference.")  # fmt: skip
    p.add_argument("--config", help="TOML config (training/configs/*.toml); flags below override it")
    p.add_argument("--output-dir", help="run folder (train.output_dir)")
    p.add_argument("--max-steps", type=int, help="optimisation steps (train.max_steps)")
    p.add_argument("--batch-size", type=int, help="images per domain per process and step (train.batch_size)")
    p.add_argument("--seed", type=int, help="seed of the models, the data order and the pools (train.seed)")
    p.add_argument("--resume", help="'latest', a checkpoint folder, or a Hub repo pushed with --include-training-state")
    p.add_argument("--overwrite", action="store_true", help="start again in a run folder that holds a run")
    p.add_argument("--init-from-official", metavar="DIR", help="start from an official pytorch-CycleGAN-and-pix2pix "
                   "checkpoint folder (<epoch>_net_G_A.pth, ..._G_B, ..._D_A, ..._D_B)")  # fmt: skip
    p.add_argument("--epoch", default="latest", help="which official checkpoint: latest or an epoch number")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (train.checkpoint_every)")
    p.add_argument("--checkpoints-total-limit", type=int, help="keep this many checkpoints (train.checkpoints_total_limit)")
    p.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], help="autocast precision (train.mixed_precision)")
    p.add_argument("--push-to-hub", action="store_true", default=None, help="push the pair at the end (hub.push_to_hub)")
    p.add_argument("--hub-repo-id", help="repo of the A->B generator (hub.repo_id)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override any config key")
    return p.parse_args(argv)


def load_config(args: argparse.Namespace) -> configs.TrainingConfig:
    flags = {"train.output_dir": args.output_dir, "train.max_steps": args.max_steps, "train.batch_size": args.batch_size,
             "train.seed": args.seed, "train.checkpoint_every": args.checkpoint_every,
             "train.checkpoints_total_limit": args.checkpoints_total_limit, "train.mixed_precision": args.mixed_precision,
             "hub.push_to_hub": args.push_to_hub, "hub.repo_id": args.hub_repo_id}  # fmt: skip
    try:
        return configs.load(args.config, args.set, flags)
    except configs.ConfigError as err:
        raise TrainingError(str(err)) from None


def prepare_run_dir(run_dir: Path, args: argparse.Namespace) -> None:
    """A folder that already holds a run is continued (--resume), started again (--overwrite) or refused."""
    existing = [name for name in RUN_ENTRIES if (run_dir / name).exists() or (run_dir / name).is_symlink()]
    if existing and not args.resume and not args.overwrite:
        raise TrainingError(f"{run_dir} already holds a run ({', '.join(existing[:3])}); continue it with --resume latest "
                            f"or start again with --overwrite")  # fmt: skip
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


# ---- data: two independent domains, decoded once into memory ---------------------------------------------------


@dataclass
class Domain:
    label: str
    spec: data.DomainSpec
    images: torch.Tensor  # uint8 [N, C, load_size, load_size]
    held: torch.Tensor | None  # uint8 [M, C, image_size, image_size], the held-out split


def load_domain(section: configs.DomainConfig, key: str, cfg: configs.DataConfig, say) -> Domain:
    what = f"domain {key} ({section.label})"
    try:
        images, skipped = data.decode_domain(data.load_domain(section.spec(), what), section.image_column,
                                             cfg.channels, cfg.load_size)  # fmt: skip
        held = None
        if section.eval_split is not None:
            split = data.load_domain(section.spec(section.eval_split), f"{what} evaluation split")
            held = data.decode_domain(split, section.image_column, cfg.channels, cfg.image_size, cfg.eval_images)[0]
    except ValueError as err:
        raise TrainingError(str(err)) from None
    if skipped:
        say(f"{what}: skipped {skipped} unreadable image(s)")
    if len(images) == 0:
        raise TrainingError(f"{what}: no readable image in {section.spec().describe()}")
    say(f"{what}: {len(images)} images from {section.spec().describe()}")
    return Domain(section.label, section.spec(), images, held)


def build_networks(config: configs.TrainingConfig, label_a: str, label_b: str) -> dict[str, torch.nn.Module]:
    """G (A -> B), F (B -> A), D_A (judges domain A: F's outputs) and D_B (judges domain B: G's outputs)."""
    m, channels, size = config.model, config.data.channels, config.data.image_size
    generator = dict(architecture=m.architecture, in_channels=channels, out_channels=channels, base_channels=m.base_channels,
                     n_blocks=m.n_blocks, n_downsampling=m.n_downsampling, norm=m.norm, upsampling=m.upsampling,
                     dropout=m.dropout, image_size=size)  # fmt: skip
    critic = dict(in_channels=channels, base_channels=m.d_base_channels, n_layers=m.d_layers, norm=m.d_norm)
    return {"G": CycleGenerator(source_domain=label_a, target_domain=label_b, **generator),
            "F": CycleGenerator(source_domain=label_b, target_domain=label_a, **generator),
            "D_A": PatchDiscriminator(**critic), "D_B": PatchDiscriminator(**critic)}  # fmt: skip


def init_from_official(nets: dict, folder: str, epoch: str, config: configs.TrainingConfig) -> None:
    """Load an official training checkpoint into the four networks (G_A -> G, G_B -> F, D_A -> D_B, D_B -> D_A)."""
    try:
        official = convert_official_run(folder, epoch, config.domain_a.label, config.domain_b.label, config.data.image_size)
    except (ConversionError, FileNotFoundError) as err:
        raise TrainingError(f"--init-from-official: {err}") from None
    for name, net in nets.items():
        theirs, ours = official[name].config, net.config
        differs = [k for k in theirs if k not in ("source_domain", "target_domain", "image_size", "value_range") and theirs[k] != ours[k]]
        if differs:
            key = differs[0]
            raise TrainingError(f"--init-from-official: the official {name} has {key} = {theirs[key]!r}, this config "
                                f"{ours[key]!r}: set the model section to match")  # fmt: skip
        net.load_state_dict(official[name].state_dict())


def lr_factor(constant: int, decay: int):
    """1 for ``constant`` steps, then linearly down to 0 over ``decay`` steps (the paper: n_epochs + n_epochs_decay).
    Fixed by the config, not by --max-steps: a run stopped at step 3 and resumed to 6 follows the same rates."""
    return lambda step: 1.0 if step < constant else max(0.0, 1.0 - (step - constant) / max(1, decay))


# ---- what a run writes: samples, evaluations, the exported pair ---------------------------------------------------


def exported(state: TrainingState) -> dict[str, CycleGenerator]:
    """Copies of G and F as they would be saved now (the EMA weights when EMA is on), in eval mode."""
    return {name: copy.deepcopy(state.ema[name].module if state.ema else state.nets[name]).eval() for name in ("G", "F")}


def save_samples(run_dir: Path, step: int, pair: dict, previews: tuple, value_range) -> None:
    """Rows A, G(A), F(G(A)), B, F(B), G(F(B)) of the preview images, as samples/step-NNNNNN.png."""
    from PIL import Image

    rows = []
    with torch.inference_mode():
        for images, g, f in ((previews[0], pair["G"], pair["F"]), (previews[1], pair["F"], pair["G"])):
            device = next(g.parameters()).device
            real = imaging.to_network(images.to(device), value_range)
            fake = g.run(real)
            rows += [real, fake, f.run(fake)]
    path = run_dir / "samples" / f"step-{step:06d}.png"
    files.atomic_write(path, lambda f: Image.fromarray(data.preview_grid(rows, value_range)).save(f, format="PNG"))


def evaluate_now(run_dir: Path, step: int, pair: dict, a: Domain, b: Domain, launched: float, value_range) -> dict:
    """Held-out figures of the pair, appended to eval_log.jsonl with the seconds since launch ({} without held-out data)."""
    if a.held is None or b.held is None:
        return {}
    device = next(pair["G"].parameters()).device
    to_net = imaging.to_network
    metrics = evaluate_pair(pair["G"], pair["F"], to_net(a.held.to(device), value_range), to_net(b.held.to(device), value_range))
    with open(run_dir / "eval_log.jsonl", "a") as log:
        log.write(json.dumps({"step": step, "elapsed_s": round(time.time() - launched, 2)} | metrics) + "\n")
    return metrics


def trim_eval_log(run_dir: Path, step: int) -> None:
    """On resume: evaluations logged after the checkpoint's step belong to the interrupted attempt."""
    log = run_dir / "eval_log.jsonl"
    if log.is_file():
        rows = [line for line in log.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
        files.atomic_write_text(log, "".join(row + "\n" for row in rows))


def describe_recipe(config: configs.TrainingConfig, step: int, processes: int) -> str:
    t, m, d = config.train, config.model, config.data

    def source(section: configs.DomainConfig) -> str:  # local folders by name only: no path of this machine
        spec = section.spec()
        name = Path(spec.path).name if Path(spec.path).exists() else spec.path
        name += f" ({Path(spec.data_dir).name})" if spec.data_dir else ""
        return f"{name} split={spec.split}" + (f" where {spec.filter}" if spec.filter else "")

    return "\n".join([
        f"- data: A = {source(config.domain_a)}; B = {source(config.domain_b)}; unpaired, sampled independently",
        f"- images: {d.channels} channel(s), resized to {d.load_size}, random crop {d.image_size}, flip {d.flip}"
        + (", stroke width and affine jitter" if d.stroke_augment else ""),
        f"- generators: {m.architecture}, {m.base_channels} base channels, {m.n_blocks} blocks, {m.norm} norm, {m.upsampling} upsampling",
        f"- discriminators: PatchGAN, {m.d_layers} layers, {m.d_base_channels} base channels",
        f"- {step} steps of batch {t.batch_size} x {processes} process(es); Adam lr {t.lr}, betas ({t.beta1}, {t.beta2}), "
        f"constant for {t.lr_constant_steps} steps, then linear decay to 0 over {t.lr_decay_steps}",
        f"- losses: {t.gan_mode} GAN, cycle x {t.lambda_cycle}, identity x {t.lambda_identity} x cycle; pool of {t.pool_size}; "
        f"EMA {'on (' + str(t.ema_decay) + ')' if t.ema else 'off'}; mixed precision {t.mixed_precision}",
    ])  # fmt: skip


def save_pair(run_dir: Path, pair: dict, config: configs.TrainingConfig, metrics: dict, step: int, processes: int) -> None:
    hub_datasets = sorted({s.path for s in (config.domain_a, config.domain_b) if "/" in s.path and not Path(s.path).exists()})
    inputs = CardInputs(training=describe_recipe(config, step, processes), datasets=hub_datasets, metrics=metrics)
    inputs.save(run_dir)
    files.atomic_write_json(run_dir / "metrics.json", {"step": step} | metrics)
    for name, folder, direction in (("G", "generator_AtoB", "AtoB"), ("F", "generator_BtoA", "BtoA")):
        files.replace_folder(run_dir / folder, lambda tmp: write_generator(pair[name], tmp, inputs, direction))


# ---- main --------------------------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    launched = time.time()  # the clock of eval_log.jsonl: time to quality includes loading data and compiling
    config = load_config(args)
    run_dir, t = config.output_dir, config.train
    prepare_run_dir(run_dir, args)
    check_hub_login(config)

    from accelerate import Accelerator
    from accelerate.utils import gather_object, set_seed

    try:
        accelerator = Accelerator(mixed_precision=t.mixed_precision, cpu=not torch.cuda.is_available(),
                                  log_with="tensorboard", project_dir=str(run_dir))  # fmt: skip
    except ValueError as err:
        raise TrainingError(f"cannot use mixed precision {t.mixed_precision!r} here: {err}") from None
    is_main, device, say = accelerator.is_main_process, accelerator.device, accelerator.print

    # ---- data ----
    with accelerator.main_process_first():
        a = load_domain(config.domain_a, "A", config.data, say)
        b = load_domain(config.domain_b, "B", config.data, say)
    if device.type == "cuda" and a.images.numel() + b.images.numel() < 4 * 2**30:
        a.images, b.images = a.images.to(device), b.images.to(device)  # crops and batches never wait for the host
    sampler = data.UnpairedSampler(len(a.images), len(b.images), t.batch_size, t.seed, accelerator.num_processes,
                                   accelerator.process_index)  # fmt: skip
    size = config.data.image_size
    previews = tuple((d.held if d.held is not None else data.augment(d.images[:8].cpu(), size, False, torch.Generator()))[:8]
                     for d in (a, b))  # fmt: skip

    # ---- models, optimizers, schedule ----
    set_seed(t.seed)
    nets = build_networks(config, a.label, b.label)
    if args.init_from_official:
        init_from_official(nets, args.init_from_official, args.epoch, config)
        say(f"initialised G, F, D_A, D_B from the official checkpoint {args.epoch} in {args.init_from_official}")
    patches = nets["D_A"].output_size(size, size)
    say(f"G, F: {nets['G'].num_parameters():,} parameters each; D_A, D_B: {nets['D_A'].num_parameters():,} each, "
        f"{patches[0]}x{patches[1]} patches of {nets['D_A'].receptive_field}x{nets['D_A'].receptive_field}")
    adam = dict(lr=t.lr, betas=(t.beta1, t.beta2), fused=True if device.type == "cuda" else None)
    opt_g = torch.optim.Adam([*nets["G"].parameters(), *nets["F"].parameters()], **adam)
    opt_d = torch.optim.Adam([*nets["D_A"].parameters(), *nets["D_B"].parameters()], **adam)
    if t.max_steps > t.lr_constant_steps + t.lr_decay_steps:
        say(f"note: the learning rate reaches 0 at step {t.lr_constant_steps + t.lr_decay_steps}, before --max-steps {t.max_steps}")
    schedule = lr_factor(t.lr_constant_steps, t.lr_decay_steps)
    schedulers = {"G": torch.optim.lr_scheduler.LambdaLR(opt_g, schedule), "D": torch.optim.lr_scheduler.LambdaLR(opt_d, schedule)}
    if t.channels_last:  # NHWC: faster convolutions on tensor cores
        for net in nets.values():
            net.to(memory_format=torch.channels_last)
    *networks, opt_g, opt_d = accelerator.prepare(*nets.values(), opt_g, opt_d)
    prepared = dict(zip(nets, networks))
    plain = {name: accelerator.unwrap_model(net) for name, net in prepared.items()}
    if t.compile:
        prepared = {name: torch.compile(net, mode=None if t.compile is True else t.compile) for name, net in prepared.items()}
    state = TrainingState(
        nets=plain, optimizers={"G": opt_g, "D": opt_d}, schedulers=schedulers, scaler=accelerator.scaler,
        pools={"A": ImagePool(t.pool_size, seed=t.seed * 2 + 1), "B": ImagePool(t.pool_size, seed=t.seed * 2 + 2)},
        ema={name: make_ema(plain[name], t.ema_decay) for name in ("G", "F")} if t.ema else {},
    )  # fmt: skip
    step_networks = Networks(prepared["G"], prepared["F"], prepared["D_A"], prepared["D_B"], plain["D_A"], plain["D_B"])
    weights = Weights(t.gan_mode, t.lambda_cycle, t.lambda_identity)

    # ---- resume ----
    if args.resume:
        try:
            source = resolve_checkpoint(run_dir, args.resume)
            state.load(source, accelerator.process_index, device)
        except (CheckpointError, ValueError, FileNotFoundError) as err:
            raise TrainingError(str(err)) from None
        say(f"resumed from {source.name} at step {state.step}")
        if is_main:
            trim_eval_log(run_dir, state.step)

    # ---- train ----
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        files.atomic_write_json(run_dir / "run_config.json", config.to_dict())
    accelerator.init_trackers("logs", config={f"{s}.{k}": v for s, section in config.to_dict().items()
                                              for k, v in section.items() if isinstance(v, (int, float, str, bool))})  # fmt: skip
    from tqdm.auto import tqdm

    progress = tqdm(total=t.max_steps, initial=state.step, disable=not is_main, desc="train", dynamic_ncols=True)
    value_range = nets["G"].config["value_range"]
    running, last_good, start_time, start_step = [], None, time.time(), state.step
    while state.step < t.max_steps:
        step = state.step
        idx_a, idx_b = sampler.indices(step)
        aug = torch.Generator().manual_seed(t.seed * 7_919 + step * accelerator.num_processes + accelerator.process_index)
        real_a = data.training_batch(a.images, idx_a, size, config.data.flip, aug, device, value_range)
        real_b = data.training_batch(b.images, idx_b, size, config.data.flip, aug, device, value_range)
        if t.channels_last:
            real_a, real_b = (x.contiguous(memory_format=torch.channels_last) for x in (real_a, real_b))
        if t.compile == "reduce-overhead":
            torch.compiler.cudagraph_mark_step_begin()  # last step's graph outputs may be reused from here on
        running.append(cyclegan_step(step_networks, opt_g, opt_d, state.pools, real_a, real_b, weights,
                                     autocast=accelerator.autocast, backward=accelerator.backward))  # fmt: skip
        for scheduler in schedulers.values():
            scheduler.step()
        for name, ema in state.ema.items():
            ema.update_parameters(plain[name])
        state.step = step = step + 1
        progress.update(1)

        # ---- log, check for divergence, sample, evaluate, checkpoint ----
        checkpoint_now = step % t.checkpoint_every == 0 or step == t.max_steps
        if step % t.log_every == 0 or checkpoint_now:
            values = torch.stack(running).mean(0).tolist()
            running.clear()
            if not all(math.isfinite(v) for v in values):
                bad = ", ".join(f"loss_{n}" for n, v in zip(LOSS_NAMES, values) if not math.isfinite(v))
                where = f"the last good checkpoint is {last_good}" if last_good else "no checkpoint was written"
                progress.close()  # before the message, so that it is the last line
                raise TrainingError(f"training diverged by step {step}: {bad} became NaN/inf; {where} "
                                    f"(resume it with a lower train.lr, or --mixed-precision no)")  # fmt: skip
            logs = dict(zip(LOSS_NAMES, values))
            rate = (step - start_step) * t.batch_size * accelerator.num_processes / max(1e-9, time.time() - start_time)
            progress.set_postfix({k: f"{v:.3f}" for k, v in logs.items()} | {"img/s": f"{rate:.0f}"})
            accelerator.log({f"loss/{k}": v for k, v in logs.items()} | {"lr": schedulers["G"].get_last_lr()[0], "images_per_s": rate}, step=step)
        if is_main and (step % t.sample_every == 0 or step == t.max_steps):
            save_samples(run_dir, step, exported(state), previews, value_range)
        if is_main and t.eval_every and step % t.eval_every == 0 and step < t.max_steps:
            metrics = evaluate_now(run_dir, step, exported(state), a, b, launched, value_range)
            accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=step)
        if checkpoint_now:
            process_states = [state.process_state()]
            if accelerator.num_processes > 1:
                process_states = gather_object(process_states)
            if is_main:
                try:
                    last_good = state.save(run_dir, process_states, t.checkpoints_total_limit)
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    progress.close()
                    raise TrainingError(f"no space left on the device while writing the checkpoint of step {step}; "
                                        f"the previous one ({last_good}) is intact") from None  # fmt: skip
    progress.close()

    # ---- export the pair (EMA weights when on), evaluate, write the cards, push ----
    accelerator.wait_for_everyone()
    if is_main:
        pair = exported(state)
        metrics = evaluate_now(run_dir, state.step, pair, a, b, launched, value_range)
        table = metrics_table({k: v for k, v in metrics.items() if not k.startswith("n_")}, a.label, b.label)
        if table:
            say(table)
        save_pair(run_dir, pair, config, metrics, state.step, accelerator.num_processes)
        say(f"saved {run_dir / 'generator_AtoB'} and {run_dir / 'generator_BtoA'}")
        if config.hub.push_to_hub:
            from cyclegan_hub.hub import push_pair

            try:
                report = push_pair(run_dir, config.hub.repo_id, reverse_repo_id=config.hub.reverse_repo_id,
                                   private=config.hub.private)  # fmt: skip
            except ValueError as err:
                raise TrainingError(f"training finished and was saved in {run_dir}, but the push failed: {err}") from None
            for repo, url in report.commits.items():
                say(f"pushed {repo}: {url}")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return 0


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
