"""`GET` / `POST /api/explain/{tenantId}/{user}` through the function app's handler, against the
simulator and Azurite: the same document as `explain --json`, apply under the lease, and every
bad request answered in JSON."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from functions_harness import call

from sync_core.app.service import SyncService
from sync_core.core.report import utc_now
from sync_core.settings import load_settings
from tests.integration.helpers import stored_rows

pytestmark = pytest.mark.integration


def explain(tenant_id: str, user: str, method: str = "GET", body=None):
    return call("explain_user", method, {"tenantId": tenant_id, "user": user}, body=body)


def test_get_explains_and_writes_nothing_like_the_cli(app_env, tenant, cli):
    user = tenant.of_kind("member")[0]
    answer = explain(tenant.id, user["userPrincipalName"])
    assert answer.status == 200, answer.text
    document = answer.json
    assert document["user"]["id"] == user["id"]
    assert document["scope"]["inScope"] is True and document["outcome"] == "created"
    assert document["applied"] is None
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    # The CLI answers the same document (the row's times aside).
    shown = cli("explain", "--user", user["id"], "--json").json
    for key in ("user", "scope", "address", "outcome", "changes", "cleanUp", "applied"):
        if key != "changes":
            assert shown[key] == document[key], key
    # POST without apply is the same as GET.
    assert explain(tenant.id, user["id"], "POST", {"apply": False}).json["applied"] is None


def test_post_apply_writes_the_row_as_an_explain_run(app_env, tenant):
    user = tenant.of_kind("member")[0]
    answer = explain(tenant.id, user["id"], "POST", {"apply": True})
    assert answer.status == 200, answer.text
    applied = answer.json["applied"]
    assert applied["status"] == "succeeded" and applied["outcome"] == "created"
    assert list(stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)) == [user["id"]]
    run = call("get_run", "GET", {"tenantId": tenant.id, "runId": applied["runId"]}).json
    assert run["trigger"] == "explain" and run["counts"]["created"] == 1
    # It does not stand for the tenant's runs: the schedule still sees a tenant that never ran.
    status = call("status").json
    entry = next(t for t in status["tenants"] if t["tenantId"] == tenant.id)
    assert entry["lastRun"] is None and entry["due"] is True


def test_post_apply_while_a_run_holds_the_lease_is_409_and_writes_nothing(app_env, tenant):
    async def hold() -> None:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            lease = await service.leases.acquire(
                tenant.id, "20260101T000000000Z-abcdef", utc_now(), timedelta(minutes=5)
            )
            assert lease is not None

    asyncio.run(hold())
    user = tenant.of_kind("member")[0]
    answer = explain(tenant.id, user["id"], "POST", {"apply": True})
    assert answer.status == 409 and answer.error_code == "tenant_busy"
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}
    assert explain(tenant.id, user["id"]).status == 200  # explaining needs no lease


def test_not_found_and_several_matches(app_env, tenant, simulator):
    missing = explain(tenant.id, "nobody@contoso.com")
    assert missing.status == 404 and missing.error_code == "user_not_found"
    first, second = tenant.of_kind("member")[:2]
    for user in (first, second):
        simulator.patch_user(tenant.id, user["id"], {"mail": "desk@contoso.com"})
    several = explain(tenant.id, "desk@contoso.com")
    assert several.status == 409 and several.error_code == "user_ambiguous"
    listed = {m["id"] for m in several.json["error"]["details"]}
    assert listed == {first["id"], second["id"]}


BAD = {
    "apply not a boolean": ({"apply": "yes"}, 400, "invalid_request"),
    "an unknown key": ({"aply": True}, 400, "invalid_request"),
}


@pytest.mark.parametrize(("body", "status", "code"), BAD.values(), ids=BAD.keys())
def test_bad_bodies_are_refused_and_write_nothing(app_env, tenant, body, status, code):
    user = tenant.of_kind("member")[0]
    answer = explain(tenant.id, user["id"], "POST", body)
    assert (answer.status, answer.error_code) == (status, code), answer.text
    assert stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id) == {}


def test_bad_paths_and_methods(app_env, tenant):
    assert explain("contoso.com", "x@contoso.com").error_code == "invalid_tenant_id"
    assert explain(str(uuid.uuid4()), "x@contoso.com").error_code == "unknown_tenant"
    assert explain(tenant.id, "a\nb").error_code == "invalid_user"
    assert explain(tenant.id, "x" * 300).error_code == "invalid_user"
    refused = explain(tenant.id, "x@contoso.com", "DELETE")
    assert refused.status == 405 and refused.headers["Allow"] == "GET, POST"
