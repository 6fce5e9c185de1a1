"""The import contracts (pyproject.toml, [tool.importlinter]) that `make test` runs with
`lint-imports`: they hold on the code as it is, and they fail on a new upward import, on a new
link between reactions that must not know each other; no upward import is excused, and the
packages of app/ import each other in no cycle."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The app package and its contracts, copied where a test may change them."""
    shutil.copytree(ROOT / "app", tmp_path / "app", ignore=shutil.ignore_patterns("__pycache__", "locale"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint(where: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=where, capture_output=True, text=True, timeout=240,
                          check=False)


def test_the_contracts_hold_on_the_code_as_it_is(copy):
    result = lint(copy)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers(copy):
    # The database layer reaching up into the shop.
    with (copy / "app" / "db.py").open("a") as db:
        db.write("\nfrom app.shop import cart as _cart  # noqa: E402,F401\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "app.db is not allowed to import app.shop" in result.stdout
    assert "BROKEN" in result.stdout


def test_a_core_domain_calling_a_reaction_breaks_the_layers(copy):
    # accounts emits events now; a direct call of the points ledger again is refused.
    with (copy / "app" / "accounts" / "service.py").open("a") as service:
        service.write("\nfrom app.points import service as _points  # noqa: E402,F401\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "app.accounts is not allowed to import app.points" in result.stdout


def test_reactions_that_must_not_know_each_other(copy):
    with (copy / "app" / "insight" / "service.py").open("a") as insight:
        insight.write("\nfrom app.experiments import service as _experiments  # noqa: E402,F401\n")
    result = lint(copy)
    assert result.returncode != 0
    assert "app.insight is not allowed to import app.experiments" in result.stdout


def test_no_upward_import_is_excused():
    """The debt list is paid: the layers contract excuses no import (`ignore_imports`), so a new
    upward import cannot be waved through by adding a line to pyproject.toml."""
    import tomllib

    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = [c for c in contracts if c["type"] == "layers"]
    assert layers and all(not c.get("ignore_imports") for c in layers)


def package_cycles(root: str, packages: set[str]) -> list[list[str]]:
    """The cycles of the import graph of `root` collapsed to its `packages`."""
    import grimp

    graph = grimp.build_graph(root, include_external_packages=False, cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            a, b = module.split(".")[1:2], imported.split(".")[1:2]
            if a and b and a != b and a[0] in packages and b[0] in packages:
                edges.setdefault(a[0], set()).add(b[0])
    done: set[str] = set()

    def cycle_from(package: str, path: list[str]) -> list[str] | None:
        if package in path:
            return path[path.index(package):] + [package]
        if package in done:
            return None
        for target in sorted(edges.get(package, ())):
            found = cycle_from(target, path + [package])
            if found:
                return found
        done.add(package)
        return None

    return [c for c in (cycle_from(p, []) for p in sorted(edges)) if c]


def test_no_import_cycle_among_the_packages_of_app():
    """Collapsed to the packages of app/ (accounts, ideas, shop, web...), the import graph has no
    cycle: the reactions import the domains they react to, and nothing imports back."""
    packages = {p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()}
    assert {"accounts", "ideas", "campaigns", "payments", "orders", "shop", "points", "web"} <= packages
    assert package_cycles("app", packages) == []


def test_a_cycle_is_found(tmp_path):
    """The check above can fail: three packages that import each other in a ring are a cycle."""
    ring = ("one", "two", "three")
    for name, other in zip(ring, ring[1:] + ring[:1]):
        (tmp_path / "ringed" / name).mkdir(parents=True)
        (tmp_path / "ringed" / name / "__init__.py").write_text(f"from ringed import {other}  # noqa: F401\n")
    (tmp_path / "ringed" / "__init__.py").write_text("")
    sys.path.insert(0, str(tmp_path))
    try:
        assert package_cycles("ringed", set(ring))[0] == ["one", "two", "three", "one"]
        (tmp_path / "ringed" / "three" / "__init__.py").write_text("")
        assert package_cycles("ringed", set(ring)) == []
    finally:
        sys.path.remove(str(tmp_path))


def _domain(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module


def test_no_module_imports_another_domains_private_names():
    """`from app.shop.reviews import _lock_product` in accounts was how privacy reached into the
    shop; a domain's underscored names are its own (the composition root's too)."""
    import ast

    offences = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app."):
                if _domain(node.module) == _domain(module):
                    continue
                offences += [f"{module}:{node.lineno} imports {node.module}.{alias.name}" for alias in node.names
                             if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert offences == []


def test_an_import_inside_a_function_says_why():
    """Imports sit at the top of a module; one inside a function (to break a cycle within the
    composition root, or to load something heavy only when used) carries a comment saying why."""
    import ast

    silent = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        said = "#" in lines[inner.lineno - 1] or lines[inner.lineno - 2].strip().startswith("#")
                        if not said:
                            silent.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    assert sorted(set(silent)) == []
