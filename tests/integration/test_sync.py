"""The sync engine end to end: the real CLI, msgraph-sdk, azure-identity, Key Vault and
azure-data-tables against the simulator and Azurite."""

from __future__ import annotations

import asyncio
import json

import pytest
from azure.data.tables import TableServiceClient

from tests.conftest import add_tenant
from tests.integration.full_runs import full_runs
from tests.integration.helpers import stored_rows, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(cli):
    """Full runs only: see tests/integration/full_runs.py."""
    return full_runs(cli)


def test_first_sync_imports_members_with_fields_email_and_aliases(cli, tenant, app_env):
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    report = result.json
    counts = report["counts"]
    assert report["status"] == "succeeded"
    assert report["tenantName"] == "Contoso Ltd"
    assert report["tenantId"] == tenant.id
    assert counts["read"] == len(tenant.users) == counts["inScope"] + counts["excluded"]
    assert counts["inScope"] == (
        counts["created"] + counts["updated"] + counts["unchanged"] + counts["skippedNoEmail"]
    )
    assert counts["created"] > 0 and counts["updated"] == counts["unchanged"] == 0
    disabled = [u for u in tenant.users if u.get("accountEnabled") is False]
    guests = [u for u in tenant.users if u.get("userType") == "Guest"]
    assert report["excludedBy"] == {"disabled": len(disabled), "guest": len(guests)}
    no_email = tenant.of_kind("no_email")
    assert no_email and {u["userPrincipalName"] for u in no_email} <= set(report["skippedNoEmail"])
    assert report["graph"]["requests"] >= 2 and report["errors"] == []

    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert len(rows) == counts["created"]
    member = next(u for u in tenant.of_kind("member") if u.get("jobTitle") and u.get("city"))
    row = rows[member["id"]]
    primary = next(p.split(":", 1)[1] for p in member["proxyAddresses"] if p.startswith("SMTP:"))
    assert row["Email"] == primary.strip().lower()
    assert row["Title"] == member["jobTitle"] and row["City"] == member["city"]
    assert (
        row["FirstName"] == member["givenName"]
        and row["UserPrincipalName"] == member["userPrincipalName"]
    )
    aliases = json.loads(row["Aliases"])
    assert row["Email"] not in aliases and aliases == list(dict.fromkeys(aliases))
    assert all(a == a.lower() for a in aliases)
    only_other = tenant.of_kind("other_mail")[0]
    assert rows[only_other["id"]]["Email"] == only_other["otherMails"][0].lower()
    assert not {u["id"] for u in disabled + guests + no_email} & rows.keys()


def test_employees_json_in_configured_order_sorted_by_email(cli, tenant, tmp_path):
    config = {"fields": [{"name": "Title", "source": "jobTitle"},
                         {"name": "Name", "source": "displayName"},
                         {"name": "Phone2", "source": "businessPhones[1]"}]}  # fmt: skip
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    result = cli("employees", "--json")
    assert result.exit_code == 0
    document = result.json
    assert document["tenantId"] == tenant.id
    assert document["fields"] == ["Email", "Title", "Name", "Phone2", "Aliases"]
    employees = document["employees"]
    assert [e["Email"] for e in employees] == sorted(e["Email"] for e in employees)
    assert all(list(e) == ["id", "Email", "Title", "Name", "Phone2", "Aliases"] for e in employees)
    assert all(isinstance(e["Aliases"], list) for e in employees)
    human = cli("employees")
    assert f"{len(employees)} employees" in human.stdout


def test_second_run_writes_nothing(cli, tenant, app_env):
    assert cli("sync").exit_code == 0
    before = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    # Full, so every user is read again and found unchanged by its hash.
    report = cli("sync", "--full", "--json").json
    assert report["counts"]["created"] == report["counts"]["updated"] == 0
    assert report["counts"]["unchanged"] == len(before)
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert {k: v["_etag"] for k, v in after.items()} == {k: v["_etag"] for k, v in before.items()}


