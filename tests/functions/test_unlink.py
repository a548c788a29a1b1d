"""DELETE /api/tenants/{id}: unlinking is a run like any other (app/unlink.py).

It takes the tenant's lease (a run in progress is cancelled: its lease is taken over and its
writes fenced), so a run that started before the unlink writes nothing after it: no employee row
and no delta link. The runs here are real CLI processes, slowed by the simulator's latency so
that the unlink lands while they are mid-way (waited for by what they did, never a guessed sleep).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from connect_flow import link
from functions_harness import call

from simulator.faults import USERS_PREFIX
from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus
from sync_core.settings import load_settings
from tests.conftest import BASE_SEED, add_tenant

ROOT = Path(__file__).resolve().parents[2]
DELTA_PATH = "/v1.0/users/delta"


def registered(tenant_id: str) -> bool:
    answer = call("tenant_config", "GET", {"tenantId": tenant_id})
    return answer.status == 200 and answer.json["stored"]


def employees(tenant_id: str) -> list[dict]:
    """The tenant's rows as stored (read from the table: an unlinked tenant has no API)."""

    async def read() -> list[dict]:
        async with SyncService(load_settings(os.environ, needs_graph=False)) as service:
            rows = [dict(entity) async for entity in service.employees.all(tenant_id)]
        return sorted(rows, key=lambda row: row["RowKey"])

    return asyncio.run(read())


def state_and_runs(app_env, tenant_id: str) -> tuple[object, list[RunReport]]:
    async def read() -> tuple[object, list[RunReport]]:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            return await service.sync_state.get(tenant_id), await service.runs.latest(tenant_id)

    return asyncio.run(read())


def linked_tenant(simulator, request, users: int = 40):
    seed = BASE_SEED + zlib.crc32(request.node.name.encode())
    other = add_tenant(simulator, users, seed, "Fabrikam")
    assert link(simulator, other.id, other.users[0]["id"]).status == 200
    return other


