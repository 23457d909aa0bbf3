"""The training state: saved and loaded as one pair, and a checkpoint from elsewhere validated as one schema before
anything is loaded, never followed out of its run folder."""

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cyclegan_hub import CycleGenerator, ImagePool, PatchDiscriminator
from cyclegan_hub.training.checkpoint import TrainingState
from cyclegan_hub.training.checkpoint_files import (
    CheckpointError,
    latest_checkpoint,
    local_checkpoint,
    resolve_checkpoint,
)
from cyclegan_hub.training.ema import make_ema
from cyclegan_hub.training.rng import rng_state, set_rng_state

#: Optimizers the checkpoint must restore exactly: the paper's Adam, AdamW with weight decay (what diffusion
#: fine-tuning uses), SGD with momentum (a slot that is not Adam's) and Adafactor (slots smaller than their
#: parameter, and different for matrices and vectors).
OPTIMIZERS = {
    "adam": lambda params: torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999)),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01),
    "sgd-momentum": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
    "adafactor": lambda params: torch.optim.Adafactor(params, lr=0.01),
}


def make_state(seed: int = 0, ema: bool = True, optimizer: str = "adam") -> TrainingState:
    torch.manual_seed(seed)
    nets = {
        "G": CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=16),
        "F": CycleGenerator(in_channels=1, out_channels=1, base_channels=4, n_blocks=1, image_size=16),
        "D_A": PatchDiscriminator(1, 4, n_layers=1),
        "D_B": PatchDiscriminator(1, 4, n_layers=1),
    }
    opt_g = OPTIMIZERS[optimizer]([*nets["G"].parameters(), *nets["F"].parameters()])
    opt_d = OPTIMIZERS[optimizer]([*nets["D_A"].parameters(), *nets["D_B"].parameters()])
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


def all_tensors(state: TrainingState) -> dict[str, torch.Tensor]:
    return {**state.model_tensors(), **{f"opt.{k}": v for k, v in state.optimizer_tensors().items()}}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_any_optimizer_resumes_to_the_bit(optimizer, tmp_path):
    """Stopped at step 2 and resumed to 4 equals 4 straight, tensor for tensor, for any torch optimizer."""
    straight = make_state(optimizer=optimizer)
    train_a_little(straight)
    folder = straight.save(tmp_path / "run", [straight.process_state()])
    train_a_little(straight)
    resumed = make_state(seed=7, optimizer=optimizer)
    resumed.load(local_checkpoint(folder, tmp_path / "run"), 0)
    train_a_little(resumed)
    expected, got = all_tensors(straight), all_tensors(resumed)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert resumed.optimizers["G"].state_dict()["param_groups"] == straight.optimizers["G"].state_dict()["param_groups"]
    assert any(k.endswith(".momentum_buffer" if "sgd" in optimizer else ".step") for k in straight.optimizer_tensors())


def test_an_optimizer_whose_state_is_not_tensors_and_numbers_is_refused_at_save(tmp_path):
    net = torch.nn.Linear(3, 2)
    lbfgs = torch.optim.LBFGS(net.parameters())
    lbfgs.step(lambda: net(torch.ones(1, 3)).square().sum().backward() or net(torch.ones(1, 3)).square().sum())
    state = TrainingState({"G": net}, {"G": lbfgs}, {}, {})
    with pytest.raises(CheckpointError, match=r"optimizer G \(LBFGS\) keeps al as a list; only tensors and numbers"):
        state.save(tmp_path / "run", [state.process_state()])
    assert not (tmp_path / "run" / "checkpoints" / "step-000000").exists()


def test_a_checkpoint_of_another_optimizer_is_refused_by_name(tmp_path):
    state = make_state(optimizer="adamw")
    train_a_little(state)
    folder = state.save(tmp_path / "run", [state.process_state()])
    with pytest.raises(CheckpointError, match=r"optimizers.G was a 'AdamW'; this run's is a 'SGD'"):
        make_state(optimizer="sgd-momentum").load(local_checkpoint(folder), 0)


def test_a_format_2_checkpoint_written_before_any_optimizer_still_resumes_exactly(tmp_path):
    """tests/data/checkpoint-format2: written by the release before this format (Adam only). Today's code reads every
    tensor as the file holds it, and 2 more steps from it give the bits that 2 more steps give from the same state
    saved in today's format. Both sides are computed here: the last bits of a step depend on the CPU's kernels."""
    data = Path(__file__).parents[1] / "data" / "checkpoint-format2"
    run = tmp_path / "run"
    shutil.copytree(data, run)
    folder = run / "checkpoints" / "step-000002"
    meta = json.loads((folder / "training_state.json").read_text())
    assert meta["format"] == 2 and isinstance(meta["optimizers"]["G"], list)
    old = make_state(seed=3)
    old.load(resolve_checkpoint(run, "latest"), 0)
    assert old.step == 2
    for got, stored in ((old.model_tensors(), "models"), (old.optimizer_tensors(), "optimizers")):
        expected = load_file(folder / f"{stored}.safetensors")
        assert got.keys() == expected.keys() and all(torch.equal(got[k], expected[k]) for k in got)
    saved = old.save(tmp_path / "today", [old.process_state()])
    assert json.loads((saved / "training_state.json").read_text())["format"] > 2
    new = make_state(seed=4)
    new.load(local_checkpoint(saved, tmp_path / "today"), 0)
    resumed_rngs = rng_state()  # as both loads restored them
    train_a_little(old)
    set_rng_state(resumed_rngs)
    train_a_little(new)
    expected, got = all_tensors(new), all_tensors(old)
    assert expected.keys() == got.keys() and all(torch.equal(expected[k], got[k]) for k in expected)
    assert old.schedulers["G"].get_last_lr() == new.schedulers["G"].get_last_lr()


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
            lambda m: m["optimizers"]["G"]["param_groups"][0].update(betas=[5, -1]),
            "optimizers.G.betas must be 2 numbers from 0 to 0.999999, got [5, -1]",
        ),
        (
            lambda m: m["optimizers"]["D"]["param_groups"][0].update(lr="fast"),
            "optimizers.D.lr must be a number from 0 to 1000, got 'fast'",
        ),
        (
            lambda m: m["optimizers"]["G"]["param_groups"][0].update(params=[0, 1]),
            "optimizers.G: parameter groups do not match",
        ),
        (lambda m: m["optimizers"]["G"].update({"class": "SGD"}), "optimizers.G was a 'SGD'; this run's is a 'Adam'"),
        (
            lambda m: m["optimizers"]["G"]["values"].update({"999.step": 1}),
            "optimizers.G.values has an entry '999.step' for no parameter of this run",
        ),
        (
            lambda m: m["optimizers"]["G"]["values"].update({"0.step": "soon"}),
            "optimizers.G.values.0.step must be a number, true, false or null",
        ),
        (lambda m: m["optimizers"].pop("D"), "optimizers must describe D, G"),
        (lambda m: m["schedulers"]["G"].update(last_epoch=7), "schedulers.G.last_epoch (7) is not the step (2)"),
        (
            lambda m: m["schedulers"]["G"].update(base_lrs=[float("nan")]),
            "schedulers.G.base_lrs must be 1 learning rate(s)",
        ),
        (lambda m: m.update(format=1), "format 1 is not a checkpoint format this version reads"),
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
