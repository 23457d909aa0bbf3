"""The authors' CycleGAN-Turbo checkpoints (GaParmar/img2img-turbo ``model_N.pkl``: ``day2night.pkl``,
``night2day.pkl``, ``clear2rainy.pkl``, ``rainy2clear.pkl``) into one ``OneStepTranslator`` folder per direction.

Their file is a pickled dict: the UNet's three peft adapters (``sd_encoder``, ``sd_decoder``, ``sd_other``, with
their module lists and ``rank_unet``) and the state dicts of two wrappers (``sd_vae_enc``, ``sd_vae_dec``) that each
hold both full VAEs (``vae`` for a2b, ``vae_b2a`` for b2a) with their LoRA (``vae_skip``, ``rank_vae``) and skip
convolutions. It is read with ``torch.load(weights_only=True)`` only. Loading applies ``sd_vae_dec`` last, so that
is the VAE their forward runs. What the converted folder holds is only what training changed: the UNet adapter
(their three lists are one adapter of the same rank here), the direction's VAE adapter and skip convolutions, and
the caption's embedding; the base's own weights are checked against the VAE copies in the file, which catches a
wrong ``--base-model``. The UNet's trained ``conv_in`` was never saved by their script (their issue #113): the
base's is used, as their own inference does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io.files import read_file
from .checkpoints import ConversionError, domains_from_name, load_tensors, sha256

#: Keys of their checkpoint dict.
TURBO_KEYS = ("rank_unet", "sd_encoder", "sd_decoder", "sd_other", "rank_vae", "sd_vae_dec")
#: Their published checkpoints: (direction, caption), as their ``CycleGAN_Turbo(pretrained_name)`` sets them.
RELEASED = {
    "day2night": ("a2b", "driving in the night"),
    "night2day": ("b2a", "driving in the day"),
    "clear2rainy": ("a2b", "driving in heavy rain"),
    "rainy2clear": ("b2a", "driving in the day"),
}
DEFAULT_BASE = "stabilityai/sd-turbo"
MAX_TURBO_BYTES = 3 << 30


def is_turbo_checkpoint(loaded) -> bool:
    return isinstance(loaded, dict) and all(key in loaded for key in TURBO_KEYS)


def read_turbo(path: str | os.PathLike) -> dict:
    """Their checkpoint dict, read behind ``weights_only``; ConversionError for anything else."""
    path = Path(path)
    loaded = load_tensors(read_file(path, MAX_TURBO_BYTES, what=str(path)), path.name)
    if not is_turbo_checkpoint(loaded):
        keys = ", ".join(sorted(map(str, loaded))[:6]) if isinstance(loaded, dict) else type(loaded).__name__
        raise ConversionError(f"{path.name} is not a CycleGAN-Turbo checkpoint (it holds {keys})")
    return loaded


def _int(value, name: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ConversionError(f"the checkpoint's {name} is {value!r}, not a rank from 1 to {high}")
    return value


def convert_turbo(
    loaded: dict,
    *,
    base_model: str,
    caption: str,
    direction: str = "a2b",
    base_revision: str = "main",
    source_domain: str = "A",
    target_domain: str = "B",
    image_size: int = 512,
):
    """A ``OneStepTranslator`` equal to their forward for ``direction``; ConversionError naming what does not fit."""
    from ..models.turbo import embed_caption

    if direction not in ("a2b", "b2a"):
        raise ConversionError(f"--direction is a2b or b2a, got {direction!r}")
    rank_unet, rank_vae = _int(loaded["rank_unet"], "rank_unet", 1024), _int(loaded["rank_vae"], "rank_vae", 256)
    for key in ("sd_encoder", "sd_decoder", "sd_other", "sd_vae_dec"):
        value = loaded[key]
        if not isinstance(value, dict) or not all(torch.is_tensor(v) for v in value.values()):
            raise ConversionError(f"the checkpoint's {key} is not a state dict of tensors")
    model = _translator(
        base_model=base_model,
        base_revision=base_revision,
        caption=caption,
        rank_unet=rank_unet,
        rank_vae=rank_vae,
        source_domain=source_domain,
        target_domain=target_domain,
        image_size=image_size,
    )
    _check_unet_targets(loaded, model)
    own = model.state_dict()
    state = _unet_adapter(loaded)
    state.update(_vae_trained(loaded["sd_vae_dec"], "vae." if direction == "a2b" else "vae_b2a.", own, model))
    state["caption_embedding"] = embed_caption(base_model, caption, base_revision)
    state["unet.conv_in.base_layer.weight"] = own["unet.conv_in.base_layer.weight"]
    state["unet.conv_in.base_layer.bias"] = own["unet.conv_in.base_layer.bias"]
    _check_fit(state, own)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return model.eval()


def _translator(
    *,
    base_model: str,
    base_revision: str,
    caption: str,
    rank_unet: int,
    rank_vae: int,
    source_domain: str,
    target_domain: str,
    image_size: int,
):
    """The ``OneStepTranslator`` their checkpoint fills: the base model with adapters of their ranks and scales."""
    from ..models.turbo import OneStepTranslator, base_location

    try:
        return OneStepTranslator(
            base_model=base_location(base_model),
            base_revision=base_revision,
            caption=caption,
            unet_rank=rank_unet,
            unet_lora_scale=1.0,  # their loader: lora_alpha = rank
            vae_rank=rank_vae,
            vae_lora_scale=8.0 / rank_vae,  # their VAE adapter gives no alpha: peft's default 8
            source_domain=source_domain,
            target_domain=target_domain,
            image_size=image_size,
        )
    except ValueError as err:
        raise ConversionError(str(err)) from None


def _check_unet_targets(loaded: dict, model) -> None:
    """The modules their UNet adapter lists (when it lists them) must be the ones ours adapts in the base model."""
    lists = [loaded.get(k) for k in ("l_target_modules_encoder", "l_target_modules_decoder", "l_modules_others")]
    theirs = sorted(name for names in lists if isinstance(names, list) for name in names)
    ours = sorted(model.unet.lora_targets)
    if theirs and theirs != ours:
        raise ConversionError(
            f"the checkpoint's UNet adapter covers {len(theirs)} modules, the base model's UNet has {len(ours)} by "
            "the authors' rule: is --base-model the one it was trained from?"
        )


def _unet_adapter(loaded: dict) -> dict:
    """Their three UNet adapters as our one, renamed."""
    from ..models.turbo import ADAPTER

    state = {}
    adapters = {**loaded["sd_encoder"], **loaded["sd_decoder"], **loaded["sd_other"]}
    for name, value in adapters.items():  # down_blocks.0...proj_in.lora_A.weight
        head, _, kind = name.rpartition(".lora_")
        state[f"unet.{head}.lora_{kind.replace('.weight', f'.{ADAPTER}.weight')}"] = value
    return state


def _vae_trained(vae_dec: dict, prefix: str, own: dict, model) -> dict:
    """What training changed in the VAE of ``prefix`` (its adapter and skip convolutions), renamed; every other
    tensor of it must be the base model's, to 1e-6."""
    from ..models.turbo import ADAPTER

    state, base_vae, worst = {}, model.vae.state_dict(), (0.0, "")
    for name, value in vae_dec.items():
        if not name.startswith(prefix):
            continue
        inner = name[len(prefix) :]
        ours_name = "vae." + inner.replace(".vae_skip.", f".{ADAPTER}.")
        if ours_name in own:
            state[ours_name] = value
        elif inner in base_vae:  # a base tensor: must be the base model's
            if value.shape != base_vae[inner].shape:
                raise ConversionError(
                    f"{name} has shape {tuple(value.shape)}, the base VAE's {tuple(base_vae[inner].shape)}"
                )
            gap = float((value.float() - base_vae[inner].float()).abs().max()) if value.numel() else 0.0
            worst = max(worst, (gap, name))
        else:
            raise ConversionError(f"the checkpoint's {name} has no counterpart in the base model's VAE")
    if worst[0] > 1e-6:
        raise ConversionError(
            f"the checkpoint's VAE differs from the base model's by {worst[0]:.1e} (at {worst[1]}): is --base-model "
            "the one it was trained from?"
        )
    return state


