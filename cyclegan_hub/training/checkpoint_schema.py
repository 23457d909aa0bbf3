"""What a checkpoint from elsewhere may hold: its JSON's fields and ranges, and every tensor's name, shape and dtype
(from the safetensors headers), checked as one schema before anything is loaded. Each check returns the first
problem in one line (or nothing)."""

from __future__ import annotations

import math
import re

import torch

from ..models.options import fits
from .checkpoint_files import MAX_PROCESSES
from .rng import rng_header

FORMAT = 3
#: Formats this version reads: 2 (Adam only, written before optimizers were described by class) and 3.
READABLE_FORMATS = (2, 3)
#: A slot of an optimizer's per-parameter state, as its name appears in a tensor key.
SLOT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: The largest count (a step, an optimizer's step count) or per-parameter number a checkpoint may hold.
MAX_COUNT = 2**62
_TENSOR_DTYPES = ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL")


def optimizer_class(opt: torch.optim.Optimizer) -> str:
    """The optimizer's own class (accelerate wraps it in an ``AcceleratedOptimizer`` that holds it as ``optimizer``)."""
    inner = getattr(opt, "optimizer", None)
    return type(inner if isinstance(inner, torch.optim.Optimizer) else opt).__name__


def parameters_of(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def scheduler_state(scheduler) -> dict:
    # LambdaLR keeps the lambda itself out of its state (it is code, rebuilt from the config)
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def check_optimizer_header(header: dict, optimizers: dict[str, torch.optim.Optimizer]) -> list[str]:
    """The optimizers' tensors of a checkpoint, for any torch optimizer: every name is ``<optimizer>.<param
    index>.<slot>`` of this run's optimizers and parameters, and every tensor a float or integer tensor no larger
    than its parameter (Adam's moments have its shape, Adafactor's factored ones fewer elements)."""
    params = {name: parameters_of(opt) for name, opt in optimizers.items()}
    for key, (dtype, shape) in header.items():
        name, _, rest = key.partition(".")
        pid, _, slot = rest.partition(".")
        if name not in params or not pid.isdigit() or not SLOT.match(slot) or int(pid) >= len(params[name]):
            return [f"unexpected tensor {key} (not a slot of a parameter of this run's optimizers)"]
        param = params[name][int(pid)]
        if dtype not in _TENSOR_DTYPES or len(shape) > max(param.dim(), 1) or math.prod(shape) > max(param.numel(), 1):
            return [f"{key} is a {dtype} tensor of shape {shape}, larger than its parameter {tuple(param.shape)}"]
    return []


def check_process_header(header: dict, state) -> list[str]:
    """The problems of one process's file (its RNGs and image pools) against the ``TrainingState`` ``state``."""
    problems = []
    for key, (dtype, shape) in rng_header().items():
        if header.get(key) != (dtype, shape):
            problems.append(f"{key} is {header.get(key)}, expected {(dtype, shape)}")
    cuda = header.get("cuda_rng")
    if cuda is not None and (cuda[0] != "U8" or len(cuda[1]) != 1):
        problems.append(f"cuda_rng is {cuda}")
    for key, pool in state.pools.items():
        if header.get(f"pool_{key}.rng") != ("U8", tuple(pool.generator.get_state().shape)):
            problems.append(f"pool_{key}.rng is {header.get(f'pool_{key}.rng')}")
        if header.get(f"pool_{key}.size") != ("I64", ()):
            problems.append(f"pool_{key}.size is {header.get(f'pool_{key}.size')}")
        images = header.get(f"pool_{key}.images")
        if images is not None and (
            images[0] not in ("F32", "F16", "BF16") or len(images[1]) != 4 or images[1][0] > pool.size
        ):
            problems.append(f"pool_{key}.images is {images}, more than the pool holds or not images")
    known = set(rng_header()) | {"cuda_rng"} | {f"pool_{k}.{s}" for k in state.pools for s in ("rng", "size", "images")}
    unknown = sorted(set(header) - known)
    if unknown:
        problems.append(f"unexpected tensor(s) {', '.join(unknown[:3])}")
    return problems


def _trusted_numbers(saved: dict, current: dict, where: str) -> tuple[dict, str | None]:
    """The hyper-parameters a checkpoint may set in a parameter group, for any optimizer: the numbers (and pairs of
    numbers, such as Adam's betas) that this run's group has too, each finite and bounded; switches (fused,
    maximize, foreach, ...) and anything else stay this run's. Returns (numbers, the first problem or None)."""
    numbers = {}
    for key, value in saved.items():
        ours = current.get(key, 0.0 if key == "initial_lr" else None)
        if key == "params" or isinstance(ours, bool) or ours is None:
            continue
        if isinstance(ours, (int, float)):
            low = 1e-30 if key == "eps" else 0 if key in ("lr", "initial_lr", "weight_decay") else -1e3
            if not fits(value, "float", low, 1e3):
                return {}, f"{where}.{key} must be a number from {low} to 1000, got {value!r}"
        elif isinstance(ours, (list, tuple)) and all(isinstance(v, (int, float)) for v in ours):
            low, high = (0, 0.999999) if key == "betas" else (-1e3, 1e3)
            if not (
                isinstance(value, list) and len(value) == len(ours) and all(fits(v, "float", low, high) for v in value)
            ):
                return {}, f"{where}.{key} must be {len(ours)} numbers from {low} to {high}, got {value!r}"
            value = type(ours)(value)
        else:
            continue
        numbers[key] = value
    return numbers, None


def check_meta(meta: dict, state) -> str | None:
    """The first problem of a training_state.json for the ``TrainingState`` ``state``, or None. Every value that reaches an optimizer, a scheduler
    or the loop is checked here; the rest of the file is ignored."""
    if not fits(meta.get("format"), "choice", choices=READABLE_FORMATS):
        return f"format {meta.get('format')!r} is not a checkpoint format this version reads ({FORMAT})"
    if not fits(meta.get("step"), "int", 0, MAX_COUNT):
        return f"step must be a whole number >= 0, got {meta.get('step')!r}"
    if not fits(meta.get("num_processes"), "int", 1, MAX_PROCESSES):
        return f"num_processes must be a whole number from 1 to {MAX_PROCESSES}, got {meta.get('num_processes')!r}"
    optimizers = meta.get("optimizers")
    if not isinstance(optimizers, dict) or set(optimizers) != set(state.optimizers):
        return f"optimizers must describe {', '.join(sorted(state.optimizers))}"
    for name, opt in state.optimizers.items():
        saved = optimizers[name]
        if meta["format"] == 2:  # Adam's parameter groups only; every state value was a tensor
            saved = {"class": "Adam", "param_groups": saved, "values": {}}
        if not isinstance(saved, dict) or set(saved) != {"class", "param_groups", "values"}:
            return f"optimizers.{name} must hold class, param_groups and values"
        if saved["class"] != optimizer_class(opt):
            return f"optimizers.{name} was a {saved['class']!r}; this run's is a {optimizer_class(opt)!r}"
        groups, live = saved["param_groups"], opt.state_dict()["param_groups"]
        if not isinstance(groups, list) or len(groups) != len(live):
            return f"optimizers.{name} must be a list of {len(live)} parameter group(s)"
        trusted = []
        for group, current in zip(groups, live):
            if not isinstance(group, dict) or group.get("params") != current["params"]:
                return f"optimizers.{name}: parameter groups do not match this run's networks"
            numbers, problem = _trusted_numbers(group, current, f"optimizers.{name}")
            if problem:
                return problem
            trusted.append({**current, **numbers})
        values = saved["values"]
        count = len(parameters_of(opt))
        if not isinstance(values, dict) or len(values) > 64 * count:
            return f"optimizers.{name}.values must be an object of per-parameter values"
        for key, value in values.items():
            pid, _, slot = key.partition(".")
            if not (pid.isdigit() and int(pid) < count and SLOT.match(slot)):
                return f"optimizers.{name}.values has an entry {key!r} for no parameter of this run"
            if not (value is None or isinstance(value, bool) or fits(value, "float", -MAX_COUNT, MAX_COUNT)):
                return f"optimizers.{name}.values.{key} must be a number, true, false or null"
        optimizers[name] = {"class": saved["class"], "param_groups": trusted, "values": values}
    schedulers = meta.get("schedulers")
    if not isinstance(schedulers, dict) or set(schedulers) != set(state.schedulers):
        return f"schedulers must describe {', '.join(sorted(state.schedulers))}"
    for name, scheduler in state.schedulers.items():
        saved, current = schedulers[name], scheduler_state(scheduler)
        if not isinstance(saved, dict) or set(saved) - set(current):
            return f"schedulers.{name} has unknown field(s)"
        if saved.get("last_epoch") != meta["step"]:
            return f"schedulers.{name}.last_epoch ({saved.get('last_epoch')!r}) is not the step ({meta['step']})"
        for key in ("base_lrs", "_last_lr"):
            values = saved.get(key)
            if (
                not isinstance(values, list)
                or len(values) != len(current.get(key, []))
                or not all(fits(v, "float", 0, 1e3) for v in values)
            ):
                return f"schedulers.{name}.{key} must be {len(current.get(key, []))} learning rate(s)"
        if not fits(saved.get("_step_count"), "int", 0, MAX_COUNT):
            return f"schedulers.{name}._step_count must be a whole number"
        for key, value in current.items():
            if isinstance(value, bool) and not isinstance(saved.get(key, value), bool):
                return f"schedulers.{name}.{key} must be true or false"
    scaler = meta.get("scaler")
    if scaler is not None:
        if not isinstance(scaler, dict) or not all(fits(v, "float", 0) or isinstance(v, bool) for v in scaler.values()):
            return "scaler must hold non-negative numbers"
    return None


# ---------------------------------------------------------------------------------------------------------------
# finding checkpoints: inside the run folder (or the Hub repo they came from), never through a link
# ---------------------------------------------------------------------------------------------------------------
