"""Manager fields end to end: the real CLI, msgraph-sdk and azure-data-tables against the
simulator's manager relationship (`$expand=manager` on /users, `manager@delta` on /users/delta)
and Azurite. Each rule of issue 16 "Manager" has a case: full run, a manager renamed, a new
manager, a manager deleted, a manager out of scope, an unchanged manager costing no write."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import MANAGERS_TABLE
from sync_core.adapters.tables.write_fence import FENCE_ROW_PREFIX as FENCE
from sync_core.app.service import SyncService
from sync_core.app.unlink import unlink_tenant
from sync_core.settings import load_settings
from tests.integration.helpers import (
    MANAGER_FIELDS,
    configure,
    graph_requests,
    members,
    stored_rows,
    sync,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reset_delta_and_faults")]


@pytest.fixture
def org(cli, tenant, simulator, tmp_path) -> dict[str, dict[str, Any]]:
    """Two reports of a boss, one report of an excluded (disabled) executive; a first run."""
    people = members(tenant)
    boss, first, second, third, newcomer = people[:5]
    executive = tenant.of_kind("disabled")[0] if tenant.of_kind("disabled") else people[5]
    simulator.patch_user(tenant.id, executive["id"], {"accountEnabled": False})
    for report in (first, second):
        simulator.patch_user(tenant.id, report["id"], {"manager": boss["id"]})
    simulator.patch_user(tenant.id, third["id"], {"manager": executive["id"]})
    configure(cli, tmp_path, MANAGER_FIELDS)
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "full"), report
    return {
        "boss": boss,
        "first": first,
        "second": second,
        "third": third,
        "executive": executive,
        "newcomer": newcomer,
    }


def rows(app_env, tenant) -> dict[str, dict[str, Any]]:
    return stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)


def address(user: dict[str, Any]) -> str:
    primary = next(p for p in user.get("proxyAddresses") or [] if p.startswith("SMTP:"))
    return primary[5:].lower()


def test_a_full_run_fills_manager_fields_through_expand(org, cli, tenant, simulator, app_env):
    stored = rows(app_env, tenant)
    boss, executive = org["boss"], org["executive"]
    for name in ("first", "second"):
        row = stored[org[name]["id"]]
        assert row["ManagerName"] == boss["displayName"]
        assert row["ManagerEmail"] == address(boss)
        assert row.get("ManagerTitle") == boss.get("jobTitle")
    # The executive is out of scope (disabled) and still someone's manager.
    assert executive["id"] not in stored
    assert stored[org["third"]["id"]]["ManagerName"] == executive["displayName"]
    assert "ManagerName" not in stored[boss["id"]]  # no manager: the field is left out
    simulator.clear_requests()
    sync(cli, "--full")
    listing = [r for r in graph_requests(simulator, tenant.id) if r.path == "/v1.0/users"]
    assert listing and all(r.query["$expand"].startswith("manager($select=") for r in listing)
    link = next(r for r in graph_requests(simulator, tenant.id) if r.path == "/v1.0/users/delta")
    assert "manager" in link.query["$select"].split(",")


def test_with_filter_odata_the_managers_are_looked_up_not_expanded(
    org, cli, tenant, simulator, app_env, tmp_path
):
    boss, first, third = org["boss"], org["first"], org["third"]
    # An advanced query: no $expand there; the boss is out of the filtered listing.
    odata = f"id ne '{boss['id']}'"
    configure(cli, tmp_path, {**MANAGER_FIELDS, "filter": {"odata": odata}})
    simulator.clear_requests()
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "full"), report
    requests = graph_requests(simulator, tenant.id)
    assert not [r for r in requests if "$expand" in r.query]
    stored = rows(app_env, tenant)
    assert stored[first["id"]]["ManagerName"] == boss["displayName"]
    assert stored[third["id"]]["ManagerName"] == org["executive"]["displayName"]
    # Each manager looked up once.
    looked_up = [
        r.path for r in requests if r.path.startswith("/v1.0/users/") and "delta" not in r.path
    ]
    assert f"/v1.0/users/{boss['id']}" in looked_up and len(looked_up) == len(set(looked_up))


def test_a_renamed_manager_updates_every_report_in_one_delta_run(
    org, cli, tenant, simulator, app_env
):
    boss = org["boss"]
    before = rows(app_env, tenant)
    simulator.patch_user(tenant.id, boss["id"], {"displayName": "Renamed Boss", "jobTitle": "CEO"})
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report
    after = rows(app_env, tenant)
    for name in ("first", "second"):
        assert after[org[name]["id"]]["ManagerName"] == "Renamed Boss"
        assert after[org[name]["id"]]["ManagerTitle"] == "CEO"
    assert after[boss["id"]]["DisplayName"] == "Renamed Boss"
    assert report["counts"]["updated"] == 3
    # Nobody else was rewritten.
    untouched = set(before) - {boss["id"], org["first"]["id"], org["second"]["id"]}
    assert {i: after[i]["_etag"] for i in untouched} == {i: before[i]["_etag"] for i in untouched}
    # The index agrees with what a full run finds: nothing left to write.
    again = sync(cli, "--full")
    assert again["counts"]["updated"] == again["counts"]["created"] == 0


def test_a_new_manager_and_a_manager_taken_away(org, cli, tenant, simulator, app_env):
    first, second, newcomer = org["first"], org["second"], org["newcomer"]
    simulator.patch_user(tenant.id, first["id"], {"manager": newcomer["id"]})
    simulator.patch_user(tenant.id, second["id"], {"manager": None})
    report = sync(cli)
    assert (report["mode"], report["counts"]["updated"]) == ("delta", 2), report
    after = rows(app_env, tenant)
    assert after[first["id"]]["ManagerName"] == newcomer["displayName"]
    assert after[first["id"]]["ManagerEmail"] == address(newcomer)
    assert "ManagerName" not in after[second["id"]] and "ManagerEmail" not in after[second["id"]]
    # The new manager's own rename now reaches its report too.
    simulator.patch_user(tenant.id, newcomer["id"], {"displayName": "Newcomer Renamed"})
    assert sync(cli)["counts"]["updated"] == 2
    assert rows(app_env, tenant)[first["id"]]["ManagerName"] == "Newcomer Renamed"


def test_a_deleted_manager_empties_the_fields_and_keeps_the_reports(
    org, cli, tenant, simulator, app_env
):
    boss = org["boss"]
    simulator.remove_user(tenant.id, boss["id"])
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report
    after = rows(app_env, tenant)
    for name in ("first", "second"):
        row = after[org[name]["id"]]
        assert "ManagerName" not in row and "ManagerEmail" not in row
        assert row["DisplayName"] == org[name]["displayName"]
    again = sync(cli, "--full")
    assert again["counts"]["updated"] == again["counts"]["created"] == 0


def test_an_out_of_scope_manager_renamed_reaches_its_report(org, cli, tenant, simulator, app_env):
    executive, third = org["executive"], org["third"]
    simulator.patch_user(tenant.id, executive["id"], {"displayName": "Hidden Executive"})
    report = sync(cli)
    assert (report["mode"], report["counts"]["updated"]) == ("delta", 1), report
    assert rows(app_env, tenant)[third["id"]]["ManagerName"] == "Hidden Executive"
    assert executive["id"] not in rows(app_env, tenant)


def test_an_unchanged_manager_costs_no_write_and_an_idle_tick_reads_nothing_more(
    org, cli, tenant, simulator, app_env
):
    first, second = org["first"], org["second"]
    before = rows(app_env, tenant)
    simulator.patch_user(tenant.id, first["id"], {"jobTitle": "Changed Title"})
    report = sync(cli)
    assert (report["mode"], report["counts"]["updated"]) == ("delta", 1), report
    after = rows(app_env, tenant)
    assert after[first["id"]]["Title"] == "Changed Title"
    assert after[first["id"]]["ManagerName"] == org["boss"]["displayName"]  # kept, not blanked
    assert after[second["id"]]["_etag"] == before[second["id"]]["_etag"]
    simulator.clear_requests()
    idle = sync(cli)
    assert idle["mode"] == "delta" and idle["counts"]["read"] == 0
    assert len(graph_requests(simulator, tenant.id)) <= 2


def index_rows(app_env, tenant) -> dict[str, str]:
    """The index's rows, not its fence rows (tables/write_fence.py: rewritten by each run)."""
    rows = partition_rows(app_env, tenant)
    return {k: row.metadata["etag"] for k, row in rows.items() if not k.startswith(FENCE)}


