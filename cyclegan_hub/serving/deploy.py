"""Deploy the Space for one or more pairs of generators on the Hub, in one commit.

The Space repo receives exactly four things: ``app.py`` (``app.SPACE_SCRIPT``, the very script ``space/app.py`` is),
a README whose front matter is the Space's configuration (sdk: gradio pinned to the version installed here; models:
the pairs, forward then reverse, which the app reads at start), a ``requirements.txt``, and this package as a wheel
that requirements.txt installs: the Space runs exactly the code that was tested, released or not.

The wheel holds exactly the package's own files: from a source checkout, the files git tracks under
``cyclegan_hub/`` (an untracked ``cyclegan_hub/.env`` or note never travels); from an installed package, the files
its distribution records. The built wheel is listed and compared with that set before anything is uploaded.
No weights are copied: the models are configuration, pulled by repo id when the Space starts.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

from .. import __version__, families
from ..hub.repos import _hub_call
from ..models.modeling import DEFAULT_MODEL_TYPE
from .app import SPACE_SCRIPT
from .pairs import load_pair

SPACE_TAGS = ["cyclegan", "image-to-image", "unpaired-image-translation", "gan"]
PACKAGE = "cyclegan_hub"


def source_checkout() -> Path | None:
    """The repository this package is imported from, when it is a git checkout of cyclegan-hub."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / ".git").exists() else None


def tracked_package_files(root: Path) -> list[str]:
    """The package's files that git tracks (as in the working tree), relative to ``root``."""
    result = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--", PACKAGE], cwd=root, capture_output=True, timeout=60
    )
    if result.returncode != 0:
        raise ValueError(
            f"cannot list the package's files with git: {result.stderr.decode(errors='replace').strip()[:200]}"
        )
    names = [n for n in result.stdout.decode().split("\0") if n]
    return sorted(n for n in names if (root / n).is_file() and not (root / n).is_symlink())


def build_wheel(root: Path, out: Path) -> Path:
    """A wheel of exactly the tracked package files of the checkout at ``root``, built in a staging copy."""
    package_files = tracked_package_files(root)
    if not package_files:
        raise ValueError(f"git tracks no file under {PACKAGE}/ in {root}")
    staging = out / "source"
    for name in [*package_files, "pyproject.toml", "README.md"]:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(staging)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    wheels = sorted(out.glob("cyclegan_hub-*.whl"))
    if result.returncode != 0 or not wheels:
        raise ValueError(
            f"could not build the cyclegan-hub wheel: {(result.stderr or result.stdout).strip().splitlines()[-1:]}"
        )
    check_wheel(wheels[-1], package_files)
    return wheels[-1]


def installed_wheel(out: Path) -> Path:
    """A wheel rebuilt from the files the installed distribution records (its own files, nothing else)."""
    dist = metadata.distribution("cyclegan-hub")
    package_files = sorted(
        str(f) for f in dist.files or [] if str(f).startswith(f"{PACKAGE}/") and not str(f).endswith(".pyc")
    )
    if not package_files:
        raise ValueError(
            "this cyclegan-hub is installed without its files (an editable install?): deploy from its checkout"
        )
    info = f"cyclegan_hub-{dist.version}.dist-info"
    wheel = out / f"cyclegan_hub-{dist.version}-py3-none-any.whl"
    records = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as z:
        entries = [(name, Path(dist.locate_file(name)).read_bytes()) for name in package_files]
        for name in ("METADATA", "entry_points.txt"):
            text = dist.read_text(name)
            if text is not None:
                entries.append((f"{info}/{name}", text.encode()))
        entries.append(
            (
                f"{info}/WHEEL",
                b"Wheel-Version: 1.0\nGenerator: cyclegan-hub\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
            )
        )
        for name, data in entries:
            z.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append((name, f"sha256={digest}", str(len(data))))
        buffer = io.StringIO()
        csv.writer(buffer).writerows([*records, (f"{info}/RECORD", "", "")])
        z.writestr(f"{info}/RECORD", buffer.getvalue())
    check_wheel(wheel, package_files)
    return wheel


def check_wheel(wheel: Path, package_files: list[str]) -> None:
    """Refuse a wheel that holds anything but ``package_files`` and its own metadata."""
    with zipfile.ZipFile(wheel) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
    extra = sorted(n for n in names if ".dist-info/" not in n and n not in package_files)
    missing = sorted(set(package_files) - set(names))
    if extra or missing:
        problem = (
            f"files that are not the package's own: {', '.join(extra[:5])}"
            if extra
            else f"missing {', '.join(missing[:5])}"
        )
        raise ValueError(f"the wheel built for the Space holds {problem}; nothing was uploaded")


