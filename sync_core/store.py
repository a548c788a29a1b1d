"""Table Storage: employees, run records and tenant configurations.

The only module that imports azure-data-tables. Employees are written in entity-group
transactions (one partition, at most 100 operations, under 4 MiB), several in flight at once.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .config import ConfigError, TenantConfig, parse_config, stored_form
from .mapping import Employee
from .report import FINAL_STATUSES, RunError, RunReport

EMPLOYEES_TABLE = "Employees"
RUNS_TABLE = "SyncRuns"
CONFIGS_TABLE = "TenantConfigs"
LEASES_TABLE = "SyncLeases"
TABLE_NAMES = (EMPLOYEES_TABLE, RUNS_TABLE, CONFIGS_TABLE, LEASES_TABLE)
SYNC_QUEUE = "sync-requests"

MAX_BATCH_OPERATIONS = 100
MAX_BATCH_BYTES = 3_500_000  # under the 4 MiB transaction limit, with room for the envelope
BATCHES_IN_FLIGHT = 4
_CHUNK_CHARS = 30_000  # a string property holds 64 KiB of UTF-16
_CONFIG_CHUNK_UNITS = 32_000  # UTF-16 code units, under a string property's 32,767
BOOKKEEPING = ("SourceHash", "SyncedAt", "RunId")
EMAIL_MISSING_SINCE = "EmailMissingSince"
_SYSTEM = {"PartitionKey", "RowKey", "Timestamp", "etag"}


def open_tables(
    connection_string: str | None, endpoint: str | None, credential: AsyncTokenCredential | None
) -> TableServiceClient:
    if connection_string:
        return TableServiceClient.from_connection_string(connection_string)
    if endpoint and credential is not None:
        return TableServiceClient(endpoint=endpoint, credential=credential)
    raise ValueError("table storage needs a connection string or an endpoint with a credential")


async def ensure_tables(service: TableServiceClient) -> None:
    for name in TABLE_NAMES:
        try:
            await service.create_table(name)
        except ResourceExistsError:
            pass


def employee_entity(
    tenant_id: str,
    employee: Employee,
    run_id: str,
    now: datetime,
    email_missing_since: datetime | None = None,
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": tenant_id,
        "RowKey": employee.id,
        "Aliases": json.dumps(list(employee.aliases)),
        "UserPrincipalName": employee.user_principal_name,
    }
    if employee.email is not None:
        entity["Email"] = employee.email
    else:
        # No current address: `Email` is left out (a reader never mails a removed mailbox) and
        # the row says since when; the engine passes the first time, kept across runs.
        entity[EMAIL_MISSING_SINCE] = email_missing_since or now
    entity.update(employee.fields)
    entity.update({"SourceHash": employee.source_hash, "SyncedAt": now, "RunId": run_id})
    return entity


def employee_view(entity: dict[str, Any], field_names: Sequence[str]) -> dict[str, Any]:
    """A stored employee in the configured order: id, Email, the fields, Aliases."""
    view: dict[str, Any] = {"id": entity["RowKey"], "Email": entity.get("Email")}
    for name in field_names:
        view[name] = entity.get(name)
    view["Aliases"] = json.loads(entity.get("Aliases") or "[]")
    return view


@dataclass(frozen=True)
class StoredIndex:
    hashes: dict[str, str]  # employee id -> source hash
    email_missing_since: dict[str, datetime]  # the rows marked as having no current address


class EmployeeStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(EMPLOYEES_TABLE)

    async def load_index(self, tenant_id: str) -> StoredIndex:
        """The stored index of a tenant (id -> source hash, and the rows marked without an
        address): all a run keeps in memory."""
        hashes: dict[str, str] = {}
        missing: dict[str, datetime] = {}
        async for entity in self._table.query_entities(
            "PartitionKey eq @tenant",
            parameters={"tenant": tenant_id},
            select=["RowKey", "SourceHash", EMAIL_MISSING_SINCE],
            results_per_page=1000,
        ):
            hashes[entity["RowKey"]] = entity.get("SourceHash") or ""
            if isinstance(since := entity.get(EMAIL_MISSING_SINCE), datetime):
                missing[entity["RowKey"]] = since
        return StoredIndex(hashes, missing)

    async def page(
        self, tenant_id: str, top: int, continuation: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        pages = self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": tenant_id}, results_per_page=top
        ).by_page(continuation_token=_decode_token(continuation))
        entities: list[dict[str, Any]] = []
        async for page in pages:
            async for entity in page:
                entities.append(dict(entity))
            break
        return entities, _encode_token(pages.continuation_token)

    async def all(self, tenant_id: str) -> AsyncIterator[dict[str, Any]]:
        async for entity in self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": tenant_id}, results_per_page=1000
        ):
            yield dict(entity)

    def writer(self, tenant_id: str) -> EmployeeWriter:
        return EmployeeWriter(self._table, tenant_id)


class EmployeeWriter:
    """Collects operations for one partition and submits them as transactions in the background,
    so reading the next Graph page overlaps with writing the previous one."""

    def __init__(self, table: TableClient, tenant_id: str):
        self._table = table
        self._tenant_id = tenant_id
        self._pending: list[tuple[Any, ...]] = []
        self._pending_bytes = 0
        self._slots = asyncio.Semaphore(BATCHES_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def upsert(self, entity: dict[str, Any]) -> None:
        await self._add(("upsert", entity, {"mode": UpdateMode.REPLACE}), _entity_bytes(entity))

    async def delete(self, employee_id: str) -> None:
        await self._add(("delete", {"PartitionKey": self._tenant_id, "RowKey": employee_id}), 200)

    async def flush(self) -> None:
        """Submit what is pending and wait for every transaction; raise the first failure."""
        if self._pending:
            await self._submit()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    async def abort(self) -> None:
        """Stop: drop what is pending and cancel the transactions in flight (no-op after flush)."""
        self._pending, self._pending_bytes = [], 0
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _add(self, operation: tuple[Any, ...], size: int) -> None:
        if self._failure is not None:
            raise self._failure
        if self._pending and (
            len(self._pending) >= MAX_BATCH_OPERATIONS
            or self._pending_bytes + size > MAX_BATCH_BYTES
        ):
            await self._submit()
        self._pending.append(operation)
        self._pending_bytes += size

    async def _submit(self) -> None:
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        await self._slots.acquire()  # back-pressure: at most BATCHES_IN_FLIGHT transactions
        task = asyncio.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[Any, ...]]) -> None:
        try:
            await self._transact(batch)
        except BaseException as error:  # noqa: BLE001 - kept and raised by flush(), never lost
            if self._failure is None:
                self._failure = error
        finally:
            self._slots.release()

    async def _transact(self, batch: list[tuple[Any, ...]]) -> None:
        try:
            await self._table.submit_transaction(batch)
        except TableTransactionError as error:
            # A transaction is atomic: one already-deleted row (a retried request whose answer
            # was lost, or a row removed by hand) fails it whole. Deletes are idempotent in
            # intent, so redo them one by one and accept "not found".
            if error.status_code != 404:
                raise
            for operation in batch:
                if operation[0] == "delete":
                    try:
                        await self._table.delete_entity(
                            operation[1]["PartitionKey"], operation[1]["RowKey"]
                        )
                    except ResourceNotFoundError:
                        pass
                else:
                    await self._table.upsert_entity(operation[1], mode=UpdateMode.REPLACE)


class RunStore:
    """Run records, newest first: RowKey = inverted start time + run id."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(RUNS_TABLE)

    async def save(self, report: RunReport) -> None:
        """Write the record as it is: for the run that holds the tenant's lease."""
        await self._table.upsert_entity(_run_entity(report), mode=UpdateMode.REPLACE)

    async def save_unless_final(self, report: RunReport) -> bool:
        """Write the record unless the stored one has already ended: for writers that do not
        hold the lease (a superseded request, the poison handler), which must never rewrite a
        run that finished meanwhile. False when the stored record had ended."""
        return await self.change_unless_final(report.tenant_id, report.run_id, lambda _: report)

    async def note(self, report_if_absent: RunReport, error: RunError, replaces: str) -> bool:
        """Add `error` to a run that has not ended, replacing its earlier errors of code
        `replaces` (the cause of a failed attempt, for the poison handler and the status URL)."""

        def noted(current: RunReport | None) -> RunReport:
            report = current or report_if_absent
            kept = tuple(e for e in report.errors if e.code != replaces)
            return replace(report, errors=(*kept, error))

        return await self.change_unless_final(
            report_if_absent.tenant_id, report_if_absent.run_id, noted
        )

    async def change_unless_final(
        self, tenant_id: str, run_id: str, change: Callable[[RunReport | None], RunReport]
    ) -> bool:
        """Apply `change` to the stored record (None: there is none yet) and write it, on the
        ETag read, unless the record has ended; re-read and re-apply when someone wrote first."""
        row_key = run_row_key(run_id)
        for _ in range(3):
            try:
                current = await self._table.get_entity(tenant_id, row_key)
            except ResourceNotFoundError:
                current = None
            if current is not None and current.get("Status") in FINAL_STATUSES:
                return False
            entity = _run_entity(change(None if current is None else _report_of(current)))
            try:
                if current is None:
                    await self._table.create_entity(entity)
                else:
                    await self._table.update_entity(
                        entity,
                        mode=UpdateMode.REPLACE,
                        etag=current.metadata["etag"],
                        match_condition=MatchConditions.IfNotModified,
                    )
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                continue  # written meanwhile: look again
            return True
        return False

    async def page(
        self, tenant_id: str, top: int, after_run_id: str | None
    ) -> tuple[list[RunReport], str | None]:
        """Runs newest first, `top` at a time; the cursor is the last run id of a page."""
        query, parameters = "PartitionKey eq @tenant", {"tenant": tenant_id}
        if after_run_id:
            query += " and RowKey gt @after"
            parameters["after"] = run_row_key(after_run_id)  # ValueError: not a run id
        reports: list[RunReport] = []
        async for entity in self._table.query_entities(
            query, parameters=parameters, results_per_page=top + 1
        ):
            if len(reports) == top:
                return reports, reports[-1].run_id
            reports.append(_report_of(entity))
        return reports, None

    async def get(self, tenant_id: str, run_id: str) -> RunReport | None:
        try:
            row_key = run_row_key(run_id)
        except ValueError:
            return None
        try:
            entity = await self._table.get_entity(tenant_id, row_key)
        except ResourceNotFoundError:
            return None
        return _report_of(entity)

    async def unfinished(self, tenant_id: str) -> list[RunReport]:
        """Every run of the tenant still recorded queued or running, newest first, however old
        and however many runs came after it (a run whose process died stays so until closed)."""
        return [
            _report_of(entity)
            async for entity in self._table.query_entities(
                # Spaced: the SDK substitutes @names split on whitespace, so none touches a ")".
                "PartitionKey eq @tenant and ( Status eq @queued or Status eq @running )",
                parameters={"tenant": tenant_id, "queued": "queued", "running": "running"},
            )
        ]

    async def latest(self, tenant_id: str, top: int = 20) -> list[RunReport]:
        reports: list[RunReport] = []
        async for entity in self._table.query_entities(
            "PartitionKey eq @tenant", parameters={"tenant": tenant_id}, results_per_page=top
        ):
            reports.append(_report_of(entity))
            if len(reports) >= top:
                break
        return reports


