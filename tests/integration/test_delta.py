"""Delta runs end to end: the real CLI, msgraph-sdk and azure-data-tables against the simulator's
/users/delta and Azurite. Each rule of docs/architecture.md "Full and delta runs" has a case."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import CONFIGS_TABLE, EMPLOYEES_TABLE
from tests.integration.helpers import (
    CLEAN_UP,
    configure,
    graph_requests,
    members,
    stored_rows,
    sync,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reset_delta_and_faults")]


def sync_state(app_env: dict[str, str], tenant_id: str) -> dict[str, Any] | None:
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    rows = list(
        service.get_table_client(CONFIGS_TABLE).query_entities(
            "PartitionKey eq @t and RowKey eq 'syncState'", parameters={"t": tenant_id}
        )
    )
    return dict(rows[0]) if rows else None


def test_first_run_is_full_and_stores_the_link_taken_before_the_listing(
    cli, tenant, simulator, app_env
):
    simulator.clear_requests()
    report = sync(cli)
    assert (report["status"], report["mode"], report["fullReason"]) == (
        "succeeded",
        "full",
        "firstRun",
    )
    paths = [(r.path, r.query) for r in graph_requests(simulator, tenant.id)]
    latest = next(i for i, (p, q) in enumerate(paths) if q.get("$deltatoken") == "latest")
    listing = next(i for i, (p, _) in enumerate(paths) if p == "/v1.0/users")
    assert latest < listing
    # The link carries the run's $select, asked for with it.
    assert "mail" in paths[latest][1]["$select"].split(",")
    state = sync_state(app_env, tenant.id)
    assert state is not None and "/v1.0/users/delta" in state["DeltaLink"]
    assert sync(cli)["mode"] == "delta"


def test_each_kind_of_change_reaches_the_table_through_a_delta_run(
    cli, tenant, simulator, app_env, tmp_path
):
    configure(cli, tmp_path, CLEAN_UP)
    assert sync(cli)["mode"] == "full"
    changed, disabled, hard, soft = members(tenant)[:4]
    simulator.patch_user(tenant.id, changed["id"], {"jobTitle": "Head of Delta"})
    newcomer = {**changed, "id": "0e9a4f4b-5d1e-4b7a-9d0c-000000000d17",
                "userPrincipalName": "delta.joiner@contoso.com",
                "proxyAddresses": ["SMTP:Delta.Joiner@contoso.com"], "mail": None}  # fmt: skip
    simulator.upsert_user(tenant.id, newcomer)
    simulator.patch_user(tenant.id, disabled["id"], {"accountEnabled": False})
    simulator.remove_user(tenant.id, hard["id"], permanent=True)
    simulator.remove_user(tenant.id, soft["id"])

    report = sync(cli)
    assert (report["status"], report["mode"], report["fullReason"]) == ("succeeded", "delta", None)
    counts = report["counts"]
    assert (counts["created"], counts["updated"], counts["deleted"]) == (1, 1, 3)
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[changed["id"]]["Title"] == "Head of Delta"
    assert rows[newcomer["id"]]["Email"] == "delta.joiner@contoso.com"
    assert not {disabled["id"], hard["id"], soft["id"]} & rows.keys()
    # What a full run would now find: nothing left to do.
    again = sync(cli, "--full")
    assert again["counts"]["created"] == again["counts"]["updated"] == 0
    assert again["counts"]["deleted"] == 0


def test_without_clean_up_a_user_out_of_scope_is_kept_and_counted(cli, tenant, simulator, app_env):
    sync(cli)
    disabled = members(tenant)[0]
    simulator.patch_user(tenant.id, disabled["id"], {"accountEnabled": False})
    report = sync(cli)
    assert report["mode"] == "delta"
    assert report["counts"]["staleKept"] == 1 and report["counts"]["deleted"] == 0
    assert disabled["id"] in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)


def test_an_idle_delta_run_costs_two_graph_requests_and_no_employee_write(
    cli, tenant, simulator, app_env
):
    sync(cli)
    before = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    simulator.clear_requests()
    report = sync(cli)
    assert report["mode"] == "delta" and report["counts"]["read"] == 0
    requests = graph_requests(simulator, tenant.id)
    assert len(requests) <= 2 and report["graph"]["requests"] <= 2
    assert all(r.method == "GET" for r in requests)
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert {k: v["_etag"] for k, v in after.items()} == {k: v["_etag"] for k, v in before.items()}


def test_a_configuration_change_forces_a_full_run(cli, tenant, tmp_path):
    sync(cli)
    configure(cli, tmp_path, {"fields": [{"name": "Title", "source": "jobTitle"}]})
    report = sync(cli)
    assert (report["mode"], report["fullReason"]) == ("full", "configChanged")
    assert report["counts"]["updated"] > 0  # every row rewritten for the new field set
    assert sync(cli)["mode"] == "delta"


def test_full_is_forced_from_the_cli(cli, tenant):
    sync(cli)
    report = sync(cli, "--full")
    assert (report["mode"], report["fullReason"]) == ("full", "requested")


def test_an_expired_link_recovers_through_a_full_run_in_the_same_run(
    cli, tenant, simulator, app_env
):
    sync(cli)
    changed = members(tenant)[0]
    simulator.patch_user(tenant.id, changed["id"], {"jobTitle": "After Expiry"})
    simulator.delta.expire_tokens(count=1, status=410)
    report = sync(cli)
    assert (report["status"], report["mode"], report["fullReason"]) == (
        "succeeded",
        "full",
        "syncStateLost",
    )
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[changed["id"]]["Title"] == (
        "After Expiry"
    )
    assert sync(cli)["mode"] == "delta"


def test_a_run_failing_mid_delta_keeps_the_old_link_and_the_next_run_converges(
    cli, tenant, simulator, app_env
):
    sync(cli)
    link = sync_state(app_env, tenant.id)["DeltaLink"]
    first, second = members(tenant)[:2]
    simulator.patch_user(tenant.id, first["id"], {"jobTitle": "First Change"})
    simulator.patch_user(tenant.id, second["id"], {"jobTitle": "Second Change"})
    simulator.delta.page_size(1)
    simulator.faults.malformed_page("no_value", path_prefix="/v1.0/users/delta", after=1)
    failed = sync(cli)
    assert failed["status"] == "failed" and failed["errors"][0]["code"] == "graph_malformed_page"
    assert sync_state(app_env, tenant.id)["DeltaLink"] == link
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta")
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[first["id"]]["Title"] == "First Change"
    assert rows[second["id"]]["Title"] == "Second Change"
    assert sync_state(app_env, tenant.id)["DeltaLink"] != link


def test_the_guard_holds_a_mass_disable_in_a_delta_run(cli, tenant, simulator, app_env, tmp_path):
    configure(cli, tmp_path, {"cleanUp": {"enabled": True, "maxDeletePercent": 20}})
    sync(cli)
    link = sync_state(app_env, tenant.id)["DeltaLink"]
    stored = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    third = [u for u in members(tenant) if u["id"] in stored][: len(stored) // 3 + 1]
    for user in third:
        simulator.patch_user(tenant.id, user["id"], {"accountEnabled": False})
    held = cli("sync", "--json")
    assert held.exit_code == 3
    report = held.json
    assert (report["status"], report["mode"]) == ("held", "delta")
    assert report["counts"]["deletesHeld"] == len(third) and report["counts"]["deleted"] == 0
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id).keys() == stored.keys()
    # Held: the link stays, so the admin's allowed run replays the same changes.
    assert sync_state(app_env, tenant.id)["DeltaLink"] == link
    allowed = sync(cli, "--allow-deletes")
    assert (allowed["mode"], allowed["counts"]["deleted"]) == ("delta", len(third))


def test_a_user_repeated_within_a_round_ends_in_its_last_state_and_counts_once(
    cli, tenant, simulator, app_env
):
    sync(cli)
    user = members(tenant)[0]
    simulator.patch_user(tenant.id, user["id"], {"jobTitle": "Repeated"})
    simulator.delta.page_size(1)
    simulator.delta.repeat(user["id"])
    report = sync(cli)
    assert report["mode"] == "delta" and report["counts"]["read"] == 1
    assert report["counts"]["updated"] == 1
    row = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[user["id"]]
    assert row["Title"] == "Repeated"


def test_a_tenant_filtered_with_odata_stays_on_full_runs(cli, tenant, tmp_path):
    configure(cli, tmp_path, {"filter": {"odata": "userType eq 'Member'"}})
    sync(cli)
    report = sync(cli)
    assert (report["mode"], report["fullReason"]) == ("full", "odataFilter")
    assert any("filter.odata" in w for w in report["warnings"])


def test_the_report_text_says_the_mode(cli, tenant):
    sync(cli)
    result = cli("sync")
    assert result.exit_code == 0 and ", delta," in result.stdout
    assert json.loads(cli("sync", "--json", "--full").stdout)["fullReason"] == "requested"


def test_idle_delta_runs_are_kept_out_of_the_default_run_listing(cli, tenant):
    sync(cli)
    sync(cli)  # idle
    changed = sync(cli, "--full")
    listed = cli("runs", "--json").json["runs"]
    assert [r["mode"] for r in listed] == ["full", "full"]
    assert listed[0]["runId"] == changed["runId"]
    everything = cli("runs", "--idle", "--json").json["runs"]
    assert [r["mode"] for r in everything] == ["full", "delta", "full"]
    assert "delta" in cli("runs", "--idle").stdout


def test_deletions_held_by_a_requested_full_run_are_made_by_the_allowed_run_after_it(
    cli, tenant, app_env, tmp_path
):
    """Rows no delta round will ever mention (their users went while no link covered them) are
    found only by a full run; when the guard holds them, the run the guard asks for
    (--allow-deletes) must find them again, not run delta and delete nothing."""
    configure(cli, tmp_path, {"cleanUp": {"enabled": True, "maxDeletePercent": 20}})
    sync(cli)
    stored = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    employees = service.get_table_client(EMPLOYEES_TABLE)
    template = {k: v for k, v in next(iter(stored.values())).items() if k != "_etag"}
    orphans = [f"00000000-0000-4000-8000-{n:012d}" for n in range(len(stored) // 3 + 1)]
    for orphan in orphans:
        employees.create_entity({**template, "RowKey": orphan})

    held = sync(cli, "--full")
    assert (held["status"], held["counts"]["deletesHeld"]) == ("held", len(orphans))
    allowed = sync(cli, "--allow-deletes")
    assert allowed["counts"]["deleted"] == len(orphans), allowed
    assert not set(orphans) & stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id).keys()
