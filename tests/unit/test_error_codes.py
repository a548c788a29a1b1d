"""The error vocabulary: every stable code is an ErrorCode, and docs/runbook.md's "Failure codes"
table documents exactly those codes (an admin looks a code up there)."""

from __future__ import annotations

import re
from pathlib import Path

from sync_core.errors import ErrorCode, internal_error

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"
_CODE = re.compile(r"`([a-z]+(?:_[a-z]+)*)`")


def documented_codes(runbook: str) -> set[str]:
    """The codes the first column of the "Failure codes" table names (in backticks)."""
    section = runbook.split("\n## Failure codes\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, "docs/runbook.md has no Failure codes table"
    return {code for row in rows for code in _CODE.findall(row.split(" | ", 1)[0])}


def test_every_code_is_documented_in_the_runbook() -> None:
    documented = documented_codes(RUNBOOK.read_text(encoding="utf-8"))
    assert sorted({c.value for c in ErrorCode} - documented) == []


def test_the_runbook_names_no_code_the_app_lacks() -> None:
    documented = documented_codes(RUNBOOK.read_text(encoding="utf-8"))
    assert sorted(documented - {c.value for c in ErrorCode}) == []


def test_the_table_check_reads_both_directions() -> None:
    table = (
        "\n## Failure codes\n\n| code | meaning | what to do |\n| --- | --- | --- |\n"
        "| `lease_lost`, `gave_up` (queue) | lost | nothing, `not_a_code` |\n"
        "| `throttled` (Graph `Request_Throttled`) | slow | wait |\n\n## Next\n| `later` | x |\n"
    )
    assert documented_codes(table) == {"lease_lost", "gave_up", "throttled"}


def test_an_internal_error_names_the_type_never_the_message() -> None:
    failure = internal_error(KeyError("karl.wagner@contoso.com"))
    assert failure.code == ErrorCode.INTERNAL_ERROR == "internal_error"
    assert failure.message == "Unexpected KeyError."
    assert "karl" not in str(failure)
