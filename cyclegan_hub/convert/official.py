"""An official pytorch-CycleGAN-and-pix2pix training checkpoint (its four networks, ``<epoch>_net_G_A.pth`` ...
``<epoch>_net_D_B.pth``) in our roles, to start a run from: ``train.py --init-from-official FOLDER``. The layouts
and their conversion are in ``layouts``; every file is read with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path

from .checkpoints import ConversionError, read_checkpoint
from .layouts import convert_state


def official_generator_names(folder: str | os.PathLike, epoch: str = "latest") -> dict[str, Path]:
    """The four files of an official training run's checkpoint: ``<epoch>_net_G_A.pth`` ... ``<epoch>_net_D_B.pth``."""
    folder = Path(folder)
    return {part: folder / f"{epoch}_net_{part}.pth" for part in ("G_A", "G_B", "D_A", "D_B")}


def convert_official_run(folder: str | os.PathLike, epoch: str, label_a: str, label_b: str, image_size: int) -> dict:
    """The four networks of an official training checkpoint, in our roles: G_A maps A -> B (our G), G_B maps
    B -> A (our F), D_A judges domain B images (our D_B) and D_B judges domain A (our D_A)."""
    files = official_generator_names(folder, epoch)
    for path in files.values():
        if not path.is_file():
            raise ConversionError(
                f"{folder} has no {path.name} (an official checkpoint: {epoch}_net_G_A.pth, "
                f"{epoch}_net_G_B.pth, {epoch}_net_D_A.pth, {epoch}_net_D_B.pth)"
            )
    nets = {}
    for ours, part, domains in (
        ("G", "G_A", (label_a, label_b)),
        ("F", "G_B", (label_b, label_a)),
        ("D_B", "D_A", None),
        ("D_A", "D_B", None),
    ):
        state = read_checkpoint(files[part])
        kwargs = dict(source_domain=domains[0], target_domain=domains[1], image_size=image_size) if domains else {}
        network, layout = convert_state(state, files[part].name, **kwargs)
        expected = "generator" if domains else "discriminator"
        if layout.kind != expected:
            raise ConversionError(f"{files[part].name} is a {layout.kind}, not a {expected}")
        nets[ours] = network
    return nets


def init_from_official(nets: dict, folder: str | os.PathLike, epoch: str = "latest") -> None:
    """Load an official training checkpoint into a run's G, F, D_A, D_B (built from its config), after checking
    that each official network has the architecture the config asks for."""
    g = nets["G"].config
    official = convert_official_run(folder, epoch, g["source_domain"], g["target_domain"], g["image_size"])
    for name, net in nets.items():
        theirs, ours = official[name].config, net.config
        own = ("source_domain", "target_domain", "image_size", "value_range")
        differs = [k for k in theirs if k not in own and theirs[k] != ours[k]]
        if differs:
            key = differs[0]
            raise ConversionError(
                f"the official {name} has {key} = {theirs[key]!r}, this config {ours[key]!r}: "
                f"set the model section to match"
            )
        net.load_state_dict(official[name].state_dict())
