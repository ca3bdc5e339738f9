"""The house rules that keep the core hexagonal, checked on every test run."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = "responseiq_billing"  # the one import root src/ installs as (pyproject.toml's package-dir)
STDLIB = set(sys.stdlib_module_names)


def _ours(name: str) -> str | None:
    """``responseiq_billing.domain.money`` -> ``domain.money``; None for anyone else's module."""
    if name == ROOT:
        return ""
    return name.removeprefix(f"{ROOT}.") if name.startswith(f"{ROOT}.") else None


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
                ours = _ours(name)
                top = name.split(".")[0] if ours is None else ours.split(".")[0]
                found.setdefault(top, set()).add(str(path.relative_to(SRC)))
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


@pytest.mark.parametrize(
    "package", ["domain", "application", "adapters.stripe", "adapters.paddle", "adapters.fake"]
)
def test_mypy_strict_passes(package: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """mypy cannot follow setuptools' editable import hook, so it reads src/ through a link
    named like the import root."""
    api = pytest.importorskip("mypy.api")
    (tmp_path / ROOT).symlink_to(SRC, target_is_directory=True)
    monkeypatch.setenv("MYPYPATH", str(tmp_path))
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--no-incremental",
            "--config-file",
            str(SRC.parent / "pyproject.toml"),
            "-p",
            f"{ROOT}.{package}",
        ]
    )
    assert status == 0, stdout + stderr


def test_every_package_under_src_is_installed_under_the_one_root() -> None:
    pyproject = tomllib.loads((SRC.parent / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    on_disk = {
        ".".join([ROOT, *path.parent.relative_to(SRC).parts]) for path in SRC.rglob("__init__.py")
    }
    assert setuptools["package-dir"] == {ROOT: "src"}
    assert set(setuptools["packages"]) == on_disk


def test_nothing_imports_a_generic_top_level_name_of_ours() -> None:
    """``domain``, ``application`` and ``adapters`` exist only under the root (PyPI's ``adapters``
    is somebody else's package)."""
    generic = {"domain", "application", "adapters"}
    offenders = []
    for folder in (SRC, SRC.parent / "tests", SRC.parent / "benchmarks"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                if any(name.split(".")[0] in generic for name in names):
                    offenders.append(f"{path.relative_to(SRC.parent)}:{node.lineno}")
    assert offenders == []


def test_the_installed_distribution_has_one_top_level_name() -> None:
    distribution = importlib.metadata.distribution("responseiq-billing")
    assert (distribution.read_text("top_level.txt") or "").split() == [ROOT]


ADAPTERS = SRC / "adapters"


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Every module of ours and the modules of ours it imports, at any depth of the file."""
    modules = {_module(path): path for path in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
                targets += [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            ours = {_ours(target) for target in targets}
            found |= {target for target in ours if target in modules and target != name}
        graph[name] = found
    return graph


def test_the_http_adapter_imports_no_other_adapter_nor_the_composition_root() -> None:
    """Routes receive use cases and gateway pages from the composition root; the HTTP adapter
    knows no gateway and no container (the sandbox's pages live beside the sandbox, the Stripe
    webhook route beside the Stripe adapter)."""
    forbidden = ("adapters.fake", "adapters.stripe", "adapters.paddle", "adapters.sql")
    forbidden_exact = {"adapters.container", "adapters.app", "adapters.cli", "adapters.cli_ops"}
    offenders = {
        module: sorted(
            target
            for target in targets
            if target.startswith(forbidden) or target in forbidden_exact
        )
        for module, targets in _graph().items()
        if module.startswith("adapters.http")
    }
    assert {module: found for module, found in offenders.items() if found} == {}


def test_no_gateway_adapter_imports_another_or_the_composition_root() -> None:
    gateways = ("adapters.fake", "adapters.stripe", "adapters.paddle")
    offenders = {}
    for module, targets in _graph().items():
        own = next((g for g in gateways if module == g or module.startswith(f"{g}.")), None)
        if own is None:
            continue
        bad = sorted(
            t
            for t in targets
            if (t.startswith(gateways) and not (t == own or t.startswith(f"{own}.")))
            or t in {"adapters.container", "adapters.app"}
        )
        if bad:
            offenders[module] = bad
    assert offenders == {}


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


MODULE_LINE_LIMIT = 500


def test_every_module_reads_on_a_screen_or_two() -> None:
    """No module in src/ reaches 500 lines: a larger one holds more than one concern."""
    long = {
        str(path.relative_to(SRC)): lines
        for path in SRC.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) >= MODULE_LINE_LIMIT
    }
    assert long == {}
