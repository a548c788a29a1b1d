"""Helpers shared by the integration tests: Azurite's rows read straight (not through our store),
a configuration file for the CLI (and one with manager fields), one CLI sync run (and explain), the
Graph requests the simulator saw."""

from __future__ import annotations

import json
from typing import Any

from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import EMPLOYEES_TABLE

# A configuration with manager fields (the manager's name, address and title on each report).
MANAGER_FIELDS = {
    "fields": [
        {"name": "DisplayName", "source": "displayName"},
        {"name": "Title", "source": "jobTitle"},
        {"name": "ManagerName", "source": "manager.displayName"},
        {"name": "ManagerEmail", "source": "manager.email"},
        {"name": "ManagerTitle", "source": "manager.jobTitle"},
    ]
}
CLEAN_UP = {"cleanUp": {"enabled": True, "maxDeletes": 100000, "maxDeletePercent": 100}}


def stored_rows(connection_string: str, tenant_id: str) -> dict[str, dict[str, Any]]:
    """The Employees rows of a tenant, read straight from Azurite (not through our store)."""
    service = TableServiceClient.from_connection_string(connection_string)
    table = service.get_table_client(EMPLOYEES_TABLE)
    # Employees only: the fence rows (RowKey `~fence-N`) sort after every object id.
    rows = table.query_entities("PartitionKey eq @t and RowKey lt '~'", parameters={"t": tenant_id})
    return {row["RowKey"]: {**row, "_etag": row.metadata["etag"]} for row in rows}


def write_config(tmp_path, document: dict[str, Any]) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return str(path)


def sync(cli, *args: str) -> dict[str, Any]:
    result = cli("sync", "--json", *args)
    assert result.exit_code in (0, 1, 3), result.stderr
    return result.json


def configure(cli, tmp_path, document: dict[str, Any]) -> None:
    assert cli("config", "set", "--file", write_config(tmp_path, document)).exit_code == 0


def explain(cli, *args: str) -> tuple[int, Any]:
    result = cli("explain", *args, "--json")
    return result.exit_code, result.json


def stored_rows_of(cli, tenant) -> set[str]:
    """The ids of the tenant's employees, as the CLI lists them."""
    return {e["id"] for e in cli("employees", "--json").json["employees"]}


def graph_requests(simulator, tenant_id: str) -> list[Any]:
    return [r for r in simulator.requests if r.surface == "graph" and r.tenant == tenant_id]


def members(tenant) -> list[dict[str, Any]]:
    return [u for u in tenant.of_kind("member") if u.get("mail")]
