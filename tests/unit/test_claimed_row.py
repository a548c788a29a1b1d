"""The lease row a run's message carries (adapters/tables/claimed_row.py): what the claim wrote
comes back as the row the lease store would have read; a broken one is refused by name; one too
large for a queue message is not carried."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from sync_core.adapters.queue import MalformedMessage, RunMessage, parse_message
from sync_core.adapters.tables.claimed_row import ClaimedRow
from sync_core.adapters.tables.run_index_rows import index_of
from sync_core.core.report import IdleChecks, RunReport, RunStatus, Trigger
from sync_core.core.run_index import IdleStreak, RunIndex

TENANT = "11111111-2222-4333-8444-555555555555"
AT = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)


def queued(run_id: str) -> RunReport:
    return RunReport.begun(run_id, TENANT, RunStatus.QUEUED, dry_run=False,
                           trigger=Trigger.SCHEDULE, at=AT)  # fmt: skip


def test_the_claimed_row_comes_back_from_the_message_as_the_claim_wrote_it() -> None:
    idle = IdleStreak(
        "20261201T140000000Z-aaaaaa", IdleChecks(3, AT, AT), queued("20261202T130000000Z-bbbbbb")
    )
    index = RunIndex(runs=(queued("20261202T140000000Z-cccccc"),), latest_recorded=idle.after,
                     idle=idle, sweep_after=AT)  # fmt: skip
    message = RunMessage(
        TENANT, "20261202T140000000Z-cccccc", claimed=ClaimedRow.of('W/"1"', index)
    )
    parsed = parse_message(message.to_text())
    assert parsed.claimed is not None
    entity = parsed.claimed.entity(TENANT)
    assert entity.metadata["etag"] == 'W/"1"' and entity["Holder"] == ""
    assert index_of(entity) == index_of(ClaimedRow.of('W/"1"', index).properties)


@pytest.mark.parametrize(
    ("claimed", "named"),
    [
        ({"etag": "", "row": {}}, "claimed.etag"),
        ({"etag": "x"}, "claimed is not"),
        ({"etag": "x", "row": {"IdleFirst": "not a time"}}, "claimed.row.IdleFirst"),
        ({"etag": "x", "row": {"Runs0": [1]}}, "claimed.row.Runs0"),
        ({"etag": "x", "row": {"RunsChunks": 1, "Runs0": "not json"}}, "claimed.row"),
    ],
)
def test_a_broken_claimed_row_is_refused_by_name(claimed: object, named: str) -> None:
    body = {"tenantId": TENANT, "runId": "20261202T140000000Z-cccccc", "claimed": claimed}
    with pytest.raises(MalformedMessage, match=named):
        parse_message(json.dumps(body))


def test_a_row_too_large_for_a_message_is_not_carried() -> None:
    runs = tuple(queued(f"20261202T14{i:04d}000Z-{i:06x}") for i in range(60))
    big = ClaimedRow.of('W/"1"', RunIndex(runs=runs))
    assert big.to_json() is None
    assert "claimed" not in json.loads(RunMessage(TENANT, runs[0].run_id, claimed=big).to_text())
