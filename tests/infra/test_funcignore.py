""".funcignore keeps the deployed package to the app itself.

azd (like Core Tools) reads .funcignore with gitignore-style patterns (azd through the
go-gitignore library, which agrees with git on the simple name and anchored patterns used here;
keep it to those). git is the judge in this test: the rules are loaded as a scratch
repository's exclude file and `git check-ignore --no-index` says which paths they drop. Nothing is created on disk for the paths, so probes for directories that
only exist on a developer's machine (.venv/, node_modules/) work in a fresh clone too.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_FILES = {"function_app.py", "host.json", "requirements.txt"}
APP_PACKAGE = "sync_core/"

MUST_SHIP = [
    "function_app.py",
    "host.json",
    "requirements.txt",
    "sync_core/__init__.py",
    "sync_core/settings.py",
    "sync_core/adapters/tables/employees.py",
    "sync_core/adapters/graph_pages.py",
    "sync_core/data/defaults.json",
    # Anchored patterns: a directory named like a top-level dev folder inside the app still ships.
    "sync_core/docs/fields.json",
    "sync_core/scripts/mapping.py",
]
MUST_NOT_SHIP = [
    "tests/unit/test_plan.py",
    "tests/fixtures/users_page1.json",
    "tests/infra/test_bicep.py",
    "simulator/identity.py",
    "bench/bench_sync.py",
    "devtools/azurite.py",
    "docs/deploy.md",
    "scripts/checkov.sh",
    "bin/sync-core",
    "node_modules/azurite/package.json",
    "node_modules/.bin/azurite",
    ".venv/bin/python",
    ".venv/lib/python3.11/site-packages/pytest/__init__.py",
    ".venv-checkov/bin/checkov",
    ".ci/run",
    "infra/main.bicep",
    "infra/modules/storage.bicep",
    "infra/main.parameters.json",
    "azure.yaml",
    "package.json",
    "package-lock.json",
    "requirements-dev.txt",
    "requirements-checkov.txt",
    "ruff.toml",
    "pytest.ini",
    "mypy.ini",
    "main_env/bin/python",  # azd restore's environment: <folder name>_env
    ".gitignore",
    ".gitattributes",
    ".github/workflows/ci.yml",
    ".funcignore",
    ".azure/dev/.env",
    ".env",
    "local.settings.json",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/0.17.6/123",
    "sync_core/__pycache__/settings.cpython-311.pyc",
    "README.md",
    "__azurite_db_table__.json",
    "__blobstorage__/blob",
    ".demo/state.json",
]


def ignored_by_funcignore(paths: list[str], tmp_path: Path) -> set[str]:
    """The subset of `paths` (relative, '/'-separated) that .funcignore leaves out."""
    git_dir, work_tree = tmp_path / "git", tmp_path / "tree"
    work_tree.mkdir()
    env = {
        **os.environ,
        "HOME": str(tmp_path),  # no global excludes file
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_DIR": str(git_dir),
        "GIT_WORK_TREE": str(work_tree),
    }
    subprocess.run(["git", "init", "-q"], check=True, env=env, cwd=work_tree)
    (git_dir / "info").mkdir(exist_ok=True)
    (git_dir / "info" / "exclude").write_text((ROOT / ".funcignore").read_text())
    result = subprocess.run(
        ["git", "-c", "core.excludesFile=", "check-ignore", "--no-index", "--stdin", "-z"],
        input="\0".join(paths) + "\0",
        capture_output=True,
        text=True,
        env=env,
        cwd=work_tree,
    )
    # 0: some paths are ignored, 1: none is; anything else is git failing.
    assert result.returncode in (0, 1), f"git check-ignore failed: {result.stderr}"
    return {path for path in result.stdout.split("\0") if path}


def repository_files() -> list[str]:
    """What a packager walking this checkout would see, less what git itself ignores."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout
    return sorted(path for path in listed.split("\0") if path and (ROOT / path).is_file())


def is_app_file(path: str) -> bool:
    return path in APP_FILES or path.startswith(APP_PACKAGE)


@pytest.mark.parametrize("path", MUST_SHIP)
def test_app_file_is_deployed(path: str, tmp_path: Path) -> None:
    assert not ignored_by_funcignore([path], tmp_path), f".funcignore drops {path}"


@pytest.mark.parametrize("path", MUST_NOT_SHIP)
def test_development_file_stays_out(path: str, tmp_path: Path) -> None:
    assert ignored_by_funcignore([path], tmp_path) == {path}, f".funcignore lets {path} ship"


def test_package_holds_only_the_app(tmp_path: Path) -> None:
    files = repository_files()
    deployed = set(files) - ignored_by_funcignore(files, tmp_path)
    stray = sorted(path for path in deployed if not is_app_file(path))
    assert not stray, (
        f"these files would be deployed but are not part of the app: {stray}; "
        "add them to .funcignore (or, if the app needs them, to APP_FILES here)"
    )


def test_every_app_file_in_the_repository_is_deployed(tmp_path: Path) -> None:
    app_files = [
        path for path in repository_files() if is_app_file(path) and "__pycache__" not in path
    ]
    assert any(path.startswith(APP_PACKAGE) for path in app_files), "sync_core/ not found"
    dropped = ignored_by_funcignore(app_files, tmp_path)
    assert not dropped, f".funcignore drops app files: {sorted(dropped)}"