def partition_rows(app_env, tenant) -> dict[str, Any]:
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    table = service.get_table_client(MANAGERS_TABLE)
    found = table.query_entities("PartitionKey eq @t", parameters={"t": tenant.id})
    return {row["RowKey"]: row for row in found}


def test_the_index_holds_ids_and_values_only_and_an_unchanged_full_run_rewrites_none(
    org, cli, tenant, app_env
):
    before = index_rows(app_env, tenant)
    boss, first = org["boss"]["id"], org["first"]["id"]
    assert {f"r_{first}", f"m_{boss}", f"e_{boss}_{first}"} <= before.keys()
    assert all(k[:2] in ("r_", "m_", "e_") for k in before)
    full = sync(cli, "--full")
    assert full["status"] == "succeeded"
    assert index_rows(app_env, tenant) == before
    # The run fenced the index with its lease (a run that lost it has its writes refused).
    fence = {k: r for k, r in partition_rows(app_env, tenant).items() if k.startswith(FENCE)}
    assert fence and {r["Holder"] for r in fence.values()} == {full["runId"]}


def test_unlinking_with_the_employees_removed_forgets_the_index(org, tenant, app_env):
    # Served as a linked tenant, not the home one (the home tenant is never unlinked).
    elsewhere = {**app_env, "ENTRA_TENANT_ID": "00000000-0000-4000-8000-00000000a11c"}

    async def unlink() -> int:
        async with SyncService(load_settings(elsewhere)) as service:
            return await unlink_tenant(service, tenant.id, remove_employees=True)

    assert asyncio.run(unlink()) > 0
    assert partition_rows(app_env, tenant) == {} and rows(app_env, tenant) == {}  # fence too


