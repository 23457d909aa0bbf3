"""One-step diffusion translation (CycleGAN-Turbo: Parmar, Park, Srinivasan, Zhu, 2024) as a Hub model.

A ``OneStepTranslator`` is one direction (A -> B) built on a text-to-image base model in diffusers' layout
(``stabilityai/sd-turbo``: ``unet/``, ``vae/``, ``scheduler/``):

1. the VAE encoder maps the image to latents (the posterior mean by default; a sample as the authors do, on request),
   keeping the activations that enter each of its down blocks;
2. the UNet predicts the noise once, at timestep 999, conditioned on the direction's caption embedding, and one
   DDPM step gives the clean latents;
3. the VAE decoder maps them back, adding ``skip_conv_i(activation)`` (1x1 convolutions, initialised to 1e-5) before
   each of its up blocks; the result is clamped to [-1, 1].

Training changes only LoRA adapters (peft, through diffusers' ``add_adapter``) on the UNet and on the VAE, the
UNet's ``conv_in`` in full and the skip convolutions. Those tensors and the caption's text embedding are all that
``save_pretrained`` writes (``model.safetensors``); config.json names the base model, which ``from_pretrained``
loads through diffusers (the Hub cache or a folder) before applying the adapter. Strict as every model here: the
tensors the config implies (built on the meta device from the base's config files) are compared with the
safetensors header before anything is loaded.

This module needs the ``turbo`` extra (diffusers, peft, transformers); nothing in the CycleGAN path imports it.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..io.errors import first_line
from ..translation import TranslationSpec
from . import cards
from .cyclegan import INSTALL_COMMAND
from .modeling import HubModule, Options, choice, integer, number, text, value_range

EXTRA_HINT = "the one-step family needs diffusers, peft and transformers: pip install 'cyclegan-hub[turbo]'"

try:
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
    from peft import LoraConfig
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"{EXTRA_HINT} ({err})") from None

#: The UNet's LoRA targets, by the authors' rule: every weight (not a bias or a norm) whose name holds one of these.
UNET_PATTERNS = (
    "to_k",
    "to_q",
    "to_v",
    "to_out.0",
    "conv",
    "conv1",
    "conv2",
    "conv_in",
    "conv_shortcut",
    "conv_out",
    "proj_out",
    "proj_in",
    "ff.net.2",
    "ff.net.0.proj",
)
#: The VAE's LoRA targets (module names or name endings, as peft matches them), the skip convolutions included.
VAE_TARGETS = (
    "conv1",
    "conv2",
    "conv_in",
    "conv_shortcut",
    "conv",
    "conv_out",
    "skip_conv_1",
    "skip_conv_2",
    "skip_conv_3",
    "skip_conv_4",
    "to_k",
    "to_q",
    "to_v",
    "to_out.0",
)
ADAPTER = "turbo"
SKIP_INIT = 1e-5
CAPTION_KEY = "caption_embedding"
#: Bounds a config.json may ask for (SD-Turbo: 77 caption tokens, 950 M parameters in its UNet and VAE; SDXL-Turbo's
#: are 2.6 G), checked on the skeleton built from the base's config files, before any weight is loaded.
MAX_TOKENS = 512
MAX_BASE_PARAMETERS = 4_000_000_000

#: The variant files diffusers repos publish per precision (sd-turbo: ``*.fp16.safetensors``).
VARIANTS = {torch.float16: "fp16", torch.bfloat16: "bf16"}


def unet_lora_targets(unet: nn.Module) -> list[str]:
    """The names of the UNet modules that get a LoRA adapter (the authors' three lists, joined: each module is in
    exactly one of them and all three have the same rank and alpha, so one adapter computes the same)."""
    targets = []
    for name, _ in unet.named_parameters():
        if "bias" in name or "norm" in name:
            continue
        if any(pattern in name for pattern in UNET_PATTERNS):
            targets.append(name.removesuffix(".weight"))
    return targets


def skip_channels(vae_config) -> list[tuple[int, int]]:
    """(in, out) channels of the decoder's skip convolutions: the encoder's activations entering each down block,
    reversed, into the channels entering each decoder up block (SD's VAE: 512->512, 256->512, 128->512, 128->256)."""
    blocks = list(vae_config.block_out_channels)
    entering_down = [blocks[0], *blocks[:-1]]
    reversed_blocks = blocks[::-1]
    entering_up = [reversed_blocks[0], *reversed_blocks[:-1]]
    return list(zip(entering_down[::-1], entering_up))


def _building_skeleton() -> bool:
    return torch.get_default_device().type == "meta"


def _load_component(cls, base: str, subfolder: str, revision: str | None, dtype: torch.dtype | None):
    """A base component: its config only when building on the meta device, else its weights (safetensors only; in
    ``dtype``, from the base's variant files of that precision where it has them)."""
    where = dict(subfolder=subfolder) | ({} if os.path.isdir(base) else {"revision": revision})
    try:
        if _building_skeleton():
            return cls.from_config(cls.load_config(base, **where))
        if dtype is None:
            return cls.from_pretrained(base, use_safetensors=True, **where)
        try:
            return cls.from_pretrained(base, use_safetensors=True, variant=VARIANTS[dtype], torch_dtype=dtype, **where)
        except (OSError, ValueError):  # no variant files: the full-precision ones, cast
            return cls.from_pretrained(base, use_safetensors=True, torch_dtype=dtype, **where)
    except (OSError, ValueError) as err:
        first = first_line(err)
        raise ValueError(f"cannot load the base model's {subfolder}/ from {base}: {first}") from None


CITATION = """@article{parmar2024onestep,
  title   = {One-Step Image Translation with Text-to-Image Models},
  author  = {Parmar, Gaurav and Park, Taesung and Narasimhan, Srinivasa and Zhu, Jun-Yan},
  journal = {arXiv preprint arXiv:2403.12036},
  year    = {2024}
}"""

MODEL_CARD_TEMPLATE = (
    cards.FRONT_MATTER
    + """
# CycleGAN-Turbo translator: {{ config.source_domain }} → {{ config.target_domain }}

A one-step diffusion translator ([CycleGAN-Turbo]({{ paper_url }})) that turns **{{ config.source_domain }}** images
into **{{ config.target_domain }}** images with one pass of `{{ config.base_model }}`'s VAE and UNet, conditioned on
the caption "{{ config.caption }}". This repo holds only what training changed (LoRA adapters, the UNet's `conv_in`,
the VAE's skip convolutions) and the caption's embedding: the base model is loaded through diffusers.{% if twin_repo_id %}
The reverse direction is [{{ twin_repo_id }}](https://huggingface.co/{{ twin_repo_id }}).{% endif %}

"""
    + cards.SAMPLE
    + cards.INSTALL
    + """
```python
from PIL import Image
from cyclegan_hub.models.modeling import HubModule

translator = HubModule.from_pretrained("{{ repo_id | default('path/to/this/folder', true) }}")
translator.translate(Image.open("input.png")).save("translated.png")  # any size: padded to a multiple of {{ size_multiple }}
```

or `cyclegan-hub translate --model {{ repo_id | default('path/to/this/folder', true) }} input.png --output out.png`.
Latents are the VAE posterior's {{ "mean (deterministic)" if config.encode == "mean" else "sample (as the authors do)" }}.

"""
    + cards.MODEL_TABLE
    + """| trained values stored here | {{ "{:,}".format(num_trained) }} |
"""
    + cards.SECTIONS
)


class OneStepTranslator(
    HubModule,
    library_name="cyclegan-hub",
    pipeline_tag="image-to-image",
    tags=["cyclegan-turbo", "image-to-image", "unpaired-image-translation", "diffusers", "lora"],
    license="mit",
    repo_url="https://github.com/cyclegan-hub/cyclegan-hub",
    paper_url="https://arxiv.org/abs/2403.12036",
    model_card_template=MODEL_CARD_TEMPLATE,
):
    """One direction of a CycleGAN-Turbo pair: a one-step diffusion translator on a diffusers base model."""

    model_type = "cyclegan-turbo"
    options = Options(
        base_model=text(
            "stabilityai/sd-turbo",
            "the base model: a Hub repo id or a folder in diffusers' layout (unet/, vae/, scheduler/)",
            300,
            card="base model",
        ),
        base_revision=text("main", "the base repo's revision (ignored for a folder)", 100, card="base revision"),
        caption=text("a photo", "the caption the translation is conditioned on (its embedding is stored)", 300),
        caption_tokens=integer(77, "tokens of the caption embedding", 1, MAX_TOKENS),
        unet_rank=integer(128, "rank of the UNet's LoRA adapter", 1, 1024, card="UNet LoRA rank", train="unet_rank"),
        unet_lora_scale=number(1.0, "the UNet adapter's alpha / rank", 0.0, 1024.0, train="unet_lora_scale"),
        vae_rank=integer(4, "rank of the VAE's LoRA adapter", 1, 256, card="VAE LoRA rank", train="vae_rank"),
        vae_lora_scale=number(2.0, "the VAE adapter's alpha / rank", 0.0, 1024.0, train="vae_lora_scale"),
        timestep=integer(999, "the one denoising step's timestep", 0, 9999, train="timestep"),
        encode=choice(
            "mean", "latents from the VAE posterior: its mean (deterministic) or a sample", ("mean", "sample")
        ),
        in_channels=integer(3, "input channels (RGB)", 3, 3),
        out_channels=integer(3, "output channels (RGB)", 3, 3),
        source_domain=text("A", "name of the input domain", card="source domain"),
        target_domain=text("B", "name of the output domain", card="target domain"),
        image_size=integer(512, "the size it was trained at", 8, 4096, card="training size"),
        value_range=value_range((-1.0, 1.0), "[low, high] of the network's input and output"),
    )

    #: ``unet``: the UNet (already adapted) of the pair's other direction, shared as the authors' two directions
    #: share one; ``base_dtype``: read the base in float16 or bfloat16 (``from_pretrained(..., base_dtype=...)``).
    runtime = ("unet", "base_dtype")

    def __init__(self, *, unet: nn.Module | None = None, base_dtype: torch.dtype | None = None, **config):
        super().__init__()
        self.config = config
        base, revision = config["base_model"], config["base_revision"]
        self.unet = (
            unet if unet is not None else _load_component(UNet2DConditionModel, base, "unet", revision, base_dtype)
        )
        self.vae = _load_component(AutoencoderKL, base, "vae", revision, base_dtype)
        scheduler = _load_scheduler(base, revision)
        if config["timestep"] >= scheduler.config.num_train_timesteps:
            raise ValueError(
                f"timestep must be below the base scheduler's {scheduler.config.num_train_timesteps}, "
                f"got {config['timestep']}"
            )
        size = sum(p.numel() for p in self.unet.parameters()) + sum(p.numel() for p in self.vae.parameters())
        if size > MAX_BASE_PARAMETERS:  # from the configs alone when loading (the skeleton is built first)
            raise ValueError(
                f"the base model {base} has {size:,} parameters in its UNet and VAE; at most "
                f"{MAX_BASE_PARAMETERS:,} are loaded"
            )
        self._step = _one_step(scheduler, config["timestep"])
        self.scaling_factor = float(self.vae.config.scaling_factor)

        decoder = self.vae.decoder
        for index, (cin, cout) in enumerate(skip_channels(self.vae.config), start=1):
            conv = nn.Conv2d(cin, cout, kernel_size=1, bias=False)
            nn.init.constant_(conv.weight, SKIP_INIT)
            setattr(decoder, f"skip_conv_{index}", conv)
        if unet is None:
            self.unet.requires_grad_(False)
            self.unet.lora_targets = unet_lora_targets(self.unet)
            self.unet.add_adapter(
                LoraConfig(
                    r=config["unet_rank"],
                    lora_alpha=config["unet_rank"] * config["unet_lora_scale"],
                    init_lora_weights="gaussian",
                    target_modules=self.unet.lora_targets,
                ),
                adapter_name=ADAPTER,
            )
        self.vae.requires_grad_(False)
        self.vae.add_adapter(
            LoraConfig(
                r=config["vae_rank"],
                lora_alpha=config["vae_rank"] * config["vae_lora_scale"],
                init_lora_weights="gaussian",
                target_modules=list(VAE_TARGETS),
            ),
            adapter_name=ADAPTER,
        )
        width = self.unet.config.cross_attention_dim
        self.register_buffer(CAPTION_KEY, torch.zeros(1, config["caption_tokens"], width))
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(_is_trained(name))
        self.saved = sorted([name for name, _ in self.named_parameters() if _is_saved(name)] + [CAPTION_KEY])
        # Loaded as part of a larger module (an EMA copy in a training checkpoint), the base's tensors are not
        # expected: they come from the base model, never from a checkpoint.
        self.register_load_state_dict_post_hook(_base_is_not_missing)
        factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        unet_factor = 2 ** (len(self.unet.config.block_out_channels) - 1)
        self.translation_spec = TranslationSpec(
            3,
            3,
            tuple(config["value_range"]),
            size_multiple=factor,
            min_size=factor * unet_factor,
            batch_size=1,
            heavy=True,
        )
        self.gradient_checkpointing = False
        #: Latents in training mode (``.train()``): a posterior sample, as the authors train; ``encode`` otherwise.
        self.train_encode = "sample"

    @classmethod
    def _from_pretrained(cls, *, base_dtype: torch.dtype | None = None, **kwargs):
        """HubModule's strict loading; ``base_dtype`` (torch.float16 or torch.bfloat16) reads the base in that
        precision, from its variant files where it has them, and casts the adapter to match."""
        if base_dtype is not None and base_dtype not in VARIANTS:
            raise ValueError(f"base_dtype is torch.float16 or torch.bfloat16, got {base_dtype!r}")
        model = super()._from_pretrained(base_dtype=base_dtype, **kwargs)
        return model.to(base_dtype) if base_dtype is not None else model

    def generate_model_card(self, *args, **kwargs):
        kwargs.setdefault("config", self.config)
        kwargs.setdefault("num_trained", sum(v.numel() for v in self.state_dict().values()))
        kwargs.setdefault("size_multiple", self.translation_spec.size_multiple)
        kwargs.setdefault("model_rows", self.options.card_rows(self.config))
        kwargs.setdefault("citation", CITATION)
        kwargs.setdefault("install", INSTALL_COMMAND.replace("cyclegan-hub @", "cyclegan-hub[turbo] @"))
        card = super().generate_model_card(*args, **kwargs)
        if not os.path.isdir(self.config["base_model"]):
            card.data.base_model = self.config["base_model"]
        return card

    # ---- building a pair --------------------------------------------------------------------------------------

    def set_caption_embedding(self, embedding: torch.Tensor) -> None:
        """The text encoder's output for the caption, ``[1, tokens, width]`` (or ``[tokens, width]``)."""
        embedding = embedding.detach().reshape(1, *embedding.shape[-2:])
        if embedding.shape != self.caption_embedding.shape:
            raise ValueError(
                f"the caption embedding has shape {tuple(embedding.shape)}; this model takes "
                f"{tuple(self.caption_embedding.shape)}"
            )
        self.caption_embedding.copy_(embedding.to(self.caption_embedding))

    def enable_gradient_checkpointing(self) -> None:
        """Recompute activations in the backward pass (UNet blocks and VAE blocks): far less memory, ~30% more time."""
        self.gradient_checkpointing = True
        self.unet.enable_gradient_checkpointing()

    def __deepcopy__(self, memo):
        """A copy whose trained tensors are its own and whose frozen base weights are shared (the trainer's exported
        copies and samples would otherwise duplicate the whole base model each time)."""
        for parameter in self.parameters():
            if not parameter.requires_grad:
                memo.setdefault(id(parameter), parameter)
        copied = type(self).__new__(type(self))
        memo[id(self)] = copied
        for name, value in self.__dict__.items():
            copied.__dict__[name] = copy.deepcopy(value, memo)
        return copied

    # ---- what is saved: only what training changes ------------------------------------------------------------

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        full = super().state_dict(prefix=prefix, keep_vars=keep_vars)
        out = destination if destination is not None else type(full)()
        for name in self.saved:
            out[prefix + name] = full[prefix + name]
        return out

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        names = set(self.saved)
        missing, unexpected = sorted(names - set(state_dict)), sorted(set(state_dict) - names)
        if strict and (missing or unexpected):
            raise RuntimeError(
                f"the adapter does not match this translator: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
        result = super().load_state_dict({k: v for k, v in state_dict.items() if k in names}, strict=False)
        return type(result)(missing, unexpected)

    # ---- the forward ----------------------------------------------------------------------------------------

    def _run(self, block, *args):
        if self.gradient_checkpointing and torch.is_grad_enabled():
            return checkpoint(block, *args, use_reentrant=False)
        return block(*args)

    def encode(self, images: torch.Tensor, generator: torch.Generator | None = None):
        """Scaled latents of ``images`` in [-1, 1], and the activations entering each encoder down block."""
        encoder = self.vae.encoder
        h = encoder.conv_in(images)
        skips = []
        for block in encoder.down_blocks:
            skips.append(h)
            h = self._run(block, h)
        h = self._run(encoder.mid_block, h)
        h = encoder.conv_out(encoder.conv_act(encoder.conv_norm_out(h)))
        if self.vae.quant_conv is not None:
            h = self.vae.quant_conv(h)
        posterior = DiagonalGaussianDistribution(h)
        mode = self.train_encode if self.training else self.config["encode"]
        latents = posterior.sample(generator) if mode == "sample" else posterior.mean
        return latents * self.scaling_factor, skips

    def denoise(self, latents: torch.Tensor) -> torch.Tensor:
        """The UNet's one step at the configured timestep: the clean latents it predicts."""
        embedding = self.caption_embedding.to(latents.dtype).expand(latents.shape[0], -1, -1)
        timesteps = torch.full((latents.shape[0],), self.config["timestep"], device=latents.device, dtype=torch.long)
        prediction = self.unet(latents, timesteps, encoder_hidden_states=embedding).sample
        return self._step(prediction, latents)

    def decode(self, latents: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """Images in [-1, 1] from clean scaled latents, with the encoder's activations through the skip convs."""
        decoder = self.vae.decoder
        z = latents / self.scaling_factor
        if self.vae.post_quant_conv is not None:
            z = self.vae.post_quant_conv(z)
        h = decoder.conv_in(z)
        h = self._run(decoder.mid_block, h, None)
        h = h.to(next(iter(decoder.up_blocks.parameters())).dtype)
        for index, (block, skip) in enumerate(zip(decoder.up_blocks, skips[::-1]), start=1):
            h = h + getattr(decoder, f"skip_conv_{index}")(skip)
            h = self._run(block, h, None)
        h = decoder.conv_out(decoder.conv_act(decoder.conv_norm_out(h)))
        return h.clamp(-1, 1)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        latents, skips = self.encode(images, generator)
        return self.decode(self.denoise(latents.to(images.dtype)), skips)


def base_location(base: str) -> str:
    """A base model as config.json names it: a Hub id as given, a folder absolutely (so it loads from anywhere)."""
    return os.path.abspath(base) if os.path.isdir(base) else base


def _base_is_not_missing(module: OneStepTranslator, incompatible) -> None:
    saved = set(module.saved)
    base = {name for name in nn.Module.state_dict(module) if name not in saved}

    def is_base(key: str) -> bool:
        parts = key.split(".")
        return any(".".join(parts[i:]) in base for i in range(len(parts)))

    incompatible.missing_keys[:] = [key for key in incompatible.missing_keys if not is_base(key)]


def _is_trained(name: str) -> bool:
    """Whether training changes a parameter: the adapters and the UNet's ``conv_in``. The skip convolutions' own
    weights stay frozen, as peft leaves them in the authors' training (their adapters train)."""
    return ".lora_" in name or name.startswith("unet.conv_in.")


def _is_saved(name: str) -> bool:
    """Whether save_pretrained writes a parameter: what training changes, and the skip convolutions (a converted
    checkpoint's may differ from the initial 1e-5)."""
    return _is_trained(name) or ".skip_conv_" in name


def _load_scheduler(base: str, revision: str | None):
    where = dict(subfolder="scheduler") | ({} if os.path.isdir(base) else {"revision": revision})
    try:
        with torch.device("cpu"):  # a few numbers, computed even when the network is built on the meta device
            return DDPMScheduler.from_config(DDPMScheduler.load_config(base, **where))
    except (OSError, ValueError) as err:
        first = first_line(err)
        raise ValueError(f"cannot load the base model's scheduler/ from {base}: {first}") from None


def _one_step(scheduler, timestep: int):
    """DDPM's step from ``timestep`` straight to the clean sample (what ``set_timesteps(1)`` then ``step`` computes,
    without the 1e-10 noise its variance adds): by the scheduler's prediction type and clipping."""
    config = scheduler.config
    alpha = float(scheduler.alphas_cumprod[timestep])
    kind = config.prediction_type
    if kind not in ("epsilon", "sample", "v_prediction"):
        raise ValueError(f"the base scheduler predicts {kind!r}; the one-step translator takes epsilon, sample or v")
    if getattr(config, "thresholding", False):
        raise ValueError("the base scheduler uses dynamic thresholding, which the one-step translator does not")
    clip = float(config.clip_sample_range) if config.clip_sample else None
    with torch.device("cpu"):  # constants, even when the network is built on the meta device
        a = torch.tensor(alpha, dtype=torch.float32)
        sqrt_a, sqrt_b = a.sqrt(), (1 - a).sqrt()

    def step(prediction: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        if kind == "epsilon":
            clean = (latents - sqrt_b.to(latents.device) * prediction) / sqrt_a.to(latents.device)
        elif kind == "sample":
            clean = prediction
        else:
            clean = sqrt_a.to(latents.device) * latents - sqrt_b.to(latents.device) * prediction
        return clean.clamp(-clip, clip) if clip is not None else clean

    step.alpha = alpha
    return step


def embed_caption(base: str, caption: str, revision: str | None = None) -> torch.Tensor:
    """The caption's text embedding ``[1, tokens, width]`` as the authors compute it: the base's tokenizer (padded
    and truncated to its maximum length) and text encoder, ``text_encoder(ids)[0]``. Translating never needs it:
    the embedding is stored with the adapter."""
    try:
        from transformers import AutoTokenizer, CLIPTextModel
    except ImportError as err:
        raise ImportError(f"{EXTRA_HINT} ({err})") from None
    where = {} if os.path.isdir(base) else {"revision": revision}
    try:
        tokenizer = AutoTokenizer.from_pretrained(base, subfolder="tokenizer", **where)
        encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder", use_safetensors=True, **where)
    except (OSError, ValueError) as err:
        first = first_line(err)
        raise ValueError(f"cannot load the base model's tokenizer/ and text_encoder/ from {base}: {first}") from None
    ids = tokenizer(
        caption, max_length=tokenizer.model_max_length, padding="max_length", truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        return encoder(ids)[0]
