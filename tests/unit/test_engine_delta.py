"""The engine's delta rules against list-backed fakes of its ports (the fakes of
test_engine_rules.py plus a delta source and a sync-state store): commit last, Graph forgetting
the link, delta unavailable, the guard against the stored count."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sync_core.core.config import CleanUp, TenantConfig
from sync_core.core.delta import SyncState, config_hash
from sync_core.core.engine import RunRequest, run_sync
from sync_core.core.ports import (
    DeltaPage,
    DeltaStateLost,
    DeltaUnavailable,
    Ports,
    StoredIndex,
    TenantState,
)
from sync_core.core.report import RunStatus
from sync_core.core.summary import StoredSummary, TenantSummary
from tests.unit.test_engine_rules import (
    NOW,
    TENANT,
    Configs,
    Directory,
    Runs,
    Store,
    Writer,
    stored_hash,
    user,
)

OLD_LINK = "https://graph/v1.0/users/delta?$deltatoken=old"
NEW_LINK = "https://graph/v1.0/users/delta?$deltatoken=new"
LATEST = "https://graph/v1.0/users/delta?$deltatoken=latest-now"


@dataclass
class DeltaDirectory(Directory):
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)
    delta_error: Exception | None = None
    latest_error: Exception | None = None
    asked: list[str] = field(default_factory=list)

    async def latest_delta_link(self, select: Iterable[str]) -> str:
        self.asked.append("latest")
        if self.latest_error is not None:
            raise self.latest_error
        return LATEST

    async def delta_pages(self, delta_link: str) -> AsyncIterator[DeltaPage]:
        self.asked.append(delta_link)
        if self.delta_error is not None:
            raise self.delta_error
        for number, items in enumerate(self.rounds):
            yield DeltaPage(items, NEW_LINK if number == len(self.rounds) - 1 else None)


@dataclass
class States:
    state: SyncState | None
    summary: TenantSummary | None = None
    puts: list[SyncState] = field(default_factory=list)
    summaries: list[TenantSummary] = field(default_factory=list)
    marked: list[str] = field(default_factory=list)

    async def get(self, tenant_id: str) -> SyncState | None:
        return self.state

    async def put(self, tenant_id: str, state: SyncState) -> None:
        self.puts.append(state)

    async def read(self, tenant_id: str) -> TenantState:
        return TenantState(self.state, StoredSummary(self.summary, "etag-0"))

    async def mark_writing(self, tenant_id: str, run_id: str) -> str:
        self.marked.append(run_id)
        return "etag-1"

    async def save(self, tenant_id: str, state: SyncState | None,
                   summary: TenantSummary | None, summary_etag: str | None) -> None:  # fmt: skip
        if state is not None:
            self.puts.append(state)
        if summary is not None:
            self.summaries.append(summary)

    @property
    def writes(self) -> int:
        return len(self.puts) + len(self.summaries) + len(self.marked)


def sync(directory: DeltaDirectory, stored: tuple[int, ...], *, link: str | None = OLD_LINK,
         clean_up: CleanUp | None = None, fail_on_flush: int | None = None,
         state_without_link: bool = False, missing_since: dict | None = None,
         summary: bool = True, taken_at=NOW):  # fmt: skip
    """One run; by default the stored summary agrees with the stored rows."""
    config = TenantConfig(clean_up=clean_up or CleanUp())
    known = link is not None or state_without_link
    states = States(SyncState(link, config_hash(config), taken_at, NOW) if known else None)
    writer = Writer(set(), fail_on_flush=fail_on_flush)
    hashes = {f"u{n}": stored_hash(n) for n in stored}
    store = Store(StoredIndex(hashes, dict(missing_since or {})), writer)
    if summary:
        states.summary = TenantSummary(len(hashes), dict(missing_since or {}))
    sync.store = store

    async def open_directory(tenant_id: str) -> DeltaDirectory:
        return directory

    ports = Ports(open_directory, store, Runs(), Configs(config), sync_state=states)
    report = asyncio.run(run_sync(RunRequest(TENANT), ports, now=lambda: NOW))
    return report, states, writer


def test_a_delta_run_commits_the_new_link_after_its_writes():
    changed = {**user(1), "jobTitle": "new"}
    directory = DeltaDirectory(pages=[], rounds=[[changed], [user(5)]])
    report, states, writer = sync(directory, stored=(1, 2))
    assert (report.mode, report.status) == ("delta", RunStatus.SUCCEEDED)
    assert (report.counts.created, report.counts.updated) == (1, 1)
    assert [s.delta_link for s in states.puts] == [NEW_LINK]
    assert writer.log[-1] == ("flush", "")


def test_a_run_whose_writes_fail_keeps_the_old_link():
    directory = DeltaDirectory(pages=[], rounds=[[{**user(1), "jobTitle": "new"}]])
    report, states, _ = sync(directory, stored=(1,), fail_on_flush=1)
    assert report.status == RunStatus.FAILED and states.puts == []


def test_graph_forgetting_the_link_makes_the_same_run_full_with_a_new_link():
    directory = DeltaDirectory(pages=[[user(1), user(2)]], delta_error=DeltaStateLost("410"))
    report, states, _ = sync(directory, stored=(1,))
    assert (report.mode, report.full_reason, report.status) == (
        "full",
        "syncStateLost",
        RunStatus.SUCCEEDED,
    )
    assert directory.asked == [OLD_LINK, "latest"]
    assert [s.delta_link for s in states.puts] == [LATEST]


def test_delta_unavailable_falls_back_to_full_runs_with_a_warning_and_no_failure():
    directory = DeltaDirectory(pages=[[user(1)]], latest_error=DeltaUnavailable("501"))
    report, states, _ = sync(directory, stored=(), link=None)
    assert (report.mode, report.status) == ("full", RunStatus.SUCCEEDED)
    assert any("delta" in w for w in report.warnings)
    assert [s.delta_link for s in states.puts] == [None]  # the next run is full again


def test_removed_users_and_users_out_of_scope_are_removed_under_clean_up_only():
    disabled = {**user(2), "accountEnabled": False}
    removed = {"id": "u3", "@removed": {"reason": "deleted"}}
    on = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)
    report, _, writer = sync(DeltaDirectory(pages=[], rounds=[[disabled, removed]]),
                             stored=(1, 2, 3), clean_up=on)  # fmt: skip
    assert sorted(op[1] for op in writer.log if op[0] == "deleted") == ["u2", "u3"]
    assert report.counts.employees == 1
    kept, _, writer = sync(DeltaDirectory(pages=[], rounds=[[disabled, removed]]), stored=(1, 2, 3))
    assert kept.counts.staleKept == 2 and not [op for op in writer.log if op[0] == "deleted"]


def test_the_guard_holds_a_mass_disable_against_the_stored_count_and_keeps_the_link():
    guarded = CleanUp(enabled=True, max_deletes=500, max_delete_percent=20)
    disabled = [{**user(n), "accountEnabled": False} for n in range(1, 5)]
    report, states, writer = sync(DeltaDirectory(pages=[], rounds=[disabled]),
                                  stored=tuple(range(1, 11)), clean_up=guarded)  # fmt: skip
    assert report.status == RunStatus.HELD and report.counts.deletesHeld == 4
    assert not [op for op in writer.log if op[0] == "deleted"] and states.puts == []


def test_a_tenant_without_delta_asks_again_at_each_full_run_and_uses_it_once_offered():
    directory = DeltaDirectory(pages=[[user(1)]])
    report, states, _ = sync(directory, stored=(1,), link=None, state_without_link=True)
    assert (report.mode, report.full_reason) == ("full", "deltaUnavailable")
    assert directory.asked == ["latest"] and [s.delta_link for s in states.puts] == [LATEST]


def test_the_no_address_grace_holds_in_delta_runs():
    """A stored employee whose address disappears is kept (marked); one marked before the grace
    period and not in the round (so still without an address) is removed under Clean Up."""
    on = CleanUp(enabled=True, max_deletes=500, max_delete_percent=100)
    lost_address = user(1, mail=False)
    report, _, writer = sync(DeltaDirectory(pages=[], rounds=[[lost_address]]), stored=(1, 2, 3),
                             clean_up=on, missing_since={"u2": NOW - timedelta(hours=48)})  # fmt: skip
    assert report.counts.noAddress == 1 and ("updated", "u1") in writer.log
    assert [op[1] for op in writer.log if op[0] == "deleted"] == ["u2"]
