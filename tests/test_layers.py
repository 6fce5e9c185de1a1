"""The import contracts (pyproject.toml, [tool.importlinter]) that `make test` runs with
`lint-imports`: they hold on the code as it is, and they fail on a new upward import, on a new
link between reactions that must not know each other, and on a debt line that no longer matches
an import (so the list of known upward imports can only shrink)."""

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


def test_a_paid_debt_must_leave_the_list(copy):
    """Removing one known upward import without removing its line from the list fails too."""
    checkout = copy / "app" / "shop" / "checkout.py"
    text = checkout.read_text()
    assert "from app.points.tables import Voucher\n" in text
    checkout.write_text(text.replace("from app.points.tables import Voucher\n", "Voucher = None  # paid\n"))
    result = lint(copy)
    assert result.returncode != 0
    assert "app.shop.checkout -> app.points.tables" in result.stdout + result.stderr


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