def test_a_run_failing_while_reading_the_reports_writes_nothing_and_the_next_one_recovers(
    org, cli, tenant, simulator, app_env
):
    boss = org["boss"]
    before, index_before = rows(app_env, tenant), index_rows(app_env, tenant)
    simulator.patch_user(tenant.id, boss["id"], {"displayName": "Boss After Failure"})
    # The round's page passes; the reports' read again by id meets a gateway error.
    simulator.faults.bad_gateway(1, path_prefix="/v1.0/users/delta", after=1)
    failed = sync(cli)
    assert (failed["status"], failed["mode"]) == ("failed", "delta"), failed
    assert {k: v["_etag"] for k, v in rows(app_env, tenant).items()} == {
        k: v["_etag"] for k, v in before.items()
    }
    assert index_rows(app_env, tenant) == index_before
    simulator.faults.clear()
    report = sync(cli)
    assert (report["status"], report["mode"], report["counts"]["updated"]) == (
        "succeeded",
        "delta",
        3,
    ), report
    for name in ("first", "second"):
        assert rows(app_env, tenant)[org[name]["id"]]["ManagerName"] == "Boss After Failure"


def test_a_full_run_repairs_the_index_edges_a_delta_run_relies_on(
    org, cli, tenant, simulator, app_env
):
    boss, first = org["boss"], org["first"]
    # An edge row lost (a partial write of an older build, a hand edit): a full run restores it,
    # so the boss's rename reaches the report again in one delta run.
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    service.get_table_client(MANAGERS_TABLE).delete_entity(
        tenant.id, f"e_{boss['id']}_{first['id']}"
    )
    assert sync(cli, "--full")["status"] == "succeeded"
    assert f"e_{boss['id']}_{first['id']}" in index_rows(app_env, tenant)
    simulator.patch_user(tenant.id, boss["id"], {"displayName": "Boss Renamed Again"})
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report
    assert rows(app_env, tenant)[first["id"]]["ManagerName"] == "Boss Renamed Again"


def test_a_user_created_or_restored_with_a_manager_gets_its_values_in_one_delta_run(
    org, cli, tenant, simulator, app_env
):
    boss, first = org["boss"], org["first"]
    # A new user is listed in its standard representation, `manager@delta` included
    # (delta-query-overview.md, "Resource representation in the delta query response").
    joiner = {**first, "id": "0e9a4f4b-5d1e-4b7a-9d0c-000000000d16", "manager": boss["id"],
              "userPrincipalName": "manager.joiner@contoso.com",
              "proxyAddresses": ["SMTP:Manager.Joiner@contoso.com"], "mail": None}  # fmt: skip
    simulator.upsert_user(tenant.id, joiner)
    simulator.remove_user(tenant.id, org["second"]["id"])
    assert sync(cli)["mode"] == "delta"
    simulator.restore_user(tenant.id, org["second"]["id"])
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report
    after = rows(app_env, tenant)
    assert after[org["second"]["id"]]["ManagerName"] == boss["displayName"]
    # Indexed as the boss's reports: the boss's rename reaches both in the next delta run.
    simulator.patch_user(tenant.id, boss["id"], {"displayName": "Boss Of The Joiner"})
    assert sync(cli)["mode"] == "delta"
    after = rows(app_env, tenant)
    assert after[joiner["id"]]["ManagerName"] == "Boss Of The Joiner"
    assert after[org["second"]["id"]]["ManagerName"] == "Boss Of The Joiner"


def test_own_manager_cycles_and_a_changed_address_reach_every_report_in_one_delta_run(
    org, cli, tenant, simulator, app_env
):
    boss, first, second = org["boss"], org["first"], org["second"]
    simulator.patch_user(tenant.id, boss["id"], {"manager": boss["id"]})  # their own manager
    simulator.patch_user(tenant.id, first["id"], {"manager": second["id"]})  # a cycle
    simulator.patch_user(tenant.id, second["id"], {"manager": first["id"]})
    assert sync(cli)["mode"] == "delta"
    after = rows(app_env, tenant)
    assert after[boss["id"]]["ManagerName"] == boss["displayName"]
    assert after[first["id"]]["ManagerName"] == second["displayName"]
    assert after[second["id"]]["ManagerName"] == first["displayName"]
    simulator.patch_user(tenant.id, boss["id"], {"displayName": "Self Managed"})
    simulator.patch_user(tenant.id, first["id"], {"proxyAddresses": ["SMTP:First.New@contoso.com"]})
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report
    after = rows(app_env, tenant)
    assert after[boss["id"]]["ManagerName"] == "Self Managed"
    assert after[second["id"]]["ManagerEmail"] == "first.new@contoso.com"
    again = sync(cli, "--full")
    assert again["counts"]["updated"] == again["counts"]["created"] == 0
