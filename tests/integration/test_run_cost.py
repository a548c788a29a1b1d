"""What a run reads and writes in Table Storage (issue 19), counted as the SDK sends it
(devtools/table_requests.py, an azure-core policy) against Azurite and the simulator: an idle
delta run reads the configuration and the sync state with the summary, and writes nothing; a
delta run with changes reads the rows its round names; the summary agrees with the table, and a
run that failed between a batch and its summary leaves it untrusted until the next run heals it.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from devtools.table_requests import TableRequestCounter
from sync_core.adapters.storage_names import CONFIGS_TABLE, EMPLOYEES_TABLE
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.ports import Unfenced
from sync_core.core.report import RunReport
from sync_core.errors import RetriableError
from sync_core.settings import load_settings
from tests.integration.helpers import stored_rows

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reset_delta_and_faults")]


def run(counter: TableRequestCounter | None = None, service_class: type = SyncService,
        **request: Any) -> RunReport:  # fmt: skip
    async def go() -> RunReport:
        settings = load_settings(os.environ)
        async with service_class(settings, table_request_hook=counter) as service:
            if counter is not None:
                counter.clear()
            return await sync_exclusively(
                service, RunRequest(os.environ["ENTRA_TENANT_ID"], **request)
            )

    return asyncio.run(go())


def summary_row(connection_string: str, tenant_id: str) -> dict[str, Any]:
    table = TableServiceClient.from_connection_string(connection_string).get_table_client(
        CONFIGS_TABLE
    )
    return dict(table.get_entity(tenant_id, "summary"))


def table_summary(connection_string: str, tenant_id: str) -> tuple[int, dict[str, datetime]]:
    rows = stored_rows(connection_string, tenant_id)
    marks = {i: r["EmailMissingSince"] for i, r in rows.items() if "EmailMissingSince" in r}
    return len(rows), marks


def stored_summary(connection_string: str, tenant_id: str) -> tuple[int, dict[str, datetime]]:
    import json

    row = summary_row(connection_string, tenant_id)
    assert not row["Writing"], row
    text = "".join(row[f"Marks{i}"] for i in range(row["MarkChunks"]))
    marks = {i: datetime.fromisoformat(s) for i, s in json.loads(text).items()}
    return row["Employees"], marks


def fence_etags(connection_string: str, tenant_id: str) -> dict[str, str]:
    table = TableServiceClient.from_connection_string(connection_string).get_table_client(
        EMPLOYEES_TABLE
    )
    rows = table.query_entities("PartitionKey eq @t and RowKey ge '~'", parameters={"t": tenant_id})
    return {r["RowKey"]: r.metadata["etag"] for r in rows}


def test_an_idle_delta_run_reads_two_rows_of_configuration_and_writes_nothing(tenant, app_env):
    assert run().mode == "full"
    fences = fence_etags(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    counter = TableRequestCounter()
    report = run(counter)
    assert (report.mode, report.status, report.graph_requests) == ("delta", "succeeded", 2)
    # The engine's own: the configuration and (one query) the sync state with the summary.
    assert counter.by_table(writes=False)[CONFIGS_TABLE] == 2
    assert counter.by_table(writes=True)[CONFIGS_TABLE] == 0
    assert counter.by_table()[EMPLOYEES_TABLE] == 0  # no index, no row, no fence
    assert fence_etags(app_env["TABLES_CONNECTION_STRING"], tenant.id) == fences
    assert report.counts.employees == len(
        stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    )


def test_a_delta_run_reads_the_rows_its_round_names_and_keeps_the_summary_current(
    tenant, simulator, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    run()
    members = [u for u in tenant.of_kind("member") if u.get("mail")]
    simulator.patch_user(tenant.id, members[0]["id"], {"jobTitle": "Changed"})
    simulator.patch_user(tenant.id, members[1]["id"], {"mail": None, "proxyAddresses": [],
                                                       "otherMails": []})  # fmt: skip
    counter = TableRequestCounter()
    report = run(counter)
    assert report.mode == "delta" and report.counts.updated == 2
    employees = counter.by_table(writes=False)[EMPLOYEES_TABLE]
    # One point read per named row, whatever the tenant's size, and one query for who else
    # holds the one address the round wrote (core/shared_addresses.py: 14 addresses a query).
    assert employees == 2 + 1, counter.requests
    assert stored_summary(connection, tenant.id) == table_summary(connection, tenant.id)
    assert members[1]["id"] in stored_summary(connection, tenant.id)[1]


class CrashingBeforeTheSummary(SyncService):
    """The real service whose process dies after the run's writes, before its summary and link
    are stored (the run's last step): a crash between a batch and the summary."""

    async def __aenter__(self) -> CrashingBeforeTheSummary:
        await super().__aenter__()

        async def crash(*args: Any, **kwargs: Any) -> None:
            raise RetriableError("storage_unavailable", "the host went away")

        run_store = self.run_sync_state.for_lease

        def for_lease(*args: Any) -> Any:  # each run's own store (fenced_state.py)
            store = run_store(*args)
            store.save = crash  # type: ignore[method-assign]
            return store

        self.run_sync_state.for_lease = for_lease  # type: ignore[method-assign]
        return self


def test_a_run_failing_between_its_writes_and_its_summary_leaves_it_untrusted_and_the_next_heals_it(
    tenant, simulator, app_env
):
    connection = app_env["TABLES_CONNECTION_STRING"]
    run()
    newcomer = {**tenant.of_kind("member")[0], "id": "0e9a4f4b-5d1e-4b7a-9d0c-000000000e19",
                "userPrincipalName": "summary.joiner@contoso.com",
                "proxyAddresses": ["SMTP:Summary.Joiner@contoso.com"]}  # fmt: skip
    simulator.upsert_user(tenant.id, newcomer)
    failed = run(service_class=CrashingBeforeTheSummary)
    assert failed.status == "failed" and failed.counts.created == 1
    row = summary_row(connection, tenant.id)
    assert row["Writing"] == failed.run_id  # marked before the first write, never cleared
    count, _ = table_summary(connection, tenant.id)
    assert row["Employees"] == count - 1  # what it says is one row short: not trusted

    counter = TableRequestCounter()
    healed = run(counter)
    assert (healed.status, healed.mode) == ("succeeded", "delta")
    assert healed.counts.employees == count
    assert stored_summary(connection, tenant.id) == table_summary(connection, tenant.id)
    # Healed from the table (the whole index read once), not from the failed run's word.
    assert counter.by_table(writes=False)[EMPLOYEES_TABLE] >= 1
    again = TableRequestCounter()
    assert run(again).mode == "delta" and again.by_table()[EMPLOYEES_TABLE] == 0


def test_large_rows_are_measured_exactly_so_transactions_stay_full_and_under_4_mib(tenant, app_env):
    """Rows of 32,000 CJK characters: about 192 KB each on the wire (6 bytes a character), twice
    that by the cheap bound. Measured exactly once the bounds would close the transaction, 20
    go in each (4 MiB), not the 10 the bounds allow."""
    from sync_core.adapters.tables.employee_rows import MAX_BATCH_BYTES, operation_bytes

    rows = [{"PartitionKey": tenant.id, "RowKey": f"{n:08d}-0000-4000-8000-000000000000",
             "Title": "李" * 32_000} for n in range(40)]  # fmt: skip
    per_batch = MAX_BATCH_BYTES // operation_bytes(rows[0])
    counter = TableRequestCounter()

    async def write() -> None:
        async with SyncService(load_settings(os.environ), table_request_hook=counter) as service:
            counter.clear()
            writer = await service.employees.writer(tenant.id, Unfenced("no other run writes here"))
            for row in rows:
                await writer.put_entity(row)
            await writer.flush()

    asyncio.run(write())
    assert per_batch >= 20
    assert counter.writes == -(-len(rows) // per_batch)
    assert len(stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)) == len(rows)


def test_a_summary_changed_by_another_run_meanwhile_is_left_untrusted_not_overwritten(
    tenant, app_env
):
    """The summary is stored only if its row still has the ETag this run read or left: when
    another run changed it in between, neither is sure to be right, so the row is marked and
    the next run rebuilds it from the table; the link is stored all the same."""
    from sync_core.core.delta import SyncState
    from sync_core.core.summary import TenantSummary

    connection = app_env["TABLES_CONNECTION_STRING"]
    run()
    moment = datetime.fromisoformat("2026-12-01T00:00:00+00:00")

    async def race() -> None:
        async with SyncService(load_settings(os.environ)) as service:
            store = service.sync_state
            read = await store.read(tenant.id)
            await store.mark_writing(tenant.id, "another-run")  # the row's ETag moves
            state = SyncState("https://graph/link", "digest", moment, moment)
            await store.save(tenant.id, state, TenantSummary(1, {}), read.summary.etag)
            after = await store.read(tenant.id)
            assert after.sync == state and after.summary.summary is None

    asyncio.run(race())
    assert summary_row(connection, tenant.id)["Writing"]
