"""Explain runs and the schedule, through the function app's handlers: an admin explaining (and
applying) users one after another must not make the tenant look as if it never ran."""

from __future__ import annotations

import pytest
from functions_harness import call

from sync_core.app.status import STATUS_HISTORY

pytestmark = pytest.mark.integration


def test_many_applied_explains_leave_the_last_sync_and_the_schedule_as_they_were(
    app_env, tenant, cli
):
    synced = cli("sync", "--json").json
    assert synced["status"] == "succeeded"

    def entry() -> dict:
        tenants = call("status").json["tenants"]
        return next(t for t in tenants if t["tenantId"] == tenant.id)

    before = entry()
    assert before["lastSuccess"]["runId"] == synced["runId"] and before["due"] is False
    user = tenant.of_kind("member")[0]
    # More explain runs than the status (and the timer) read of a tenant's history.
    for _ in range(STATUS_HISTORY + 1):
        answer = call(
            "explain_user",
            "POST",
            {"tenantId": tenant.id, "user": user["id"]},
            body={"apply": True},
        )
        assert answer.status == 200, answer.text
    after = entry()
    assert after["lastSuccess"]["runId"] == synced["runId"]
    assert after["lastRun"]["runId"] == synced["runId"]
    assert after["due"] is False and after["nextDueAt"] == before["nextDueAt"]
    assert after["employees"] == before["employees"]


def test_a_user_with_a_c1_control_or_a_delete_in_the_path_is_a_400(app_env, tenant):
    for key in ("ann\x85@contoso.com", "ann\x7f@contoso.com", "ann\u2028@contoso.com"):
        answer = call("explain_user", "GET", {"tenantId": tenant.id, "user": key})
        assert (answer.status, answer.error_code) == (400, "invalid_user"), answer.text


def test_sync_now_while_an_explain_applies_is_a_sync_of_its_own(app_env, tenant, sync_queue):
    """An applied explain holds the tenant's lease for one user. Sync Now pressed meanwhile must
    not answer with the explain's run (which syncs one user), and its worker meeting the lease
    must not close the requested sync as superseded ("that run syncs the tenant"): it waits."""
    from dataclasses import replace
    from datetime import timedelta

    from functions_harness import deliver

    from sync_core.core.report import RunReport, RunStatus, Trigger, new_run_id, utc_now
    from tests.functions.run_messages import with_service

    now = utc_now()
    explaining = replace(
        RunReport.begun(
            new_run_id(now), tenant.id, RunStatus.RUNNING, dry_run=False, trigger=Trigger.EXPLAIN,
            at=now,
        ),
        mode="user",
    )  # fmt: skip

    async def explain_in_flight(service):
        await service.runs.save(explaining)
        lease = await service.leases.acquire(
            tenant.id, explaining.run_id, utc_now(), timedelta(minutes=5)
        )
        assert lease is not None
        return lease

    lease = with_service(app_env, explain_in_flight)
    pressed = call("sync_now", "POST", body={"tenantId": tenant.id})
    assert pressed.status == 202, pressed.text
    run_id = pressed.json["runId"]
    assert run_id != explaining.run_id
    [message] = [m.content for m in sync_queue.take_all()]
    with pytest.raises(Exception):  # noqa: B017 - the host retries the message later
        deliver(message)
    record = call("get_run", "GET", {"tenantId": tenant.id, "runId": run_id}).json
    assert record["status"] == "queued", record

    with_service(app_env, lambda service: service.leases.release(lease))
    deliver(message, dequeue_count=2)
    record = call("get_run", "GET", {"tenantId": tenant.id, "runId": run_id}).json
    assert record["status"] == "succeeded", record