def test_changed_users_are_updated_and_new_ones_added(cli, tenant, simulator, app_env):
    assert cli("sync").exit_code == 0
    member = tenant.of_kind("member")[0]
    simulator.patch_user(tenant.id, member["id"], {"jobTitle": "Chief Signature Officer",
                                                   "mobilePhone": None})  # fmt: skip
    newcomer = {**member, "id": "0e9a4f4b-5d1e-4b7a-9d0c-000000000777",
                "userPrincipalName": "new.joiner@contoso.com", "proxyAddresses": ["SMTP:New.Joiner@contoso.com"]}  # fmt: skip
    simulator.upsert_user(tenant.id, newcomer)
    report = cli("sync", "--json").json
    assert (report["counts"]["created"], report["counts"]["updated"]) == (1, 1)
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows[member["id"]]["Title"] == "Chief Signature Officer"
    assert "Mobile" not in rows[member["id"]]  # a cleared source leaves the property absent
    assert rows[newcomer["id"]]["Email"] == "new.joiner@contoso.com"


def test_dry_run_plans_but_writes_nothing(cli, tenant, app_env):
    report = cli("sync", "--dry-run", "--json").json
    assert report["dryRun"] is True and report["counts"]["created"] > 0
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}


def test_users_who_left_are_kept_unless_clean_up_is_on(cli, tenant, simulator, app_env, tmp_path):
    assert cli("sync").exit_code == 0
    leaver = tenant.of_kind("member")[0]
    simulator.remove_user(tenant.id, leaver["id"])
    report = cli("sync", "--json").json
    assert report["counts"]["deleted"] == 0 and report["counts"]["staleKept"] == 1
    assert leaver["id"] in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)

    config = {"cleanUp": {"enabled": True}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    report = cli("sync", "--json").json
    assert report["status"] == "succeeded" and report["counts"]["deleted"] == 1
    assert leaver["id"] not in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)


def test_users_who_fall_out_of_the_filters_are_cleaned_up(
    cli, tenant, simulator, app_env, tmp_path
):
    config = {"cleanUp": {"enabled": True}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    member = tenant.of_kind("member")[1]
    simulator.patch_user(tenant.id, member["id"], {"accountEnabled": False})
    report = cli("sync", "--json").json
    assert report["counts"]["deleted"] == 1 and report["excludedBy"]["disabled"] >= 1
    assert member["id"] not in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)


def test_guard_holds_mass_deletions_until_allowed(cli, tenant, tmp_path, app_env):
    assert cli("sync").exit_code == 0
    stored = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    # A filter typo that leaves almost nobody in scope: the classic mass accident.
    config = {
        "cleanUp": {"enabled": True, "maxDeletes": 500, "maxDeletePercent": 20},
        "filter": {
            "include": [[{"attribute": "department", "operator": "equals", "value": "Salse"}]]
        },
    }
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    held = cli("sync", "--json")
    assert held.exit_code == 3
    report = held.json
    assert report["status"] == "held"
    assert report["counts"]["deletesHeld"] == len(stored) and report["counts"]["deleted"] == 0
    assert any("--allow-deletes" in w for w in report["warnings"])
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id).keys() == stored.keys()

    allowed = cli("sync", "--allow-deletes", "--json")
    assert allowed.exit_code == 0
    assert allowed.json["counts"]["deleted"] == len(stored)
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}


def test_throttling_is_survived_and_counted(cli, tenant, simulator):
    simulator.faults.throttle(2, retry_after=1)
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json["graph"]["throttled"] == 2
    assert result.json["counts"]["created"] > 0


def test_a_run_that_fails_mid_read_deletes_nothing_and_the_next_recovers(
    cli, simulator, app_env, monkeypatch, tmp_path
):
    big = add_tenant(simulator, 2500, seed=11, name="Northwind")  # three pages of 999
    monkeypatch.setenv("ENTRA_TENANT_ID", big.id)
    config = {"cleanUp": {"enabled": True, "maxDeletePercent": 100, "maxDeletes": 100000}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    before = stored_rows(app_env["TABLES_CONNECTION_STRING"], big.id)
    # Page 1 arrives, then Graph stays down for page 2: without the rule "delete only after a
    # complete read", everyone on pages 2 and 3 would be removed.
    # after=2: the delta link's request (a full run asks for it first) and page 1 pass.
    simulator.faults.unavailable(50, retry_after=1, path_prefix="/v1.0/users", after=2)
    try:
        failed = cli("sync", "--json")
    finally:
        simulator.faults.clear()
    assert failed.exit_code == 1
    report = failed.json
    assert report["status"] == "failed" and report["counts"]["deleted"] == 0
    assert 0 < report["counts"]["read"] < 2500
    assert report["errors"][0]["code"] == "graph_unavailable" and report["errors"][0]["fix"]
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], big.id).keys() == before.keys()
    recovered = cli("sync", "--json").json
    assert recovered["status"] == "succeeded"
    assert recovered["counts"]["unchanged"] == len(before) and recovered["counts"]["read"] == 2500


