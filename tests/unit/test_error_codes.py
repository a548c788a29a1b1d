"""The error vocabulary: every stable code is an ErrorCode, and docs/runbook.md's "Failure codes"
table documents exactly those codes (an admin looks a code up there); every linking refusal is a
LinkRefusal, documented in the runbook's "Linking refusal codes" table and enumerated as
`reasonCode` in docs/openapi.yaml (a dashboard branches on it)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sync_core.errors import ErrorCode, LinkRefusal, internal_error

DOCS = Path(__file__).resolve().parents[2] / "docs"
RUNBOOK = DOCS / "runbook.md"
REFUSALS = "### Linking refusal codes"
_CODE = re.compile(r"`([a-z]+(?:_[a-z]+)*)`")


def documented_codes(runbook: str, heading: str = "## Failure codes") -> set[str]:
    """The codes the first column of the table under `heading` names (in backticks), up to the
    next heading."""
    section = runbook.split(f"\n{heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows, f"docs/runbook.md has no {heading} table"
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


def test_every_link_refusal_is_documented_in_the_runbook_and_nothing_else() -> None:
    documented = documented_codes(RUNBOOK.read_text(encoding="utf-8"), REFUSALS)
    assert sorted({c.value for c in LinkRefusal} - documented) == []
    assert sorted(documented - {c.value for c in LinkRefusal}) == []


def test_openapi_enumerates_exactly_the_link_refusals() -> None:
    document = yaml.safe_load((DOCS / "openapi.yaml").read_text(encoding="utf-8"))
    answer = document["paths"]["/connect/{requestId}"]["get"]["responses"]["200"]
    schema = answer["content"]["application/json"]["schema"]["properties"]["reasonCode"]
    assert sorted(set(schema["enum"]) - {None}) == sorted(c.value for c in LinkRefusal)


def test_the_table_check_stops_at_a_subheading() -> None:
    table = (
        "\n### Linking refusal codes\n\n| code | x |\n| `declined` | x |\n### Next\n| `later` |\n"
    )
    assert documented_codes(table, REFUSALS) == {"declined"}


def test_an_internal_error_names_the_type_never_the_message() -> None:
    failure = internal_error(KeyError("karl.wagner@contoso.com"))
    assert failure.code == ErrorCode.INTERNAL_ERROR == "internal_error"
    assert failure.message == "Unexpected KeyError."
    assert "karl" not in str(failure)
