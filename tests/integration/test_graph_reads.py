"""Reads from Graph that prove themselves: malformed pages, pagination loops and foreign links
fail the run and delete nothing; expired page tokens restart the listing; filters Graph serves
only as advanced queries work; B2C tenants and missing optional permissions are handled. Real
CLI, msgraph-sdk and azure-data-tables against the simulator and Azurite."""

from __future__ import annotations

import uuid

import pytest

from simulator.generator import GeneratorOptions, generate_world
from tests.conftest import BASE_SEED, SimTenant, add_tenant
from tests.integration.full_runs import full_runs
from tests.integration.helpers import stored_rows, write_config

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(cli):
    """Full runs only: see tests/integration/full_runs.py."""
    return full_runs(cli)


CLEAN_UP_ANYTHING = {"cleanUp": {"enabled": True, "maxDeletePercent": 100, "maxDeletes": 100000}}


def listing_requests(simulator) -> list:
    return [r for r in simulator.requests if r.surface == "graph" and r.path == "/v1.0/users"]


def synced_with_clean_up(cli, app_env, tenant_id: str, tmp_path) -> dict:
    assert cli("config", "set", "--file", write_config(tmp_path, CLEAN_UP_ANYTHING)).exit_code == 0
    first = cli("sync", "--json")
    assert first.exit_code == 0, first.stdout
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant_id)
    assert rows
    return rows


def failed_run(cli, simulator) -> dict:
    try:
        result = cli("sync", "--json")
    finally:
        simulator.faults.clear()
    assert result.exit_code == 1, result.stdout
    return result.json


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ("empty_body", "graph_malformed_page"),
        ("no_content", "graph_malformed_page"),
        ("no_value", "graph_malformed_page"),
        ("value_not_list", "graph_malformed_page"),
        ("item_without_id", "graph_malformed_page"),
        ("foreign_next_link", "graph_unexpected_next_link"),
        ("repeat_next_link", "graph_pagination_loop"),
    ],
)
def test_a_malformed_page_fails_the_run_and_deletes_nobody(
    cli, tenant, simulator, app_env, tmp_path, form, code
):
    before = synced_with_clean_up(cli, app_env, tenant.id, tmp_path)
    # A user who left: a completed run with Clean Up on would delete exactly this one.
    leaver = next(u for u in tenant.of_kind("member") if u["id"] in before)
    simulator.remove_user(tenant.id, leaver["id"])
    # after=1: a full run first asks /users/delta for its delta link (same prefix).
    simulator.faults.malformed_page(form, path_prefix="/v1.0/users", after=1)
    report = failed_run(cli, simulator)
    assert report["status"] == "failed" and report["counts"]["deleted"] == 0
    assert report["errors"][0]["code"] == code and report["errors"][0]["fix"]
    assert "deleted nothing" in report["errors"][0]["message"]
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id).keys() == before.keys()
    # The next run, with Graph answering properly again, completes and cleans up.
    recovered = cli("sync", "--json").json
    assert recovered["status"] == "succeeded" and recovered["counts"]["deleted"] == 1


@pytest.fixture
def big_tenant(simulator, app_env, monkeypatch, request) -> SimTenant:
    """Three pages of 999 users: failures can strike after a good page."""
    seed = BASE_SEED + len(request.node.name)
    big = add_tenant(simulator, 2100, seed=seed, name="Northwind")
    monkeypatch.setenv("ENTRA_TENANT_ID", big.id)
    return big


def test_a_malformed_page_after_good_ones_deletes_nobody(
    cli, big_tenant, simulator, app_env, tmp_path
):
    before = synced_with_clean_up(cli, app_env, big_tenant.id, tmp_path)
    # The delta link's request, the first page, then the fault.
    simulator.faults.malformed_page("no_value", path_prefix="/v1.0/users", after=2)
    report = failed_run(cli, simulator)
    assert report["errors"][0]["code"] == "graph_malformed_page"
    assert "page 2" in report["errors"][0]["message"]
    assert report["counts"]["deleted"] == 0 and 0 < report["counts"]["read"] < 2100
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], big_tenant.id).keys() == before.keys()


def test_an_expired_page_token_restarts_the_listing_and_counts_each_user_once(
    cli, big_tenant, simulator, app_env
):
    simulator.clear_requests()
    simulator.faults.expire_page_tokens(1)  # page 2 of the first pass
    try:
        result = cli("sync", "--json")
    finally:
        simulator.faults.clear()
    assert result.exit_code == 0, result.stdout
    report = result.json
    counts = report["counts"]
    pages = listing_requests(simulator)
    assert [r.status for r in pages] == [200, 400, 200, 200, 200]
    assert "$skiptoken" not in pages[2].query  # the restart reads from the first page
    assert counts["read"] == 2100 == counts["inScope"] + counts["excluded"]
    assert counts["inScope"] == counts["created"] + counts["skippedNoEmail"]
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], big_tenant.id)
    assert len(rows) == counts["created"] == counts["employees"]
    assert any("restarted from the first page 1 time(s)" in w for w in report["warnings"])
    again = cli("sync", "--json").json
    assert again["counts"]["unchanged"] == len(rows) and again["counts"]["created"] == 0


def test_page_tokens_that_keep_expiring_fail_the_run_and_delete_nobody(
    cli, big_tenant, simulator, app_env, tmp_path
):
    before = synced_with_clean_up(cli, app_env, big_tenant.id, tmp_path)
    leaver = next(u for u in big_tenant.of_kind("member") if u["id"] in before)
    simulator.remove_user(big_tenant.id, leaver["id"])
    simulator.clear_requests()
    simulator.faults.expire_page_tokens(3)
    report = failed_run(cli, simulator)
    assert report["errors"][0]["code"] == "graph_page_token_expired"
    assert report["counts"]["deleted"] == 0
    assert [r.status for r in listing_requests(simulator)] == [200, 400] * 3
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], big_tenant.id).keys() == before.keys()
    # Tokens that expire with time, as on a slow reader: the same bounded outcome.
    simulator.faults.page_token_lifetime(0)
    report = failed_run(cli, simulator)
    assert report["errors"][0]["code"] == "graph_page_token_expired"
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], big_tenant.id).keys() == before.keys()


