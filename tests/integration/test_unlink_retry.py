"""An unlink that fails part-way is done by asking again: the tenant stays registered until its
last step, so the retry finds it and removes what the first attempt left (employees, delta link,
summary); linked again, its first run is full."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE
from sync_core.app.service import SyncService
from sync_core.app.unlink import unlink_tenant
from sync_core.errors import RetriableError
from sync_core.settings import load_settings
from tests.integration.helpers import configure, stored_rows, sync

pytestmark = pytest.mark.integration

DOCUMENT = {"fields": [{"name": "DisplayName", "source": "displayName"}]}


class FailingMidUnlink(SyncService):
    """The real service whose storage goes away while the unlink removes the employees."""

    async def __aenter__(self) -> FailingMidUnlink:
        await super().__aenter__()

        def gone(*args: Any, **kwargs: Any) -> Any:
            raise RetriableError("storage_unavailable", "the storage account went away")

        self.employees.all = gone  # type: ignore[method-assign]
        return self


def config_rows(connection: str, tenant_id: str) -> set[str]:
    table = TableServiceClient.from_connection_string(connection).get_table_client(CONFIGS_TABLE)
    found = table.query_entities("PartitionKey eq @t", parameters={"t": tenant_id})
    return {row["RowKey"] for row in found}


def test_an_unlink_that_failed_part_way_is_completed_by_the_next(cli, tenant, app_env, tmp_path):
    connection = app_env["TABLES_CONNECTION_STRING"]
    configure(cli, tmp_path, DOCUMENT)
    assert sync(cli)["status"] == "succeeded"
    employees = len(stored_rows(connection, tenant.id))
    assert employees and {"config", "summary"} <= config_rows(connection, tenant.id)
    # Served as a linked tenant, not the home one (the home tenant is never unlinked).
    elsewhere = load_settings(
        {**app_env, "ENTRA_TENANT_ID": "00000000-0000-4000-8000-00000000a11c"}
    )

    async def unlink(service_class: type[SyncService]) -> int:
        async with service_class(elsewhere) as service:
            return await unlink_tenant(service, tenant.id, remove_employees=True)

    with pytest.raises(RetriableError):
        asyncio.run(unlink(FailingMidUnlink))
    assert asyncio.run(unlink(SyncService)) == employees
    assert stored_rows(connection, tenant.id) == {}
    assert not config_rows(connection, tenant.id) & {"config", "summary", "state"}
    configure(cli, tmp_path, DOCUMENT)  # linked again: everything is read anew
    again = sync(cli)
    assert (again["status"], again["mode"]) == ("succeeded", "full")
    assert again["counts"]["created"] == employees
