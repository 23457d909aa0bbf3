"""Reading a stranger's checkpoint: where it is (a file, a folder holding one, a Hub repo), and its tensors, with
nothing in it run.

Pickles (``.pth``, ``.pt``, ``.bin``, ``.ckpt``) are read only with ``torch.load(weights_only=True)``, only on a torch
whose weights-only loader has no known bypass (>= 2.6: CVE-2025-32434), and only after the zip directory has shown
that the unpacked size is bounded. ``.safetensors`` files are read as safetensors.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..io.errors import first_line
from ..io.files import read_file

#: The largest checkpoint read (a ResNet-9 generator is 45 MB; a 70x70 PatchGAN 11 MB; CycleGAN-Turbo's 1.7 GB).
MAX_CHECKPOINT_BYTES = 2 << 30
#: The most a checkpoint's zip entries may unpack to, read off the zip directory before anything is inflated.
MAX_UNPACKED_BYTES = 4 << 30
#: The oldest torch whose ``weights_only`` loader has no published bypass (CVE-2025-32434 affects <= 2.5.1).
SAFE_TORCH = (2, 6)
#: Keys of an outer dict that holds the state dict (training scripts often save {"state_dict": ...}).
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "netG", "params", "weights", "ema_state_dict")
#: File names a checkpoint has, most specific first (a folder holding several is asked which).
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl", ".pth.tar", ".safetensors")
#: Which file of a folder or repo holding several is the generator, by name, in order of preference.
PREFERRED_NAMES = ("latest_net_G.pth", "latest_net_G_A.pth", "pytorch_model.bin", "model.safetensors")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")


class ConversionError(ValueError):
    """A checkpoint that cannot be converted, with the reason in one line."""


def torch_release() -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", torch.__version__)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def require_safe_torch() -> None:
    if torch_release() < SAFE_TORCH:
        raise ConversionError(
            f"torch {torch.__version__} has a known bypass of torch.load(weights_only=True) (CVE-2025-32434): "
            f"install torch >= {'.'.join(map(str, SAFE_TORCH))} before converting a pickled checkpoint"
        )


def _check_unpacked_size(data: bytes, name: str) -> None:
    if not data.startswith(b"PK"):
        return  # the legacy (pre-1.6) format: one pickle stream, bounded by the file size
    try:
        entries = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile:
        return  # torch.load names it below
    unpacked = sum(entry.file_size for entry in entries)
    if unpacked > MAX_UNPACKED_BYTES:
        raise ConversionError(
            f"{name} unpacks to {unpacked / 2**30:.1f} GB ({len(entries)} entries), above the limit of "
            f"{MAX_UNPACKED_BYTES / 2**30:.0f} GB; refused before inflating anything"
        )


def load_tensors(data: bytes, name: str):
    """What a checkpoint holds: ``torch.load(weights_only=True)`` of the bytes (or safetensors), with every failure
    one ConversionError line."""
    if name.endswith(".safetensors"):
        import safetensors.torch

        try:
            return safetensors.torch.load(data)
        except Exception as err:  # safetensors raises its own error types for corrupt files
            raise ConversionError(f"{name} is not a readable safetensors file ({str(err)[:160]})") from None
    require_safe_torch()
    _check_unpacked_size(data, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing a foreign file
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        detail = first_line(str(err).split("WeightsUnpickler error:")[-1])
        raise ConversionError(
            f"{name} holds Python objects other than tensors ({detail}); refused: only "
            f"weights are read, nothing in the file is run"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, AttributeError, IndexError) as err:
        first = first_line(err)
        raise ConversionError(f"{name} is truncated or not a PyTorch checkpoint ({first[:160]})") from None


def read_checkpoint(path: str | os.PathLike, key: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file of at most ``MAX_CHECKPOINT_BYTES``, unwrapped from an outer dict
    (``key`` chooses among several networks), ``module.`` prefixes (DataParallel) removed."""
    path = Path(path)
    data = read_file(path, MAX_CHECKPOINT_BYTES, what=str(path))
    return unwrap_state_dict(load_tensors(data, path.name), path.name, key)


def _is_state(value) -> bool:
    return isinstance(value, dict) and bool(value) and all(torch.is_tensor(v) for v in value.values())


