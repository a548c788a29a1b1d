"""checkov's Bicep policies over infra/, offline.

checkov lives in its own virtual environment (it pins an older pycep-parser than the tests use):
`scripts/checkov.sh --install-only` makes .venv-checkov/, and CHECKOV_BIN may point elsewhere.
A missing checkov fails these tests rather than skipping them, so CI cannot pass without it.

Every inline `checkov:skip` must carry a reason and be listed in REVIEWED_SKIPS below, so a new
exception is a visible change to this file, not a quiet comment in a template.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
CHECKOV = Path(os.environ.get("CHECKOV_BIN") or ROOT / ".venv-checkov" / "bin" / "checkov")

# check id -> why it does not apply to the default deployment (the inline comments say the same).
REVIEWED_SKIPS = {
    "CKV_AZURE_35": "storage firewall: no VNet by default; access is Entra-only (shared keys off)",
    "CKV_AZURE_59": "storage public network access: no VNet or private endpoints by default",
    "CKV_AZURE_109": "vault firewall: no VNet by default; App Service is not a trusted service",
    "CKV_AZURE_189": "vault public network access: no VNet or private endpoint by default",
    "CKV_AZURE_222": "site public network access: Sync Now must be reachable, needs a function key",
    "CKV_AZURE_17": "client certificates would break the documented function-key calls",
    "CKV_AZURE_212": "numberOfWorkers is a dedicated-plan setting; Flex scales by itself",
    "CKV_AZURE_213": "health check needs warm HTTP instances; the app scales to zero",
    "CKV_AZURE_225": "Flex zone redundancy: some regions only, needs zone-redundant storage",
}
SKIP_COMMENT = re.compile(r"checkov:skip=([A-Z0-9_]+)")


@cache
def report() -> dict[str, Any]:
    if not (CHECKOV.is_file() and os.access(CHECKOV, os.X_OK)):
        pytest.fail(
            f"checkov not found at {CHECKOV}: run scripts/checkov.sh --install-only "
            "or set CHECKOV_BIN"
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            "--framework",
            "bicep",
            "--skip-download",
            "--directory",
            "infra",
            "--output",
            "json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # 0: all passed, 1: some check failed; anything else is checkov itself failing.
    assert result.returncode in (0, 1), f"checkov crashed ({result.returncode}): {result.stderr}"
    parsed = json.loads(result.stdout)
    assert isinstance(parsed, dict) and parsed.get("check_type") == "bicep", (
        f"unexpected checkov output: {result.stdout[:500]}"
    )
    return parsed


def checks(kind: str) -> list[dict[str, Any]]:
    return report()["results"][kind]


def describe(check: dict[str, Any]) -> str:
    lines = "-".join(str(n) for n in check["file_line_range"])
    return f"{check['check_id']} {check['resource']} ({check['file_path']}:{lines})"


def test_every_template_was_parsed() -> None:
    """checkov skips a file its parser rejects; that must not pass as 'no failures'."""
    summary = report()["summary"]
    assert summary["parsing_errors"] == 0, (
        "checkov's pycep could not parse: "
        f"{report()['results'].get('parsing_errors')} (keep function calls on one line)"
    )
    assert summary["resource_count"] > 0


def test_no_failed_checks() -> None:
    failed = [f"{describe(c)}: {c['check_name']}" for c in checks("failed_checks")]
    assert not failed, "checkov failures:\n" + "\n".join(failed)


def test_every_skip_is_reviewed_and_explained() -> None:
    for check in checks("skipped_checks"):
        reason = check["check_result"].get("suppress_comment", "").strip()
        assert len(reason) >= 30, f"{describe(check)}: skip needs a written reason"
        assert check["check_id"] in REVIEWED_SKIPS, (
            f"{describe(check)} is skipped inline but not reviewed in REVIEWED_SKIPS"
        )


def test_every_inline_skip_still_matters() -> None:
    """A skip comment for a check that no longer runs (or sits in the wrong block) is stale."""
    skipped = {check["check_id"] for check in checks("skipped_checks")}
    written = {
        match for path in INFRA.rglob("*.bicep") for match in SKIP_COMMENT.findall(path.read_text())
    }
    assert written == skipped, f"inline skips with no effect: {written - skipped}"
    assert set(REVIEWED_SKIPS) == written, (
        f"reviewed but not in infra/: {set(REVIEWED_SKIPS) - written}; "
        f"in infra/ but not reviewed: {written - set(REVIEWED_SKIPS)}"
    )
