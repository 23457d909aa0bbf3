import os

import pytest
import torch

# Tests never reach the real Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture
def tiny_gray():
    """A tiny 1-channel generator (8 channels, one residual block), as in the tests of every other piece."""
    from cyclegan_hub import CycleGenerator

    torch.manual_seed(0)
    return CycleGenerator(in_channels=1, out_channels=1, base_channels=8, n_blocks=1, image_size=32,
                          source_domain="6", target_domain="9")


@pytest.fixture
def tiny_rgb():
    from cyclegan_hub import CycleGenerator

    torch.manual_seed(0)
    return CycleGenerator(base_channels=8, n_blocks=1, image_size=32, source_domain="horse", target_domain="zebra")