def unwrap_state_dict(loaded, name: str, key: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict inside what a checkpoint holds: the dict itself, or the one under ``key``, a wrapper key
    (``state_dict``, ``model``, ...), or the only dict of tensors in it (a training checkpoint also holding an
    epoch and an optimizer)."""
    if key is not None:
        if not isinstance(loaded, dict) or key not in loaded:
            found = ", ".join(map(repr, list(loaded)[:8])) if isinstance(loaded, dict) else type(loaded).__name__
            raise ConversionError(f"{name} has no entry {key!r} (it holds: {found})")
        loaded = loaded[key]
    elif isinstance(loaded, dict) and loaded and not all(torch.is_tensor(v) for v in loaded.values()):
        inner = [k for k in WRAPPER_KEYS if _is_state(loaded.get(k))]
        states = [k for k, v in loaded.items() if _is_state(v)]
        if inner:
            loaded = loaded[inner[0]]
        elif len(states) == 1:
            loaded = loaded[states[0]]
        elif len(states) > 1:
            listed = ", ".join(map(repr, states[:8]))
            raise ConversionError(f"{name} holds {len(states)} networks ({listed}): choose one with --key")
    if not isinstance(loaded, dict) or not loaded:
        raise ConversionError(f"{name} holds no state dict (a {type(loaded).__name__}, not a dict of tensors)")
    for entry, value in loaded.items():
        if not isinstance(entry, str) or not torch.is_tensor(value):
            raise ConversionError(f"{name}: entry {entry!r} is a {type(value).__name__}, not a tensor")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in loaded.items()}


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------------
# where the checkpoint is: a file, a folder holding one, a Hub repo
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class Source:
    """A checkpoint file found from what the user named, and where it came from (for the card)."""

    path: Path
    name: str  # the model's name (file stem, folder or repo name)
    repo_id: str | None = None
    revision: str | None = None  # the commit a Hub repo was read at
    url: str | None = None
    notes: list[str] = field(default_factory=list)

    def provenance(self) -> str:
        if self.repo_id:
            return f"`{self.path.name}` of the Hub repo `{self.repo_id}` at revision `{self.revision}`"
        if self.url:
            return f"`{self.path.name}`, downloaded from {self.url}"
        return f"`{self.path.name}`"


def is_checkpoint_name(name: str) -> bool:
    return name.endswith(CHECKPOINT_SUFFIXES) and not name.startswith(".")


def choose_checkpoint(names: list[str], where: str) -> str:
    """The one checkpoint among ``names`` (file names of a folder or repo), or a one-line refusal."""
    candidates = sorted(n for n in names if is_checkpoint_name(Path(n).name))
    for preferred in PREFERRED_NAMES:
        matches = [n for n in candidates if Path(n).name == preferred]
        if len(matches) == 1:
            return matches[0]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ConversionError(f"{where} holds no checkpoint (files ending {', '.join(CHECKPOINT_SUFFIXES)})")
    listed = ", ".join(candidates[:6]) + (", ..." if len(candidates) > 6 else "")
    raise ConversionError(f"{where} holds {len(candidates)} checkpoints ({listed}): name the file to convert")


def locate(source: str, revision: str | None = None) -> Source:
    """A file, a folder holding one checkpoint, or a Hub repo id (its checkpoint downloaded through
    huggingface_hub, the size checked from the repo's listing first)."""
    path = Path(source)
    if path.is_dir():
        names = [p.name for p in path.iterdir() if p.is_file() and not p.is_symlink()]
        chosen = choose_checkpoint(names, str(path))
        return Source(path / chosen, path.resolve().name)
    if path.exists() or path.is_symlink() or not REPO_ID.match(source):
        stem = path.name[: -len(".pth.tar")] if path.name.endswith(".pth.tar") else path.stem
        return Source(path, stem)
    return _from_hub(source, revision)


def _from_hub(repo_id: str, revision: str | None) -> Source:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        files = {
            entry.path: getattr(entry, "size", 0) or 0
            for entry in HfApi().list_repo_tree(repo_id, revision=revision, recursive=True)
            if hasattr(entry, "size")
        }
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise ConversionError(f"{repo_id}: no such file, folder or Hub model repo (or revision)") from None
    except (HfHubHTTPError, OSError) as err:
        if getattr(getattr(err, "response", None), "status_code", None) == 404:
            raise ConversionError(f"{repo_id}: no such file, folder or Hub model repo (or revision)") from None
        raise ConversionError(f"{repo_id}: the Hub could not be read ({first_line(err, 160)})") from None
    chosen = choose_checkpoint(list(files), f"the Hub repo {repo_id}")
    if files[chosen] > MAX_CHECKPOINT_BYTES:
        raise ConversionError(
            f"{chosen} of {repo_id} is {files[chosen] / 2**20:.0f} MB, above the limit of "
            f"{MAX_CHECKPOINT_BYTES / 2**30:.0f} GB; not downloaded"
        )
    try:
        local = Path(hf_hub_download(repo_id, chosen, revision=revision))
    except (HfHubHTTPError, OSError) as err:
        raise ConversionError(f"{repo_id}: {chosen} could not be downloaded ({first_line(err, 160)})") from None
    snapshot = next((p for p in local.parents if p.parent.name == "snapshots"), None)
    commit = snapshot.name if snapshot is not None else (revision or "main")
    return Source(local, repo_id.split("/")[-1], repo_id=repo_id, revision=commit)


_PAIR_NAME = re.compile(r"^(?:style_)?(?P<a>[A-Za-z]+)2(?P<b>[A-Za-z]+)(?:_.*)?$")


def domains_from_name(name: str) -> tuple[str, str] | None:
    """('horse', 'zebra') from 'horse2zebra', ('summer', 'winter') from 'summer2winter_yosemite'; else None."""
    match = _PAIR_NAME.match(name.split("/")[-1])
    return (match["a"], match["b"]) if match else None
