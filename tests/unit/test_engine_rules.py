"""The engine's rules, run against list-backed fakes of its ports (sync_core/core/ports.py): no
Graph, no Table Storage, milliseconds per case. The integration tests prove the same rules
through the real SDKs; these pin them where a change to the engine is made."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from sync_core.core.config import CleanUp, TenantConfig
from sync_core.core.engine import RunRequest, run_sync
from sync_core.core.ports import (
    Ports,
    StoredIndex,
)
from sync_core.core.report import RunReport, RunStatus
from tests.unit.engine_fakes import (
    GRAPH_DOWN,
    IN_MEMORY,
    NOW,
    TENANT,
    Configs,
    DeltaDirectory,
    Directory,
    Holders,
    Runs,
    States,
    Store,
    Writer,
    stored_hash,
    user,
)


@dataclass
class Case:
    pages: list[list[dict[str, Any]]]
    stored: tuple[int, ...] = ()  # users already stored unchanged
    clean_up: CleanUp = field(default_factory=CleanUp)
    dry_run: bool = False
    fail_after: int | None = None
    fail_on_flush: int | None = None
    unstorable: frozenset[str] = frozenset()
    missing_since: dict[str, datetime] = field(default_factory=dict)


@dataclass
class Outcome:
    report: RunReport
    writer: Writer
    store: Store
    runs: Runs
    directory: Directory


def run(case: Case) -> Outcome:
    writer = Writer(set(case.unstorable), fail_on_flush=case.fail_on_flush)
    index = StoredIndex({f"u{n}": stored_hash(n) for n in case.stored}, dict(case.missing_since))
    store = Store(index, writer)
    runs = Runs()
    # A first run: no link stored yet, so every case is a full run (delta: test_engine_delta.py).
    directory = DeltaDirectory(case.pages, case.fail_after)

    async def open_directory(tenant_id: str) -> DeltaDirectory:
        return directory

    config = Configs(TenantConfig(clean_up=case.clean_up))
    ports = Ports(open_directory, store, runs, config, sync_state=States(None), addresses=Holders(),
                  lease=IN_MEMORY)  # fmt: skip
    request = RunRequest(TENANT, dry_run=case.dry_run)
    report = asyncio.run(run_sync(request, ports, now=lambda: NOW))
    return Outcome(report, writer, store, runs, directory)


ON = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)


def test_a_user_repeated_across_pages_counts_once():
    outcome = run(Case(pages=[[user(1), user(2)], [user(2), user(3)]]))
    counts = outcome.report.counts
    assert (counts.read, counts.inScope, counts.created) == (3, 3, 3)
    assert [op for op in outcome.writer.log if op[0] == "created"] == [
        ("created", "u1"),
        ("created", "u2"),
        ("created", "u3"),
    ]
    assert counts.problems() == []


def test_a_dry_run_writes_nothing_but_counts_the_plan():
    outcome = run(Case(pages=[[user(1), user(2)]], stored=(3,), clean_up=ON, dry_run=True))
    assert outcome.store.writers_opened == 0  # the real writer is never even opened
    assert outcome.writer.log == []
    counts = outcome.report.counts
    assert (counts.created, counts.deleted) == (2, 1)
    assert outcome.report.status == RunStatus.SUCCEEDED and outcome.report.dry_run


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(Case(pages=[[user(1)], [user(2)]], stored=(9,), clean_up=ON, fail_after=1),
                     id="listing fails on page 2"),
        pytest.param(Case(pages=[[user(1)]], stored=(9,), clean_up=ON, fail_after=1),
                     id="listing fails after its last page"),
        pytest.param(Case(pages=[[user(1)]], stored=(9,), clean_up=ON, fail_on_flush=1),
                     id="a write fails"),
    ],
)  # fmt: skip
def test_a_failed_run_deletes_nothing_aborts_the_writer_and_is_failed(case: Case):
    outcome = run(case)
    assert [op for op in outcome.writer.log if op[0] == "deleted"] == []
    assert outcome.writer.aborted
    assert outcome.report.status == RunStatus.FAILED
    assert [e.code for e in outcome.report.errors] == [GRAPH_DOWN.code]
    assert outcome.directory.closed
    # Recorded running first, then with its final status.
    assert [r.status for r in outcome.runs.saved] == [RunStatus.RUNNING, RunStatus.FAILED]


def test_a_held_guard_ends_the_run_held_and_deletes_nothing():
    guard = CleanUp(enabled=True, max_deletes=1, max_delete_percent=100)
    outcome = run(Case(pages=[[user(1)]], stored=(1, 2, 3), clean_up=guard))
    assert outcome.report.status == RunStatus.HELD
    assert outcome.report.counts.deletesHeld == 2
    assert [op for op in outcome.writer.log if op[0] == "deleted"] == []
    assert any("deletions held" in w for w in outcome.report.warnings)


def test_deletes_come_last_after_every_write_has_been_flushed():
    outcome = run(Case(pages=[[user(1), user(2)], [user(3)]], stored=(8, 9), clean_up=ON))
    kinds = [kind for kind, _ in outcome.writer.log]
    first_delete = kinds.index("deleted")
    assert "created" not in kinds[first_delete:]
    assert kinds[first_delete - 1] == "flush"  # the writes landed before any delete was sent
    assert sorted(i for k, i in outcome.writer.log if k == "deleted") == ["u8", "u9"]
    assert outcome.report.status == RunStatus.SUCCEEDED


def test_the_writer_is_aborted_after_a_successful_run_too():
    # abort after flush is a no-op for the real writer; the engine always stops it.
    outcome = run(Case(pages=[[user(1)]]))
    assert outcome.writer.aborted and outcome.report.status == RunStatus.SUCCEEDED


@pytest.mark.parametrize("dry_run", [False, True], ids=["real run", "dry run"])
def test_an_unstorable_user_is_skipped_and_still_in_scope(dry_run: bool):
    case = Case(pages=[[user(1), user(2)]], stored=(2,), clean_up=ON, dry_run=dry_run,
                unstorable=frozenset({"u1"}))  # fmt: skip
    outcome = run(case)
    counts = outcome.report.counts
    assert (counts.skippedUnstorable, counts.created, counts.unchanged) == (1, 0, 1)
    assert outcome.report.skipped_unstorable == ("u1@contoso.com: the row is too large",)
    assert counts.deleted == 0  # u2 stays: it is in scope
    assert counts.problems() == []


def test_a_stored_user_whose_address_went_is_kept_marked_and_not_deleted():
    outcome = run(Case(pages=[[user(1, mail=False)]], stored=(1,), clean_up=ON))
    counts = outcome.report.counts
    assert (counts.noAddress, counts.deleted, counts.skippedNoEmail) == (1, 0, 0)
    assert outcome.report.no_address == ("u1@contoso.com",)
    assert ("updated", "u1") in outcome.writer.log  # rewritten with its mark


def test_a_stored_user_without_an_address_past_the_grace_period_is_removed():
    since = {"u1": NOW - timedelta(hours=25)}
    outcome = run(Case(pages=[[user(1, mail=False)]], stored=(1,), clean_up=ON,
                       missing_since=since))  # fmt: skip
    assert ("deleted", "u1") in outcome.writer.log
    assert outcome.report.counts.deleted == 1


def test_a_new_user_without_an_address_is_skipped_not_written():
    outcome = run(Case(pages=[[user(1, mail=False)]]))
    assert outcome.report.counts.skippedNoEmail == 1
    assert outcome.writer.log == [("flush", ""), ("flush", "")]