def test_dropped_connections_are_retried(cli, tenant, simulator):
    simulator.faults.drop_connection(2, path_prefix="/v1.0/users")
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json["counts"]["created"] > 0


def test_the_secret_is_read_from_key_vault_with_the_managed_identity(cli, tenant, simulator):
    simulator.clear_requests()
    assert cli("sync").exit_code == 0
    surfaces = [(r.surface, r.method, r.path, r.status) for r in simulator.requests]
    assert ("msi", "GET", "/msi/token", 200) in surfaces
    assert ("vault", "GET", "/secrets/entra-client-secret/", 200) in surfaces


def test_only_get_requests_reach_graph(cli, tenant, simulator, tmp_path):
    simulator.clear_requests()
    config = {"cleanUp": {"enabled": True}, "filter": {"odata": "userType ne 'Guest'"}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    assert cli("sync").exit_code == 0
    assert cli("check").exit_code == 0
    graph = [r for r in simulator.requests if r.surface == "graph"]
    assert graph and {r.method for r in graph} == {"GET"}
    users = [r for r in graph if r.path == "/v1.0/users"]
    # $select is derived from fields and filters: nothing else is read.
    selected = set(users[0].query["$select"].split(","))
    assert "assignedLicenses" not in selected and "mailboxSettings" not in selected
    assert {"id", "proxyAddresses", "accountEnabled", "userType", "jobTitle"} <= selected
    assert users[0].query["$top"] == "999"
    assert users[0].query["$count"] == "true"  # ne needs an advanced query


def test_odata_filter_narrows_what_graph_returns(cli, tenant, tmp_path):
    config = {"filter": {"odata": "userType eq 'Member'", "excludeGuests": False}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    report = cli("sync", "--json").json
    guests = [u for u in tenant.users if u.get("userType") == "Guest"]
    assert report["counts"]["read"] == len(tenant.users) - len(guests)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"ENTRA_CLIENT_SECRET": "not-the-secret"}, "wrong_secret"),
        ({"ENTRA_TENANT_ID": "0c7a1a3e-0000-4000-8000-00000000dead"}, "unknown_tenant"),
        ({"ENTRA_CLIENT_ID": "5a0d5d7b-0000-4000-8000-00000000beef"}, "unknown_app"),
    ],
)
def test_check_diagnoses_credential_problems(cli, tenant, monkeypatch, change, code):
    for name, value in change.items():
        monkeypatch.setenv(name, value)
    result = cli("check", "--json")
    assert result.exit_code == 1
    document = result.json
    assert document["ok"] is False
    assert [p["code"] for p in document["problems"]] == [code]
    assert document["problems"][0]["fix"]
    sync = cli("sync", "--json")
    assert sync.exit_code == 1 and sync.json["errors"][0]["code"] == code


def test_check_diagnoses_missing_consent(cli, tenant, simulator):
    simulator.set_consent(tenant.id, simulator.world.apps[0].client_id, [])
    document = cli("check", "--json").json
    assert [p["code"] for p in document["problems"]] == ["missing_consent"]
    assert "User.Read.All" in document["problems"][0]["fix"]


def test_check_passes_and_counts_users_in_scope(cli, tenant):
    result = cli("check", "--json")
    assert result.exit_code == 0, result.stdout
    document = result.json
    assert document["ok"] is True and document["problems"] == []
    assert document["tenantName"] == "Contoso Ltd" and document["usersRead"] == len(tenant.users)
    report = cli("sync", "--dry-run", "--json").json
    assert document["usersInScope"] == report["counts"]["inScope"]
    assert "OK" in cli("check").stdout


