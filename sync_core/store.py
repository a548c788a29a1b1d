"""Table Storage: employees, run records and tenant configurations.

The only module that imports azure-data-tables. Employees are written in entity-group
transactions (one partition, at most 100 operations, under 4 MiB), several in flight at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableTransactionError, UpdateMode
from azure.data.tables.aio import TableClient, TableServiceClient

from .config import ConfigError, TenantConfig, parse_config
from .mapping import Employee
from .report import RunReport

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
BOOKKEEPING = ("SourceHash", "SyncedAt", "RunId")
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
    tenant_id: str, employee: Employee, run_id: str, now: datetime
) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": tenant_id,
        "RowKey": employee.id,
        "Email": employee.email,
        "Aliases": json.dumps(list(employee.aliases)),
        "UserPrincipalName": employee.user_principal_name,
    }
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


class EmployeeStore:
    def __init__(self, service: TableServiceClient):
        self._table: TableClient = service.get_table_client(EMPLOYEES_TABLE)

    async def load_hashes(self, tenant_id: str) -> dict[str, str]:
        """The stored index of a tenant, id -> source hash: all a run keeps in memory."""
        hashes: dict[str, str] = {}
        async for entity in self._table.query_entities(
            "PartitionKey eq @tenant",
            parameters={"tenant": tenant_id},
            select=["RowKey", "SourceHash"],
            results_per_page=1000,
        ):
            hashes[entity["RowKey"]] = entity.get("SourceHash") or ""
        return hashes

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
        document = json.dumps(report.to_json(), ensure_ascii=False)
        entity: dict[str, Any] = {
            "PartitionKey": report.tenant_id,
            "RowKey": run_row_key(report.run_id),
            "RunId": report.run_id,
            "Status": report.status,
            "StartedAt": report.started_at,
            "Chunks": 0,
        }
        if report.finished_at:
            entity["FinishedAt"] = report.finished_at
        chunks = [document[i : i + _CHUNK_CHARS] for i in range(0, len(document), _CHUNK_CHARS)]
        entity["Chunks"] = len(chunks)
        entity.update({f"Report{i}": chunk for i, chunk in enumerate(chunks)})
        await self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

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
            return parse_config(json.loads(entity["Config"]))
        except (ConfigError, json.JSONDecodeError, KeyError) as error:
            if isinstance(error, ConfigError):
                raise
            raise ConfigError([("$", "the stored configuration is not valid JSON", None)]) from None

    async def put(self, tenant_id: str, config: TenantConfig) -> None:
        await self._table.upsert_entity(
            {
                "PartitionKey": tenant_id,
                "RowKey": "config",
                "Config": json.dumps(config.to_json(), ensure_ascii=False),
                "Enabled": config.enabled,
                "UpdatedAt": datetime.now(UTC),
            },
            mode=UpdateMode.REPLACE,
        )

    async def tenant_ids(self) -> list[str]:
        ids: list[str] = []
        async for entity in self._table.query_entities(
            "RowKey eq 'config'", select=["PartitionKey", "Enabled"]
        ):
            ids.append(entity["PartitionKey"])
        return ids


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
    import base64

    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_token(token: str | None) -> Any:
    if not token:
        return None
    import base64

    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError):
        raise ValueError("the continuation token is not one this API issued") from None
