"""The vision-aided discriminator CycleGAN-Turbo trains with (nupurkmr9/vision-aided-gan, ``vision_aided_loss``:
``cv_discriminator.py``'s ``Discriminator(cv_type="clip", loss_type="multilevel_sigmoid")`` with
``MultiLevelDViT``, ``cvmodel.py``'s ``CLIP`` and ``CVBackbone(diffaug=True)``, ``cv_losses.py``'s
``multilevel_loss``, their DiffAugment and antialiased-cnns' ``BlurPool``), declared here as they wrote it.
Generalised only where their code hard-codes ViT-B/32 (768 and 512 channels, the 7x7 grid, 224 pixels, blocks 4 and
8 of 12), and with their ``clip`` package's visual transformer written against transformers' CLIP modules (the same
layers: embeddings, pre-norm, blocks, post-norm of the class token, projection), so that the project's critic is
tested against it on a tiny CLIP."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

#: Their ``.float()`` casts (a CLIP in float16 to the float32 heads) cast to this, so that a test can run in float64.
HEADS_DTYPE = [torch.float32]

# ---- DiffAugment (data-efficient-gans' DiffAugment_pytorch.py) ----------------------------------------------------


def DiffAugment(x, policy="", channels_first=True):
    if policy:
        if not channels_first:
            x = x.permute(0, 3, 1, 2)
        for p in policy.split(","):
            for f in AUGMENT_FNS[p]:
                x = f(x)
        if not channels_first:
            x = x.permute(0, 2, 3, 1)
        x = x.contiguous()
    return x


def rand_brightness(x):
    x = x + (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)
    return x


def rand_saturation(x):
    x_mean = x.mean(dim=1, keepdim=True)
    x = (x - x_mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + x_mean
    return x


def rand_contrast(x):
    x_mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - x_mean) * (torch.rand(x.size(0), 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + x_mean
    return x


def rand_translation(x, ratio=0.125):
    shift_x, shift_y = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    translation_x = torch.randint(-shift_x, shift_x + 1, size=[x.size(0), 1, 1], device=x.device)
    translation_y = torch.randint(-shift_y, shift_y + 1, size=[x.size(0), 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(x.size(2), dtype=torch.long, device=x.device),
        torch.arange(x.size(3), dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + translation_x + 1, 0, x.size(2) + 1)
    grid_y = torch.clamp(grid_y + translation_y + 1, 0, x.size(3) + 1)
    x_pad = F.pad(x, [1, 1, 1, 1, 0, 0, 0, 0])
    x = x_pad.permute(0, 2, 3, 1).contiguous()[grid_batch, grid_x, grid_y].permute(0, 3, 1, 2)
    return x


def rand_cutout(x, ratio=0.5):
    cutout_size = int(x.size(2) * ratio + 0.5), int(x.size(3) * ratio + 0.5)
    offset_x = torch.randint(0, x.size(2) + (1 - cutout_size[0] % 2), size=[x.size(0), 1, 1], device=x.device)
    offset_y = torch.randint(0, x.size(3) + (1 - cutout_size[1] % 2), size=[x.size(0), 1, 1], device=x.device)
    grid_batch, grid_x, grid_y = torch.meshgrid(
        torch.arange(x.size(0), dtype=torch.long, device=x.device),
        torch.arange(cutout_size[0], dtype=torch.long, device=x.device),
        torch.arange(cutout_size[1], dtype=torch.long, device=x.device),
        indexing="ij",
    )
    grid_x = torch.clamp(grid_x + offset_x - cutout_size[0] // 2, min=0, max=x.size(2) - 1)
    grid_y = torch.clamp(grid_y + offset_y - cutout_size[1] // 2, min=0, max=x.size(3) - 1)
    mask = torch.ones(x.size(0), x.size(2), x.size(3), dtype=x.dtype, device=x.device)
    mask[grid_batch, grid_x, grid_y] = 0
    x = x * mask.unsqueeze(1)
    return x


AUGMENT_FNS = {
    "color": [rand_brightness, rand_saturation, rand_contrast],
    "translation": [rand_translation],
    "cutout": [rand_cutout],
}

# ---- BlurPool (antialiased-cnns) -----------------------------------------------------------------------------------


class BlurPool(nn.Module):
    def __init__(self, channels, pad_type="reflect", filt_size=4, stride=2, pad_off=0):
        super().__init__()
        self.filt_size = filt_size
        self.pad_off = pad_off
        self.pad_sizes = [
            int(1.0 * (filt_size - 1) / 2),
            int(np.ceil(1.0 * (filt_size - 1) / 2)),
            int(1.0 * (filt_size - 1) / 2),
            int(np.ceil(1.0 * (filt_size - 1) / 2)),
        ]
        self.pad_sizes = [pad_size + pad_off for pad_size in self.pad_sizes]
        self.stride = stride
        self.channels = channels
        a = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0]}[filt_size]
        a = np.array(a)
        filt = torch.Tensor(a[:, None] * a[None, :])
        filt = filt / torch.sum(filt)
        self.register_buffer("filt", filt[None, None, :, :].repeat((self.channels, 1, 1, 1)))
        self.pad = {"reflect": nn.ReflectionPad2d, "replicate": nn.ReplicationPad2d, "zero": nn.ZeroPad2d}[pad_type](
            self.pad_sizes
        )

    def forward(self, inp):
        if self.filt_size == 1:
            if self.pad_off == 0:
                return inp[:, :, :: self.stride, :: self.stride]
            return self.pad(inp)[:, :, :: self.stride, :: self.stride]
        return F.conv2d(self.pad(inp), self.filt, stride=self.stride, groups=inp.shape[1])


# ---- the heads and the loss ----------------------------------------------------------------------------------------


class MultiLevelDViT(nn.Module):
    def __init__(self, level=3, in_ch1=768, in_ch2=512, out_ch=256, activation=None, down=1):
        super().__init__()
        activation = activation if activation is not None else nn.LeakyReLU(0.2, inplace=True)
        self.decoder = nn.ModuleList()
        self.level = level
        for _ in range(level - 1):
            self.decoder.append(
                nn.Sequential(
                    BlurPool(in_ch1, pad_type="zero", stride=1, pad_off=1) if down > 1 else nn.Identity(),
                    spectral_norm(
                        nn.Conv2d(
                            in_ch1,
                            out_ch,
                            kernel_size=3,
                            stride=2 if down > 1 else 1,
                            padding=1 if down == 1 else 0,
                        )
                    ),
                    activation,
                    BlurPool(out_ch, pad_type="zero", stride=1),
                    spectral_norm(nn.Conv2d(out_ch, 1, kernel_size=1, stride=2)),
                )
            )
        self.decoder.append(nn.Sequential(spectral_norm(nn.Linear(in_ch2, out_ch)), activation))
        self.out = spectral_norm(nn.Linear(out_ch, 1))

    def forward(self, x, c=None):
        final_pred = []
        for i in range(self.level - 1):
            final_pred.append(self.decoder[i](x[i]).squeeze(1))
        h = self.decoder[-1](x[-1].to(HEADS_DTYPE[0]))
        out = self.out(h)
        final_pred.append(out)
        return final_pred


class multilevel_loss(torch.nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.lossfn = nn.BCEWithLogitsLoss(reduction="none")
        self.alpha = alpha

    def forward(self, input, for_real=True, for_G=False):
        if for_G:
            for_real = True
        if for_real:
            target = self.alpha * torch.tensor(1.0)
        else:
            target = torch.tensor(0.0)
        loss = 0
        for _, each in enumerate(input):
            target_ = target.expand_as(each).to(each.device)
            loss_ = self.lossfn(each, target_)
            if len(loss_.size()) > 2:
                loss_ = loss_.mean([1, 2]).reshape(-1, 1)
            loss += loss_
        return loss


# ---- the backbone and the discriminator ----------------------------------------------------------------------------


class CLIP(torch.nn.Module):
    """``cvmodel.CLIP`` with ``conv_multi_level``; ``encoder`` a transformers ``CLIPVisionModelWithProjection``."""

    def __init__(self, encoder):
        super().__init__()
        self.model = encoder
        config = encoder.config
        blocks = config.num_hidden_layers
        self.feat_points = [0, blocks // 3, 2 * blocks // 3, blocks]  # theirs: [0, 4, 8, 12]
        self.size, self.grid, self.width = config.image_size, config.image_size // config.patch_size, config.hidden_size
        self.image_mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])
        self.image_std = torch.tensor([0.26862954, 0.26130258, 0.27577711])

    def forward_custom(self, x):
        vision = self.model.vision_model
        x = vision.embeddings(x)  # conv1, class token, positional embedding
        x = vision.pre_layrnorm(x)  # ln_pre
        x1 = []
        for i in range(len(self.feat_points) - 1):
            for block in vision.encoder.layers[self.feat_points[i] : self.feat_points[i + 1]]:
                out = block(x, None)  # a resblock (transformers' layers take the attention mask)
                x = out[0] if isinstance(out, tuple) else out
            x1.append(x)
        x = vision.post_layernorm(x1[-1][:, 0, :])  # ln_post
        x = self.model.visual_projection(x)  # @ proj
        x1[-1] = x
        return x1

    def __call__(self, x):
        x = F.interpolate(x * 0.5 + 0.5, size=(self.size, self.size), mode="area")
        x = x - self.image_mean[:, None, None].to(x.device)
        x /= self.image_std[:, None, None].to(x.device)
        x = self.forward_custom(x)
        x[0] = x[0][:, 1:, :].permute(0, 2, 1).reshape(-1, self.width, self.grid, self.grid).to(HEADS_DTYPE[0])
        x[1] = x[1][:, 1:, :].permute(0, 2, 1).reshape(-1, self.width, self.grid, self.grid).to(HEADS_DTYPE[0])
        x[2] = x[2].to(HEADS_DTYPE[0])
        return x


class Discriminator(torch.nn.Module):
    """``Discriminator(cv_type="clip", output_type="conv_multi_level", loss_type="multilevel_sigmoid",
    diffaug=True)``: DiffAugment, the backbone, the heads, the loss."""

    def __init__(self, encoder, width=256):
        super().__init__()
        self.backbone = CLIP(encoder)
        self.policy = "color,translation,cutout"
        config = encoder.config
        self.decoder = MultiLevelDViT(level=3, in_ch1=config.hidden_size, in_ch2=config.projection_dim, out_ch=width)
        self.loss_type = multilevel_loss()

    def forward(self, images, **kwargs):
        cv_feat = self.backbone(DiffAugment(images, policy=self.policy))
        return self.loss_type(self.decoder(cv_feat), **kwargs)


def heads_from(ours) -> dict:
    """Our critic's head weights under their names (spectral norm's u and v included)."""
    names = {"heads.0.0.": "decoder.0.1.", "heads.0.3.": "decoder.0.4.", "heads.1.0.": "decoder.1.1."}
    names |= {"heads.1.3.": "decoder.1.4.", "embedding_head.0.": "decoder.2.0.", "embedding_head.2.": "out."}
    state = {}
    for key, value in ours.state_dict().items():
        prefix = next(p for p in names if key.startswith(p))
        state["decoder." + names[prefix] + key[len(prefix) :]] = value.clone()
    return state