def start_sync(tenant_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sync_core", "sync", "--tenant", tenant_id, "--json"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.1)


def test_unlink_stops_serving_and_removes_employees_only_when_asked(
    app_env, simulator, cli, request
):
    other = linked_tenant(simulator, request)
    assert cli("sync", "--tenant", other.id).exit_code == 0
    count = len(employees(other.id))
    assert count > 0
    kept = call("unlink_tenant", "DELETE", {"tenantId": other.id})
    assert kept.json == {"tenantId": other.id, "unlinked": True, "employeesRemoved": 0}
    assert not registered(other.id) and len(employees(other.id)) == count
    assert call("unlink_tenant", "DELETE", {"tenantId": other.id}).status == 404
    assert other.id not in {t["tenantId"] for t in call("status").json["tenants"]}

    assert link(simulator, other.id, other.users[0]["id"]).status == 200
    removed = call("unlink_tenant", "DELETE", {"tenantId": other.id}, {"removeEmployees": "true"})
    assert removed.json["employeesRemoved"] == count and employees(other.id) == []


def test_linked_again_after_its_employees_were_removed_the_next_run_is_full(
    app_env, simulator, cli, request
):
    other = linked_tenant(simulator, request)
    assert cli("sync", "--tenant", other.id).exit_code == 0
    count = len(employees(other.id))
    call("unlink_tenant", "DELETE", {"tenantId": other.id}, {"removeEmployees": "true"})
    assert link(simulator, other.id, other.users[0]["id"]).status == 200
    run = cli("sync", "--tenant", other.id, "--json")
    assert run.exit_code == 0 and run.json["mode"] == "full"
    assert len(employees(other.id)) == count


def test_the_home_tenant_is_refused_with_its_reason(app_env, tenant):
    call(
        "tenant_config",
        "PUT",
        {"tenantId": tenant.id},
        body={"fields": [{"name": "Title", "source": "jobTitle"}]},
    )
    answer = call("unlink_tenant", "DELETE", {"tenantId": tenant.id})
    assert answer.status == 409 and answer.error_code == "home_tenant"
    assert "ENTRA_TENANT_ID" in answer.json["error"]["message"]
    assert registered(tenant.id)  # nothing changed: still linked, still served


@pytest.mark.timeout(180)
def test_unlink_during_a_full_run_leaves_what_the_unlink_left(app_env, simulator, request):
    other = linked_tenant(simulator, request)
    simulator.set_paging(other.id, max_page_size=4)
    simulator.clear_requests()
    simulator.faults.latency(400, USERS_PREFIX)
    try:
        process = start_sync(other.id)
        # Mid-way: its first page of users is read, ten more to go.
        wait_for(lambda: any(r.path == USERS_PREFIX for r in simulator.requests), process)
        removed = call(
            "unlink_tenant", "DELETE", {"tenantId": other.id}, {"removeEmployees": "true"}
        )
        assert removed.status == 200, removed.text
        left = employees(other.id)
        process.communicate(timeout=120)
    finally:
        simulator.faults.clear()
        simulator.set_paging(other.id)
    assert employees(other.id) == left == []  # the run wrote no row after the unlink
    state, runs = state_and_runs(app_env, other.id)
    assert state is None and not registered(other.id)
    assert runs[0].status == RunStatus.FAILED and runs[0].errors[-1].code == "lease_lost"


@pytest.mark.timeout(180)
@pytest.mark.parametrize("changed", [True, False], ids=["changes", "idle"])
def test_unlink_during_a_delta_run_writes_no_row_and_no_delta_link(
    app_env, simulator, cli, request, changed
):
    other = linked_tenant(simulator, request, users=12)
    assert cli("sync", "--tenant", other.id).exit_code == 0
    assert state_and_runs(app_env, other.id)[0] is not None
    if changed:
        for user in other.users[:3]:
            simulator.patch_user(other.id, user["id"], {"jobTitle": "Changed after the link"})
    simulator.clear_requests()
    # The round's first pages come back empty (Graph may do so), each slow: the run is reading
    # its round when the unlink lands, with its writes and its new delta link still to come.
    simulator.delta.empty_pages(3)
    simulator.faults.latency(1000, DELTA_PATH)
    try:
        process = start_sync(other.id)
        wait_for(lambda: any(r.path == DELTA_PATH for r in simulator.requests), process)
        assert call("unlink_tenant", "DELETE", {"tenantId": other.id}).status == 200
        left = employees(other.id)
        process.communicate(timeout=120)
    finally:
        simulator.faults.clear()
        simulator.delta.clear()
    assert employees(other.id) == left  # as the unlink left them
    assert all(row.get("Title") != "Changed after the link" for row in left)
    state, runs = state_and_runs(app_env, other.id)
    assert state is None  # no delta link outlives the unlink: linked again, the run is full
    if changed:  # it had rows to write: the fence refused them
        assert runs[0].status == RunStatus.FAILED and runs[0].errors[-1].code == "lease_lost"
    # An idle round writes nothing at all (it keeps the stored link, core/run_commit.py), so it
    # has nothing the fence could refuse: what the unlink left is all that matters.


def test_linked_again_while_a_run_of_before_the_unlink_goes_on_that_run_writes_no_delta_link(
    app_env, simulator, cli, request
):
    """An idle delta run (nothing to write, so no fenced employee write stops it) reads its
    round while the tenant is unlinked and linked again: its delta link, of before the unlink,
    must not land on the new link, whose first run is full."""
    other = linked_tenant(simulator, request, users=12)
    assert cli("sync", "--tenant", other.id).exit_code == 0
    simulator.clear_requests()
    simulator.delta.empty_pages(6)
    simulator.faults.latency(1000, DELTA_PATH)
    try:
        process = start_sync(other.id)
        wait_for(lambda: any(r.path == DELTA_PATH for r in simulator.requests), process)
        assert call("unlink_tenant", "DELETE", {"tenantId": other.id}).status == 200
        assert link(simulator, other.id, other.users[0]["id"]).status == 200
        assert process.poll() is None  # still reading its round
        process.communicate(timeout=120)
    finally:
        simulator.faults.clear()
        simulator.delta.clear()
    state, _ = state_and_runs(app_env, other.id)
    assert state is None  # linked again, the next run is full
    run = cli("sync", "--tenant", other.id, "--json")
    assert run.exit_code == 0 and run.json["mode"] == "full"