def _check_fit(state: dict, own: dict) -> None:
    """The converted tensors must be exactly the model's, shapes equal."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise ConversionError(
            f"the checkpoint does not fit the base model: {len(missing)} tensor(s) missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for name, value in state.items():
        if value.shape != own[name].shape:
            raise ConversionError(
                f"{name} has shape {tuple(value.shape)}; the base model needs {tuple(own[name].shape)}"
            )


def origin_text(direction: str, caption: str, base_model: str, provenance: str, digest: str) -> str:
    from .. import __version__

    # a card names no path of the machine it was written on
    base = f"`{Path(base_model).name}` (a local folder)" if os.path.isdir(base_model) else f"`{base_model}`"

    return (
        'A CycleGAN-Turbo translator (Parmar, Park, Narasimhan, Zhu, "One-Step Image Translation with Text-to-Image '
        f'Models", 2024; GaParmar/img2img-turbo). Converted by cyclegan-hub {__version__} from {provenance} '
        f'(SHA-256 `{digest}`), direction `{direction}`, caption "{caption}", on the base model {base}: '
        "the UNet's LoRA, the direction's VAE LoRA and skip convolutions, renamed; the caption's text embedding "
        "computed once with the base's text encoder. The UNet's `conv_in` is the base's (their checkpoints never "
        'saved the trained one). Latents are the VAE posterior\'s mean (their code samples it: `encode = "sample"` '
        "in config.json does the same)."
    )


@dataclass
class TurboSource:
    """One direction to convert: the authors' file, which of its VAEs, the caption, and where it came from."""

    path: Path
    direction: str
    caption: str
    provenance: str | None = None
    stem: str | None = None  # the released name (day2night) when the file's own name is not it

    @property
    def name(self) -> str:
        return self.stem or self.path.stem


