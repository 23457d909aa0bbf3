"""The Hub side of the library: loading generators by repo id or folder with errors a user can act on, and pushing
a trained (or converted) pair as two repos.

What goes up is only what was meant to: each repo is staged in a fresh folder from the run's regular files (never a
link out of the run folder), the sample image is checked to be an image, and the training state is the checkpoint's
own files; whatever is skipped is said.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..io.errors import first_line
from ..io.files import own_file, read_json
from ..io.imaging import open_image
from ..io.tensors import read_safetensors_header
from ..models.cyclegan import CycleGenerator
from ..models.modeling import HubModule
from ..training.checkpoint_files import CheckpointError, checkpoint_files, latest_checkpoint, local_checkpoint
from .cards import DIRECTIONS, CardInputs, write_generator

RUN_GENERATORS = tuple(f"generator_{d}" for d in DIRECTIONS)
_DIRECTION = re.compile(r"^(?P<a>[A-Za-z0-9]+)(?P<sep>2|to|-to-|_to_)(?P<b>[A-Za-z0-9]+)$")


class MissingModel(ValueError):
    """``load_generator``'s error for a model that is not there: no such folder, no such Hub repo (or one no token
    lets us see), or none in the cache while the Hub cannot be reached. A server looking for a pair's reverse by its
    twin name serves the model one way on this error, and fails on any other."""


def looks_like_a_local_path(model: str) -> bool:
    """A model name that can only mean a folder: it starts with ., / or ~, has more than one slash, or its first part
    is a folder here (``space/models/mnist-6to8``, ``models/x`` beside a ``models/`` folder)."""
    if model.startswith((".", "/", "~")) or model.count("/") > 1 or os.sep != "/" and os.sep in model:
        return True
    return "/" in model and os.path.isdir(model.split("/")[0])


def load_generator(model: str, *, revision: str | None = None, device: str = "cpu", **kwargs) -> CycleGenerator:
    """The translator a model folder or repo holds (a ``CycleGenerator``, or the class of the family its
    config.json names), with every failure turned into a one-line ValueError naming the model.

    ``model`` is a local ``save_pretrained`` folder or a Hub repo id ("user/mnist-6to9"). A name that can only be a
    folder and is not one fails at once, without asking the Hub."""
    if not os.path.isdir(model) and looks_like_a_local_path(model):
        raise MissingModel(f"{model}: no such model folder")
    try:
        return HubModule.from_pretrained(model, revision=revision, map_location=device, **kwargs)
    except HFValidationError:
        raise ValueError(f"{model!r}: no such model folder, and not a Hub repo id like 'user/name'") from None
    except GatedRepoError:
        raise ValueError(f"{model} is gated: accept its terms on the Hub and log in (HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise MissingModel(
            f"{model}: no such model repo on the Hub (or it is private and no token allows it)"
        ) from None
    except RevisionNotFoundError:
        raise ValueError(f"{model}: no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        raise MissingModel(
            f"{model}: no such local folder, and it is not in the Hub cache (the Hub cannot be reached)"
        ) from None
    except EntryNotFoundError:
        raise ValueError(f"{model} is not a cyclegan-hub model: it has no model.safetensors or config.json") from None
    except HfHubHTTPError as err:
        raise ValueError(f"could not download {model}: {first_line(err)}") from None
    except (FileNotFoundError, ValueError) as err:  # ours: a folder without weights, a config/weights mismatch
        raise ValueError(str(err)) from None


def check_pair(
    forward: CycleGenerator, reverse: CycleGenerator, names: tuple[str, str] = ("forward", "reverse")
) -> None:
    """Raise ValueError unless the two generators are the two directions of one pair (A -> B and B -> A)."""
    a, b = forward.config["source_domain"], forward.config["target_domain"]
    c, d = reverse.config["source_domain"], reverse.config["target_domain"]
    if (c, d) != (b, a):
        raise ValueError(f"{names[0]} ({a} -> {b}) and {names[1]} ({c} -> {d}) are not the two directions of one pair")


def twin_repo_id(repo_id: str) -> str:
    """The reverse direction's repo: the name's ``AtoB`` part swapped (``mnist-6to9`` -> ``mnist-9to6``,
    ``horse2zebra`` -> ``zebra2horse``), else ``<name>-reverse``."""
    namespace, _, name = repo_id.rpartition("/")
    parts = re.split(r"([-_])", name)
    for i in range(len(parts) - 1, -1, -2):
        match = _DIRECTION.match(parts[i])
        if match:
            parts[i] = match["b"] + match["sep"] + match["a"]
            return (namespace + "/" if namespace else "") + "".join(parts)
    match = _DIRECTION.match(name)
    if match:
        return (namespace + "/" if namespace else "") + match["b"] + match["sep"] + match["a"]
    return repo_id + "-reverse"


# ---------------------------------------------------------------------------------------------------------------
# pushing a pair
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class PushReport:
    """What a push did: the commit URL of each repo, and every file of the run that was not uploaded, with why."""

    commits: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def load_run_pair(run_dir: Path) -> list[CycleGenerator]:
    """The two generators of a run folder (or the one of a one-way family's run: ``generator_AtoB/`` alone), each
    from regular files inside it (a link out of it is refused)."""
    pair = []
    for name in RUN_GENERATORS:
        folder = run_dir / name
        weights = folder / "model.safetensors"
        if pair and getattr(type(pair[0]), "one_way", False) and not os.path.lexists(folder):
            return pair
        if not weights.exists() and not weights.is_symlink():
            raise ValueError(f"{run_dir} has no {name}/ with weights: is it a finished training run folder?")
        for path in (weights, folder / "config.json"):
            if not own_file(run_dir, path):
                raise ValueError(
                    f"{path} is not a regular file of its own inside {run_dir} (links, hard links included, are "
                    "never followed); nothing was pushed"
                )
        pair.append(load_generator(str(folder)))
    check_pair(*pair, names=RUN_GENERATORS)
    return pair


def newest_sample(run_dir: Path, skipped: list[str]) -> Path | None:
    """The newest ``samples/step-*.png`` that is a regular file inside the run and decodes as an image."""
    folder = run_dir / "samples"
    if folder.is_symlink() or not folder.is_dir():
        return None
    for path in sorted(folder.glob("step-*.png"), reverse=True):
        if not own_file(run_dir, path):
            skipped.append(f"{path.relative_to(run_dir)}: not a regular file of its own inside the run (a link?)")
            continue
        try:
            open_image(path, max_bytes=32 * 2**20)
        except ValueError as err:
            skipped.append(f"{path.relative_to(run_dir)}: {err}")
            continue
        return path
    return None


def stage_training_state(run_dir: Path, target: Path) -> None:
    """Copy the newest checkpoint's own files (every process's) into ``target``: regular files inside the run."""
    try:
        path = latest_checkpoint(run_dir)
        if path is None:
            raise ValueError(f"{run_dir} has no checkpoint to push with --include-training-state")
        checkpoint = local_checkpoint(path, run_dir)
        meta = read_json(checkpoint.path("training_state.json"), follow_links=False)
        processes = meta.get("num_processes")
        if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
            raise ValueError(f"{path}/training_state.json: num_processes must be a whole number")
        target.mkdir()
        for name in checkpoint_files(processes):
            source = Path(checkpoint.path(name))
            if not own_file(run_dir, source):
                raise ValueError(
                    f"{source} is not a regular file of its own inside {run_dir} (a hard link shares its bytes "
                    "with a file elsewhere); nothing was pushed"
                )
            if name.endswith(".safetensors"):
                read_safetensors_header(source)  # a ValueError naming the file unless it is one
            shutil.copyfile(source, target / name)
    except CheckpointError as err:
        raise ValueError(str(err)) from None


def name_base_on_hub(generator, base_model_id: str | None) -> None:
    """A translator built on a base model (the one-step family) names that base in its config.json. A base that is a
    local folder would publish a path of this machine and load nowhere else: it must be named by its Hub id
    (``base_model_id``: the Hub repo the folder is a copy of), or the push is refused."""
    base = generator.config.get("base_model")
    if base is None or not os.path.isdir(base):
        if base_model_id is not None and base is None:
            raise ValueError("--base-model-id names the base of a one-step translator; these generators have none")
        return
    if base_model_id is None:
        raise ValueError(
            f"the {generator.config['source_domain']} -> {generator.config['target_domain']} translator's base model "
            "is a local folder, which would load nowhere else: name the Hub repo it is a copy of with "
            "--base-model-id (e.g. stabilityai/sd-turbo); nothing was pushed"
        )
    generator.config["base_model"] = base_model_id
    generator._hub_mixin_config["base_model"] = base_model_id  # what save_pretrained writes into config.json


def push_pair(
    run_dir: str | os.PathLike,
    repo_id: str,
    *,
    reverse_repo_id: str | None = None,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    include_training_state: bool = False,
    token: str | None = None,
    retries: int = 3,
    base_model_id: str | None = None,
) -> PushReport:
    """Push both generators of a run folder (trained or converted), each as a complete repo in one commit.

    Raises ValueError (one line, the token never in it) for: a run folder without generators, a link out of it, no
    token, a rejected token (401), no write access (403), a Hub that cannot be reached after ``retries`` attempts."""
    from huggingface_hub import HfApi, get_token

    run_dir = Path(run_dir)
    if run_dir.is_symlink() or not run_dir.is_dir():
        raise ValueError(f"{run_dir} is not a run folder")
    pair = load_run_pair(run_dir)
    for generator in pair:
        name_base_on_hub(generator, base_model_id)
    if len(pair) == 1 and reverse_repo_id is not None:
        raise ValueError(f"{run_dir} holds one direction (a one-way model): it has no reverse to push")
    reverse_repo_id = reverse_repo_id or twin_repo_id(repo_id)
    if reverse_repo_id == repo_id:
        raise ValueError("the forward and reverse generators need two different repos")
    token = token or get_token()
    if not token:
        raise ValueError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    api = HfApi(token=token)
    inputs = CardInputs.load(run_dir)
    if not inputs.metrics and (run_dir / "metrics.json").exists():
        inputs.metrics = {
            k: v for k, v in read_json(run_dir / "metrics.json", follow_links=False).items() if k != "step"
        }
    report = PushReport()
    sample = newest_sample(run_dir, report.skipped)

    with tempfile.TemporaryDirectory(prefix="cyclegan-push-") as tmp:
        plans = []
        directions = [(pair[0], repo_id, reverse_repo_id, "AtoB"), (pair[-1], reverse_repo_id, repo_id, "BtoA")]
        for generator, repo, twin, direction in directions[: len(pair)]:
            twin = twin if len(pair) == 2 else None
            folder = Path(tmp) / repo.replace("/", "--")
            write_generator(generator, folder, inputs, direction, repo_id=repo, twin_repo_id=twin, sample=sample)
            plans.append((repo, folder))
        if include_training_state:
            stage_training_state(run_dir, plans[0][1] / "training_state")
        # Create both repos before the first commit, so that an access problem stops us with nothing pushed.
        for repo, _ in plans:
            _hub_call(lambda repo=repo: api.create_repo(repo, private=private, exist_ok=True), repo, retries)
            if revision:
                _hub_call(lambda repo=repo: api.create_branch(repo, branch=revision, exist_ok=True), repo, retries)
        source, target = pair[0].config["source_domain"], pair[0].config["target_domain"]
        arrow = "<->" if len(pair) == 2 else "->"
        message = commit_message or f"Upload {type(pair[0]).__name__} {source} {arrow} {target} with cyclegan-hub"
        for repo, folder in plans:
            try:
                info = _hub_call(
                    lambda repo=repo, folder=folder: api.upload_folder(
                        repo_id=repo, folder_path=folder, revision=revision, commit_message=message
                    ),
                    repo,
                    retries,
                )
            except ValueError as err:
                done = f"; already pushed: {', '.join(report.commits)}" if report.commits else "; nothing was pushed"
                raise ValueError(f"{err}{done}") from None
            report.commits[repo] = str(getattr(info, "commit_url", info))
    return report


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level failures of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx before)."""
    import importlib

    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _hub_call(fn, repo: str, retries: int):
    """Run a Hub call; retry network failures and 5xx answers, turn every failure into one line."""
    delay = 1.0
    for attempt in range(1, retries + 1):
        try:
            return fn()
        except HfHubHTTPError as err:
            status = err.response.status_code if err.response is not None else None
            if status == 401:
                raise ValueError(f"the Hub rejected the token (401) for {repo}: log in again or set HF_TOKEN") from None
            if status == 403:
                raise ValueError(
                    f"no write access to {repo} (403): check the namespace and the token's permissions"
                ) from None
            if status is not None and status < 500 or attempt == retries:
                raise ValueError(f"the Hub refused the push to {repo} ({status}): {first_line(err)}") from None
        except _transport_errors() as err:
            if attempt == retries:
                raise ValueError(
                    f"could not reach the Hub for {repo} after {retries} attempts: {type(err).__name__}"
                ) from None
        time.sleep(delay)
        delay *= 2
