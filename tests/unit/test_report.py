"""The run report: its JSON contract, round trip through storage, and the text an admin reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_core.adapters.tables.run_record_rows import run_row_key
from sync_core.core.report import Counts, RunProblem, RunReport, new_run_id
from sync_core.core.report_text import render_text

STARTED = datetime(2026, 11, 26, 13, 23, 1, 123000, tzinfo=UTC)


def report(**changes) -> RunReport:
    values = dict(
        run_id=new_run_id(STARTED),
        tenant_id="8f6a6c3e-1d2b-4c5e-9f70-123456789abc",
        tenant_name="Contoso Ltd",
        mode="full",
        dry_run=False,
        status="held",
        started_at=STARTED,
        finished_at=STARTED + timedelta(seconds=4.25),
        counts=Counts(
            read=10,
            inScope=8,
            excluded=2,
            skippedNoEmail=1,
            noAddress=1,
            created=5,
            updated=1,
            unchanged=1,
            deletesHeld=7,
        ),
        excluded_by={"guest": 1, "disabled": 1},
        skipped_no_email=("room.4.12@contoso.com",),
        no_address=("left.mailbox@contoso.com",),
        graph_requests=4,
        graph_throttled=1,
        errors=(RunProblem("x", "message", "fix"),),
        warnings=("7 deletions held",),
    )
    values.update(changes)
    return RunReport(**values)


def test_json_contract():
    document = report().to_json()
    assert set(document) >= {
        "runId", "tenantId", "tenantName", "mode", "dryRun", "status", "startedAt", "finishedAt",
        "durationSeconds", "counts", "excludedBy", "skippedNoEmail", "noAddress", "graph",
        "errors",
    }  # fmt: skip
    assert document["noAddress"] == ["left.mailbox@contoso.com"]
    assert set(document["counts"]) >= {
        "read", "inScope", "excluded", "skippedNoEmail", "created", "updated", "unchanged",
        "deleted", "deletesHeld", "noAddress",
    }  # fmt: skip
    assert document["startedAt"] == "2026-11-26T13:23:01.123Z"
    assert document["durationSeconds"] == 4.25
    assert document["graph"] == {"requests": 4, "throttled": 1}
    assert document["errors"] == [{"code": "x", "message": "message", "fix": "fix"}]


def test_round_trip():
    original = report()
    assert RunReport.from_json(original.to_json()).to_json() == original.to_json()


def test_run_ids_sort_by_time_and_row_keys_newest_first():
    earlier, later = new_run_id(STARTED), new_run_id(STARTED + timedelta(milliseconds=1))
    assert earlier.startswith("20261126T132301123Z-") and earlier < later
    assert run_row_key(later) < run_row_key(earlier)


def test_text_explains_the_run():
    text = render_text(report())
    assert "Contoso Ltd" in text and "HELD" in text
    assert "guests" in text and "room.4.12@contoso.com" in text
    assert "Kept without a current address" in text and "left.mailbox@contoso.com" in text
    assert "Removals held by the guard       7" in text
    assert "What to do: fix" in text and "Warning: 7 deletions held" in text
    assert "dry run" in render_text(report(dry_run=True, status="succeeded"))


def test_users_table_storage_cannot_hold_are_counted_listed_and_explained():
    counts = Counts(read=10, inScope=8, excluded=2, skippedNoEmail=1, skippedUnstorable=2,
                    created=3, updated=1, unchanged=1)  # fmt: skip
    unstorable = ("big@contoso.com: the entity needs 1,300,000 bytes, more than 1 MiB",)
    original = report(counts=counts, skipped_unstorable=unstorable)
    document = original.to_json()
    assert document["counts"]["skippedUnstorable"] == 2
    assert document["skippedUnstorable"] == list(unstorable)
    assert RunReport.from_json(document).skipped_unstorable == unstorable
    text = render_text(original)
    assert "skipped, cannot store        2" in text
    assert "cannot hold them (retried every run)" in text and "big@contoso.com" in text


@pytest.mark.parametrize(
    ("changes", "problems"),
    [
        ({}, []),
        ({"skippedUnstorable": 0}, ["inScope != created + updated + unchanged + skippedNoEmail + skippedUnstorable"]),
        ({"read": 11}, ["read != inScope + excluded"]),
    ],
)  # fmt: skip
def test_counts_say_which_sums_do_not_add_up(changes, problems):
    values = dict(read=10, inScope=8, excluded=2, skippedNoEmail=1, skippedUnstorable=2,
                  created=3, updated=1, unchanged=1)  # fmt: skip
    values.update(changes)
    assert Counts(**values).problems() == problems
