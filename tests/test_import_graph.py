"""The package's import graph: no cycles, no module over 400 lines.

Every ``import`` / ``from … import`` statement in every module under ``vniahd/`` counts, wherever
it stands (module top, inside a function or a class), because each one runs sooner or later.
The one exception is an import under ``if TYPE_CHECKING:``: it never executes, so it cannot take
part in an import cycle at run time (mypy resolves those lazily).

Importing ``a.b.c`` also runs ``a/__init__.py`` and ``a/b/__init__.py``, so it adds edges to the
packages ``a`` and ``a.b`` as well; ``from a.b import c`` adds an edge to the submodule ``a.b.c``
when ``c`` is one, else to ``a.b`` (the name comes from its ``__init__``). A module's own
ancestor packages are already running when its first line runs, so passing through them is no
edge; reading a name from one (``from vniahd.reporting import x`` inside ``vniahd.reporting.load``)
is.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "vniahd"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement, with whether it sits inside a function; skips TYPE_CHECKING blocks."""

    def walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for orelse in child.orelse:
                    yield from walk(orelse, in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, in_function
            yield from walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)))

    yield from walk(tree, False)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The vniahd modules (packages included) an import statement runs or reads.

    The importing module's own ancestor packages are left out where the statement only passes
    through them: Python starts them before the module's first line, whatever it imports. They
    count where the statement reads a name their ``__init__`` defines (``from vniahd.reporting
    import write_report`` inside ``vniahd.reporting.load``): that needs the ``__init__`` to have
    run that far, which is the cycle this test looks for.
    """
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    if is_package:
        own.add(module)
    passed: list[str] = []  # dotted names whose prefixes the statement imports
    read: set[str] = set()  # packages whose __init__ namespace the statement reads
    if isinstance(node, ast.Import):
        passed = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        passed = [target]
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            if sub in known:
                passed.append(sub)
            else:
                read.add(target)
    out: set[str] = set()
    for name in passed:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            prefix = ".".join(parts[:i])
            if prefix in known and prefix not in own:
                out.add(prefix)
    out |= read & known
    out.discard(module)
    return out


def import_graph() -> tuple[dict[str, set[str]], int]:
    """Module → the vniahd modules it imports; and how many of those imports sit in functions."""
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    in_functions = 0
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        edges: set[str] = set()
        for node, in_function in _imports(tree):
            targets = _targets(node, name, path.name == "__init__.py", known)
            edges |= targets
            if in_function and targets:
                in_functions += 1
        graph[name] = edges
    return graph, in_functions


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(components)


def test_no_import_cycles() -> None:
    graph, in_functions = import_graph()
    # Reported, not asserted: an import of our own module inside a function is there only to keep
    # `import vniahd` (or the CLI's start) free of torch, transformers, cv2, matplotlib, pandas….
    print(f"imports of vniahd modules inside functions: {in_functions}")
    cycles = find_cycles(graph)
    for cycle in cycles:
        print("cycle:", " <-> ".join(cycle))
    assert not cycles, f"{len(cycles)} import cycle(s): {cycles}"


def test_no_module_over_400_lines() -> None:
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_training_uses_only_the_public_evaluation_api() -> None:
    """The tiny model and its training take prompt templates from :mod:`vniahd.prompt_templates`
    and run evaluations only through :mod:`vniahd.evaluation`'s public names, never its internals."""
    graph, _ = import_graph()
    internal = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith(("vniahd.training", "vniahd.models.tiny"))
        for target in targets
        if target.startswith("vniahd.evaluation.")
    }
    assert not internal, f"evaluator internals imported: {sorted(internal)}"
