"""End to end through the functions: Sync Now -> the real Azurite queue -> the worker -> status,
runs, employees page by page, configuration and Check Connectivity, against the simulator."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from functions_harness import call, deliver, route_of

from sync_core.app.exclusive import RunBusy
from sync_core.app.service import SyncService
from sync_core.core.report import RunReport, RunStatus, new_run_id, utc_now
from sync_core.core.schedule import enqueue_delay
from sync_core.settings import load_settings
from tests.functions.run_messages import take_run_message

pytestmark = pytest.mark.integration

MINUTE = timedelta(minutes=1)
FIELDS = [
    {"name": "Title", "source": "jobTitle"},
    {"name": "FirstName", "source": "givenName"},
    {"name": "City", "source": "city"},
]


def test_sync_now_runs_through_the_queue_and_serves_the_results(
    app_env, tenant, simulator, sync_queue
):
    stored = call("tenant_config", "PUT", {"tenantId": tenant.id}, body={"fields": FIELDS})
    assert stored.status == 201  # the first configuration stored for this tenant
    assert stored.json["registered"] is False  # ENTRA_TENANT_ID is served without one

    accepted = call("sync_now", "POST", body={})
    assert accepted.status == 202
    ticket = accepted.json
    assert ticket["created"] is True and ticket["status"] == "queued"
    assert ticket["tenantId"] == tenant.id and ticket["dryRun"] is False
    assert accepted.headers["Location"] == ticket["statusUrl"]
    route = route_of(ticket["statusUrl"])
    assert route == {"tenantId": tenant.id, "runId": ticket["runId"]}

    queued = call("get_run", "GET", route)
    assert queued.status == 200 and queued.json["status"] == "queued"
    assert queued.headers["Retry-After"]

    again = call("sync_now", "POST", body={"tenantId": tenant.id.upper()})
    assert again.status == 202
    assert again.json["runId"] == ticket["runId"] and again.json["created"] is False

    message = take_run_message(sync_queue, ticket["runId"])
    # The lease row as the claim left it (claimed_row.py): the worker takes the lease on it.
    claimed = json.loads(message).pop("claimed")
    assert set(claimed) == {"etag", "row"} and claimed["etag"]
    assert {k: v for k, v in json.loads(message).items() if k != "claimed"} == {
        "tenantId": tenant.id,
        "runId": ticket["runId"],
        "dryRun": False,
        "allowDeletes": False,
        "trigger": "api",
        "full": False,
    }
    deliver(message)

    done = call("get_run", "GET", route)
    report = done.json
    assert report["status"] == "succeeded", report
    assert report["trigger"] == "api" and report["runId"] == ticket["runId"]
    assert report["counts"]["read"] == len(tenant.users)
    assert report["counts"]["created"] == report["counts"]["employees"] > 0
    assert "Retry-After" not in done.headers

    # Employees page by page, in the configured field order, each exactly once.
    seen: list[str] = []
    params: dict[str, str] = {"top": "7"}
    pages = 0
    while True:
        page = call("list_employees", "GET", {"tenantId": tenant.id}, params).json
        pages += 1
        assert page["fields"] == ["Email", "Title", "FirstName", "City", "Aliases"]
        assert len(page["employees"]) <= 7
        for employee in page["employees"]:
            assert list(employee) == ["id", "Email", "Title", "FirstName", "City", "Aliases"]
            seen.append(employee["id"])
        if page["continuation"] is None:
            assert page["nextUrl"] is None
            break
        assert page["nextUrl"].startswith("https://sync.example.net/api/employees/")
        params = {"top": "7", "continuation": page["continuation"]}
    assert len(seen) == len(set(seen)) == report["counts"]["employees"]
    assert pages == -(-len(seen) // 7) or pages == -(-len(seen) // 7) + 1

    runs = call("list_runs", "GET", {"tenantId": tenant.id}).json
    assert runs["runs"][0]["runId"] == ticket["runId"] and "skippedNoEmail" not in runs["runs"][0]

    status = call("status").json
    mine = next(t for t in status["tenants"] if t["tenantId"] == tenant.id)
    assert mine["lastRun"]["runId"] == mine["lastSuccess"]["runId"] == ticket["runId"]
    assert mine["employees"] == report["counts"]["employees"]
    assert mine["due"] is False and mine["inFlight"] is None and mine["consecutiveFailures"] == 0
    # Every tick by default (SYNC_INTERVAL_*_HOURS 0.25): most runs are cheap delta runs.
    assert mine["intervalHours"] == 0.25 and mine["nextDueAt"] > report["startedAt"]
    assert status["schedule"] == "0 */15 * * * *"

    # The same message delivered again (the host lost track of it) starts nothing.
    requests_before = len(simulator.requests)
    deliver(message, dequeue_count=2)
    assert call("get_run", "GET", route).json == report
    assert len(simulator.requests) == requests_before

    # Nothing in flight any more: the next press makes a new run.
    fresh = call("sync_now", "POST", body={"dryRun": True})
    assert fresh.json["created"] is True and fresh.json["runId"] != ticket["runId"]


def test_configuration_registers_a_tenant_and_disabled_tenants_only_dry_run(app_env, sync_queue):
    other = str(uuid.uuid4())
    assert call("sync_now", "POST", body={"tenantId": other}).status == 404

    created = call("tenant_config", "PUT", {"tenantId": other}, body={"enabled": False})
    assert created.status == 201 and created.json["registered"] is True
    assert created.headers["Location"] == f"https://sync.example.net/api/config/{other}"
    shown = call("tenant_config", "GET", {"tenantId": other}).json
    assert shown["stored"] is True and shown["config"]["enabled"] is False
    assert [f["name"] for f in shown["config"]["fields"]][:2] == ["FirstName", "LastName"]

    refused = call("sync_now", "POST", body={"tenantId": other})
    assert refused.status == 409 and refused.json["error"]["code"] == "tenant_disabled"
    dry = call("sync_now", "POST", body={"tenantId": other, "dryRun": True})
    assert dry.status == 202 and dry.json["dryRun"] is True

    status = {t["tenantId"]: t for t in call("status").json["tenants"]}
    assert status[other]["enabled"] is False and status[other]["due"] is False
    assert status[other]["inFlight"]["runId"] == dry.json["runId"]

    updated = call("tenant_config", "PUT", {"tenantId": other}, body={"enabled": True})
    assert updated.status == 200 and updated.json["registered"] is False
    assert call("sync_now", "POST", body={"tenantId": other}).json["runId"] == dry.json["runId"]


def test_sync_now_expedites_a_run_the_timer_queued_with_a_delay(app_env, sync_queue):
    # A tenant whose stable offset within a tick is long: its scheduled message is invisible.
    tenant = next(
        t for t in (str(uuid.uuid4()) for _ in range(100)) if enqueue_delay(t) > 3 * MINUTE
    )
    assert call("tenant_config", "PUT", {"tenantId": tenant}, body={}).status == 201
    scheduled = replace(queued(tenant, utc_now()), trigger="schedule")
    asyncio.run(save(app_env, scheduled))

    pressed = call("sync_now", "POST", body={"tenantId": tenant}).json
    assert pressed["runId"] == scheduled.run_id and pressed["created"] is False
    (message,) = sync_queue.take_all()  # sent again, visible at once
    assert json.loads(message.content)["runId"] == scheduled.run_id


def test_home_tenant_without_configuration_shows_the_defaults(app_env, tenant):
    shown = call("tenant_config", "GET", {"tenantId": tenant.id}).json
    assert shown["stored"] is False and shown["config"]["cleanUp"]["enabled"] is False


def test_check_connectivity_answers_the_engine_result(app_env, tenant, simulator, monkeypatch):
    result = call("check_connectivity", "POST", body={"tenantId": tenant.id})
    assert result.status == 200
    assert result.json["ok"] is True and result.json["usersRead"] == len(tenant.users)

    simulator.set_consent(tenant.id, app_env["ENTRA_CLIENT_ID"], [])
    refused = call("check_connectivity", "POST").json
    assert refused["ok"] is False
    assert [p["code"] for p in refused["problems"]] == ["missing_consent"]

    monkeypatch.delenv("ENTRA_CLIENT_ID")
    unset = call("check_connectivity", "POST").json
    assert unset["ok"] is False and unset["problems"][0]["code"] == "invalid_settings"
    assert "ENTRA_CLIENT_ID" in unset["problems"][0]["message"]


def test_runs_are_listed_newest_first_page_by_page(app_env, tenant):
    settings = load_settings(app_env, needs_graph=False)
    start = utc_now() - timedelta(hours=1)
    runs = [queued(tenant.id, start + timedelta(minutes=i)) for i in range(5)]
    ids = [run.run_id for run in runs]

    async def seed() -> None:
        async with SyncService(settings) as service:
            for run in runs:
                await service.runs.save(run)

    asyncio.run(seed())
    listed: list[str] = []
    params = {"top": "2"}
    while True:
        page = call("list_runs", "GET", {"tenantId": tenant.id}, params).json
        listed += [run["runId"] for run in page["runs"]]
        if page["continuation"] is None:
            break
        assert len(page["runs"]) == 2
        params = {"top": "2", "continuation": page["continuation"]}
    assert listed == list(reversed(ids))


def test_graph_settings_missing_fail_the_run_with_the_reason(
    app_env, tenant, sync_queue, monkeypatch
):
    ticket = call("sync_now", "POST").json
    message = take_run_message(sync_queue, ticket["runId"])
    monkeypatch.delenv("ENTRA_CLIENT_ID")
    deliver(message)
    report = call("get_run", "GET", route_of(ticket["statusUrl"])).json
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "invalid_settings"
    assert "ENTRA_CLIENT_ID" in report["errors"][0]["message"]


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"tenantId": "a b", "runId": "x"}',
        '{"tenantId": "contoso.com", "runId": "20261126T120000000Z-abcdef", "extra": 1}',
        '{"tenantId": "contoso.com", "runId": "20261126T120000000Z-abcdef", "dryRun": "yes"}',
        '{"tenantId": "contoso.com", "runId": "20261126T120000000Z-abcdef", "trigger": "cron"}',
    ],
)
def test_malformed_messages_are_dropped_not_retried(app_env, body, caplog):
    deliver(body)  # returns: the host deletes the message instead of retrying it five times
    deliver(body, name="sync_poison")
    assert "malformed" in caplog.text


def test_a_message_that_keeps_failing_ends_with_its_run_failed_and_the_cause(app_env, tenant):
    """A redelivered attempt finds an earlier attempt's lease live and raises (the host retries);
    once the message is poison, the run is closed as failed with that cause."""
    settings = load_settings(app_env, needs_graph=False)
    run = queued(tenant.id, utc_now())
    run_id = run.run_id

    async def lease(expire: bool) -> None:
        async with SyncService(settings) as service:
            leases = service.leases
            if expire:  # time passes: the dead attempt's lease runs out
                held = await leases.get(tenant.id)
                await leases.renew(held, utc_now(), -timedelta(minutes=1))
            else:
                await service.runs.save(run)
                await leases.acquire(tenant.id, run_id, utc_now(), timedelta(minutes=5))

    asyncio.run(lease(expire=False))
    body = json.dumps({"tenantId": tenant.id, "runId": run_id, "trigger": "schedule"})
    for attempt in range(1, 6):
        with pytest.raises(RunBusy, match="holds the lease"):
            deliver(body, dequeue_count=attempt)
    route = {"tenantId": tenant.id, "runId": run_id}
    noted = call("get_run", "GET", route).json
    assert noted["status"] == "queued"
    assert [e["code"] for e in noted["errors"]] == ["attempt_failed"]  # the latest attempt only
    assert noted["errors"][0]["message"].startswith("Attempt 5 failed")

    deliver(body, name="sync_poison")  # an attempt of the run may still be alive: left alone
    assert call("get_run", "GET", route).json["status"] == "queued"

    asyncio.run(lease(expire=True))
    deliver(body, name="sync_poison")
    report = call("get_run", "GET", route).json
    assert report["status"] == "failed"
    assert report["errors"][-1]["code"] == "gave_up"
    assert "poison" in report["errors"][-1]["message"]
    assert "holds the lease" in report["errors"][-1]["message"]  # the cause, from the last attempt


async def save(app_env: dict[str, str], report: RunReport) -> None:
    async with SyncService(load_settings(app_env, needs_graph=False)) as service:
        await service.runs.save(report)


def queued(tenant_id: str, at: datetime) -> RunReport:
    return RunReport.begun(
        new_run_id(at), tenant_id, RunStatus.QUEUED, dry_run=False, trigger="api", at=at
    )