class ConfigStore:
    """Tenant configurations; storing one registers the tenant with the app."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def get(self, tenant_id: str) -> TenantConfig | None:
        """The stored configuration, validated again (it may predate a stricter version)."""
        try:
            entity = await self._table.get_entity(tenant_id, "config")
        except ResourceNotFoundError:
            return None
        try:
            return parse_config(json.loads(_config_text(entity)))
        except (ConfigError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError([("$", "the stored configuration is not valid JSON", None)]) from None

    async def put(self, tenant_id: str, config: TenantConfig) -> None:
        """Store a validated configuration. Its text is split over properties (Config0..N), as
        run reports are: one string property holds 32,767 UTF-16 code units, and config.py's
        MAX_CONFIG_BYTES keeps the whole far below the entity's 1 MiB."""
        chunks = utf16_chunks(stored_form(config), _CONFIG_CHUNK_UNITS)
        entity: dict[str, Any] = {
            "PartitionKey": tenant_id,
            "RowKey": "config",
            "ConfigChunks": len(chunks),
            "Enabled": config.enabled,
            "UpdatedAt": datetime.now(UTC),
        }
        entity.update({f"Config{i}": chunk for i, chunk in enumerate(chunks)})
        await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    async def tenant_ids(self) -> list[str]:
        ids: list[str] = []
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", "Enabled"]
        ):
            ids.append(entity["PartitionKey"])
        return ids


