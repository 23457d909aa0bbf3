"""pix2pix trains here as the authors' code does: from the same weights, batches and random numbers (dropout), one
and three steps of ``[model] family = "pix2pix"`` give the losses and the weights of their
``Pix2PixModel.optimize_parameters`` (declared in ``tests/support/authors_pix2pix.py``), batch norm's running
statistics included."""

import contextlib

import pytest
import torch

from cyclegan_hub.convert.layouts import convert_state
from cyclegan_hub.training import config as configs
from cyclegan_hub.training.families import StepParts
from tests.support.authors_pix2pix import Pix2PixModel
from tests.support.official_layout import NLayerDiscriminator, UnetGenerator, randomized
from tests.training.conftest import ROOT

DATA = ROOT / "training" / "data" / "mnist-inpaint"


def our_config(tmp_path, channels: int):
    path = tmp_path / "pix2pix.toml"
    path.write_text(
        f'[domain_a]\nlabel = "erased"\npath = "{DATA}"\n[domain_b]\nlabel = "digit"\n'
        f"[data]\npaired = true\nimage_size = 64\nload_size = 64\nchannels = {channels}\n"
        '[model]\nfamily = "pix2pix"\nn_downsampling = 6\nbase_channels = 4\nd_base_channels = 4\nd_layers = 2\n'
    )
    return configs.load(path)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_step_equals_the_authors_pix2pix_step(tmp_path, channels):
    config = our_config(tmp_path, channels)
    nets = config.family.build(config)
    # theirs: unet with 6 levels (one of them with dropout 0.5), batch norm, a conditional 2-layer critic
    their_g = randomized(UnetGenerator(channels, channels, num_downs=6, ngf=4, norm="batch", dropout=True))
    their_d = randomized(NLayerDiscriminator(2 * channels, ndf=4, n_layers=2, norm="batch"))
    converted, _ = convert_state(their_g.state_dict())
    nets["G"].load_state_dict(converted.state_dict())
    nets["D"].load_state_dict(their_d.state_dict())
    assert any(isinstance(m, torch.nn.Dropout) for m in nets["G"].modules())
    their_g.train(), their_d.train(), nets["G"].train(), nets["D"].train()
    authors = Pix2PixModel(their_g, their_d, lr=2e-4, beta1=0.5, lambda_L1=100.0, gan_mode="vanilla")
    optimizers = config.family.optimizers(nets, config, torch.device("cpu"))
    parts = StepParts(nets, nets, optimizers, {}, config, contextlib.nullcontext, torch.Tensor.backward)
    step = config.family.make_step(parts)
    generator = torch.Generator().manual_seed(0)
    for index in range(3):
        real_a, real_b = (torch.rand(2, channels, 64, 64, generator=generator) * 2 - 1 for _ in range(2))
        torch.manual_seed(100 + index)  # the dropout masks: drawn in the same order by both
        ours = step(real_a, real_b)
        torch.manual_seed(100 + index)
        authors.set_input(real_a, real_b)
        authors.optimize_parameters()
        theirs = torch.stack([authors.loss_G_GAN, authors.loss_G_L1, authors.loss_D_real, authors.loss_D_fake]).detach()
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
        if index in (0, 2):  # after 1 and after 3 steps: every tensor, running statistics included
            for our, their in ((nets["G"], convert_state(their_g.state_dict())[0]), (nets["D"], their_d)):
                mine, other = our.state_dict(), their.state_dict()
                assert mine.keys() == other.keys()
                for key in mine:
                    torch.testing.assert_close(mine[key], other[key], rtol=1e-5, atol=1e-6, msg=key)
    assert float(ours[1]) > 0  # the L1 term took part
