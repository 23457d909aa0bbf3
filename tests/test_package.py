"""The package as a house: light to import, floors whose arrows only point down, nothing run by file path."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cyclegan_hub"

#: Every module's floor. A module may import its own floor and the floors below, never above (the floors the
#: STYLE and the README describe: basics; networks, losses, data; what is built on them; the Hub and serving; apps).
FLOORS = {
    "files": 0,
    "imaging": 0,
    "layers": 0,
    "modeling": 0,
    "generator": 1,
    "discriminator": 1,
    "losses": 1,
    "objective": 1,
    "data": 1,
    "mnist_classifier": 1,
    "evaluate": 2,
    "export": 2,
    "cards": 2,
    "checkpoint": 2,
    "config": 2,
    "convert": 2,
    "hub": 3,
    "serving": 3,
    "app": 4,
    "deploy": 4,
    "cli": 4,
}


def package_imports(module: Path) -> set[str]:
    """The package modules ``module`` imports anywhere in its code (function-level imports included)."""
    found = set()
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("cyclegan_hub."):
                found.add(node.module.split(".")[1])
            elif node.module == "cyclegan_hub":
                found.update(alias.name for alias in node.names if (PACKAGE / f"{alias.name}.py").exists())
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("cyclegan_hub."))
    return {name for name in found if (PACKAGE / f"{name}.py").exists()}


def test_every_module_has_a_floor():
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert modules == set(FLOORS)


def test_no_import_points_up_and_there_is_no_cycle():
    graph = {name: package_imports(PACKAGE / f"{name}.py") for name in FLOORS}
    upward = [
        f"{a} (floor {FLOORS[a]}) imports {b} (floor {FLOORS[b]})"
        for a, deps in graph.items()
        for b in deps
        if FLOORS[b] > FLOORS[a]
    ]
    assert upward == []
    visiting, done = set(), set()

    def visit(node, path):
        assert node not in visiting, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        visiting.add(node)
        for dep in graph[node]:
            visit(dep, [*path, node])
        visiting.discard(node)
        done.add(node)

    for node in graph:
        visit(node, [])
    init = package_imports(PACKAGE / "__init__.py")
    assert all(FLOORS[name] <= 1 for name in init)  # `import cyclegan_hub` loads the networks and losses only


def test_nothing_runs_or_loads_project_files_by_path():
    offenders = []
    for path in [
        *PACKAGE.glob("*.py"),
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


def test_import_pulls_no_training_or_ui_library():
    code = (
        "import sys, cyclegan_hub, cyclegan_hub.cli, cyclegan_hub.hub, cyclegan_hub.imaging, cyclegan_hub.serving,"
        " cyclegan_hub.convert, cyclegan_hub.checkpoint, cyclegan_hub.cards;"
        "heavy = {'datasets', 'accelerate', 'diffusers', 'gradio', 'tensorboard', 'gradio_client', 'torchvision'} & set(sys.modules);"
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