def _config_text(entity: dict[str, Any]) -> str:
    if "ConfigChunks" not in entity:
        return entity["Config"]  # stored before configurations were split
    return "".join(entity[f"Config{i}"] for i in range(int(entity["ConfigChunks"])))


def utf16_chunks(text: str, units: int) -> list[str]:
    """`text` in pieces of at most `units` UTF-16 code units each (a character outside the
    Basic Multilingual Plane counts two), never splitting a character."""
    chunks: list[str] = []
    start = size = 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > units:
            chunks.append(text[start:index])
            start, size = index, 0
        size += width
    chunks.append(text[start:])
    return chunks


def run_row_key(run_id: str) -> str:
    started = datetime.strptime(run_id[:18], "%Y%m%dT%H%M%S%f").replace(tzinfo=UTC)
    millis = int(started.timestamp() * 1000)
    return f"{9_999_999_999_999 - millis:013d}_{run_id}"


def _report_of(entity: dict[str, Any]) -> RunReport:
    document = "".join(entity.get(f"Report{i}", "") for i in range(int(entity.get("Chunks", 0))))
    return RunReport.from_json(json.loads(document))


def _entity_bytes(entity: dict[str, Any]) -> int:
    # UTF-16 on the wire for strings, plus property names and JSON overhead: a safe overestimate.
    return sum(len(str(k)) * 2 + len(str(v)) * 2 + 32 for k, v in entity.items())


