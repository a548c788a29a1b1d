"""Sync Now's `mode`: delta when the tenant can, `"full"` forces a full run through the queue."""

from __future__ import annotations

import json

import pytest
from functions_harness import call, deliver, route_of

from tests.functions.run_messages import take_run_message

pytestmark = pytest.mark.integration


def run_now(sync_queue, body: dict) -> dict:
    accepted = call("sync_now", "POST", body=body)
    assert accepted.status == 202, accepted.json
    ticket = accepted.json
    message = take_run_message(sync_queue, ticket["runId"])
    deliver(message)
    report = call("get_run", "GET", route_of(ticket["statusUrl"])).json
    assert report["status"] == "succeeded", report
    return {"message": json.loads(message), "report": report}


def test_sync_now_runs_delta_when_it_can_and_full_when_asked(app_env, tenant, sync_queue):
    first = run_now(sync_queue, {})
    assert first["report"]["mode"] == "full"
    second = run_now(sync_queue, {})
    assert second["report"]["mode"] == "delta"
    forced = run_now(sync_queue, {"mode": "full"})
    assert forced["message"]["full"] is True
    assert (forced["report"]["mode"], forced["report"]["fullReason"]) == ("full", "requested")
    # The idle delta run in between is left out of the listing unless asked for.
    listed = call("list_runs", "GET", {"tenantId": tenant.id}).json["runs"]
    assert [r["runId"] for r in listed] == [forced["report"]["runId"], first["report"]["runId"]]
    everything = call("list_runs", "GET", {"tenantId": tenant.id}, {"idle": "true"}).json["runs"]
    assert [r["mode"] for r in everything] == ["full", "delta", "full"]


def test_an_unknown_mode_is_refused_naming_the_field(app_env, tenant, sync_queue):
    refused = call("sync_now", "POST", body={"mode": "fast"})
    assert refused.status == 400 and refused.error_code == "invalid_body"
    assert (
        '"mode"' in refused.json["error"]["message"] and "full" in refused.json["error"]["message"]
    )
    assert sync_queue.raw_texts() == []
