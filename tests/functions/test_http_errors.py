"""Bad input on every route: a precise JSON error, the right status, never a trace or a secret."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import pytest
from functions_harness import call

from sync_core.surfaces.api import ApiRequest, Route, handle
from sync_core.surfaces.routes import ROUTES

pytestmark = pytest.mark.integration

STRANGER = "5e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b"  # a valid id the app does not serve
RUN_ID = "20261126T120000000Z-abcdef"


def assert_error(answer: Any, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.text
    body = answer.json
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "Traceback" not in answer.text and "AccountKey" not in answer.text
    return body["error"]


# (function, method, route params, query, body, status, code)
CASES = {
    "sync: malformed JSON": ("sync_now", "POST", {}, {}, b"{nope", 400, "malformed_json"),
    "sync: not UTF-8": ("sync_now", "POST", {}, {}, b"\xff\xfe", 400, "malformed_json"),
    "sync: nested too deep": ("sync_now", "POST", {}, {}, "[" * 100_000, 400, "malformed_json"),
    "sync: array body": ("sync_now", "POST", {}, {}, [], 400, "invalid_body"),
    "sync: unknown key": ("sync_now", "POST", {}, {}, {"tenant": "x"}, 400, "invalid_request"),
    "sync: dryRun text": ("sync_now", "POST", {}, {}, {"dryRun": "yes"}, 400, "invalid_request"),
    "sync: allowDeletes 1": ("sync_now", "POST", {}, {}, {"allowDeletes": 1}, 400, "invalid_request"),
    "sync: tenantId number": ("sync_now", "POST", {}, {}, {"tenantId": 5}, 400, "invalid_request"),
    "sync: tenantId junk": ("sync_now", "POST", {}, {}, {"tenantId": "a b"}, 400, "invalid_request"),
    "sync: unknown tenant": ("sync_now", "POST", {}, {}, {"tenantId": STRANGER}, 404, "unknown_tenant"),
    "run: bad tenant": ("get_run", "GET", {"tenantId": "x y", "runId": RUN_ID}, {}, None, 400, "invalid_tenant_id"),
    "run: bad run id": ("get_run", "GET", {"tenantId": STRANGER, "runId": "../etc"}, {}, None, 400, "invalid_run_id"),
    "run: unknown tenant": ("get_run", "GET", {"tenantId": STRANGER, "runId": RUN_ID}, {}, None, 404, "unknown_tenant"),
    "runs: top 0": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "0"}, None, 400, "invalid_parameter"),
    "runs: top 101": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "101"}, None, 400, "invalid_parameter"),
    "runs: top text": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "ten"}, None, 400, "invalid_parameter"),
    "runs: top superscript": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "²"}, None, 400, "invalid_parameter"),
    "runs: top huge": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "9" * 5000}, None, 400, "invalid_parameter"),
    "runs: top negative": ("list_runs", "GET", {"tenantId": STRANGER}, {"top": "-1"}, None, 400, "invalid_parameter"),
    "runs: bad continuation": ("list_runs", "GET", {"tenantId": STRANGER}, {"continuation": "zz"}, None, 400, "invalid_continuation"),
    "runs: unknown tenant": ("list_runs", "GET", {"tenantId": STRANGER}, {}, None, 404, "unknown_tenant"),
    "check: malformed": ("check_connectivity", "POST", {}, {}, b"[1,", 400, "malformed_json"),
    "check: unknown key": ("check_connectivity", "POST", {}, {}, {"dryRun": True}, 400, "invalid_request"),
    "check: unknown tenant": ("check_connectivity", "POST", {}, {}, {"tenantId": STRANGER}, 404, "unknown_tenant"),
    "config: bad tenant": ("tenant_config", "GET", {"tenantId": "-"}, {}, None, 400, "invalid_tenant_id"),
    "config: unknown tenant": ("tenant_config", "GET", {"tenantId": STRANGER}, {}, None, 404, "unknown_tenant"),
    "config: PUT nothing": ("tenant_config", "PUT", {"tenantId": STRANGER}, {}, None, 400, "missing_body"),
    "config: PUT malformed": ("tenant_config", "PUT", {"tenantId": STRANGER}, {}, b'{"a":', 400, "malformed_json"),
    "config: PUT a string": ("tenant_config", "PUT", {"tenantId": STRANGER}, {}, '"x"', 400, "invalid_body"),
    "employees: top 1001": ("list_employees", "GET", {"tenantId": STRANGER}, {"top": "1001"}, None, 400, "invalid_parameter"),
    "employees: bad token": ("list_employees", "GET", {"tenantId": STRANGER}, {"continuation": "%%%"}, None, 400, "invalid_continuation"),
    "employees: unknown tenant": ("list_employees", "GET", {"tenantId": STRANGER}, {}, None, 404, "unknown_tenant"),
}  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method", "route", "query", "body", "status", "code"), CASES.values(), ids=CASES.keys()
)
def test_bad_request(app_env, name, method, route, query, body, status, code) -> None:
    assert_error(call(name, method, route, query, body), status, code)


def test_invalid_body_lists_every_problem_with_its_path(app_env) -> None:
    answer = call("sync_now", "POST", body={"dryRun": "no", "allowDeletes": 0, "extra": 1})
    error = assert_error(answer, 400, "invalid_request")
    assert {(d["path"], d["value"]) for d in error["details"]} == {
        ("$.extra", 1),
        ("$.dryRun", "no"),
        ("$.allowDeletes", 0),
    }


def test_invalid_configuration_is_rejected_with_every_problem_and_nothing_stored(app_env) -> None:
    tenant = str(uuid.uuid4())
    document = {
        "fields": [{"name": "Bad Name", "source": "jobTitle"}],
        "cleanUp": {"maxDeletes": -1},
    }
    error = assert_error(
        call("tenant_config", "PUT", {"tenantId": tenant}, body=document), 400, "invalid_config"
    )
    assert {d["path"] for d in error["details"]} == {"$.fields[0].name", "$.cleanUp.maxDeletes"}
    assert_error(call("tenant_config", "GET", {"tenantId": tenant}), 404, "unknown_tenant")


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_other_methods_get_405_with_allow(app_env, name: str) -> None:
    route = ROUTES[name]
    params = {
        "tenantId": STRANGER,
        "runId": RUN_ID,
        "requestId": "no-such-request",
        "user": "someone@contoso.com",
    }
    params = {k: v for k, v in params.items() if "{" + k + "}" in route.template}
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        if method in route.methods:
            continue
        error = assert_error(call(name, method, params), 405, "method_not_allowed")
        assert method in error["message"]
        answer = call(name, method, params)
        assert answer.headers["Allow"] == ", ".join(route.methods)


@pytest.mark.parametrize(
    "document",
    [
        {"tenantId": STRANGER, "next": "eyJ9"},  # issued for another tenant
        {"tenantId": "THIS", "next": "not-a-store-token"},  # ours, but its inner token is junk
        {"tenantId": "THIS", "next": 5},
        {"next": "eyJ9"},
        ["eyJ9"],
    ],
)
def test_employee_token_not_issued_for_this_tenant_is_refused(app_env, tenant, document) -> None:
    text = json.dumps(document).replace("THIS", tenant.id)
    token = base64.urlsafe_b64encode(text.encode()).decode()
    answer = call("list_employees", "GET", {"tenantId": tenant.id}, {"continuation": token})
    assert_error(answer, 400, "invalid_continuation")


def test_unknown_run_of_a_served_tenant_is_404(app_env, tenant) -> None:
    answer = call("get_run", "GET", {"tenantId": tenant.id, "runId": RUN_ID})
    assert_error(answer, 404, "unknown_run")


def test_broken_settings_answer_500_without_the_values(app_env, monkeypatch) -> None:
    monkeypatch.delenv("TABLES_CONNECTION_STRING")
    error = assert_error(call("status"), 500, "invalid_settings")
    assert "TABLES" not in error["message"]  # the log has the problems, the caller a pointer


def test_unexpected_errors_answer_500_without_details() -> None:
    async def explode(request: ApiRequest, environ: Any) -> Any:
        raise RuntimeError("password=hunter2 at line 3")

    route = Route("boom", "boom", ("GET",), explode)
    response = asyncio.run(handle(route, ApiRequest("GET", "https://h/api/boom"), {}))
    assert response.status == 500
    assert response.body == {
        "error": {
            "code": "internal_error",
            "message": "Unexpected error; the function log has the details.",
        }
    }


@pytest.mark.parametrize(
    ("name", "method"), [("sync_now", "POST"), ("check_connectivity", "POST"), ("connect", "POST")]
)
def test_an_unknown_key_of_a_megabyte_is_not_echoed_back(app_env, name, method) -> None:
    # The body's key is the caller's input as much as its values: a 1 MB key (or one holding
    # an RTL override or a NUL) is repeated shortened, as a value is, never whole.
    key = "\u202e\x00" + "k" * (1024 * 1024 - 100)
    answer = call(name, method, body={key: 1})
    error = assert_error(answer, 400, "invalid_request")
    assert len(answer.text) < 4096
    (detail,) = error["details"]
    assert detail["path"].startswith("$.\u202e\x00kkk") and detail["path"].endswith("...")
