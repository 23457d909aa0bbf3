"""CUT and FastCUT train here as the authors' code does: from the same weights, batches and random numbers (NumPy's,
which draw the patch places and FastCUT's flip), one and three steps of ``[model] family = "cut"`` give the losses
and the weights of their ``CUTModel.optimize_parameters`` (declared in ``tests/support/authors_cut.py``), generator,
anti-aliased critic and projection head alike."""

import contextlib
import warnings

import numpy as np
import pytest
import torch

from cyclegan_hub.convert.layouts import convert_state
from cyclegan_hub.training import config as configs
from cyclegan_hub.training.families import StepParts
from tests.support import authors_cut as theirs
from tests.training.conftest import ROOT

DATA = ROOT / "training" / "data" / "mnist-6-9"


def our_config(tmp_path, mode: str):
    path = tmp_path / "cut.toml"
    path.write_text(
        f'[domain_a]\npath = "{DATA}"\nlabel = "6"\n[domain_b]\npath = "{DATA}"\nlabel = "9"\n'
        "[data]\nimage_size = 32\nload_size = 32\nchannels = 3\n"
        f'[model]\nfamily = "cut"\nmode = "{mode}"\nbase_channels = 8\nn_blocks = 2\nd_base_channels = 8\n'
        "d_layers = 2\n"
    )
    return configs.load(path)


def same_tensors(ours: dict, other: dict, what: str) -> None:
    for key, value in ours.items():
        torch.testing.assert_close(value, other[key], rtol=1e-5, atol=1e-6, msg=f"{what}: {key}")


def their_generator_as_ours(net) -> dict:
    """Their generator's tensors under our names (the conversion every converted CUT model goes through)."""
    return convert_state(net.state_dict())[0].state_dict()


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_the_step_equals_the_authors_cut_step(tmp_path, mode):
    config = our_config(tmp_path, mode)
    nets = config.family.build(config)
    opt = theirs.make_opt("CUT" if mode == "cut" else "FastCUT", batch_size=2, ngf=8, ndf=8, n_layers_D=2, n_blocks=2)
    g, d = theirs.define_G(3, 3, 8, n_blocks=2), theirs.define_D(3, 8, n_layers_D=2)
    f = theirs.define_F(3, "mlp_sample", "instance", init_type="xavier", opt=opt)
    authors = theirs.CUTModel(opt, g, d, f)
    generator = torch.Generator().manual_seed(0)
    batches = [[torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1 for _ in range(2)] for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # their torch.tensor(tensor) on reused patch places
        authors.data_dependent_initialize(*batches[0])  # builds their head from the first batch, as theirs
    # the same start: their weights (their head as their first batch built it) in our networks
    nets["G"].load_state_dict(their_generator_as_ours(g))
    nets["D"].load_state_dict({k: v for k, v in d.state_dict().items() if not k.endswith(".filt")})
    nets["H"].load_state_dict(f.state_dict())
    optimizers = config.family.optimizers(nets, config, torch.device("cpu"))
    parts = StepParts(nets, nets, optimizers, {}, config, contextlib.nullcontext, torch.Tensor.backward)
    step = config.family.make_step(parts)
    for index, (real_a, real_b) in enumerate(batches):
        np.random.seed(10 + index)
        ours = step(real_a, real_b)
        np.random.seed(10 + index)
        authors.set_input(real_a, real_b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            authors.optimize_parameters()
        nce_y = authors.loss_NCE_Y if mode == "cut" else torch.zeros(())
        expected = torch.stack([authors.loss_G_GAN, authors.loss_NCE, nce_y, authors.loss_D_real, authors.loss_D_fake])
        torch.testing.assert_close(ours, expected.detach(), rtol=1e-5, atol=1e-6)
        if index in (0, 2):
            same_tensors(nets["G"].state_dict(), their_generator_as_ours(g), "G")
            same_tensors(nets["D"].state_dict(), d.state_dict(), "D")  # their blur filters are not weights
            same_tensors(nets["H"].state_dict(), f.state_dict(), "H")
    if mode == "fastcut":
        np.random.seed(10 + 1)
        assert np.random.random() < 0.5  # the seeds above flip at least one of the three batches
    assert float(ours[1]) > 0
