"""Where a run's checkpoints are: ``<run>/checkpoints/step-NNNNNN/`` folders and the ``latest`` pointer, or the
training state a Hub repo holds. Only real folders and regular files inside the run count: a link is never followed."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..io.errors import first_line
from ..io.files import inside, read_file, read_json, regular_file_inside, remove

STEP_FOLDER = re.compile(r"^step-(\d{6,})$")
STATE_JSON = "training_state.json"
SHARED_FILES = ("models.safetensors", "optimizers.safetensors", STATE_JSON)
MAX_PROCESSES = 4096


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with the reason in one line."""


def rank_file(rank: int) -> str:
    return f"rank-{rank}.safetensors"


def checkpoint_files(num_processes: int) -> list[str]:
    """Every file of a checkpoint written by ``num_processes`` processes."""
    return [*SHARED_FILES, *(rank_file(r) for r in range(num_processes))]


@dataclass
class CheckpointFiles:
    """Where each file of one checkpoint is: a folder of a run, or files downloaded from a Hub repo."""

    name: str
    files: dict[str, Path]

    def path(self, file: str) -> Path:
        if file not in self.files:
            raise CheckpointError(f"{self.name} has no {file}")
        return self.files[file]


def checkpoints_folder(run_dir: Path, create: bool = False) -> Path:
    root = run_dir / "checkpoints"
    if root.is_symlink():
        raise CheckpointError(f"{root} is a symbolic link; checkpoints stay inside the run folder")
    if create:
        root.mkdir(parents=True, exist_ok=True)
    return root


def local_checkpoint(folder: str | os.PathLike, run_dir: str | os.PathLike | None = None) -> CheckpointFiles:
    """A checkpoint folder as files: each must be a regular file inside the folder (and the folder inside
    ``run_dir`` when given), reached through no symbolic link."""
    folder = Path(folder)
    if run_dir is not None and not inside(run_dir, folder):
        raise CheckpointError(f"{folder} is outside the run folder {run_dir} (or reached through a link)")
    if folder.is_symlink() or not folder.is_dir():
        raise CheckpointError(f"{folder} is not a checkpoint folder (a real folder holding {STATE_JSON})")
    files = {}
    for path in folder.iterdir():
        if path.name.endswith(".safetensors") or path.name == STATE_JSON:
            if not regular_file_inside(folder, path):
                raise CheckpointError(f"{path} is not a regular file (links are never followed)")
            files[path.name] = path
    if STATE_JSON not in files:
        raise CheckpointError(f"{folder} is not a checkpoint folder (no {STATE_JSON})")
    return CheckpointFiles(str(folder), files)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint folder of a run: the one ``checkpoints/latest`` names, else the highest
    ``step-*`` folder holding a training_state.json. Only real folders inside the run count.

    Raises CheckpointError for a ``latest`` pointer that names anything but a step folder of this run."""
    root = checkpoints_folder(Path(run_dir))
    if not root.is_dir():
        return None
    pointer = root / "latest"
    if pointer.exists() or pointer.is_symlink():
        name = read_file(pointer, 256, what=str(pointer), follow_links=False).decode(errors="replace").strip()
        if not STEP_FOLDER.match(name):
            raise CheckpointError(f"{pointer} names {name!r}, not a step folder of this run")
        if _is_checkpoint(root / name):
            return root / name
    complete = sorted(
        (p for p in root.iterdir() if STEP_FOLDER.match(p.name) and _is_checkpoint(p)),
        key=lambda p: int(STEP_FOLDER.match(p.name)[1]),
    )
    return complete[-1] if complete else None


def _is_checkpoint(folder: Path) -> bool:
    return not folder.is_symlink() and folder.is_dir() and regular_file_inside(folder, folder / STATE_JSON)


def prune(root: Path, keep: int) -> None:
    """Keep the newest ``keep`` step folders (0: all). Entries named like step folders that are links are not
    checkpoints of this run: they are removed as links, never followed."""
    entries = [p for p in root.iterdir() if STEP_FOLDER.match(p.name)]
    links = [p for p in entries if p.is_symlink()]
    for link in links:
        link.unlink()
    if not keep or keep <= 0:
        return
    steps = sorted((p for p in entries if p not in links), key=lambda p: int(STEP_FOLDER.match(p.name)[1]))
    for old in steps[:-keep]:
        remove(old)


def hub_checkpoint(repo_id: str, subfolder: str = "training_state") -> CheckpointFiles:
    """The checkpoint a repo holds under ``training_state/`` (``push --include-training-state``), downloaded file
    by file: its own names only, the number of process files read from the validated JSON."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, LocalEntryNotFoundError

    def get(name: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, f"{subfolder}/{name}"))
        except EntryNotFoundError:
            raise CheckpointError(f"{repo_id} has no training state (push it with --include-training-state)") from None
        except (HfHubHTTPError, LocalEntryNotFoundError) as err:
            raise CheckpointError(f"cannot download the training state of {repo_id} ({first_line(err)})") from None

    state_json = get(STATE_JSON)
    meta = read_json(state_json, what=f"{repo_id}/{STATE_JSON}")
    processes = meta.get("num_processes")
    if type(processes) is not int or not 1 <= processes <= MAX_PROCESSES:
        raise CheckpointError(f"{repo_id}/{STATE_JSON}: num_processes must be a whole number, got {processes!r}")
    return CheckpointFiles(repo_id, {name: get(name) for name in checkpoint_files(processes)})


def resolve_checkpoint(run_dir: str | os.PathLike, resume: str) -> CheckpointFiles:
    """``--resume``: "latest" (this run's newest), a checkpoint folder, or a Hub repo id with a training state."""
    run_dir = Path(run_dir)
    if resume == "latest":
        path = latest_checkpoint(run_dir)
        if path is None:
            raise CheckpointError(f"--resume latest: no checkpoint in {run_dir / 'checkpoints'}")
        return local_checkpoint(path, run_dir)
    if Path(resume).exists() or Path(resume).is_symlink():
        return local_checkpoint(resume)
    if resume.count("/") == 1 and not resume.startswith((".", "/")):
        return hub_checkpoint(resume)
    raise CheckpointError(f"--resume {resume}: no such checkpoint folder, and not a Hub repo id")
