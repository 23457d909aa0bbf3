"""CUT through the trainer: a converted zoo CUT generator (the authors' release, served from a local file server) is
the starting point of a run, a run resumes exactly with its projection head, and the exported model is one CUT
translator whose card says so."""

import io
import json
import tarfile

import torch
from safetensors.torch import load_file

from cyclegan_hub.cli import main
from cyclegan_hub.models.cut import CUTGenerator
from cyclegan_hub.models.modeling import HubModule
from tests.convert.test_zoo import FileServer, _saved
from tests.support.authors_cut import define_G
from tests.training.conftest import ROOT, run_train

CONFIG = ROOT / "training" / "configs" / "mnist-6to9-cut.toml"
#: The shipped CUT config at the size of the authors' test file: RGB 32x32, 8 base channels, 2 residual blocks.
SMALL = [
    "--config",
    str(CONFIG),
    *"--set data.channels=3 --set data.image_size=32 --set data.load_size=32 --set data.eval_images=8".split(),
    *"--set model.base_channels=8 --set model.n_blocks=2 --set model.d_base_channels=8".split(),
    *"--set train.batch_size=4 --set train.log_every=1 --set train.eval_every=0".split(),
]


def released_cut(tmp_path):
    """Their release: pretrained_models.tar holding horse2zebra_cut_pretrained/latest_net_G.pth."""
    torch.manual_seed(5)
    net = define_G(3, 3, 8, n_blocks=2)
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w") as tar:
        data = _saved(net)
        info = tarfile.TarInfo("pretrained_models/horse2zebra_cut_pretrained/latest_net_G.pth")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return FileServer({"/CUT/pretrained_models.tar": tar_bytes.getvalue()})


def test_a_converted_zoo_cut_generator_fine_tunes_and_resumes_exactly(tmp_path):
    converted = tmp_path / "converted"
    with released_cut(tmp_path) as server:
        args = ["convert", "--zoo", "cut/horse2zebra", "--zoo-mirror", server.url, "--cache-dir", str(tmp_path / "c")]
        assert main([*args, "--output", str(converted)]) == 0
    start = ["--init-from", str(converted)]
    # lr 0: one step later the exported generator is the converted one, tensor for tensor
    result = run_train(*SMALL, *start, "--output-dir", str(tmp_path / "lr0"), "--max-steps", "1", "--set", "train.lr=0")
    assert f"initialised G from {converted}" in result.stdout
    started, released = (load_file(p / "model.safetensors") for p in (tmp_path / "lr0" / "generator_AtoB", converted))
    assert started.keys() == released.keys() and all(torch.equal(started[k], released[k]) for k in started)
    assert not (tmp_path / "lr0" / "generator_BtoA").exists()

    common = [*SMALL, *start, "--checkpoint-every", "2", "--set", "train.ema=true"]
    run_train(*common, "--output-dir", str(tmp_path / "straight"), "--max-steps", "4")
    run_train(*common, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "2")
    run_train(*common, "--output-dir", str(tmp_path / "resumed"), "--max-steps", "4", "--resume", "latest")
    straight = load_file(tmp_path / "straight" / "checkpoints" / "step-000004" / "models.safetensors")
    resumed = load_file(tmp_path / "resumed" / "checkpoints" / "step-000004" / "models.safetensors")
    assert {k.split(".")[0] for k in straight} == {"G", "D", "H", "ema_G"}  # the projection head is state
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    state = json.loads((tmp_path / "straight" / "checkpoints" / "step-000004" / "training_state.json").read_text())
    assert set(state["optimizers"]) == {"G", "D", "H"}
    assert any(not torch.equal(straight[f"G.{k}"], v) for k, v in released.items())  # it trained

    model = HubModule.from_pretrained(tmp_path / "straight" / "generator_AtoB")
    assert type(model) is CUTGenerator and model.config["downsampling"] == "antialias"
    card = (tmp_path / "straight" / "generator_AtoB" / "README.md").read_text()
    assert "# CUT generator: 6 → 9" in card and "PatchNCE x 1.0 on layers 0,4,8,12,16" in card
    assert "identity NCE on" in card


def test_a_converted_model_that_is_not_the_run_network_is_one_line(tmp_path):
    converted = tmp_path / "converted"
    with released_cut(tmp_path) as server:
        args = ["convert", "--zoo", "cut/horse2zebra", "--zoo-mirror", server.url, "--cache-dir", str(tmp_path / "c")]
        assert main([*args, "--output", str(converted)]) == 0
    wrong = [*SMALL, "--set", "model.n_blocks=3", "--init-from", str(converted), "--output-dir", str(tmp_path / "x")]
    result = run_train(*wrong, "--max-steps", "1", check=False)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1 and "its n_blocks is 2, this run's 3 (set model.n_blocks = 2" in last
