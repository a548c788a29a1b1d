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