@pytest.mark.parametrize(
    ("odata", "expected"),
    [
        pytest.param(
            "department eq 'Sales'", lambda u: u.get("department") == "Sales", id="default"
        ),
        pytest.param(
            "companyName eq 'Contoso'",
            lambda u: u.get("companyName") == "Contoso",
            id="eq on an advanced-only property",
        ),
        pytest.param(
            "startswith(officeLocation,'B')",
            lambda u: (u.get("officeLocation") or "").lower().startswith("b"),
            id="startsWith on an advanced-only property",
        ),
        pytest.param(
            "onPremisesExtensionAttributes/extensionAttribute2 eq 'Contractor'",
            lambda u: (
                (u.get("onPremisesExtensionAttributes") or {}).get("extensionAttribute2")
                == "Contractor"
            ),
            id="extension attribute",
        ),
        pytest.param("jobTitle eq null", lambda u: u.get("jobTitle") is None, id="eq null"),
        pytest.param(
            "endswith(userPrincipalName,'.com')",
            lambda u: u["userPrincipalName"].lower().endswith(".com"),
            id="endsWith",
        ),
        pytest.param("userType ne 'Guest'", lambda u: u.get("userType") != "Guest", id="ne"),
    ],
)
def test_filters_of_every_class_work(cli, tenant, simulator, tmp_path, odata, expected):
    config = {"filter": {"odata": odata, "excludeGuests": False, "excludeDisabled": False}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    simulator.clear_requests()
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stdout
    wanted = [u for u in tenant.users if expected(u)]
    assert wanted and result.json["counts"]["read"] == len(wanted)
    first = listing_requests(simulator)[0]
    assert first.query["$count"] == "true" and first.query["$filter"] == odata
    assert {k.lower(): v for k, v in first.headers.items()}["consistencylevel"] == "eventual"


@pytest.fixture
def b2c_tenant(simulator, app_env, monkeypatch) -> SimTenant:
    tenant_id = str(uuid.uuid4())
    world = generate_world(
        GeneratorOptions(
            users=30,
            seed=BASE_SEED + 2,
            tenant_id=tenant_id,
            client_id=simulator.world.apps[0].client_id,
            tenant_name="Woodgrove B2C",
        )
    )
    tenant = world["tenants"][0] | {"tenantType": "AADB2C"}
    simulator.add_tenant(tenant)
    monkeypatch.setenv("ENTRA_TENANT_ID", tenant_id)
    return SimTenant(tenant_id, "Woodgrove B2C", tenant["users"])


def test_a_b2c_tenant_reads_default_filters_without_advanced_queries(
    cli, b2c_tenant, simulator, tmp_path
):
    config = {"filter": {"odata": "userType eq 'Member'", "excludeGuests": False}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    simulator.clear_requests()
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stdout
    members = [u for u in b2c_tenant.users if u.get("userType") == "Member"]
    assert result.json["counts"]["read"] == len(members)
    assert any("refused Graph's advanced queries" in w for w in result.json["warnings"])
    refused, accepted = listing_requests(simulator)
    assert refused.status == 400 and refused.query["$count"] == "true"
    assert accepted.status == 200 and "$count" not in accepted.query


def test_a_b2c_tenant_with_a_filter_needing_advanced_queries_is_told_so(cli, b2c_tenant, tmp_path):
    config = {"filter": {"odata": "userType ne 'Guest'"}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    result = cli("sync", "--json")
    assert result.exit_code == 1
    error = result.json["errors"][0]
    assert error["code"] == "filter_needs_advanced_query" and "filter.odata" in error["fix"]


def test_without_organization_read_all_the_sync_runs_and_says_why_the_name_is_missing(
    cli, tenant, simulator
):
    client_id = simulator.world.apps[0].client_id
    simulator.set_consent(tenant.id, client_id, ["User.Read.All"])
    simulator.clear_requests()
    result = cli("sync", "--json")
    assert result.exit_code == 0, result.stdout
    report = result.json
    assert report["tenantName"] is None and report["counts"]["created"] > 0
    assert any("Organization.Read.All" in w for w in report["warnings"])
    organization = [r for r in simulator.requests if r.path == "/v1.0/organization"]
    assert organization and organization[0].status == 403


def test_a_filter_graph_refuses_both_ways_is_reported_as_refused_not_as_b2c(
    cli, tenant, simulator, tmp_path
):
    config = {"filter": {"odata": "departmnt eq 'Sales'"}}
    assert cli("config", "set", "--file", write_config(tmp_path, config)).exit_code == 0
    simulator.clear_requests()
    result = cli("sync", "--json")
    assert result.exit_code == 1
    report = result.json
    assert report["errors"][0]["code"] == "graph_rejected_request"
    assert "departmnt" in report["errors"][0]["message"]
    assert not any("advanced queries" in w for w in report["warnings"])
    assert [r.query.get("$count") for r in listing_requests(simulator)] == ["true", None]


def test_check_counts_each_user_once_when_the_listing_restarts(cli, big_tenant, simulator):
    simulator.faults.expire_page_tokens(1)
    try:
        result = cli("check", "--json")
    finally:
        simulator.faults.clear()
    assert result.exit_code == 0, result.stdout
    assert result.json["usersRead"] == 2100
