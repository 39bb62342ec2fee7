"""The package's import layering: no import cycles, and the low layers never reach up.

Every `import` under `src/mistd` is read with `ast` (function-level imports included: a lazy
import is still a dependency, it only hides the cycle until run time; imports under `if
TYPE_CHECKING:` are left out, they never run). The rules:

- no cycle between library modules (the CLI's `mistd.commands` registers subcommands by importing
  each other, `data` <-> `synth`, and is left out of this one check);
- no cycle between top-level subpackages (`models`, `losses`, `engine`, `inference`, ...), where the
  training loop (`mistd.engine.trainer`) counts as a layer of its own above evaluation and
  inference: it evaluates through them, while they read checkpoints and run configs from the rest
  of `mistd.engine`;
- `models` and `losses` never import the engine (nor inference, evaluation, data, commands);
  `losses` never imports `models`; `mistd.decoding` imports nothing from mistd;
- the weights layer (`mistd.weights`, `mistd.checkpoint`, `mistd.run_config`, `mistd.device`) sits
  below both the engine and inference: it imports neither, and inference never imports the
  engine (only the training loop, above both, imports inference and evaluation);
- library code never imports the CLI (`mistd.commands`, `mistd.cli`): commands parse arguments
  and call the library, and `benchmarks/` import only the library;
- the package's `__init__` (the lazy front door) is imported for `__version__` only.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mistd

SRC = Path(mistd.__file__).resolve().parent
# Modules of the training loop: the top layer of the engine (see the module docstring).
TRAINING_LOOP = ("mistd.engine.trainer",)
# Subpackage -> subpackages it must never import.
WEIGHTS_LAYER = ("weights", "checkpoint", "run_config", "device")
ABOVE_WEIGHTS = {"engine", "engine.trainer", "inference", "evaluation", "tracking", "commands"}
FORBIDDEN = {
    "models": {"engine", "inference", "evaluation", "data", "commands", "cli", "demo"},
    "losses": {"models", "engine", "inference", "evaluation", "data", "commands", "cli", "demo"},
    "inference": {"engine", "engine.trainer", "commands", "cli", "demo"},
    "engine": {"inference", "evaluation", "tracking", "commands", "cli", "demo"},
    **{name: ABOVE_WEIGHTS | {"cli", "demo"} for name in WEIGHTS_LAYER},
}
LIBRARY_NEVER_IMPORTS = ("mistd.commands", "mistd.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """`(imported module, imported names)` for every mistd import in `path` (absolute names)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # imports under `if TYPE_CHECKING:` are for annotations only, never run
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            # `from mistd.engine import distributed` imports the module mistd.engine.distributed
            for alias in names:
                if (SRC.parent / (target + "." + alias).replace(".", "/")).with_suffix(
                    ".py"
                ).is_file() or (SRC.parent / (target + "." + alias).replace(".", "/")).is_dir():
                    found.append((f"{target}.{alias}", []))
                    names = [n for n in names if n != alias]
            if names or not node.names:
                found.append((target, names))
    return [(m, n) for m, n in found if m == "mistd" or m.startswith("mistd.")]


def import_graph() -> dict[str, dict[str, list[str]]]:
    """module -> {imported mistd module: imported names}."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        edges: dict[str, list[str]] = defaultdict(list)
        for target, names in imports_of(path):
            edges[target] += names
        graph[module_name(path)] = dict(edges)
    return graph


def layer(module: str) -> str:
    """The node of `module` in the subpackage graph."""
    if module.startswith(TRAINING_LOOP):
        return "engine.trainer"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(edges: dict[str, set[str]]) -> list[str]:
    """One cycle of the directed graph `edges` as a list of nodes (first = last), or []."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return []

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def without_front_door(graph: dict[str, dict[str, list[str]]]) -> dict[str, set[str]]:
    return {
        module: {target for target in targets if target != "mistd"}
        for module, targets in graph.items()
        if module != "mistd"
    }


def test_the_graph_is_read():
    graph = import_graph()
    assert "mistd.weights" in graph["mistd.inference.detector"]
    assert "mistd.engine.distributed" in graph["mistd.engine.trainer"]  # `from pkg import mod`


def test_no_import_cycle_between_modules():
    library = {
        module: {target for target in targets if not target.startswith("mistd.commands")}
        for module, targets in without_front_door(import_graph()).items()
        if not module.startswith("mistd.commands")
    }
    cycle = find_cycle(library)
    assert not cycle, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_subpackages():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in without_front_door(import_graph()).items():
        for target in targets:
            if layer(module) != layer(target):
                edges[layer(module)].add(layer(target))
    cycle = find_cycle(edges)
    assert not cycle, "import cycle between subpackages: " + " -> ".join(cycle)


def test_low_layers_never_reach_up():
    bad = []
    for module, targets in import_graph().items():
        for target in targets:
            if layer(target) in FORBIDDEN.get(layer(module), ()):
                bad.append(f"{module} imports {target}")
            if module == "mistd.decoding":
                bad.append(f"{module} imports {target}")
    assert not bad, "\n".join(bad)


def test_the_front_door_is_imported_for_its_version_only():
    bad = [
        f"{module} imports {names} from mistd"
        for module, targets in import_graph().items()
        for target, names in targets.items()
        if target == "mistd" and set(names) != {"__version__"}
    ]
    assert not bad, "\n".join(bad)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}}) == []


def test_the_library_never_imports_the_cli():
    bad = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not module.startswith(LIBRARY_NEVER_IMPORTS)
        for target in targets
        if target.startswith(LIBRARY_NEVER_IMPORTS)
    ]
    assert not bad, "\n".join(bad)


def test_benchmarks_import_only_the_library():
    folder = SRC.parent.parent / "benchmarks"
    if not folder.is_dir():
        return
    bad = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [
                f"{path.name} imports {n}" for n in names if n.startswith(LIBRARY_NEVER_IMPORTS)
            ]
    assert not bad, "\n".join(bad)
