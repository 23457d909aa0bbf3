"""The Hub side of the library: loading generators by repo id or folder with errors a user can act on."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HFValidationError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from .generator import CycleGenerator


def load_generator(model: str, *, revision: str | None = None, device: str = "cpu", **kwargs) -> CycleGenerator:
    """``CycleGenerator.from_pretrained`` with every failure turned into a one-line ValueError naming the model.

    ``model`` is a local ``save_pretrained`` folder or a Hub repo id ("user/mnist-6to9")."""
    try:
        return CycleGenerator.from_pretrained(model, revision=revision, map_location=device, **kwargs)
    except HFValidationError:
        raise ValueError(f"{model!r}: no such model folder, and not a Hub repo id like 'user/name'") from None
    except GatedRepoError:
        raise ValueError(f"{model} is gated: accept its terms on the Hub and log in (HF_TOKEN)") from None
    except RepositoryNotFoundError:
        raise ValueError(f"{model}: no such model repo on the Hub (or it is private and no token allows it)") from None
    except RevisionNotFoundError:
        raise ValueError(f"{model}: no revision {revision!r}") from None
    except LocalEntryNotFoundError:
        raise ValueError(f"{model} is not in the local cache and the Hub cannot be reached (offline?)") from None
    except EntryNotFoundError:
        raise ValueError(f"{model} is not a cyclegan-hub model: it has no model.safetensors") from None
    except HfHubHTTPError as err:
        raise ValueError(f"could not download {model}: {str(err).splitlines()[0]}") from None
    except (FileNotFoundError, ValueError) as err:  # ours: a folder without weights, a config/weights mismatch
        raise ValueError(str(err)) from None


# ---------------------------------------------------------------------------------------------------------------
# pushing a trained pair
# ---------------------------------------------------------------------------------------------------------------

RUN_GENERATORS = ("generator_AtoB", "generator_BtoA")
TRAINING_STATE_FILES = ("models.safetensors", "optimizers.safetensors", "training_state.json", "rank-0.safetensors")
_DIRECTION = re.compile(r"^(?P<a>[A-Za-z0-9]+)(?P<sep>2|to|-to-|_to_)(?P<b>[A-Za-z0-9]+)$")


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


def _card_inputs(run_dir: Path) -> dict:
    card = run_dir / "card.json"
    return json.loads(card.read_text()) if card.is_file() else {}


def stage_generator(generator: CycleGenerator, folder: Path, repo_id: str, twin: str | None, inputs: dict,
                    metrics: dict, sample: Path | None, direction: str) -> None:
    """Write a complete CycleGenerator repo into ``folder``: weights, config, card, sample image."""
    from huggingface_hub import EvalResult, ModelCard

    sample_name = None
    if sample is not None and sample.is_file():
        sample_name = "sample.png"
        shutil.copyfile(sample, folder / sample_name)
    from .evaluate import metrics_table, reversed_metrics

    own = metrics if direction == "a2b" else reversed_metrics(metrics)

    source, target = generator.config["source_domain"], generator.config["target_domain"]
    table = metrics_table(own, source, target) if any(k.startswith("cycle_l1") for k in own) else None
    generator.save_pretrained(folder, model_card_kwargs={
        "repo_id": repo_id, "twin_repo_id": twin, "sample_image": sample_name, "metrics_table": table,
        "training": inputs.get("training"),
    })  # fmt: skip
    card = ModelCard.load(folder / "README.md")
    card.data.datasets = inputs.get("datasets") or None
    name = repo_id.split("/")[-1]
    results = [
        EvalResult(task_type="image-to-image", dataset_type=(inputs.get("datasets") or [name])[0],
                   dataset_name=f"{source} -> {target} held-out images", metric_type=key, metric_name=label,
                   metric_value=round(float(own[key]), 4))
        for key, label in (("translation_accuracy_a2b", "translation accuracy"), ("cycle_accuracy_a2b", "cycle accuracy"),
                           ("cycle_l1_a2b", "cycle L1"))
        if key in own
    ]  # fmt: skip
    if results:
        card.data.model_name = name
        card.data.eval_results = results
    card.save(folder / "README.md")


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
) -> dict[str, str]:
    """Push both generators of a training run, each as a complete repo in one commit; returns {repo: commit url}.

    Raises ValueError (one line, the token never in it) for: a run folder without generators, no token, a rejected
    token (401), no write access (403), a Hub that cannot be reached after ``retries`` attempts."""
    from huggingface_hub import HfApi, get_token

    run_dir = Path(run_dir)
    for name in RUN_GENERATORS:
        if not (run_dir / name / "model.safetensors").is_file():
            raise ValueError(f"{run_dir} has no {name}/ with weights: is it a finished training run folder?")
    pair = [load_generator(str(run_dir / name)) for name in RUN_GENERATORS]
    reverse_repo_id = reverse_repo_id or twin_repo_id(repo_id)
    if reverse_repo_id == repo_id:
        raise ValueError("the forward and reverse generators need two different repos")
    token = token or get_token()
    if not token:
        raise ValueError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    api = HfApi(token=token)
    inputs = _card_inputs(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").is_file() else {}
    samples = sorted((run_dir / "samples").glob("step-*.png")) if (run_dir / "samples").is_dir() else []
    sample = samples[-1] if samples else None

    pushed = {}
    with tempfile.TemporaryDirectory(prefix="cyclegan-push-") as tmp:
        plans = []
        for generator, repo, twin, direction in ((pair[0], repo_id, reverse_repo_id, "a2b"),
                                                 (pair[1], reverse_repo_id, repo_id, "b2a")):
            folder = Path(tmp) / repo.replace("/", "--")
            folder.mkdir()
            stage_generator(generator, folder, repo, twin, inputs, metrics, sample, direction)
            plans.append((repo, folder))
        if include_training_state:
            checkpoint = latest_checkpoint(run_dir)
            if checkpoint is None:
                raise ValueError(f"{run_dir} has no checkpoint to push with --include-training-state")
            state = plans[0][1] / "training_state"
            state.mkdir()
            for name in TRAINING_STATE_FILES:
                shutil.copyfile(checkpoint / name, state / name)
        # Create both repos before the first commit, so that an access problem stops us with nothing pushed.
        for repo, _ in plans:
            _hub_call(lambda: api.create_repo(repo, private=private, exist_ok=True), repo, retries)
            if revision:
                _hub_call(lambda: api.create_branch(repo, branch=revision, exist_ok=True), repo, retries)
        for repo, folder in plans:
            message = commit_message or f"Upload CycleGAN generator {pair[0].config['source_domain']} <-> " \
                                        f"{pair[0].config['target_domain']} with cyclegan-hub"
            try:
                info = _hub_call(lambda: api.upload_folder(repo_id=repo, folder_path=folder, revision=revision,
                                                           commit_message=message), repo, retries)
            except ValueError as err:
                done = f"; already pushed: {', '.join(pushed)}" if pushed else "; nothing was pushed"
                raise ValueError(f"{err}{done}") from None
            pushed[repo] = str(getattr(info, "commit_url", info))
    return pushed


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a training run: the one ``checkpoints/latest`` names, else the highest
    ``step-*`` folder with a training_state.json (checkpoints are renamed into place whole)."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if pointer.is_file() and (root / pointer.read_text().strip() / "training_state.json").is_file():
        return root / pointer.read_text().strip()
    complete = sorted(p for p in root.glob("step-*") if (p / "training_state.json").is_file())
    return complete[-1] if complete else None


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
                raise ValueError(f"no write access to {repo} (403): check the namespace and the token's permissions") from None
            if status is not None and status < 500 or attempt == retries:
                raise ValueError(f"the Hub refused the push to {repo} ({status}): {str(err).splitlines()[0]}") from None
        except _transport_errors() as err:
            if attempt == retries:
                raise ValueError(f"could not reach the Hub for {repo} after {retries} attempts: {type(err).__name__}") from None
        time.sleep(delay)
        delay *= 2
