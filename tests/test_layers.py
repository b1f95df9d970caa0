"""docs/DESIGN.md's layer table, checked against the imports of every module under src/adsc.

The table gives each part of the package a tier; a module may import its own part and parts of
lower tiers only (parts of one tier never import each other). Imports inside functions count like
any other: laziness hides an edge from a reader, not from the rule. An import inside a function
that reaches another adsc module must say why it is lazy (``# lazy: <why>``, e.g. it would pull in
transformers' Trainer for every caller). Imports under ``if TYPE_CHECKING:`` are not run and do
not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
DESIGN = ROOT / "docs" / "DESIGN.md"

# Function-level adsc imports in areas other work owns right now, not yet marked or moved
# (engine/ and profiling/: compiled decode; serving/: the vLLM work). Shrink this, never grow it.
UNMARKED_LAZY_ALLOWED = {
    "adsc/profiling/bench.py",
    "adsc/profiling/cli.py",
}


def layer_table() -> dict[str, int]:
    """{part: tier} from the first code block under '## Layers' in docs/DESIGN.md."""
    text = DESIGN.read_text()
    block = text.split("## Layers", 1)[1].split("```", 2)[1]
    tiers = {}
    for line in block.splitlines():
        m = re.match(r"\s*(\d+)\s+(adsc[\w.]*)\s", line + " ")
        if m:
            tiers[m.group(2)] = int(m.group(1))
    return tiers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted((SRC / "adsc").rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(sub) for stmt in node.body for sub in ast.walk(stmt))
    return skipped


def imports(name: str):
    """(line, target module, inside a function, source line) for each adsc import of module ``name``."""
    path = MODULES[name]
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    skipped = _type_checking_nodes(tree)
    in_function = {id(sub) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for sub in ast.walk(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            # `from pkg import sub` imports the module pkg.sub when there is one
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for target in dict.fromkeys(targets):
            if target == "adsc" or target.startswith("adsc."):
                yield node.lineno, target, id(node) in in_function, lines[node.lineno - 1]


def part_of(module: str, tiers: dict[str, int]) -> str:
    """The longest table entry that is ``module`` or a package above it."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in tiers:
            return candidate
    raise AssertionError(f"{module} is in no row of the layer table in {DESIGN}")


def test_every_part_of_the_package_is_in_the_layer_table():
    tiers = layer_table()
    assert tiers, f"no layer table found under '## Layers' in {DESIGN}"
    missing = sorted({".".join(m.split(".")[:2]) for m in MODULES if m != "adsc"} - set(tiers))
    assert not missing, f"add these to the layer table in docs/DESIGN.md: {missing}"
    stale = sorted(t for t in tiers if t not in MODULES)
    assert not stale, f"the layer table names modules that do not exist: {stale}"


def test_no_module_imports_a_higher_or_sibling_layer():
    tiers = layer_table()
    bad = []
    for name in MODULES:
        own = part_of(name, tiers)
        for line, target, _, _ in imports(name):
            other = part_of(target, tiers)
            if other != own and not tiers[other] < tiers[own]:
                bad.append(f"{MODULES[name].relative_to(ROOT)}:{line}: {own} (tier {tiers[own]}) imports "
                           f"{target} ({other}, tier {tiers[other]})")
    assert not bad, "imports against docs/DESIGN.md's layer table:\n" + "\n".join(bad)


def test_no_import_cycles_between_modules():
    graph = {name: {t for _, t, _, _ in imports(name) if t in MODULES and t != name} for name in MODULES}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert not cycles, "import cycles (lazy imports count):\n" + "\n".join(cycles)


def test_lazy_imports_of_adsc_modules_say_why():
    bad = []
    for name, path in MODULES.items():
        if str(path.relative_to(SRC)) in UNMARKED_LAZY_ALLOWED:
            continue
        for line, target, lazy, text in imports(name):
            if lazy and "# lazy:" not in text:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {text.strip()}")
    assert not bad, ("imports inside functions: move them to the top of the module, or say on the line why they "
                     "must wait (`# lazy: <why>`):\n" + "\n".join(bad))


def test_the_library_never_imports_the_testbed():
    """The testbed (testbed/, package adsc_testbed) depends on adsc, never the reverse: `pip install .`
    installs the library alone. A module name in a string counts too (importlib by name)."""
    bad = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                named = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                named = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                named = [node.value]
            else:
                continue
            if any(n == "adsc_testbed" or n.startswith("adsc_testbed.") for n in named):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert not bad, ("the library reaches the testbed (add a command through the `adsc.commands` entry point "
                     "group instead, as testbed/pyproject.toml does):\n" + "\n".join(bad))
