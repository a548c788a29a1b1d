"""Scope by group, nested groups included, and the group-membership field, end to end: the real
CLI, msgraph-sdk and azure-data-tables against the simulator's /groups endpoints and Azurite."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from sync_core.adapters.storage_names import GROUPS_TABLE
from sync_core.core.report import RunReport
from sync_core.core.report_text import render_text
from tests.integration import group_scopes
from tests.integration.group_scopes import GROUP_ROLES, gid, people, scoped
from tests.integration.helpers import CLEAN_UP, configure, graph_requests, stored_rows, sync

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("reset_delta_and_faults")]
nested = group_scopes.nested  # the fixture: nested groups with a cycle


def rows(app_env, tenant) -> dict[str, dict[str, Any]]:
    return stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)


def test_include_keeps_only_transitive_members_and_a_cycle_is_harmless(
    cli, tenant, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]]))
    report = sync(cli)
    assert report["status"] == "succeeded", report["errors"]
    u = nested["users"]
    assert set(rows(app_env, tenant)) == {u[0], u[1]}
    assert report["excludedBy"]["notInGroups"] > 0
    assert report["groups"] == [{"id": nested["alpha"], "displayName": "Alpha", "members": 2}]
    text = render_text(RunReport.from_json(report))
    assert "Alpha" in text and "not in the scope groups" in text


def test_exclude_leaves_out_members_with_the_reason(cli, tenant, app_env, tmp_path, nested):
    configure(cli, tmp_path, scoped(exclude=[nested["beta"]]))
    report = sync(cli)
    assert report["status"] == "succeeded", report["errors"]
    stored = rows(app_env, tenant)
    u = nested["users"]
    # Beta holds u1 directly and u0 through Alpha (nested in Beta).
    assert u[0] not in stored and u[1] not in stored and u[2] in stored
    assert report["excludedBy"][f"excludeGroup[{nested['beta']}]"] == 2
    assert "in group Beta" in render_text(RunReport.from_json(report))


def test_joining_and_leaving_through_a_nested_group_reach_the_table_in_delta_runs(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    assert sync(cli)["mode"] == "full"
    u = nested["users"]
    simulator.groups.add_member(tenant.id, nested["beta"], u[3])
    simulator.clear_requests()
    joined = sync(cli)
    assert (joined["status"], joined["mode"]) == ("succeeded", "delta"), joined["errors"]
    assert u[3] in rows(app_env, tenant)
    assert joined["counts"]["created"] == 1
    paths = [r.path for r in graph_requests(simulator, tenant.id)]
    assert "/v1.0/groups/delta" in paths and "/v1.0/users" not in paths

    simulator.groups.remove_member(tenant.id, nested["beta"], u[1])
    left = sync(cli)
    assert (left["status"], left["mode"]) == ("succeeded", "delta"), left["errors"]
    assert left["counts"]["deleted"] == 1
    assert u[1] not in rows(app_env, tenant)
    assert left["excludedBy"] == {"notInGroups": 1}
    # What a full run would now find: nothing left to do.
    again = sync(cli, "--full")
    assert again["counts"]["created"] == again["counts"]["updated"] == 0
    assert again["counts"]["deleted"] == 0


def test_an_idle_delta_tick_of_a_group_scoped_tenant_costs_three_requests_and_no_write(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]]))
    sync(cli)
    before = rows(app_env, tenant)
    simulator.clear_requests()
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta")
    assert len(graph_requests(simulator, tenant.id)) <= 3
    assert rows(app_env, tenant) == before


def test_a_deleted_group_fails_the_run_and_deletes_no_one(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    sync(cli)
    before = set(rows(app_env, tenant))
    simulator.groups.delete_group(tenant.id, nested["alpha"])
    report = sync(cli)
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "group_deleted"
    assert set(rows(app_env, tenant)) == before
    full = sync(cli, "--full")
    assert full["status"] == "failed" and full["errors"][0]["code"] == "group_not_found"
    assert set(rows(app_env, tenant)) == before


def test_a_missing_permission_fails_the_run_and_deletes_no_one(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    sync(cli)  # no group scope yet: everyone in scope is stored
    before = set(rows(app_env, tenant))
    simulator.set_consent(
        tenant.id, simulator.world.apps[0].client_id, ["User.Read.All", "Organization.Read.All"]
    )
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    report = sync(cli)
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "group_permission_missing"
    assert "GroupMember.Read.All" in report["errors"][0]["fix"]
    assert set(rows(app_env, tenant)) == before


def test_a_scope_group_emptied_in_entra_is_held_by_the_guard(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    guarded = {"cleanUp": {"enabled": True, "maxDeletes": 1, "maxDeletePercent": 100}}
    configure(cli, tmp_path, scoped([nested["gamma"]], **guarded))
    u = nested["users"]
    for user in u[3:6]:
        simulator.groups.add_member(tenant.id, nested["gamma"], user)
    sync(cli)
    assert set(rows(app_env, tenant)) == {u[2], *u[3:6]}
    for user in (u[2], *u[3:6]):
        simulator.groups.remove_member(tenant.id, nested["gamma"], user)
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("held", "delta")
    assert report["counts"]["deletesHeld"] == 4
    assert set(rows(app_env, tenant)) == {u[2], *u[3:6]}
    # Held: the links were not committed, so the next run sees the same change again.
    assert sync(cli)["counts"]["deletesHeld"] == 4


def test_the_group_field_lists_the_names_of_the_users_groups(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    field = {"name": "Teams", "source": "memberOf", "groups": [nested["gamma"], nested["beta"]]}
    configure(cli, tmp_path, {"fields": [{"name": "Title", "source": "jobTitle"}, field]})
    report = sync(cli)
    assert report["status"] == "succeeded", report["errors"]
    stored = rows(app_env, tenant)
    u = nested["users"]
    assert json.loads(stored[u[0]]["Teams"]) == ["Beta"]  # through Alpha, nested in Beta
    assert json.loads(stored[u[2]]["Teams"]) == ["Gamma"]
    assert "Teams" not in stored[u[4]]
    simulator.groups.add_member(tenant.id, nested["gamma"], u[0])
    delta = sync(cli)
    assert (delta["status"], delta["mode"]) == ("succeeded", "delta"), delta["errors"]
    # The order is the field's, whatever order Graph answers in.
    assert json.loads(rows(app_env, tenant)[u[0]]["Teams"]) == ["Gamma", "Beta"]


def test_check_connectivity_reads_each_listed_group(cli, tenant, simulator, tmp_path, nested):
    hidden = gid()
    simulator.groups.put_group(
        tenant.id, hidden, "Board", [nested["users"][4]], hidden_membership=True
    )
    unknown = gid()
    configure(cli, tmp_path, scoped([nested["alpha"], hidden, unknown]))
    result = cli("check", "--json")
    problems = {p["code"]: p for p in result.json["problems"]}
    assert problems["group_not_found"]["message"].count(unknown) == 1
    # Readable but its members hidden: named by its display name, with the permission missing.
    assert "'Board'" in problems["group_permission_missing"]["message"]
    assert "Member.Read.Hidden" in problems["group_permission_missing"]["message"]
    configure(cli, tmp_path, scoped([nested["alpha"]]))
    fine = cli("check", "--json").json
    assert fine["ok"] and fine["usersInScope"] == 2
    assert any("Alpha" in step for step in fine["passed"])


def test_a_malformed_members_page_fails_the_run_and_deletes_no_one(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    sync(cli)
    before = set(rows(app_env, tenant))
    simulator.faults.malformed_page("no_value", count=1, path_prefix="/v1.0/groups/")
    report = sync(cli, "--full")
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "graph_malformed_page"
    assert set(rows(app_env, tenant)) == before


def test_a_throttling_storm_on_the_group_round_fails_the_run_and_deletes_no_one(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    sync(cli)
    before = set(rows(app_env, tenant))
    simulator.groups.remove_member(tenant.id, nested["beta"], nested["users"][1])
    simulator.faults.throttle(7, retry_after=1, path_prefix="/v1.0/groups/delta")
    report = sync(cli)
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "throttled"
    assert set(rows(app_env, tenant)) == before
    simulator.faults.clear()
    # The next run replays the same round: the leaver is handled then.
    after = sync(cli)
    assert (after["status"], after["counts"]["deleted"]) == ("succeeded", 1)


def test_a_tenant_that_stops_scoping_by_group_keeps_no_membership_state(
    cli, tenant, app_env, tmp_path, nested
):
    def membership_rows() -> int:
        service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
        table = service.get_table_client(GROUPS_TABLE)
        return len(list(table.query_entities("PartitionKey eq @t", parameters={"t": tenant.id})))

    configure(cli, tmp_path, scoped([nested["alpha"]]))
    sync(cli)
    assert membership_rows() == 2  # Alpha and Beta, nested in it (a cycle)
    configure(cli, tmp_path, {})
    assert sync(cli)["mode"] == "full"
    assert membership_rows() == 0


def test_a_group_round_with_a_malformed_member_fails_the_run_and_changes_nothing(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    # A member entry without an id was skipped: a dropped nesting left the stored graph short
    # of a whole group's users (taken as not in the groups at their next change, and removed),
    # and a dropped joiner was never added while the links moved on.
    configure(cli, tmp_path, scoped([nested["alpha"]], **CLEAN_UP))
    simulator.faults.malformed_page("member_without_id", path_prefix="/v1.0/groups/delta")
    first = sync(cli)
    assert first["status"] == "failed"
    assert first["errors"][0]["code"] == "graph_malformed_page"
    assert rows(app_env, tenant) == {}
    assert sync(cli)["status"] == "succeeded"
    before = set(rows(app_env, tenant))
    u = nested["users"]
    simulator.groups.add_member(tenant.id, nested["beta"], u[3])
    simulator.faults.malformed_page("member_without_id", path_prefix="/v1.0/groups/delta")
    report = sync(cli)
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "graph_malformed_page"
    assert set(rows(app_env, tenant)) == before
    # Nothing was committed: the next run replays the round and adds the joiner.
    again = sync(cli)
    assert (again["status"], again["mode"]) == ("succeeded", "delta"), again["errors"]
    assert set(rows(app_env, tenant)) == before | {u[3]}


def test_a_microsoft_365_group_scopes_like_any_other(cli, tenant, simulator, app_env, tmp_path):
    # Graph refuses the cast to groups on a Microsoft 365 group (it holds none): finding the
    # nested groups must not fail the run of a tenant scoped by one, the most common kind.
    simulator.set_consent(tenant.id, simulator.world.apps[0].client_id, GROUP_ROLES)
    u = people(tenant, 3)
    team = gid()
    simulator.groups.put_group(tenant.id, team, "Sales Team", u[:2], unified=True)
    field = {"name": "Teams", "source": "memberOf", "groups": [team]}
    configure(cli, tmp_path, scoped([team], fields=[field], **CLEAN_UP))
    report = sync(cli)
    assert report["status"] == "succeeded", report["errors"]
    assert set(rows(app_env, tenant)) == {u[0], u[1]}
    assert json.loads(rows(app_env, tenant)[u[0]]["Teams"]) == ["Sales Team"]
    simulator.groups.add_member(tenant.id, team, u[2])
    delta = sync(cli)
    assert (delta["status"], delta["mode"]) == ("succeeded", "delta"), delta["errors"]
    assert set(rows(app_env, tenant)) == {u[0], u[1], u[2]}
    assert cli("check", "--json").json["ok"]


def test_a_renamed_group_rewrites_the_field_of_its_members_in_a_delta_run(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    field = {"name": "Teams", "source": "memberOf", "groups": [nested["beta"]]}
    configure(cli, tmp_path, scoped([nested["alpha"]], fields=[field]))
    assert sync(cli)["status"] == "succeeded"
    u = nested["users"]
    simulator.groups.rename(tenant.id, nested["beta"], "Beta Renamed")
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report["errors"]
    stored = rows(app_env, tenant)
    assert json.loads(stored[u[0]]["Teams"]) == ["Beta Renamed"]  # through Alpha in Beta
    assert json.loads(stored[u[1]]["Teams"]) == ["Beta Renamed"]
    assert report["counts"]["updated"] == 2


def test_a_group_both_listed_and_nested_and_a_user_in_both_lists(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    # Board is excluded and nested in the included Gamma; u3 is in both directly: exclusion
    # wins, and leaving Board brings u3 in at the next delta run.
    u = nested["users"]
    board = gid()
    simulator.groups.put_group(tenant.id, board, "Board", [u[3], u[4]])
    simulator.groups.add_member(tenant.id, nested["gamma"], board)
    simulator.groups.add_member(tenant.id, nested["gamma"], u[3])
    configure(cli, tmp_path, scoped([nested["gamma"]], [board], **CLEAN_UP))
    full = sync(cli)
    assert full["status"] == "succeeded", full["errors"]
    assert set(rows(app_env, tenant)) == {u[2]}
    assert full["excludedBy"][f"excludeGroup[{board}]"] == 2
    simulator.groups.remove_member(tenant.id, board, u[3])
    delta = sync(cli)
    assert (delta["status"], delta["mode"]) == ("succeeded", "delta"), delta["errors"]
    assert set(rows(app_env, tenant)) == {u[2], u[3]}
    simulator.groups.add_member(tenant.id, board, u[2])
    left = sync(cli)
    assert (left["status"], left["counts"]["deleted"]) == ("succeeded", 1), left["errors"]
    assert left["excludedBy"] == {f"excludeGroup[{board}]": 1}
    assert set(rows(app_env, tenant)) == {u[3]}


def test_renaming_a_scope_group_no_field_shows_reads_no_member(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    # Only a memberOf field shows a group's name: renaming a group that only scopes must not
    # read its members again (for a large group, as many requests as a full run).
    configure(cli, tmp_path, scoped([nested["alpha"]]))
    assert sync(cli)["status"] == "succeeded"
    before = rows(app_env, tenant)
    simulator.groups.rename(tenant.id, nested["alpha"], "Alpha Renamed")
    simulator.clear_requests()
    report = sync(cli)
    assert (report["status"], report["mode"]) == ("succeeded", "delta"), report["errors"]
    assert len(graph_requests(simulator, tenant.id)) <= 3
    assert rows(app_env, tenant) == before
    assert report["groups"] == [
        {"id": nested["alpha"], "displayName": "Alpha Renamed", "members": 2}
    ]


def test_a_group_nested_in_itself_is_harmless_in_full_and_delta_runs(
    cli, tenant, simulator, app_env, tmp_path, nested
):
    u = nested["users"]
    simulator.groups.add_member(tenant.id, nested["gamma"], nested["gamma"])
    configure(cli, tmp_path, scoped([nested["gamma"]], **CLEAN_UP))
    full = sync(cli)
    assert full["status"] == "succeeded", full["errors"]
    assert set(rows(app_env, tenant)) == {u[2]}
    simulator.groups.add_member(tenant.id, nested["gamma"], u[5])
    delta = sync(cli)
    assert (delta["status"], delta["mode"]) == ("succeeded", "delta"), delta["errors"]
    assert set(rows(app_env, tenant)) == {u[2], u[5]}
    assert delta["groups"] == [{"id": nested["gamma"], "displayName": "Gamma", "members": 2}]
