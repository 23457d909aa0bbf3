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
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..io.files import atomic_write_text, read_json, replace_folder
from ..io.tensors import check_weights_header, read_safetensors_header, save_tensors
from .checkpoint_files import STATE_JSON, CheckpointError, CheckpointFiles, checkpoints_folder, prune, rank_file
from .checkpoint_schema import (
    FORMAT,
    check_meta,
    check_optimizer_header,
    check_process_header,
    optimizer_class,
    scheduler_state,
)
from .losses import ImagePool
from .rng import rng_state, set_rng_state

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
    #: the networks a run exports: G and F, or G alone (a one-way family)
    exported_names: tuple[str, ...] = ("G", "F")

    def exported(self) -> dict[str, nn.Module]:
        """Copies of the exported networks as they would be saved now (the EMA weights when EMA is on), in eval
        mode."""
        return {
            name: copy.deepcopy(self.ema[name].module if self.ema else self.nets[name]).eval()
            for name in self.exported_names
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
                "class": optimizer_class(opt),
                "param_groups": opt.state_dict()["param_groups"],
                "values": _flatten(name, opt)[1],
            }
        return {
            "format": FORMAT,
            "step": self.step,
            "num_processes": num_processes,
            "optimizers": optimizers,
            "schedulers": {name: scheduler_state(s) for name, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
        }

    def save(self, run_dir: str | os.PathLike, process_states: list[dict[str, torch.Tensor]], keep: int = 0) -> Path:
        """Write ``checkpoints/step-NNNNNN`` of ``run_dir`` atomically, point ``latest`` at it and keep the newest
        ``keep`` (0: all). Main process only; ``process_states`` are every process's ``process_state()``."""
        root = checkpoints_folder(Path(run_dir), create=True)
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
        problem = check_meta(meta, self)
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
                problems = check_process_header(header, self)
            elif tensors == "optimizers":
                problems = check_optimizer_header(header, self.optimizers)
            else:
                problems = check_weights_header(tensors, header)
            if problems:
                raise CheckpointError(f"{where}/{name} does not fit this run: {problems[0]}")
        return meta


def _strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


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
                    f"optimizer {name} ({optimizer_class(opt)}) keeps {slot} as a {type(value).__name__}; only tensors "
                    f"and numbers can be checkpointed"
                )
    return tensors, values
