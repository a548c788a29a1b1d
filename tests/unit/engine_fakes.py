"""List-backed fakes of the engine's ports (sync_core/core/ports.py), shared by the engine
tests: a directory with pages (and a delta source), a writer that records its operations, a
store over a StoredIndex, a sync-state store, the run recorder and the configuration."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sync_core.core.config import CleanUp, TenantConfig
from sync_core.core.delta import SyncState, config_hash
from sync_core.core.engine import RunRequest, run_sync
from sync_core.core.mapping import Employee, Mapper
from sync_core.core.ports import (
    Change,
    DeltaPage,
    GraphStats,
    Lease,
    Organization,
    Ports,
    RowStamp,
    StoredIndex,
    TenantState,
    Unfenced,
    UnstorableEmployee,
)
from sync_core.core.report import RunReport
from sync_core.core.summary import StoredSummary, TenantSummary
from sync_core.errors import RetriableError

TENANT = "11111111-1111-4111-8111-111111111111"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
# No other run writes into the fakes' lists: the engine tests run without a lease.
IN_MEMORY = Unfenced("in-memory engine test")
GRAPH_DOWN = RetriableError("graph_unavailable", "Microsoft Graph answered 503.")


def user(n: int, *, mail: bool = True) -> dict[str, Any]:
    return {
        "id": f"u{n}",
        "userPrincipalName": f"u{n}@contoso.com",
        "mail": f"u{n}@contoso.com" if mail else None,
        "accountEnabled": True,
    }


def stored_hash(n: int) -> str:
    """The source hash the engine computes for user(n): stored, it makes the user unchanged."""
    employee = Mapper.from_config(TenantConfig()).employee(user(n))
    return employee.source_hash


@dataclass
class Directory:
    pages: list[list[dict[str, Any]]]
    fail_after: int | None = None  # pages read before the listing fails
    stats: GraphStats = field(default_factory=GraphStats)
    closed: bool = False

    async def organization(self) -> Organization | None:
        return Organization(TENANT, "Contoso", "contoso.com")

    async def users(
        self, select: Iterable[str], odata_filter: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        for number, page in enumerate(self.pages):
            if self.fail_after is not None and number >= self.fail_after:
                raise GRAPH_DOWN
            yield page
        if self.fail_after is not None and self.fail_after >= len(self.pages):
            raise GRAPH_DOWN

    async def close(self) -> None:
        self.closed = True


@dataclass
class Writer:
    """Records every operation in order; `fail_on_flush` makes the final flush fail."""

    unstorable: set[str]
    log: list[tuple[str, str]] = field(default_factory=list)
    committed: Counter[str] = field(default_factory=Counter)
    flushes: int = 0
    aborted: bool = False
    fail_on_flush: int | None = None

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        if employee.id in self.unstorable:
            raise UnstorableEmployee("the row is too large")
        self.log.append((str(change), employee.id))
        self.committed[change] += 1

    async def delete(self, employee_id: str) -> None:
        self.log.append(("deleted", employee_id))
        self.committed["deleted"] += 1

    async def flush(self) -> None:
        self.flushes += 1
        self.log.append(("flush", ""))
        if self.fail_on_flush == self.flushes:
            raise GRAPH_DOWN

    async def abort(self) -> None:
        self.aborted = True


@dataclass
class Store:
    index: StoredIndex
    writer_: Writer
    writers_opened: int = 0
    # Every read, in order: ("index", None) for the whole index, ("rows", ids) for keyed reads,
    # ("opened", None) when the writer was opened (the fence raised).
    reads: list[tuple[str, Any]] = field(default_factory=list)

    async def load_index(self, tenant_id: str) -> StoredIndex:
        self.reads.append(("index", None))
        return self.index

    async def stored_rows(self, tenant_id: str, ids: Iterable[str]) -> StoredIndex:
        wanted = set(ids)
        self.reads.append(("rows", tuple(sorted(wanted))))
        hashes = {i: h for i, h in self.index.hashes.items() if i in wanted}
        marks = {i: s for i, s in self.index.email_missing_since.items() if i in wanted}
        return StoredIndex(hashes, marks)

    async def writer(self, tenant_id: str, lease: Lease | Unfenced) -> Writer:
        self.writers_opened += 1
        self.reads.append(("opened", None))
        return self.writer_

    def check_storable(self, tenant_id: str, employee: Employee, stamp: RowStamp) -> None:
        if employee.id in self.writer_.unstorable:
            raise UnstorableEmployee("the row is too large")


@dataclass
class Holders:
    """The stored employees by address (AddressHolders): none unless a test stores some."""

    by_address: dict[str, set[str]] = field(default_factory=dict)

    async def holders(self, tenant_id: str, addresses: Iterable[str]) -> dict[str, set[str]]:
        return {a: set(self.by_address[a]) for a in addresses if a in self.by_address}


@dataclass
class Runs:
    saved: list[RunReport] = field(default_factory=list)

    async def save(self, report: RunReport) -> None:
        self.saved.append(report)


@dataclass
class Configs:
    config: TenantConfig

    async def get(self, tenant_id: str) -> TenantConfig | None:
        return self.config


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

    ports = Ports(open_directory, store, Runs(), Configs(config), sync_state=states,
                  addresses=Holders(), lease=IN_MEMORY)  # fmt: skip
    report = asyncio.run(run_sync(RunRequest(TENANT), ports, now=lambda: NOW))
    return report, states, writer
