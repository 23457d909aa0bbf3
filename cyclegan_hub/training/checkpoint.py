"""The training state of a run, saved and loaded as one symmetric pair: safetensors + JSON, nothing pickled.

A checkpoint is a folder ``<run>/checkpoints/step-NNNNNN/`` holding

| file                          | what                                                                          |
|-------------------------------|-------------------------------------------------------------------------------|
| ``models.safetensors``        | G, F, D_A, D_B (``G.<key>``, ...) and the EMA copies (``ema_G.<key>``)        |
| ``optimizers.safetensors``    | every optimizer's tensor state (``G.<param index>.<slot>``: Adam's ``exp_avg``,|
|                               | SGD's ``momentum_buffer``, ...), the optimizer's own ``state_dict`` flattened |
| ``rank-<r>.safetensors``      | per process: the image pools and every RNG (torch, CUDA, Python, NumPy)       |
| ``training_state.json``       | step, processes, each optimizer's class, parameter groups and non-tensor state|
|                               | values, LR schedules, loss scaler                                             |

and ``checkpoints/latest`` names the newest. ``TrainingState.save`` writes one into a temporary folder and renames
it into place (a kill at any moment leaves the old checkpoint or the new one, never half of one);
``TrainingState.load`` restores every piece, weight for weight.

A checkpoint may come from somewhere else (a Hub repo, a copied run folder), so loading validates it as one schema
before any tensor is read: the JSON's fields and ranges, every tensor's name, shape and dtype (from the
safetensors headers), and that every file is a regular file inside the run folder (never a link out of it).
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..io.errors import first_line
from ..io.files import atomic_write_text, inside, read_file, read_json, regular_file_inside, remove, replace_folder
from ..models.modeling import check_weights_header, read_safetensors_header, save_tensors
from .losses import ImagePool
from .rng import rng_header, rng_state, set_rng_state

FORMAT = 3
#: Formats this version reads: 2 (Adam only, written before optimizers were described by class) and 3.
READABLE_FORMATS = (2, 3)
#: A slot of an optimizer's per-parameter state, as its name appears in a tensor key.
SLOT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
STEP_FOLDER = re.compile(r"^step-(\d{6,})$")
STATE_JSON = "training_state.json"
SHARED_FILES = ("models.safetensors", "optimizers.safetensors", STATE_JSON)
MAX_PROCESSES = 4096
_TENSOR_DTYPES = ("F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason in one line."""


def rank_file(rank: int) -> str:
    return f"rank-{rank}.safetensors"


def checkpoint_files(num_processes: int) -> list[str]:
    """Every file of a checkpoint written by ``num_processes`` processes."""
    return [*SHARED_FILES, *(rank_file(r) for r in range(num_processes))]