def _convert_source(source: TurboSource, domains: tuple[str, str], settings: dict, read: dict):
    """``read``: (checkpoint, SHA-256) by path, so that both directions of one file read and hash it once."""
    if source.path not in read:
        read[source.path] = read_turbo(source.path), sha256(source.path)
    loaded, digest = read[source.path]
    model = convert_turbo(
        loaded,
        caption=source.caption,
        direction=source.direction,
        source_domain=domains[0],
        target_domain=domains[1],
        **settings,
    )
    origin = origin_text(
        source.direction, source.caption, settings["base_model"], source.provenance or f"`{source.path.name}`", digest
    )
    trained = sum(v.numel() for v in model.state_dict().values())
    line = (
        f"{source.path.name}: CycleGAN-Turbo, direction {source.direction}, {domains[0]} -> {domains[1]}, UNet LoRA "
        f"rank {loaded['rank_unet']}, VAE LoRA rank {loaded['rank_vae']}; {trained:,} trained values kept, the base "
        f"model's read from {settings['base_model']}"
    )
    return model, origin, line


def write_turbo(
    path: str | os.PathLike,
    output: str | os.PathLike,
    *,
    base_model: str,
    caption: str,
    direction: str = "a2b",
    base_revision: str = "main",
    source_domain: str | None = None,
    target_domain: str | None = None,
    image_size: int = 512,
    provenance: str | None = None,
    stem: str | None = None,
    reverse: TurboSource | None = None,
) -> list[str]:
    """``cyclegan-hub convert FILE.pkl --base-model ... --caption ...``: one save_pretrained folder; with ``reverse``
    (the other direction, of the same file or of another), a run folder that ``push`` sends as twin repos."""
    from ..hub.cards import CardInputs, write_generator
    from ..io.files import replace_folder

    forward = TurboSource(Path(path), direction, caption, provenance, stem)
    named = domains_from_name(forward.name) or ("A", "B")  # what the file's name says it translates
    own = RELEASED.get(forward.name, ("a2b",))[0]  # and in which of its directions
    guess = named if direction == own else named[::-1]
    domains = (source_domain or guess[0], target_domain or guess[1])
    settings = dict(base_model=base_model, base_revision=base_revision, image_size=image_size)
    read: dict = {}
    model, origin, line = _convert_source(forward, domains, settings, read)
    name = Path(output).name
    if reverse is None:
        replace_folder(output, lambda tmp: write_generator(model, tmp, CardInputs(origin=origin), name=name))
        return [line, f"wrote {output} (config.json, model.safetensors, README.md)"]
    back, back_origin, back_line = _convert_source(reverse, domains[::-1], settings, read)
    inputs = CardInputs(origin=origin, reverse_origin=back_origin, base_model=None)

    def fill_run(tmp: Path) -> None:
        write_generator(model, tmp / "generator_AtoB", inputs, "AtoB", name=name)
        write_generator(back, tmp / "generator_BtoA", inputs, "BtoA", name=reverse.name)
        inputs.save(tmp)  # the run's card inputs: push writes both cards from them

    replace_folder(output, fill_run)
    return [
        line,
        back_line,
        f"wrote {output} (generator_AtoB/, generator_BtoA/): push it with `cyclegan-hub push {output} --repo-id "
        f"user/{name}`",
    ]


