"""A discriminator on a frozen CLIP image encoder, after the "vision-aided" discriminator that CycleGAN-Turbo trains
with (Kumari et al., "Ensembling Off-the-shelf Models for GAN Training", 2022; ``vision_aided_loss``, CLIP ViT-B/32,
``conv_multi_level``): the encoder's patch tokens at two intermediate layers, as grids, each judged by a small
convolutional head, and its projected image embedding judged by an MLP head; spectrally normalised heads.

Only the heads train. The encoder (transformers' ``CLIPVisionModelWithProjection``, from a Hub id or a folder,
safetensors only) is frozen, shared by every discriminator built on the same weights, and kept out of the state
dict: checkpoints hold the heads alone. Images in [-1, 1] are resized to the encoder's input size and normalised
with CLIP's statistics. The logits of every level are returned side by side, ``[N, levels' logits]``, so the
trainer's GAN losses apply to them as to a PatchGAN's map (with ``gan_mode = "vanilla"``: a sigmoid loss on every
level, as theirs). Not a copy of their code: their DiffAugment and their exact layer choice are not reproduced.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

from ..io.errors import first_line

#: CLIP's image normalisation.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@functools.lru_cache(maxsize=4)
def load_encoder(name: str, revision: str | None = None):
    """The frozen CLIP image encoder ``name`` (a Hub id or a folder), loaded once per process."""
    try:
        from transformers import CLIPVisionModelWithProjection
    except ImportError as err:
        raise ImportError(
            f"the CLIP discriminator needs transformers: pip install 'cyclegan-hub[turbo]' ({err})"
        ) from None
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(name, revision=revision, use_safetensors=True)
    except (OSError, ValueError) as err:
        first = first_line(err)
        raise ValueError(f"cannot load the CLIP image encoder {name}: {first}") from None
    return encoder.eval().requires_grad_(False)


class CLIPDiscriminator(nn.Module):
    """Heads on a frozen CLIP image encoder (see the module's docstring).

    Args:
        encoder: a ``CLIPVisionModelWithProjection`` (frozen; not part of this module's state).
        width: channels of the heads (theirs: 256).
    """

    def __init__(self, encoder: nn.Module, width: int = 256):
        super().__init__()
        self._encoder = (encoder,)  # a tuple: not a submodule, so neither in state_dict nor in parameters()
        config = encoder.config
        layers = config.num_hidden_layers
        self.levels = (layers // 3, 2 * layers // 3)  # two intermediate layers, then the projected embedding
        self.image_size, hidden = config.image_size, config.hidden_size
        self.grid = config.image_size // config.patch_size
        self.heads = nn.ModuleList(
            nn.Sequential(
                spectral_norm(nn.Conv2d(hidden, width, 3, padding=1)),
                nn.LeakyReLU(0.2),
                spectral_norm(nn.Conv2d(width, 1, 1, stride=2)),
            )
            for _ in self.levels
        )
        self.embedding_head = nn.Sequential(
            spectral_norm(nn.Linear(config.projection_dim, width)),
            nn.LeakyReLU(0.2),
            spectral_norm(nn.Linear(width, 1)),
        )
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)

    @property
    def encoder(self) -> nn.Module:
        encoder = self._encoder[0]
        if encoder.device != self.mean.device:
            encoder.to(self.mean.device)
        return encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """[N, 3, H, W] in [-1, 1] -> [N, K] logits of every level."""
        x = F.interpolate((images + 1) / 2, size=(self.image_size, self.image_size), mode="bilinear", antialias=True)
        out = self.encoder(pixel_values=(x - self.mean) / self.std, output_hidden_states=True)
        logits = []
        for level, head in zip(self.levels, self.heads):
            tokens = out.hidden_states[level][:, 1:]  # patch tokens (the class token dropped), as a grid
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, self.grid, self.grid)
            logits.append(head(grid).flatten(1))
        logits.append(self.embedding_head(out.image_embeds))
        return torch.cat(logits, dim=1)
