"""The ports of the engine: what one run needs from the outside, declared by the core.

The adapters (sync_core/adapters) implement these over msgraph-sdk and Table Storage; the tests
implement them over lists (tests/unit/engine_fakes.py). Values that cross the boundary
live here too, so neither side imports the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sync_core.core.config import TenantConfig
from sync_core.core.delta import SyncState
from sync_core.core.group_sync import MembershipStore
from sync_core.core.lease import Lease as Lease
from sync_core.core.lease import Unfenced as Unfenced
from sync_core.core.manager_pass import ManagerIndex, ManagerReader
from sync_core.core.mapping import Employee
from sync_core.core.report import RunReport
from sync_core.core.summary import StoredSummary, TenantSummary
from sync_core.errors import DeltaStateLost as DeltaStateLost
from sync_core.errors import DeltaUnavailable as DeltaUnavailable
from sync_core.errors import LeaseLost as LeaseLost
from sync_core.errors import UnstorableEmployee as UnstorableEmployee

if TYPE_CHECKING:  # photos.py declares its ports with the writer below
    from sync_core.core.photos import PhotoStore

# --- Values ---------------------------------------------------------------------------------


@dataclass
class GraphStats:
    requests: int = 0
    throttled: int = 0
    dropped: int = 0
    listing_restarts: int = 0  # the listing began again after an expired page token
    advanced_query_refused: bool = False  # the tenant refused advanced queries (B2C)
    credential_warnings: tuple[str, ...] = ()  # e.g. a Key Vault secret about to expire


@dataclass(frozen=True)
class Organization:
    """The tenant as Graph describes it (for display only)."""

    id: str
    display_name: str | None
    default_domain: str | None


@dataclass(frozen=True)
class StoredIndex:
    hashes: dict[str, str]  # employee id -> source hash
    email_missing_since: dict[str, datetime]  # the rows marked as having no current address


@dataclass(frozen=True)
class DeltaPage:
    """One page of a delta round: its items (users, or `{"id", "@removed"}`), and on the last
    page the round's delta link."""

    items: list[dict[str, Any]]
    delta_link: str | None


class Change(StrEnum):
    """What a write does to an employee row; the writer counts what the store accepted by it."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


@dataclass(frozen=True)
class RowStamp:
    """The bookkeeping written beside an employee's fields: which run, when, and since when the
    employee has had no address (None while it has one)."""

    run_id: str
    synced_at: datetime
    email_missing_since: datetime | None = None


# --- Ports ----------------------------------------------------------------------------------


class UserDirectory(Protocol):
    """One tenant's directory, read-only. Errors arrive as sync_core.errors.SyncError."""

    stats: GraphStats

    async def organization(self) -> Organization | None:
        """None when Graph refuses to show it (403): the sync does not need it."""
        ...

    def users(
        self, select: Iterable[str], odata_filter: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]: ...

    async def close(self) -> None: ...


class DeltaSource(Protocol):
    """Changes of one tenant's users since a delta link (Graph's /users/delta)."""

    async def latest_delta_link(self, select: Iterable[str]) -> str:
        """A link for the directory as it is now, without reading users ("sync from now");
        DeltaUnavailable when Graph serves no delta here."""
        ...

    def delta_pages(self, delta_link: str) -> AsyncIterator[DeltaPage]:
        """The round that follows `delta_link`; DeltaStateLost when Graph forgot it."""
        ...


class TenantDirectory(UserDirectory, DeltaSource, ManagerReader, Protocol):
    """What a run reads of one tenant: the full listing, the delta source and the manager reads
    (the Graph adapter offers all three)."""


@dataclass(frozen=True)
class TenantState:
    """What a run reads before it decides anything: the delta link and the summary."""

    sync: SyncState | None
    summary: StoredSummary


class SyncStateStore(Protocol):
    """Where the delta link of each tenant is kept between runs, with its summary."""

    async def get(self, tenant_id: str) -> SyncState | None: ...

    async def put(self, tenant_id: str, state: SyncState) -> None: ...

    async def read(self, tenant_id: str) -> TenantState:
        """The sync state and the summary, in one request."""
        ...

    async def mark_writing(self, tenant_id: str, run_id: str) -> str:
        """Mark the summary as being written (no one trusts it until `save` stores one);
        returns the row's new ETag."""
        ...

    async def save(
        self,
        tenant_id: str,
        state: SyncState | None,
        summary: TenantSummary | None,
        summary_etag: str | None,
    ) -> None:
        """Store what is given (None: left as it is) in one transaction. The summary only if
        its row still has `summary_etag` (None: only if there is no row); if another run
        changed it meanwhile, the summary is marked as being written instead."""
        ...


class AddressHolders(Protocol):
    """The stored employees whose address is one of `addresses`: address -> their ids."""

    async def holders(self, tenant_id: str, addresses: Sequence[str]) -> dict[str, set[str]]: ...


class EmployeeWriter(Protocol):
    """Writes one tenant's employees; `committed` counts what the store accepted, by change."""

    committed: Counter[str]

    async def upsert(self, employee: Employee, change: Change, stamp: RowStamp) -> None:
        """Queue the row; UnstorableEmployee (nothing queued) when the store cannot hold it."""
        ...

    async def delete(self, employee_id: str) -> None: ...

    async def flush(self) -> None: ...

    async def abort(self) -> None: ...


class EmployeeStore(Protocol):
    async def load_index(self, tenant_id: str) -> StoredIndex: ...

    async def stored_rows(self, tenant_id: str, ids: Collection[str]) -> StoredIndex:
        """The index of these employees only (those stored): a read that costs O(len(ids)),
        whatever the tenant's size."""
        ...

    async def writer(self, tenant_id: str, lease: Lease | Unfenced) -> EmployeeWriter:
        """LeaseLost when `lease` is no longer the holder's; Unfenced: no fence at all."""
        ...

    def check_storable(self, tenant_id: str, employee: Employee, stamp: RowStamp) -> None:
        """UnstorableEmployee when the store could never hold this row (what a dry run asks)."""
        ...


class RunRecorder(Protocol):
    async def save(self, report: RunReport) -> None: ...


class ConfigSource(Protocol):
    async def get(self, tenant_id: str) -> TenantConfig | None:
        """None when the tenant has none stored; ConfigError when the stored one is invalid."""
        ...


@dataclass(frozen=True)
class Ports:
    """What a run needs from the outside; app.service builds the real ones."""

    open_directory: Callable[[str], Awaitable[TenantDirectory]]  # tenant id -> directory
    employees: EmployeeStore
    runs: RunRecorder
    configs: ConfigSource
    # Where the delta link and the summary are kept between runs (the engine tests keep them in
    # memory: tests/unit/engine_fakes.py).
    sync_state: SyncStateStore
    # Who else holds an address: a delta run reads only what changed, so it asks the store
    # (core/shared_addresses.py).
    addresses: AddressHolders
    # The tenant's lease held for this run: the writes are fenced by it. Unfenced only where no
    # other run can write (the in-memory tests); a dry run fences nothing whatever it is given.
    lease: Lease | Unfenced
    # Where scope groups' membership is kept between runs (core/group_sync.py); None: a tenant
    # scoped by groups runs full every time (the in-memory tests).
    memberships: MembershipStore | None = None
    # The manager index (core/manager_pass.ManagerIndex); None where no manager field is run.
    managers: ManagerIndex | None = None
    # Where profile photos go (core/photos.PhotoStore); None: photos are not kept.
    photos: PhotoStore | None = None