def _model_options(options: dict) -> dict:
    """The options of ``write_converted`` that a one-step translator's conversion takes too."""
    return {k: v for k, v in options.items() if k in ("source_domain", "target_domain") or k == "image_size" and v}


class TurboConverter:
    """The CycleGAN-Turbo family's converter (its record in ``cyclegan_hub.families``): the authors' pickles, and the
    zoo's ``turbo/`` entries. ``settings``: the family's ``convert`` options that were given (base_model,
    base_revision, caption, direction, reverse_caption); ``options``: those of ``write_converted``."""

    def checkpoint(self, source, output, *, reverse, revision, settings, options) -> list[str]:
        """One direction of a file, or two with ``reverse_caption`` (the file's other VAE, or ``reverse``)."""
        from .checkpoints import locate

        settings = dict(settings)
        found, reverse_caption = locate(source, revision), settings.pop("reverse_caption", None)
        back = None
        if reverse is not None and reverse_caption is None:
            raise ConversionError("a CycleGAN-Turbo reverse needs its caption: --reverse-caption TEXT")
        if reverse_caption is not None:
            other = locate(reverse, revision) if reverse is not None else found
            own = settings.get("direction", "a2b")
            flipped = "b2a" if own == "a2b" else "a2b"
            # another file: the direction it was released for (night2day.pkl: b2a), else the other VAE
            direction = RELEASED.get(other.name, (flipped,))[0] if reverse is not None else flipped
            back = TurboSource(other.path, direction, reverse_caption, other.provenance(), other.name)
        return write_turbo(
            found.path,
            output,
            provenance=found.provenance(),
            stem=found.name,
            reverse=back,
            **settings,
            **_model_options(options),
        )

    def zoo(self, model, output, *, with_reverse, mirror, cache, settings, options) -> list[str]:
        """A released file (and with ``with_reverse`` the authors' other one: night2day.pkl for day2night)."""
        from . import zoo

        def released(name: str) -> TurboSource:
            task = name.split("/")[-1]
            path, url = zoo.fetch(zoo.get(name), mirror=mirror, folder=cache)
            return TurboSource(path, *RELEASED[task], f"`{path.name}`, downloaded from {url}", task)

        forward = released(model.name)
        back = released(model.reverse) if with_reverse else None
        chosen = {"base_model": DEFAULT_BASE, "caption": forward.caption, "direction": forward.direction}
        chosen.update({k: v for k, v in settings.items() if k != "reverse_caption"})
        return write_turbo(
            forward.path,
            output,
            provenance=forward.provenance,
            stem=forward.stem,
            reverse=back,
            **chosen,
            **_model_options(options),
        )


CONVERTER = TurboConverter()