# ---------------------------------------------------------------------------------------------------------------
# the state of a run
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class TrainingState:
    """Everything a run needs to continue exactly: one owner, used by the trainer and by ``push``.

    ``nets``: G, F, D_A, D_B (unwrapped); ``optimizers``: "G" (both generators) and "D" (both discriminators) with
    their ``schedulers``; ``ema``: EMA copies of G and F, or empty; ``pools``: this process's image pools "A", "B";
    ``step``: optimisation steps done."""

    nets: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler]
    pools: dict[str, ImagePool]
    ema: dict[str, torch.optim.swa_utils.AveragedModel] = field(default_factory=dict)
    scaler: object | None = None
    step: int = 0

    def exported(self) -> dict[str, nn.Module]:
        """Copies of G and F as they would be saved now (the EMA weights when EMA is on), in eval mode."""
        return {
            name: copy.deepcopy(self.ema[name].module if self.ema else self.nets[name]).eval() for name in ("G", "F")
        }

    # ---- saving ----

    def process_state(self) -> dict[str, torch.Tensor]:
        """This process's share (its RNGs and pools): gathered by the main process, which writes all of them."""
        state = rng_state()
        for key, pool in self.pools.items():
            state.update({f"pool_{key}.{k}": v for k, v in pool.state_dict().items()})
        return {k: v.detach().cpu().contiguous() for k, v in state.items()}

    def _named_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"{name}.{k}": v for name, net in self.nets.items() for k, v in net.state_dict().items()}
        tensors.update({f"ema_{name}.{k}": v for name, ema in self.ema.items() for k, v in ema.state_dict().items()})
        return tensors

    def aliases(self) -> dict[str, str]:
        """Tensors that networks share (the two directions of a one-step pair share one UNet adapter): each later
        name -> the first name of the same tensor. Saved once, restored under every name."""
        first, aliases = {}, {}
        for name, value in self._named_tensors().items():
            if value.device.type == "meta" or not value.numel():
                continue
            identity = (value.untyped_storage().data_ptr(), value.storage_offset(), value.shape, value.stride())
            if identity in first:
                aliases[name] = first[identity]
            else:
                first[identity] = name
        return aliases

    def model_tensors(self) -> dict[str, torch.Tensor]:
        shared = self.aliases()
        tensors = {k: v for k, v in self._named_tensors().items() if k not in shared}
        return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}

    def optimizer_tensors(self) -> dict[str, torch.Tensor]:
        """Every optimizer's tensor state, flattened: ``<optimizer>.<param index>.<slot>``."""
        return {
            f"{name}.{key}": value
            for name, opt in self.optimizers.items()
            for key, value in _flatten(name, opt)[0].items()
        }

    def meta(self, num_processes: int) -> dict:
        optimizers = {}
        for name, opt in self.optimizers.items():
            optimizers[name] = {
                "class": _class_name(opt),
                "param_groups": opt.state_dict()["param_groups"],
                "values": _flatten(name, opt)[1],
            }
        return {
            "format": FORMAT,
            "step": self.step,
            "num_processes": num_processes,
            "optimizers": optimizers,
            "schedulers": {name: _scheduler_state(s) for name, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def save(self, run_dir: str | os.PathLike, process_states: list[dict[str, torch.Tensor]], keep: int = 0) -> Path:
        """Write ``checkpoints/step-NNNNNN`` of ``run_dir`` atomically, point ``latest`` at it and keep the newest
        ``keep`` (0: all). Main process only; ``process_states`` are every process's ``process_state()``."""
        root = _checkpoints_folder(Path(run_dir), create=True)
        folder = root / f"step-{self.step:06d}"
        files = {
            "models.safetensors": self.model_tensors(),
            "optimizers.safetensors": self.optimizer_tensors(),
            **{rank_file(r): s for r, s in enumerate(process_states)},
        }
        meta = self.meta(len(process_states))

        def fill(tmp: Path) -> None:
            for name, tensors in files.items():
                save_tensors(tensors, tmp / name)
            (tmp / STATE_JSON).write_text(json.dumps(meta, indent=1))

        replace_folder(folder, fill)
        atomic_write_text(root / "latest", folder.name)
        prune(root, keep)
        return folder

    # ---- loading ----

    def load(self, source: CheckpointFiles, process_index: int, device: torch.device | str = "cpu") -> None:
        """Restore every piece from a checkpoint, after checking all of it (``validate``): nothing is changed when
        the checkpoint is refused."""
        meta = self.validate(source, process_index)
        weights = load_file(str(source.path("models.safetensors")))
        weights.update({alias: weights[name] for alias, name in self.aliases().items()})
        for name, net in self.nets.items():
            net.load_state_dict(_strip(weights, f"{name}."))
        for name, ema in self.ema.items():
            ema.load_state_dict(_strip(weights, f"ema_{name}."))
        tensors = load_file(str(source.path("optimizers.safetensors")))
        for name, opt in self.optimizers.items():
            saved = meta["optimizers"][name]
            state: dict[int, dict] = {}
            for key, value in [*_strip(tensors, f"{name}.").items(), *saved["values"].items()]:
                pid, slot = key.split(".", 1)
                state.setdefault(int(pid), {})[slot] = value
            opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
        for name, scheduler in self.schedulers.items():
            saved = meta["schedulers"][name]
            scheduler.load_state_dict({**saved, "lr_lambdas": [None] * len(saved["base_lrs"])})
        if self.scaler is not None and meta.get("scaler"):
            self.scaler.load_state_dict(meta["scaler"])
        process = load_file(str(source.path(rank_file(process_index))))
        for key, pool in self.pools.items():
            pool.load_state_dict(_strip(process, f"pool_{key}."), device)
        set_rng_state(process)
        self.step = meta["step"]

    def validate(self, source: CheckpointFiles, process_index: int) -> dict:
        """Check a checkpoint against this state as one schema, reading only JSON and safetensors headers.
        Returns the validated JSON; raises CheckpointError naming the first problem."""
        where = source.name
        meta = read_json(source.path(STATE_JSON), what=f"{where}/{STATE_JSON}")
        problem = _check_meta(meta, self)
        if problem:
            raise CheckpointError(f"{where}/{STATE_JSON}: {problem}")
        if process_index >= meta["num_processes"]:
            raise CheckpointError(
                f"{where} was written by {meta['num_processes']} process(es); no state for process {process_index}"
            )
        expected = {
            "models.safetensors": self.model_tensors(),
            "optimizers.safetensors": "optimizers",
            rank_file(process_index): "process",
        }
        for name, tensors in expected.items():
            try:
                header = read_safetensors_header(source.path(name))
            except (OSError, ValueError) as err:
                raise CheckpointError(f"{where}/{name}: {err}") from None
            if tensors == "process":
                problems = _check_process_header(header, self)
            elif tensors == "optimizers":
                problems = _check_optimizer_header(header, self.optimizers)
            else:
                problems = check_weights_header(tensors, header)
            if problems:
                raise CheckpointError(f"{where}/{name} does not fit this run: {problems[0]}")
        return meta


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _scheduler_state(scheduler) -> dict:
    # LambdaLR keeps the lambda itself out of its state (it is code, rebuilt from the config)
    return {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}


def _flatten(name: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's per-parameter state, flattened: tensors ``{"<pid>.<slot>": tensor}`` for safetensors and
    the other values ``{"<pid>.<slot>": number, bool or None}`` for the JSON (SGD without momentum keeps
    ``momentum_buffer = None``; some optimizers count steps in Python ints). Anything else cannot be checkpointed
    exactly and is refused with the optimizer and slot named."""
    tensors, values = {}, {}
    for pid, slots in opt.state_dict()["state"].items():
        for slot, value in slots.items():
            key = f"{pid}.{slot}"
            if torch.is_tensor(value):
                tensors[key] = value.detach().cpu().contiguous()
            elif value is None or isinstance(value, (bool, int, float)):
                values[key] = value
            else:
                raise CheckpointError(
                    f"optimizer {name} ({_class_name(opt)}) keeps {slot} as a {type(value).__name__}; only tensors "
                    f"and numbers can be checkpointed"
                )
    return tensors, values


def _class_name(opt: torch.optim.Optimizer) -> str:
    """The optimizer's own class (accelerate wraps it in an ``AcceleratedOptimizer`` that holds it as ``optimizer``)."""
    inner = getattr(opt, "optimizer", None)
    return type(inner if isinstance(inner, torch.optim.Optimizer) else opt).__name__


def _parameters(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def _check_optimizer_header(header: dict, optimizers: dict[str, torch.optim.Optimizer]) -> list[str]:
    """The optimizers' tensors of a checkpoint, for any torch optimizer: every name is ``<optimizer>.<param
    index>.<slot>`` of this run's optimizers and parameters, and every tensor a float or integer tensor no larger
    than its parameter (Adam's moments have its shape, Adafactor's factored ones fewer elements)."""
    params = {name: _parameters(opt) for name, opt in optimizers.items()}
    for key, (dtype, shape) in header.items():
        name, _, rest = key.partition(".")
        pid, _, slot = rest.partition(".")
        if name not in params or not pid.isdigit() or not SLOT.match(slot) or int(pid) >= len(params[name]):
            return [f"unexpected tensor {key} (not a slot of a parameter of this run's optimizers)"]
        param = params[name][int(pid)]
        if dtype not in _TENSOR_DTYPES or len(shape) > max(param.dim(), 1) or math.prod(shape) > max(param.numel(), 1):
            return [f"{key} is a {dtype} tensor of shape {shape}, larger than its parameter {tuple(param.shape)}"]
    return []


def _check_process_header(header: dict, state: TrainingState) -> list[str]:
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


def _number(value, low=-math.inf, high=math.inf) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and low <= value <= high
    )


def _whole(value, low=0, high=2**62) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


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
            if not _number(value, low, 1e3):
                return {}, f"{where}.{key} must be a number from {low} to 1000, got {value!r}"
        elif isinstance(ours, (list, tuple)) and all(isinstance(v, (int, float)) for v in ours):
            low, high = (0, 0.999999) if key == "betas" else (-1e3, 1e3)
            if not (isinstance(value, list) and len(value) == len(ours) and all(_number(v, low, high) for v in value)):
                return {}, f"{where}.{key} must be {len(ours)} numbers from {low} to {high}, got {value!r}"
            value = type(ours)(value)
        else:
            continue
        numbers[key] = value
    return numbers, None


def _check_meta(meta: dict, state: TrainingState) -> str | None:
    """The first problem of a training_state.json, or None. Every value that reaches an optimizer, a scheduler
    or the loop is checked here; the rest of the file is ignored."""
    if meta.get("format") not in READABLE_FORMATS:
        return f"format {meta.get('format')!r} is not a checkpoint format this version reads ({FORMAT})"
    if not _whole(meta.get("step")):
        return f"step must be a whole number >= 0, got {meta.get('step')!r}"
    if not _whole(meta.get("num_processes"), 1, MAX_PROCESSES):
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
        if saved["class"] != _class_name(opt):
            return f"optimizers.{name} was a {saved['class']!r}; this run's is a {_class_name(opt)!r}"
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
        count = len(_parameters(opt))
        if not isinstance(values, dict) or len(values) > 64 * count:
            return f"optimizers.{name}.values must be an object of per-parameter values"
        for key, value in values.items():
            pid, _, slot = key.partition(".")
            if not (pid.isdigit() and int(pid) < count and SLOT.match(slot)):
                return f"optimizers.{name}.values has an entry {key!r} for no parameter of this run"
            if not (value is None or isinstance(value, bool) or _number(value, -(2**62), 2**62)):
                return f"optimizers.{name}.values.{key} must be a number, true, false or null"
        optimizers[name] = {"class": saved["class"], "param_groups": trusted, "values": values}
    schedulers = meta.get("schedulers")
    if not isinstance(schedulers, dict) or set(schedulers) != set(state.schedulers):
        return f"schedulers must describe {', '.join(sorted(state.schedulers))}"
    for name, scheduler in state.schedulers.items():
        saved, current = schedulers[name], _scheduler_state(scheduler)
        if not isinstance(saved, dict) or set(saved) - set(current):
            return f"schedulers.{name} has unknown field(s)"
        if saved.get("last_epoch") != meta["step"]:
            return f"schedulers.{name}.last_epoch ({saved.get('last_epoch')!r}) is not the step ({meta['step']})"
        for key in ("base_lrs", "_last_lr"):
            values = saved.get(key)
            if (
                not isinstance(values, list)
                or len(values) != len(current.get(key, []))
                or not all(_number(v, 0, 1e3) for v in values)
            ):
                return f"schedulers.{name}.{key} must be {len(current.get(key, []))} learning rate(s)"
        if not _whole(saved.get("_step_count"), 0):
            return f"schedulers.{name}._step_count must be a whole number"
        for key, value in current.items():
            if isinstance(value, bool) and not isinstance(saved.get(key, value), bool):
                return f"schedulers.{name}.{key} must be true or false"
    scaler = meta.get("scaler")
    if scaler is not None:
        if not isinstance(scaler, dict) or not all(_number(v, 0) or isinstance(v, bool) for v in scaler.values()):
            return "scaler must hold non-negative numbers"
    return None


# ---------------------------------------------------------------------------------------------------------------
# finding checkpoints: inside the run folder (or the Hub repo they came from), never through a link
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class CheckpointFiles:
    """Where each file of one checkpoint is: a folder of a run, or files downloaded from a Hub repo."""

    name: str
    files: dict[str, Path]

    def path(self, file: str) -> Path:
        if file not in self.files:
            raise CheckpointError(f"{self.name} has no {file}")
        return self.files[file]


def _checkpoints_folder(run_dir: Path, create: bool = False) -> Path:
    root = run_dir / "checkpoints"
    if root.is_symlink():
        raise CheckpointError(f"{root} is a symbolic link; checkpoints stay inside the run folder")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def local_checkpoint(folder: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> CheckpointFiles:
    """A checkpoint folder as files: each must be a regular file inside the folder (and the folder inside
    ``run_dir`` when given), reached through no symbolic link."""
    folder = Path(folder)
    if run_dir is not None and not inside(run_dir, folder):
        raise CheckpointError(f"{folder} is outside the run folder {run_dir} (or reached through a link)")
    if folder.is_symlink() or not folder.is_dir():
        raise CheckpointError(f"{folder} is not a checkpoint folder (a real folder holding {STATE_JSON})")
    files = {}
    for path in folder.iterdir():
        if path.name.endswith(".safetensors") or path.name == STATE_JSON:
            if not regular_file_inside(folder, path):
                raise CheckpointError(f"{path} is not a regular file (links are never followed)")
            files[path.name] = path
    if STATE_JSON not in files:
        raise CheckpointError(f"{folder} is not a checkpoint folder (no {STATE_JSON})")
    return CheckpointFiles(str(folder), files)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run: the one ``checkpoints/latest`` names, else the highest
    ``step-*`` folder holding a training_state.json. Only real folders inside the run count.

    Raises CheckpointError for a ``latest`` pointer that names anything but a step folder of this run."""
    root = _checkpoints_folder(Path(run_dir))
    if not root.is_dir():
        return None
    pointer = root / "latest"
    if pointer.exists() or pointer.is_symlink():
        name = read_file(pointer, 256, what=str(pointer), follow_links=False).decode(errors="replace").strip()
        if not STEP_FOLDER.match(name):
            raise CheckpointError(f"{pointer} names {name!r}, not a step folder of this run")
        if _is_checkpoint(root / name):
            return root / name
    complete = sorted(
        (p for p in root.iterdir() if STEP_FOLDER.match(p.name) and _is_checkpoint(p)),
        key=lambda p: int(STEP_FOLDER.match(p.name)[1]),
    )
    return complete[-1] if complete else None


def _is_checkpoint(folder: Path) -> bool:
    return not folder.is_symlink() and folder.is_dir() and regular_file_inside(folder, folder / STATE_JSON)


def prune(root: Path, keep: int) -> None:
    """Keep the newest ``keep`` step folders (0: all). Entries named like step folders that are links are not
    checkpoints of this run: they are removed as links, never followed."""
    entries = [p for p in root.iterdir() if STEP_FOLDER.match(p.name)]
    links = [p for p in entries if p.is_symlink()]
    for link in links:
        link.unlink()
    if not keep or keep <= 0:
        return
    steps = sorted((p for p in entries if p not in links), key=lambda p: int(STEP_FOLDER.match(p.name)[1]))
    for old in steps[:-keep]:
        remove(old)


def hub_checkpoint(repo_id: str, subfolder: str = "training_state") -> CheckpointFiles:
    """The checkpoint a repo holds under ``training_state/`` (``push --include-training-state``), downloaded file
    by file: its own names only, the number of process files read from the validated JSON."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    def get(name: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, f"{subfolder}/{name}"))
        except EntryNotFoundError:
            raise CheckpointError(f"{repo_id} has no training state (push it with --include-training-state)") from None
        except (HfHubHTTPError, LocalEntryNotFoundError) as err:
            raise CheckpointError(f"cannot download the training state of {repo_id} ({first_line(err)})") from None

    state_json = get(STATE_JSON)
    meta = read_json(state_json, what=f"{repo_id}/{STATE_JSON}")
    processes = meta.get("num_processes")
    if not _whole(processes, 1, MAX_PROCESSES):
        raise CheckpointError(f"{repo_id}/{STATE_JSON}: num_processes must be a whole number, got {processes!r}")
    return CheckpointFiles(repo_id, {name: get(name) for name in checkpoint_files(processes)})


def resolve_checkpoint(run_dir: str | os.PathLike, resume: str) -> CheckpointFiles:
    """``--resume``: "latest" (this run's newest), a checkpoint folder, or a Hub repo id with a training state."""
    run_dir = Path(run_dir)
    if resume == "latest":
        path = latest_checkpoint(run_dir)
        if path is None:
            raise CheckpointError(f"--resume latest: no checkpoint in {run_dir / 'checkpoints'}")
        return local_checkpoint(path, run_dir)
    if Path(resume).exists() or Path(resume).is_symlink():
        return local_checkpoint(resume)
    if resume.count("/") == 1 and not resume.startswith((".", "/")):
        return hub_checkpoint(resume)
    raise CheckpointError(f"--resume {resume}: no such checkpoint folder, and not a Hub repo id")
