"""The "vision-aided" discriminator CycleGAN-Turbo trains with (Kumari et al., "Ensembling Off-the-shelf Models for
GAN Training", 2022; ``vision_aided_loss.Discriminator(cv_type="clip")`` with its defaults): heads on a frozen CLIP
ViT-B/32, judging each image at three levels.

- Every call first augments the images with DiffAugment (Zhao et al., 2020) under the policy
  ``color,translation,cutout``, the discriminator's and the generator's passes alike, drawing the same random numbers
  in the same order as their code; then resizes them to the encoder's input by area averaging and normalises them
  with CLIP's statistics.
- The levels are the patch tokens after the first and second third of the encoder's blocks (4 and 8 of ViT-B/32's
  12), as grids, each judged by a convolutional head (3x3 convolution, LeakyReLU, a 4-tap BlurPool, a strided 1x1
  convolution to one logit per 2x2 cells), and the projected image embedding, judged by an MLP head; the heads'
  layers are spectrally normalised.
- ``loss(images, real)`` is their ``multilevel_sigmoid`` loss: per image, each level's binary cross-entropy averaged
  over its logits, summed over the levels; averaged over the batch.

Only the heads train. The encoder (transformers' ``CLIPVisionModelWithProjection``, from a Hub id or a folder,
safetensors only) is frozen, shared by every discriminator built on the same weights, and kept out of the state
dict: checkpoints hold the heads alone.
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
#: The augmentations vision_aided_loss applies on every call (``diffaug=True``).
POLICY = "color,translation,cutout"
POLICIES = ("color", "translation", "cutout")


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


# ---- DiffAugment ---------------------------------------------------------------------------------------------------


def _uniform(x: torch.Tensor) -> torch.Tensor:
    """One number in [0, 1) per image, shaped to broadcast over it."""
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def _color(x: torch.Tensor) -> torch.Tensor:
    """Brightness (+[-0.5, 0.5)), saturation (x[0, 2)) and contrast (x[0.5, 1.5)), in that order, per image."""
    x = x + (_uniform(x) - 0.5)
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * (_uniform(x) * 2) + gray
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean


def _grid(x: torch.Tensor, rows: int, cols: int):
    """Batch, row and column indices of an ``[N, rows, cols]`` grid."""
    n = x.shape[0]
    batch = torch.arange(n, device=x.device).view(n, 1, 1).expand(n, rows, cols)
    row = torch.arange(rows, device=x.device).view(1, rows, 1).expand(n, rows, cols)
    col = torch.arange(cols, device=x.device).view(1, 1, cols).expand(n, rows, cols)
    return batch, row, col


def _translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """A shift of up to ``ratio`` of each side per image, the uncovered border zero."""
    n, _, height, width = x.shape
    reach_h, reach_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_h = torch.randint(-reach_h, reach_h + 1, size=(n, 1, 1), device=x.device)
    shift_w = torch.randint(-reach_w, reach_w + 1, size=(n, 1, 1), device=x.device)
    batch, row, col = _grid(x, height, width)
    row = torch.clamp(row + shift_h + 1, 0, height + 1)
    col = torch.clamp(col + shift_w + 1, 0, width + 1)
    padded = F.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)
    return padded[batch, row, col].permute(0, 3, 1, 2)


def _cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """A square of ``ratio`` of each side zeroed per image, centred anywhere (clipped at the border)."""
    n, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_h = torch.randint(0, height + (1 - cut_h % 2), size=(n, 1, 1), device=x.device)
    centre_w = torch.randint(0, width + (1 - cut_w % 2), size=(n, 1, 1), device=x.device)
    batch, row, col = _grid(x, cut_h, cut_w)
    row = torch.clamp(row + centre_h - cut_h // 2, min=0, max=height - 1)
    col = torch.clamp(col + centre_w - cut_w // 2, min=0, max=width - 1)
    mask = torch.ones(n, height, width, dtype=x.dtype, device=x.device)
    mask[batch, row, col] = 0
    return x * mask.unsqueeze(1)


AUGMENTATIONS = {"color": _color, "translation": _translation, "cutout": _cutout}


def diff_augment(x: torch.Tensor, policy: str = POLICY) -> torch.Tensor:
    """DiffAugment of ``[N, C, H, W]`` images under ``policy`` (comma-separated names of ``AUGMENTATIONS``, in
    order; empty: none). Differentiable; random per image, from torch's generator of ``x``'s device."""
    for name in filter(None, policy.split(",")):
        x = AUGMENTATIONS[name](x)
    return x.contiguous() if policy else x


def check_policy(policy: str) -> None:
    unknown = [name for name in filter(None, policy.split(",")) if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown[0]!r}; valid: {', '.join(POLICIES)} (comma-separated)")


# ---- the heads -----------------------------------------------------------------------------------------------------


class BlurPool(nn.Module):
    """Anti-aliasing blur (Zhang, 2019): a fixed 4-tap binomial filter ([1, 3, 3, 1] in each direction) per channel,
    zero-padded by 1 before and 2 after each side, so that at stride 1 the size is kept."""

    def __init__(self, channels: int, stride: int = 1):
        super().__init__()
        taps = torch.tensor([1.0, 3.0, 3.0, 1.0])
        kernel = taps[:, None] * taps[None, :]
        self.register_buffer("kernel", (kernel / kernel.sum()).expand(channels, 1, 4, 4).clone(), persistent=False)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 2, 1, 2)), self.kernel.to(x.dtype), stride=self.stride, groups=x.shape[1])


def _grid_head(hidden: int, width: int, activation: nn.Module) -> nn.Sequential:
    return nn.Sequential(
        spectral_norm(nn.Conv2d(hidden, width, kernel_size=3, padding=1)),
        activation,
        BlurPool(width),
        spectral_norm(nn.Conv2d(width, 1, kernel_size=1, stride=2)),
    )


class CLIPDiscriminator(nn.Module):
    """Heads on a frozen CLIP image encoder (see the module's docstring).

    Args:
        encoder: a ``CLIPVisionModelWithProjection`` (frozen; not part of this module's state).
        width: channels of the heads (theirs: 256).
        policy: the DiffAugment policy of every call (theirs: ``color,translation,cutout``; empty: none).
    """

    def __init__(self, encoder: nn.Module, width: int = 256, policy: str = POLICY):
        super().__init__()
        check_policy(policy)
        self._encoder = (encoder,)  # a tuple: not a submodule, so neither in state_dict nor in parameters()
        self.policy = policy
        config = encoder.config
        layers = config.num_hidden_layers
        self.levels = (layers // 3, 2 * layers // 3)  # two intermediate layers, then the projected embedding
        self.image_size, hidden = config.image_size, config.hidden_size
        self.grid = config.image_size // config.patch_size
        activation = nn.LeakyReLU(0.2)
        self.heads = nn.ModuleList(_grid_head(hidden, width, activation) for _ in self.levels)
        self.embedding_head = nn.Sequential(
            spectral_norm(nn.Linear(config.projection_dim, width)),
            activation,
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

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """[N, 3, H, W] in [-1, 1] -> each level's logits: ``[N, h, w]`` per token grid, then ``[N, 1]``."""
        x = diff_augment(images, self.policy)
        x = F.interpolate((x + 1) / 2, size=(self.image_size, self.image_size), mode="area")
        out = self.encoder(pixel_values=(x - self.mean) / self.std, output_hidden_states=True)
        logits = []
        for level, head in zip(self.levels, self.heads):
            tokens = out.hidden_states[level][:, 1:]  # patch tokens (the class token dropped), as a grid
            grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, self.grid, self.grid)
            logits.append(head(grid).squeeze(1))
        logits.append(self.embedding_head(out.image_embeds.to(self.mean.dtype)))
        return logits

    def loss(self, images: torch.Tensor, real: bool) -> torch.Tensor:
        """The multilevel sigmoid loss of judging ``images`` real (``real=True``: the generator's side too) or fake."""
        return multilevel_sigmoid(self(images), real)


def multilevel_sigmoid(logits: list[torch.Tensor], real: bool) -> torch.Tensor:
    """vision_aided_loss's ``multilevel_sigmoid``: per image, each level's binary cross-entropy against the target (1
    for real, 0 for fake) averaged over that level's logits, summed over the levels; then averaged over the batch."""
    total = 0
    for level in logits:
        each = F.binary_cross_entropy_with_logits(level, torch.full_like(level, float(real)), reduction="none")
        total = total + (each.mean(dim=(1, 2)) if each.dim() > 2 else each.squeeze(1))
    return total.mean()