def test_check_diagnoses_unreachable_storage_and_missing_secret(cli, tenant, monkeypatch):
    monkeypatch.setenv("TABLES_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                       "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")  # fmt: skip
    monkeypatch.setenv("ENTRA_CLIENT_SECRET_NAME", "no-such-secret")
    document = cli("check", "--json").json
    assert [p["code"] for p in document["problems"]] == ["storage_unreachable", "secret_not_found"]


def test_no_secret_in_any_output(cli, tenant, simulator, monkeypatch, caplog):
    secret = simulator.world.apps[0].secrets[0]
    outputs = [
        cli("sync", "-v"),
        cli("sync", "--json"),
        cli("check", "--json"),
        cli("runs", "--json"),
    ]
    monkeypatch.setenv("ENTRA_CLIENT_SECRET", "wrong-secret-value-123")
    outputs += [cli("check", "--json"), cli("sync", "-v")]
    text = "".join(o.stdout + o.stderr for o in outputs) + caplog.text
    assert secret not in text and "wrong-secret-value-123" not in text


def test_runs_lists_reports_newest_first(cli, tenant):
    first = cli("sync", "--json").json
    second = cli("sync", "--dry-run", "--json").json
    runs = cli("runs", "--json").json["runs"]
    assert [r["runId"] for r in runs[:2]] == [second["runId"], first["runId"]]
    assert runs[1]["counts"] == first["counts"]
    assert second["runId"] in cli("runs").stdout


def test_config_commands(cli, tenant, tmp_path):
    shown = cli("config", "show")
    assert shown.exit_code == 0 and json.loads(shown.stdout)["cleanUp"]["enabled"] is False
    bad = {"fields": [{"name": "Email", "source": "mail"}], "cleanUp": {"maxDeletes": -1}}
    rejected = cli("config", "set", "--file", write_config(tmp_path, bad))
    assert rejected.exit_code == 2
    assert "$.fields[0].name" in rejected.stderr and "$.cleanUp.maxDeletes" in rejected.stderr
    assert json.loads(cli("config", "show").stdout)["fields"][0]["name"] == "FirstName"
    good = {"fields": [{"name": "Title", "source": "jobTitle"}]}
    assert cli("config", "validate", "--file", write_config(tmp_path, good)).exit_code == 0
    assert cli("config", "set", "--file", write_config(tmp_path, good)).exit_code == 0
    assert json.loads(cli("config", "show").stdout)["fields"] == [
        {"name": "Title", "source": "jobTitle"}
    ]


def test_missing_settings_are_listed_together(cli, monkeypatch):
    monkeypatch.delenv("ENTRA_TENANT_ID")
    monkeypatch.delenv("KEY_VAULT_URL")
    result = cli("sync")
    assert result.exit_code == 2
    assert (
        "ENTRA_TENANT_ID is not set" in result.stderr and "no client secret source" in result.stderr
    )


def test_a_large_tenant_pages_and_streams(cli, simulator, app_env, monkeypatch):
    big = add_tenant(simulator, 2500, seed=7, name="Fabrikam")
    monkeypatch.setenv("ENTRA_TENANT_ID", big.id)
    simulator.clear_requests()
    report = cli("sync", "--json").json
    pages = [r for r in simulator.requests if r.surface == "graph" and r.path == "/v1.0/users"]
    assert len(pages) == 3 and report["counts"]["read"] == 2500
    assert "$skiptoken" in pages[1].query
    assert (
        len(stored_rows(app_env["TABLES_CONNECTION_STRING"], big.id)) == report["counts"]["created"]
    )


def test_the_cli_never_runs_beside_another_run_of_the_tenant(cli, tenant, app_env):
    # A worker's run holds the tenant's lease: the CLI must not write beside it.
    from datetime import timedelta

    from sync_core.app.service import SyncService
    from sync_core.core.report import utc_now
    from sync_core.settings import load_settings

    async def hold_lease():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            return await service.leases.acquire(
                tenant.id, "20261126T000000000Z-worker", utc_now(), timedelta(minutes=5)
            )

    lease = asyncio.run(hold_lease())
    assert lease is not None
    busy = cli("sync")
    assert busy.exit_code == 1 and "tenant_busy" in busy.stderr
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}

    async def release():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            await service.leases.release(lease)

    asyncio.run(release())
    assert cli("sync").exit_code == 0


