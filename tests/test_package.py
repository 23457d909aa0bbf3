"""The package as a house: light to import, floors whose arrows only point down, nothing run by file path."""

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cyclegan_hub"

#: The floors of the house, bottom up (the README's Architecture section draws them). A module may import its own
#: floor and the floors below, never above; each subpackage is one floor, and so is each top-level module.
FLOORS = {
    "io": 0,  # files (safe reads, atomic writes), imaging (any image <-> tensor)
    "translation": 1,  # the one translation path: images in, images out, for any family
    "tiles": 1,  # full resolution in tiles that share the whole image's norm statistics
    "models": 2,  # the networks as Hub models (strict loading, options declared once), ONNX
    "training": 3,  # losses, objectives, families, data, config, checkpoint, evaluation
    "hub": 4,  # loading by id, pushing pairs, model cards
    "convert": 5,  # foreign checkpoints -> Hub models
    "bulk": 5,  # whole datasets translated
    "serving": 6,  # the pair server, the Gradio app, deploy-space
    "cli": 7,  # the cyclegan-hub command
    "families": 0,  # one record per model family: where its parts are, its extra, its convert options
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (``io.files``, ``translation``, ...), ``__init__`` files
    included as their package's name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts:
            found[".".join(parts)] = path
    return found


def floor(module: str) -> int:
    return FLOORS[module.split(".")[0]]


def package_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules ``name`` imports anywhere in its code (function-level imports included)."""
    is_package = path.name == "__init__.py"
    here = name.split(".") if name else []
    package = here if is_package else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
            elif node.module and (node.module == "cyclegan_hub" or node.module.startswith("cyclegan_hub.")):
                base = []
                node = ast.ImportFrom(
                    module=node.module.partition("cyclegan_hub")[2].lstrip(".") or None, names=node.names
                )
            else:
                continue
            target = base + (node.module.split(".") if node.module else [])
            for alias in node.names:
                full = ".".join([*target, alias.name])
                found.add(full if full in known else ".".join(target))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("cyclegan_hub."):
                    found.add(alias.name.partition(".")[2])
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    known = set(modules())
    return {name: package_imports(name, path, known) for name, path in modules().items()}


def test_every_module_has_a_floor():
    assert sorted({name.split(".")[0] for name in modules()}) == sorted(FLOORS)


def test_no_import_points_up_and_there_is_no_cycle():
    imports = graph()
    upward = [
        f"{a} (floor {floor(a)}) imports {b} (floor {floor(b)})"
        for a, deps in imports.items()
        for b in deps
        if floor(b) > floor(a)
    ]
    assert upward == []
    visiting, done = set(), set()

    def visit(node, path):
        assert node not in visiting, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        visiting.add(node)
        for dep in imports[node]:
            visit(dep, [*path, node])
        visiting.discard(node)
        done.add(node)

    for node in imports:
        visit(node, [])


def test_nothing_runs_or_loads_project_files_by_path():
    offenders = []
    for path in [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "training").glob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "space").glob("*.py"),
        *(ROOT / "tests").rglob("*.py"),
    ]:
        if path == Path(__file__):
            continue
        text = path.read_text()
        for needle in ("runpy", "spec_from_file_location", "exec_module"):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_import_pulls_no_training_ui_or_diffusion_library():
    """`import cyclegan_hub` loads the networks, the translation path and the losses, nothing above them; a whole
    CycleGAN translation (and the CLI, Hub, serving and conversion modules) imports no training, UI or diffusion
    library, so that a heavier family's dependencies stay an optional extra."""
    code = (
        "import sys, cyclegan_hub;"
        "loaded = sorted(m for m in sys.modules if m.startswith('cyclegan_hub.'));"
        "import cyclegan_hub.cli, cyclegan_hub.hub.repos, cyclegan_hub.serving.pairs, cyclegan_hub.convert.official,"
        " cyclegan_hub.training.checkpoint, cyclegan_hub.hub.cards;"
        "from PIL import Image;"
        "g = cyclegan_hub.CycleGenerator(base_channels=4, n_blocks=1, image_size=32);"
        "g.translate(Image.new('RGB', (40, 30)));"
        "heavy = {'datasets', 'accelerate', 'diffusers', 'peft', 'transformers', 'gradio', 'tensorboard',"
        " 'gradio_client', 'torchvision'} & set(sys.modules);"
        "print(loaded); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    loaded, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]"
    assert {floor(name.removeprefix("cyclegan_hub.")) for name in eval(loaded)} <= {0, 1, 2, 3}
    assert "cyclegan_hub.training.data" not in loaded and "cyclegan_hub.training.config" not in loaded


def test_readme_architecture_names_every_floor():
    """The README's Architecture section draws the tree: every subpackage and top-level module is in it."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    drawn = set(re.findall(r"^\s*([a-z_]+)(?:/|\.py)", section, flags=re.M))
    assert set(FLOORS) <= drawn, sorted(set(FLOORS) - drawn)
