"""The package layout is a rule, not a suggestion (docs/architecture.md): the core imports no SDK
and no outer layer; adapters import no surface and no app; and the function app's cold start
loads none of the heavy Graph and identity SDKs. Tests share helpers through helper modules, never
by importing another test module (whose tests would then run, or be collected, twice)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "sync_core"
TESTS = ROOT / "tests"
SDKS = ("azure", "httpx", "msgraph", "msgraph_core", "kiota", "aiohttp")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file (lazy imports inside functions too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = path.relative_to(ROOT).with_suffix("").parts[: -node.level]
                modules.add(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                modules.add(node.module)
    return modules


def offences(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for module in sorted(imported_modules(path)):
            top = module.split(".")[0]
            if top.startswith(forbidden) or module.startswith(forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {module}")
    return found


def test_the_scan_sees_lazy_imports():
    # The rule is only as good as the scan: an import inside a function counts.
    module = PACKAGE / "core" / "__init__.py"
    assert imported_modules(module) == set()
    sample = ROOT / "sync_core" / "app" / "service.py"
    assert "sync_core.adapters.graph" in imported_modules(sample)  # imported lazily there


def test_the_core_imports_no_sdk_and_no_outer_layer():
    forbidden = (*SDKS, "sync_core.adapters", "sync_core.app", "sync_core.surfaces")
    assert offences("core", forbidden) == []


def test_adapters_import_no_surface_and_no_app():
    assert offences("adapters", ("sync_core.surfaces", "sync_core.app")) == []


def test_the_app_imports_no_surface():
    assert offences("app", ("sync_core.surfaces",)) == []


@pytest.mark.parametrize("module", ["errors", "settings"])
def test_the_shared_top_level_modules_import_no_sdk(module: str):
    imports = imported_modules(PACKAGE / f"{module}.py")
    assert [m for m in imports if m.split(".")[0] in SDKS] == []


def test_importing_the_function_app_loads_no_graph_or_identity_sdk():
    heavy = ["msgraph", "msgraph_core", "kiota_abstractions", "kiota_http", "aiohttp",
             "azure.identity"]  # fmt: skip
    probe = f"import sys, function_app\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def imported_test_modules(path: Path, test_modules: set[str]) -> set[str]:
    """The test modules `path` imports: `from tests.x.test_y import ...`, `from tests.x import
    test_y`, and `from test_y import ...` (a test directory on sys.path)."""
    named: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in named if name.split(".")[-1] in test_modules}


def test_no_test_module_imports_another():
    test_modules = {path.stem for path in TESTS.rglob("test_*.py")}
    assert "test_layers" in test_modules
    found = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sorted(TESTS.rglob("*.py"))
        for module in sorted(imported_test_modules(path, test_modules))
    ]
    assert found == []
