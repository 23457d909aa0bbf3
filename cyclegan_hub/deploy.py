"""Deploy the Space (``space/app.py``) for a pair of generators on the Hub, in one commit.

The Space repo receives the very app file that ``cyclegan-hub serve`` runs, a README whose front matter is the
Space's configuration (sdk: gradio pinned to the version installed here, models: the pair, which the app reads
at start), and a requirements.txt that installs this package reproducibly:

- run from a source checkout, the package is built into a wheel that is uploaded into the Space repo and
  installed from there: the Space runs exactly the code that was tested, released or not;
- installed from an index, requirements.txt pins this release (``cyclegan-hub==<version>``).

No weights are copied: the models are configuration, pulled by repo id when the Space starts.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from . import __version__
from .hub import _hub_call, load_generator, twin_repo_id

SPACE_TAGS = ["cyclegan", "image-to-image", "unpaired-image-translation", "gan"]


def source_checkout() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "space" / "app.py").is_file() else None


def build_wheel(root: Path, out: Path) -> Path:
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(root)],
                            capture_output=True, text=True, timeout=600)
    wheels = sorted(out.glob("cyclegan_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ValueError(f"could not build the cyclegan-hub wheel: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    return wheels[-1]


def space_card(space_id: str, models: list[str], source: str, target: str, hardware: str) -> str:
    import gradio

    from huggingface_hub import SpaceCard, SpaceCardData

    data = SpaceCardData(
        title=f"CycleGAN {source} ↔ {target}"[:60], sdk="gradio", sdk_version=gradio.__version__, app_file="app.py",
        license="mit", models=models, tags=SPACE_TAGS, python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        suggested_hardware=hardware, emoji="🔄", colorFrom="indigo", colorTo="pink", pinned=False,
        short_description=f"CycleGAN: {source} ↔ {target}, both ways, with the round trip",
    )  # fmt: skip
    body = (
        f"# CycleGAN: {source} ↔ {target}\n\n"
        f"Translate an image from **{source}** to **{target}** or back, and see the round trip through both "
        f"generators. Models: [{models[0]}](https://huggingface.co/{models[0]}) and "
        f"[{models[1]}](https://huggingface.co/{models[1]}), pulled by id at start (set `CYCLEGAN_MODELS` to serve "
        f"another pair). API: `Client(\"{space_id}\").predict(handle_file(\"in.png\"), \"{source} -> {target}\", "
        f"api_name=\"/translate\")`.\n\nBuilt with [cyclegan-hub](https://github.com/cyclegan-hub/cyclegan-hub).\n"
    )
    return str(SpaceCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body))


def deploy_space(space_id: str, model: str, *, reverse_model: str | None = None, private: bool = False,
                 hardware: str = "cpu-basic", token: str | None = None, retries: int = 3) -> str:
    """Create or update the Space ``space_id`` serving ``model`` and its reverse; returns the commit URL."""
    from huggingface_hub import HfApi, get_token

    from .cli import space_app_path

    reverse_model = reverse_model or twin_repo_id(model)
    token = token or get_token()
    if not token:
        raise ValueError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    # Check both models before uploading anything: they must load as CycleGenerators and form a pair.
    pair = []
    for repo in (model, reverse_model):
        try:
            pair.append(load_generator(repo, token=token))
        except ValueError as err:
            raise ValueError(f"{repo} cannot be served: {err}") from None
    (a, b), (c, d) = [(g.config["source_domain"], g.config["target_domain"]) for g in pair]
    if (c, d) != (b, a):
        raise ValueError(f"{model} ({a} -> {b}) and {reverse_model} ({c} -> {d}) are not the two directions of one pair")

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="cyclegan-space-") as tmp:
        folder = Path(tmp) / "space"
        folder.mkdir()
        shutil.copyfile(space_app_path(), folder / "app.py")
        (folder / "README.md").write_text(space_card(space_id, [model, reverse_model], a, b, hardware))
        import gradio

        root = source_checkout()
        if root is not None:
            wheel = build_wheel(root, Path(tmp) / "dist")
            shutil.copyfile(wheel, folder / wheel.name)
            package = f"./{wheel.name}"
        else:
            package = f"cyclegan-hub=={__version__}"
        (folder / "requirements.txt").write_text(f"{package}\ngradio=={gradio.__version__}\n")
        _hub_call(lambda: api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private,
                                          exist_ok=True), space_id, retries)
        info = _hub_call(lambda: api.upload_folder(repo_id=space_id, repo_type="space", folder_path=folder,
                                                   commit_message=f"Deploy CycleGAN {a} <-> {b} with cyclegan-hub",
                                                   delete_patterns=["*.whl"]),  # a redeploy replaces the old wheel
                         space_id, retries)
    return str(getattr(info, "commit_url", info))
