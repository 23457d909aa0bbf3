"""A translated dataset published: its card (where the rows came from, the command that made them) and its dataset
repo on the Hub.

The card names local data and models by folder name, never by a path of this machine (``public``).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from . import translate as bulk

#: What a dataset repo receives of the output folder (not the resume state, not the hidden shards' sidecars).
ALLOW_PATTERNS = ["README.md", "examples.png", "data/*.parquet"]


def public(name: str | None) -> str | None:
    """A local file or folder by its name alone; anything else (a Hub id) as given."""
    return Path(name).name if name and Path(name).exists() else name


def card_command(
    model: str, domain: dict, *, reverse_model: str | None = None, output_column: str, drop_source: bool
) -> str:
    """The ``cyclegan-hub translate`` line that made the dataset, as the card shows it (local paths hidden)."""
    shown = {k: public(v) if k in ("path", "data_dir") and isinstance(v, str) else v for k, v in domain.items()}
    table = "{" + ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items()) + "}"
    words = ["translate", "--model", public(model), "--dataset", table]
    words += ["--reverse-model", public(reverse_model)] if reverse_model else []
    words += ["--output-column", output_column] + (["--drop-source"] if drop_source else [])
    return "cyclegan-hub " + " ".join(shlex.quote(w) for w in words)


def card_source(spec) -> str:
    """Where the rows came from, as the card shows it: the dataset (a local one by its name), split and filter."""
    source = f"{public(spec.path)}" + (f" ({public(spec.data_dir)})" if spec.data_dir else "") + f", split {spec.split}"
    return source + (f" where {spec.filter}" if spec.filter else "")


def write_dataset_card(
    output: str | os.PathLike, spec, *, model: str, command: str, output_column: str, drop_source: bool
) -> bulk.Report:
    """The card of the whole output (every process's shards) with its examples; returns the totals it counts."""
    total = bulk.totals(output)
    examples = bulk.examples(output, spec.image_column, output_column) if not drop_source else None
    bulk.write_card(
        output, source=card_source(spec), model=public(model), command=command, report=total, examples=examples
    )
    return total


def publish(output: str | os.PathLike, repo_id: str, private: bool, model: str) -> str:
    """Push the output folder as the dataset repo ``repo_id`` (created if missing) in one commit; its URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, repo_type="dataset", exist_ok=True, private=private)
    commit = api.upload_folder(
        repo_id=repo_id,
        repo_type="dataset",
        folder_path=str(output),
        allow_patterns=list(ALLOW_PATTERNS),
        commit_message=f"Translated with {model}",
    )
    return getattr(commit, "commit_url", commit)
