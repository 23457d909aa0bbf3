"""The training state: saved and loaded as one pair, and a checkpoint from elsewhere validated as one schema before
anything is loaded, never followed out of its run folder."""

import json
import os
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cyclegan_hub import CycleGenerator, ImagePool, PatchDiscriminator
from cyclegan_hub.training.checkpoint import (
    CheckpointError,
    TrainingState,
    latest_checkpoint,
    local_checkpoint,
    make_ema,
    resolve_checkpoint,
    rng_state,
    set_rng_state,
)


def make_state(seed: int = 0, ema: bool = True) -> TrainingState:
    torch.manual_seed(seed)
    nets = {
        "G": CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=16),
        "F": CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=16),
        "D_A": PatchDiscriminator(1, 4, n_layers=1),
        "D_B": PatchDiscriminator(1, 4, n_layers=1),
    }
    opt_g = torch.optim.Adam([*nets["G"].parameters(), *nets["F"].parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*nets["D_A"].parameters(), *nets["D_B"].parameters()], lr=2e-4, betas=(0.5, 0.999))
    schedulers = {
        name: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / 100)
        for name, opt in (("G", opt_g), ("D", opt_d))
    }
    pools = {"A": ImagePool(3, seed=1), "B": ImagePool(3, seed=2)}
    state = TrainingState(
        nets,
        {"G": opt_g, "D": opt_d},
        schedulers,
        pools,
        ema={k: make_ema(nets[k], 0.9) for k in ("G", "F")} if ema else {},
    )
    return state


def train_a_little(state: TrainingState, steps: int = 2) -> None:
    for _ in range(steps):
        x = torch.rand(2, 1, 16, 16) * 2 - 1
        for name, opt in state.optimizers.items():
            nets = ("G", "F") if name == "G" else ("D_A", "D_B")
            loss = sum(state.nets[n](x).square().mean() for n in nets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            state.schedulers[name].step()
        for pool in state.pools.values():
            pool.query(torch.rand(2, 1, 16, 16))
        for name, ema in state.ema.items():
            ema.update_parameters(state.nets[name])
        state.step += 1


@pytest.fixture
def saved(tmp_path):
    state = make_state()
    train_a_little(state)
    folder = state.save(tmp_path / "run", [state.process_state()])
    return state, folder


def test_save_then_load_restores_every_piece(saved, tmp_path):
    state, folder = saved
    assert folder.name == "step-000002" and (folder.parent / "latest").read_text() == "step-000002"
    fresh = make_state(seed=5)
    fresh.load(local_checkpoint(folder, tmp_path / "run"), 0)
    assert fresh.step == 2
    for a, b in (
        (state.model_tensors(), fresh.model_tensors()),
        (state.optimizer_tensors(), fresh.optimizer_tensors()),
    ):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fresh.schedulers["G"].get_last_lr() == state.schedulers["G"].get_last_lr()
    assert all(torch.equal(x, y) for x, y in zip(fresh.pools["A"].images, state.pools["A"].images))
    assert torch.equal(fresh.ema["G"].n_averaged, state.ema["G"].n_averaged)


def test_every_rng_round_trips():
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    state = rng_state()
    expected = (random.random(), float(np.random.rand()), float(torch.rand(())))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(()))) == expected


def edit_json(folder, change):
    meta = json.loads((folder / "training_state.json").read_text())
    change(meta)
    (folder / "training_state.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda m: m.update(step=-100), "step must be a whole number >= 0, got -100"),
        (lambda m: m.update(step="3"), "step must be a whole number >= 0, got '3'"),
        (lambda m: m.pop("step"), "step must be a whole number >= 0, got None"),
        (lambda m: m.update(num_processes=0), "num_processes must be a whole number from 1"),
        (
            lambda m: m["optimizers"]["G"][0].update(betas=[5, -1]),
            "optimizers.G.betas must be two numbers in [0, 1), got [5, -1]",
        ),
        (
            lambda m: m["optimizers"]["D"][0].update(lr="fast"),
            "optimizers.D.lr must be a number from 0 to 1000, got 'fast'",
        ),
        (lambda m: m["optimizers"]["G"][0].update(params=[0, 1]), "optimizers.G: parameter groups do not match"),
        (lambda m: m["optimizers"].pop("D"), "optimizers must describe D, G"),
        (lambda m: m["schedulers"]["G"].update(last_epoch=7), "schedulers.G.last_epoch (7) is not the step (2)"),
        (
            lambda m: m["schedulers"]["G"].update(base_lrs=[float("nan")]),
            "schedulers.G.base_lrs must be 1 learning rate(s)",
        ),
        (lambda m: m.update(format=1), "format 1 is not this version's checkpoint format"),
    ],
)
def test_a_malformed_training_state_is_refused_before_anything_is_loaded(saved, change, message):
    state, folder = saved
    edit_json(folder, change)
    fresh = make_state(seed=5)
    before = {k: v.clone() for k, v in fresh.model_tensors().items()}
    with pytest.raises(CheckpointError) as info:
        fresh.load(local_checkpoint(folder), 0)
    assert message in str(info.value) and "training_state.json" in str(info.value) and "\n" not in str(info.value)
    assert all(torch.equal(before[k], v) for k, v in fresh.model_tensors().items())  # nothing was half-loaded


