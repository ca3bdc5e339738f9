"""The house rules that keep the core hexagonal, checked on every test run."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
STDLIB = set(sys.stdlib_module_names)


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(SRC)))
    return found


def test_domain_imports_only_the_standard_library_and_attrs() -> None:
    foreign = {
        name: files
        for name, files in _imports("domain").items()
        if name not in STDLIB and name not in {"attrs", "domain"}
    }
    assert foreign == {}


def test_application_depends_only_on_the_domain() -> None:
    foreign = {
        name: files
        for name, files in _imports("application").items()
        if name not in STDLIB and name not in {"attrs", "domain", "application"}
    }
    assert foreign == {}


def test_no_stripe_module_globals_are_assigned() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Attribute)
                        and isinstance(target.value, ast.Name)
                        and target.value.id == "stripe"
                    ):
                        offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("package", ["domain", "application", "adapters/stripe"])
def test_mypy_strict_passes(package: str) -> None:
    api = pytest.importorskip("mypy.api")
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--config-file",
            str(SRC.parent / "pyproject.toml"),
            str(SRC / package),
        ]
    )
    assert status == 0, stdout + stderr