def space_card(space_id: str, pairs: list[tuple[str, str, str, str]], hardware: str) -> str:
    """The Space's README: front matter (its configuration) and a short description. ``pairs``: (forward repo,
    reverse repo, domain A, domain B)."""
    import gradio
    from huggingface_hub import SpaceCard, SpaceCardData

    names = " · ".join(f"{a} ↔ {b}" for _, _, a, b in pairs)
    models = [repo for forward, reverse, _, _ in pairs for repo in (forward, reverse)]
    data = SpaceCardData(
        title=f"CycleGAN {names}"[:60],
        sdk="gradio",
        sdk_version=gradio.__version__,
        app_file="app.py",
        license="mit",
        models=models,
        tags=SPACE_TAGS,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
        suggested_hardware=hardware,
        emoji="🔄",
        colorFrom="indigo",
        colorTo="pink",
        pinned=False,
        short_description=f"CycleGAN: {names}, both ways, with the round trip"[:60],
    )
    lines = [
        f"- {a} ↔ {b}: [{f}](https://huggingface.co/{f}) and [{r}](https://huggingface.co/{r})" for f, r, a, b in pairs
    ]
    _, _, a, b = pairs[0]
    body = (
        f"# CycleGAN: {names}\n\nPick a pair, translate an image one way or the other, and see the round trip through "
        f"both generators. Models, pulled by id at start:\n\n" + "\n".join(lines) + "\n\n"
        f'API: `Client("{space_id}").predict(handle_file("in.png"), "{a} -> {b}", api_name="/translate")` '
        f"(the direction names the pair).\n\nBuilt with [cyclegan-hub](https://github.com/cyclegan-hub/cyclegan-hub).\n"
    )
    return str(SpaceCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + body))


def space_requirements(wheel: str, extras: list[str], hardware: str) -> str:
    """The Space's requirements.txt: this package's wheel with the ``extras`` of the families it serves (their
    records' ``extra``) and ``video`` (PyAV, for the Video tab), the gradio that was tested, and ``spaces`` on
    ZeroGPU hardware (its ``spaces.GPU`` attaches the GPU per call)."""
    wanted = f"[{','.join(sorted({*extras, 'video'}))}]"
    lines = [f"./{wheel}{wanted}", f"gradio=={gradio_version()}"]
    if hardware.startswith("zero-"):
        lines.append("spaces")
    return "\n".join(lines) + "\n"


def family_extra(model) -> str | None:
    """The pip extra of ``model``'s family (its record in ``cyclegan_hub.families``); None for a family without one
    or a model class no record names."""
    named = type(model).model_type or DEFAULT_MODEL_TYPE
    return families.RECORDS[named].extra if named in families.RECORDS else None


def gradio_version() -> str:
    import gradio

    return gradio.__version__


def deploy_space(
    space_id: str,
    models: list[str],
    *,
    private: bool = False,
    hardware: str = "cpu-basic",
    token: str | None = None,
    retries: int = 3,
) -> str:
    """Create or update the Space ``space_id`` serving each pair of ``models`` (each "forward[,reverse]"; the reverse
    defaults to the twin name) on ``hardware`` (requested through the Hub and written as the card's
    ``suggested_hardware``); returns the commit URL. Every model is loaded and checked before anything is uploaded."""
    from huggingface_hub import HfApi, SpaceHardware, get_token

    known = [h.value for h in SpaceHardware]
    if hardware not in known:
        raise ValueError(f"unknown Space hardware {hardware!r}; valid: {', '.join(known)}")
    token = token or get_token()
    if not token:
        raise ValueError("no Hugging Face token: set HF_TOKEN or log in with `hf auth login`")
    pairs, extras = [], set()
    for spec in models:
        (forward, reverse), (g, f) = load_pair(spec, failure="{repo} cannot be served", token=token)
        pairs.append((forward, reverse, g.config["source_domain"], g.config["target_domain"]))
        extras |= {e for e in (family_extra(g), family_extra(f)) if e}

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="cyclegan-space-") as tmp:
        folder = Path(tmp) / "space"
        folder.mkdir()
        (folder / "app.py").write_text(SPACE_SCRIPT)
        (folder / "README.md").write_text(space_card(space_id, pairs, hardware))
        root = source_checkout()
        wheel = build_wheel(root, Path(tmp) / "dist") if root is not None else installed_wheel(Path(tmp))
        shutil.copyfile(wheel, folder / wheel.name)
        (folder / "requirements.txt").write_text(space_requirements(wheel.name, sorted(extras), hardware))
        _hub_call(
            lambda: api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True),
            space_id,
            retries,
        )
        if hardware != "cpu-basic":  # the default needs no request (and a free account can make no other)
            _hub_call(lambda: api.request_space_hardware(space_id, hardware), space_id, retries)
        names = ", ".join(f"{a} <-> {b}" for _, _, a, b in pairs)
        info = _hub_call(
            lambda: api.upload_folder(
                repo_id=space_id,
                repo_type="space",
                folder_path=folder,
                commit_message=f"Deploy CycleGAN {names} with cyclegan-hub {__version__}",
                delete_patterns=["*.whl"],
            ),  # a redeploy replaces the old wheel
            space_id,
            retries,
        )
    return str(getattr(info, "commit_url", info))