def test_malformed_json_and_tensors_are_one_line(saved):
    state, folder = saved
    (folder / "training_state.json").write_text('{"step": 2,')
    with pytest.raises(ValueError, match=r"training_state.json is not valid JSON"):
        make_state().load(local_checkpoint(folder), 0)
    state.save(folder.parent.parent, [state.process_state()])  # a good one again
    weights = load_file(str(folder / "models.safetensors"))
    weights["G.net.1.weight"] = torch.zeros(2, 2)
    save_file(weights, str(folder / "models.safetensors"))
    with pytest.raises(
        CheckpointError, match=r"models.safetensors does not fit this run: G.net.1.weight has shape \(2, 2\)"
    ):
        make_state().load(local_checkpoint(folder), 0)
    state.save(folder.parent.parent, [state.process_state()])
    (folder / "optimizers.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(CheckpointError, match="optimizers.safetensors: .*not a readable safetensors file"):
        make_state().load(local_checkpoint(folder), 0)
    state.save(folder.parent.parent, [state.process_state()])
    rank = load_file(str(folder / "rank-0.safetensors"))
    rank["pool_A.images"] = torch.zeros(99, 1, 16, 16)
    save_file(rank, str(folder / "rank-0.safetensors"))
    with pytest.raises(CheckpointError, match="rank-0.safetensors does not fit this run: pool_A.images"):
        make_state().load(local_checkpoint(folder), 0)


@pytest.mark.parametrize("pointer", ["../../..", "/etc", "step-000002/../../other", "step-1"])
def test_a_latest_pointer_out_of_the_run_is_refused(saved, tmp_path, pointer):
    _, folder = saved
    (folder.parent / "latest").write_text(pointer)
    with pytest.raises(CheckpointError, match=r"checkpoints/latest names .*, not a step folder of this run"):
        resolve_checkpoint(tmp_path / "run", "latest")


def test_links_are_never_followed_out_of_the_run(saved, tmp_path):
    state, folder = saved
    outside = tmp_path / "elsewhere" / "step-000009"
    outside.parent.mkdir()
    os.rename(folder, outside)
    os.symlink(outside, folder.parent / "step-000009")
    os.symlink(outside, folder)  # step-000002 is now a link out of the run
    (folder.parent / "latest").write_text("step-000009")
    assert latest_checkpoint(tmp_path / "run") is None  # linked step folders do not count
    with pytest.raises(CheckpointError, match="is not a checkpoint folder"):
        local_checkpoint(folder.parent / "step-000009")
    # saving over the linked step folder replaces the link, never what it points to, and leaves no temporary folder
    saved_to = state.save(tmp_path / "run", [state.process_state()], keep=1)
    assert not saved_to.is_symlink() and saved_to.is_dir() and (outside / "models.safetensors").is_file()
    assert sorted(p.name for p in folder.parent.iterdir()) == ["latest", "step-000002"]
    assert latest_checkpoint(tmp_path / "run") == saved_to


def test_a_checkpoint_file_that_is_a_link_is_refused(saved, tmp_path):
    _, folder = saved
    secret = tmp_path / "secret.safetensors"
    os.rename(folder / "optimizers.safetensors", secret)
    os.symlink(secret, folder / "optimizers.safetensors")
    with pytest.raises(CheckpointError, match="optimizers.safetensors is not a regular file"):
        local_checkpoint(folder)


def test_a_checkpoints_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "other").mkdir()
    os.symlink(tmp_path / "other", tmp_path / "run" / "checkpoints")
    state = make_state()
    with pytest.raises(CheckpointError, match="checkpoints is a symbolic link"):
        state.save(tmp_path / "run", [state.process_state()])
    assert list((tmp_path / "other").iterdir()) == []