def test_two_cli_runs_racing_make_one_set_of_rows(cli, tenant, app_env):
    from sync_core.surfaces.cli import main

    async def both() -> list[int]:
        loop = asyncio.get_running_loop()
        runs = (loop.run_in_executor(None, main, ["sync"]) for _ in range(2))
        return sorted(await asyncio.gather(*runs))

    assert asyncio.run(both()) in ([0, 0], [0, 1])  # 1: the other held the lease
    report = cli("sync", "--json").json
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert report["counts"]["unchanged"] == len(rows) and report["counts"]["created"] == 0


def test_a_stored_configuration_is_validated_again_before_each_run(cli, tenant, app_env):
    # A configuration written by an older version (or by hand) that is no longer valid.
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    service.get_table_client("TenantConfigs").upsert_entity(
        {
            "PartitionKey": tenant.id,
            "RowKey": "config",
            "Config": json.dumps({"fields": [{"name": "Email", "source": "mail"}]}),
        }
    )
    result = cli("sync", "--json")
    assert result.exit_code == 2
    assert result.json["status"] == "failed"
    assert result.json["errors"][0]["code"] == "invalid_config"
    assert "$.fields[0].name" in result.json["errors"][0]["message"]
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}


def test_unreachable_graph_is_diagnosed(cli, tenant, simulator):
    simulator.faults.drop_connection(20, path_prefix="/v1.0/")
    try:
        document = cli("check", "--json").json
    finally:
        simulator.faults.clear()
    assert [p["code"] for p in document["problems"]] == ["graph_unreachable"]


def test_a_graph_url_of_another_cloud_is_diagnosed(cli, tenant, monkeypatch):
    monkeypatch.setenv("GRAPH_BASE_URL", "https://localhost:9")
    document = cli("check", "--json").json
    assert [p["code"] for p in document["problems"]] == ["graph_resource_unknown"]
    assert "GRAPH_BASE_URL" in document["problems"][0]["fix"]


def test_a_connection_dropped_mid_page_is_retried(cli, tenant, simulator):
    simulator.faults.cut_body(1, path_prefix="/v1.0/users")
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stdout
    assert result.json["counts"]["read"] == len(tenant.users)


def test_a_gateway_error_without_a_graph_body_is_classified(cli, tenant, simulator):
    simulator.faults.bad_gateway(1, path_prefix="/v1.0/users")
    result = cli("sync", "--json")
    assert result.exit_code == 1
    assert result.json["errors"][0]["code"] == "graph_unavailable"
    check = cli("check", "--json")  # the gateway recovered: the check passes
    assert check.exit_code == 0


def test_errors_are_one_json_document_with_json(cli, monkeypatch):
    monkeypatch.delenv("ENTRA_TENANT_ID")
    result = cli("sync", "--json")
    assert result.exit_code == 2
    assert result.json["error"]["code"] == "invalid_settings"
    assert any("ENTRA_TENANT_ID" in p for p in result.json["error"]["problems"])


def test_unreachable_storage_is_an_error_not_a_traceback(cli, monkeypatch):
    monkeypatch.setenv("TABLES_CONNECTION_STRING",
                       "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                       "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;")  # fmt: skip
    result = cli("employees", "--json")
    assert result.exit_code == 1
    assert result.json["error"]["code"] == "storage_unreachable"
    assert "Traceback" not in result.stderr


def test_check_with_a_counting_budget_still_answers(tenant, simulator, app_env):
    from sync_core.app.check import check_connectivity
    from sync_core.settings import load_settings

    simulator.faults.latency(1000, path_prefix="/v1.0/users")
    try:
        result = asyncio.run(
            check_connectivity(load_settings(app_env), tenant.id, count_budget_seconds=0.5)
        )
    finally:
        simulator.faults.clear()
    assert result.ok and result.users_in_scope is None
    assert any("took longer than 0.5 s" in w for w in result.warnings)
    assert "the app may list users (User.Read.All)" in result.passed