def _encode_token(token: Any) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_token(token: str | None) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError):
        raise ValueError("the continuation token is not one this API issued") from None


# --- Leases, the tenant registry and paged run history (the Functions surface) -----------------


@dataclass(frozen=True)
class Lease:
    """The right to run one tenant's sync, held by one run until `expires_at`."""

    tenant_id: str
    holder: str  # the run id
    expires_at: datetime
    etag: str

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


class LeaseLost(Exception):
    """The lease was taken over or removed: the holder must stop writing."""


class LeaseStore:
    """One row per tenant in SyncLeases. Every change after the first is conditional on the ETag
    the changer read, so of two workers racing for a tenant exactly one wins; an expired lease
    (its worker crashed) is taken over the same way."""

    def __init__(self, service: TableServiceClient, partition: str = "lease"):
        # "lease": the run writing a tenant; "pending": the run queued for it (dispatch.py).
        self._table: TableClient = service.get_table_client(LEASES_TABLE)
        self._partition = partition

    async def get(self, tenant_id: str) -> Lease | None:
        try:
            entity = await self._table.get_entity(self._partition, tenant_id)
        except ResourceNotFoundError:
            return None
        return Lease(tenant_id, entity["Holder"], entity["ExpiresAt"], entity.metadata["etag"])

    async def acquire(
        self, tenant_id: str, holder: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """The lease for `holder`, or None while another live holder has it."""
        entity = self._entity(tenant_id, holder, now + ttl)
        for _ in range(2):  # a second try only when the row vanished between create and read
            try:
                created = await self._table.create_entity(entity)
            except ResourceExistsError:
                pass
            else:
                return Lease(tenant_id, holder, now + ttl, created["etag"])
            current = await self.get(tenant_id)
            if current is None:
                continue
            if current.live(now):
                return None
            return await self.take_over(current, holder, now, ttl)
        return None

    async def take_over(
        self, current: Lease, holder: str, now: datetime, ttl: timedelta
    ) -> Lease | None:
        """Replace `current` (expired, or known to be over) by `holder`; None when someone
        changed it first."""
        try:
            updated = await self._table.update_entity(
                self._entity(current.tenant_id, holder, now + ttl),
                mode=UpdateMode.REPLACE,
                etag=current.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return None  # another worker took it first
        return Lease(current.tenant_id, holder, now + ttl, updated["etag"])

    async def renew(self, lease: Lease, now: datetime, ttl: timedelta) -> Lease:
        try:
            updated = await self._table.update_entity(
                self._entity(lease.tenant_id, lease.holder, now + ttl),
                mode=UpdateMode.REPLACE,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            raise LeaseLost(f"the lease of tenant {lease.tenant_id} was taken over") from None
        return Lease(lease.tenant_id, lease.holder, now + ttl, updated["etag"])

    async def release(self, lease: Lease) -> bool:
        """Give the lease back; False when it had already passed to someone else."""
        try:
            await self._table.delete_entity(
                self._partition,
                lease.tenant_id,
                etag=lease.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except ResourceModifiedError:
            return False
        return True

    def _entity(self, tenant_id: str, holder: str, expires_at: datetime) -> dict[str, Any]:
        return {
            "PartitionKey": self._partition,
            "RowKey": tenant_id,
            "Holder": holder,
            "ExpiresAt": expires_at,
        }


class TenantRegistry:
    """The tenants with a stored configuration and whether each is enabled, without parsing the
    configurations (a tick of the timer reads this for every tenant)."""

    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(CONFIGS_TABLE)

    async def enabled_by_tenant(self) -> dict[str, bool]:
        tenants: dict[str, bool] = {}
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", "Enabled"]
        ):
            tenants[entity["PartitionKey"]] = entity.get("Enabled") is not False
        return tenants

    async def enabled(self, tenant_id: str) -> bool | None:
        """Whether the tenant's stored configuration is enabled; None when none is stored."""
        try:
            entity = await self._table.get_entity(tenant_id, "config", select=["Enabled"])
        except ResourceNotFoundError:
            return None
        return entity.get("Enabled") is not False


def _run_entity(report: RunReport) -> dict[str, Any]:
    """The row RunStore.save writes for a report (same layout, for conditional writes)."""
    document = json.dumps(report.to_json(), ensure_ascii=False)
    chunks = [document[i : i + _CHUNK_CHARS] for i in range(0, len(document), _CHUNK_CHARS)]
    entity: dict[str, Any] = {
        "PartitionKey": report.tenant_id,
        "RowKey": run_row_key(report.run_id),
        "RunId": report.run_id,
        "Status": report.status,
        "StartedAt": report.started_at,
        "Chunks": len(chunks),
    }
    if report.finished_at:
        entity["FinishedAt"] = report.finished_at
    entity.update({f"Report{i}": chunk for i, chunk in enumerate(chunks)})
    return entity
