"""Linking a tenant: POST /api/connect, the anonymous callback, DELETE /api/tenants/{id}.

Handlers are called directly (functions_harness), against the real simulator and Azurite. The
callback's parameters are those the simulator's admin-consent endpoint redirects with
(simulator/README.md, "Admin consent"); the browser test drives the real page.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from functions_harness import HOST, call, call_callback

from sync_core.app.onboarding import complete_connect
from sync_core.app.service import SyncService
from sync_core.core.consent_state import StateError, sign_state
from sync_core.core.report import utc_now
from sync_core.settings import load_settings

RETURN_BASE = "https://dashboard.example.com/tenants"


@pytest.fixture
def connect_env(app_env, monkeypatch):
    monkeypatch.setenv("CONNECT_RETURN_URLS", RETURN_BASE)
    return {**app_env, "CONNECT_RETURN_URLS": RETURN_BASE}


def start(body=None) -> dict:
    answer = call("connect", "POST", body=body or {})
    assert answer.status == 200, answer.text
    return answer.json


def granted(tenant_id: str, state: str) -> dict[str, str]:
    return {"tenant": tenant_id, "admin_consent": "True", "scope": "x/.default", "state": state}


def registered(tenant_id: str) -> bool:
    # The tenant is also ENTRA_TENANT_ID (served with the defaults): registered = stored.
    return call("tenant_config", "GET", {"tenantId": tenant_id}).json["stored"]


def test_connect_answers_the_admin_consent_url_of_the_configured_authority(connect_env):
    link = start()
    url = urlsplit(link["consentUrl"])
    assert f"{url.scheme}://{url.netloc}" == connect_env["ENTRA_AUTHORITY_HOST"]
    assert url.path == "/organizations/v2.0/adminconsent"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert query == {
        "client_id": connect_env["ENTRA_CLIENT_ID"],
        "scope": f"{connect_env['GRAPH_BASE_URL']}/.default",
        "redirect_uri": f"{HOST}/api/connect/callback",
        "state": link["state"],
    }
    assert "code=" not in link["consentUrl"]  # the function key never travels to Microsoft


def test_consent_links_the_tenant_with_its_name_and_the_state_works_once(connect_env, tenant):
    link = start()
    page = call_callback(granted(tenant.id, link["state"]))
    assert page.status == 200, page.text
    assert 'id="tenant-name">Contoso Ltd<' in page.text
    assert 'id="users-in-scope">' in page.text and "Connectivity: OK" in page.text
    status = {t["tenantId"]: t for t in call("status").json["tenants"]}
    assert status[tenant.id]["tenantName"] == "Contoso Ltd" and status[tenant.id]["enabled"]

    replayed = call_callback(granted(tenant.id, link["state"]))
    assert replayed.status == 400 and "already used" in replayed.text


def test_forged_state_gets_400_and_registers_nothing(connect_env, tenant):
    state = start()["state"]
    body, _, signature = state.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["e"] += 3600  # a longer life, signature kept
    forged_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    for forged in (f"{forged_body}.{signature}", state[:-2] + "AA", "not-a-state", ""):
        answer = call_callback(granted(tenant.id, forged))
        assert answer.status == 400, forged
        assert "Nothing was changed" in answer.text or "no state" in answer.text
    assert not registered(tenant.id)
    # The genuine state was not consumed by the forgeries.
    assert call_callback(granted(tenant.id, state)).status == 200


def test_expired_state_is_refused_and_registers_nothing(connect_env, tenant):
    state = start()["state"]
    settings = load_settings(connect_env)

    async def late() -> None:
        async with SyncService(settings) as service:
            await complete_connect(
                service, granted(tenant.id, state), utc_now() + timedelta(minutes=16)
            )

    with pytest.raises(StateError) as refused:
        asyncio.run(late())
    assert refused.value.reason == "expired"
    assert not registered(tenant.id)


def test_a_state_bound_to_another_request_is_refused_and_leaves_that_request_usable(
    connect_env, tenant
):
    mine, other = start()["state"], start()["state"]
    other_body = other.partition(".")[0]
    other_nonce = json.loads(base64.urlsafe_b64decode(other_body + "=" * (-len(other_body) % 4)))[
        "n"
    ]
    settings = load_settings(connect_env)

    async def signed_for_other() -> str:
        async with SyncService(settings) as service:
            key = await service.connect_requests.signing_key()
        # Validly signed (as if leaked from another flow) but not the state that request made.
        return sign_state(key, other_nonce, utc_now() + timedelta(minutes=5))

    answer = call_callback(granted(tenant.id, asyncio.run(signed_for_other())))
    assert answer.status == 400 and "does not belong" in answer.text
    assert not registered(tenant.id)
    assert call_callback(granted(tenant.id, other)).status == 200
    assert call_callback(granted(tenant.id, mine)).status == 200  # linked twice: fine


@pytest.mark.parametrize(
    ("error", "description", "words"),
    [
        ("access_denied", "AADSTS65004: User declined to consent to access the app.", "declined"),
        (
            "access_denied",
            "AADSTS90094: The grant requires admin permission.",
            "not an administrator",
        ),
        (
            "unauthorized_client",
            "AADSTS7000112: Application is disabled.",
            "not allowed in that tenant",
        ),
    ],
)
def test_consent_refused_registers_nothing_and_says_why(
    connect_env, tenant, error, description, words
):
    state = start()["state"]
    page = call_callback({"error": error, "error_description": description, "state": state})
    assert page.status == 200 and words in page.text
    assert not registered(tenant.id)


def test_microsofts_error_text_is_escaped(connect_env, tenant):
    state = start()["state"]
    page = call_callback({"error": "x<script>", "error_description": "<b>hi</b>", "state": state})
    assert "<script>" not in page.text and "<b>" not in page.text and "&lt;b&gt;" in page.text


def test_return_url_must_be_allow_listed_and_receives_the_outcome(connect_env, tenant):
    for bad in (
        "https://dashboard.example.com.evil.net/tenants",
        "https://dashboard.example.com/other",
        "javascript:alert(1)",
        "https://user@dashboard.example.com/tenants",
    ):
        answer = call("connect", "POST", body={"returnUrl": bad})
        assert answer.status == 400 and answer.error_code == "return_url_not_allowed", bad
    link = start({"returnUrl": f"{RETURN_BASE}/linked?from=dash"})
    answer = call_callback(granted(tenant.id, link["state"]))
    assert answer.status == 302
    target = urlsplit(answer.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{RETURN_BASE}/linked"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query == {
        "from": "dash",
        "connect": "linked",
        "tenantId": tenant.id,
        "tenantName": "Contoso Ltd",
        "connectivity": "ok",
    }


def test_linking_twice_keeps_the_stored_configuration(connect_env, tenant):
    link = start({"config": {"fields": [{"name": "Dept", "source": "department"}]}})
    assert call_callback(granted(tenant.id, link["state"])).status == 200
    first = call("tenant_config", "GET", {"tenantId": tenant.id}).json["config"]
    assert [f["name"] for f in first["fields"]] == ["Dept"]
    again = call_callback(granted(tenant.id, start()["state"]))
    assert again.status == 200 and "linked before" in again.text
    assert call("tenant_config", "GET", {"tenantId": tenant.id}).json["config"] == first


def test_invalid_requested_configuration_is_refused_at_connect(connect_env):
    answer = call("connect", "POST", body={"config": {"fields": "no"}})
    assert answer.status == 400 and answer.error_code == "invalid_config"


def test_unlink_stops_serving_and_removes_employees_only_when_asked(connect_env, tenant, cli):
    assert call_callback(granted(tenant.id, start()["state"])).status == 200
    assert cli("sync", "--tenant", tenant.id).exit_code == 0
    count = len(call("list_employees", "GET", {"tenantId": tenant.id}).json["employees"])
    assert count > 0

    kept = call("unlink_tenant", "DELETE", {"tenantId": tenant.id})
    assert kept.json == {"tenantId": tenant.id, "unlinked": True, "employeesRemoved": 0}
    assert not registered(tenant.id)
    assert call("unlink_tenant", "DELETE", {"tenantId": tenant.id}).status == 404

    assert call_callback(granted(tenant.id, start()["state"])).status == 200
    removed = call("unlink_tenant", "DELETE", {"tenantId": tenant.id}, {"removeEmployees": "true"})
    assert removed.json["employeesRemoved"] == count
    assert not registered(tenant.id)


def test_the_callback_waits_for_consent_to_replicate(connect_env, tenant, simulator):
    """Through the simulator's admin-consent endpoint (auto: no page): for 2 s after the
    consent the token endpoint still answers AADSTS700016; the callback retries, then links."""
    client_id = connect_env["ENTRA_CLIENT_ID"]
    simulator.add_redirect_uri(client_id, f"{HOST}/api/connect/callback")
    simulator.consent.plan(tenant_id=tenant.id, replication_delay=2.0, auto=True)
    link = start()
    trust = ssl.create_default_context(cafile=connect_env["SSL_CERT_FILE"])
    with httpx.Client(verify=trust) as http:
        redirect = http.get(link["consentUrl"])
    assert redirect.status_code == 302
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["location"]).query).items()}
    assert params["admin_consent"] == "True" and params["tenant"] == tenant.id
    page = call_callback(params)
    assert page.status == 200 and "Contoso Ltd" in page.text and "Connectivity: OK" in page.text
    simulator.consent.clear()


def test_cli_connect_prints_a_consent_url_whose_state_the_callback_accepts(
    connect_env, tenant, cli
):
    callback = "https://func-x.azurewebsites.net/api/connect/callback"
    printed = cli("connect", "--callback", callback, "--json")
    assert printed.exit_code == 0, printed.stderr
    url = urlsplit(printed.json["consentUrl"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.path == "/organizations/v2.0/adminconsent" and query["redirect_uri"] == callback
    assert call_callback(granted(tenant.id, query["state"])).status == 200
    assert cli("sync", "--tenant", tenant.id).exit_code == 0
    runs = cli("runs", "--tenant", tenant.id)
    assert runs.stdout.startswith(f"Runs of Contoso Ltd ({tenant.id})")
    assert cli("runs", "--tenant", tenant.id, "--json").json["tenantName"] == "Contoso Ltd"


def test_a_tenant_linked_again_after_its_employees_were_removed_gets_them_all_back(
    connect_env, tenant, cli
):
    """Unlinking with removeEmployees empties the table; a delta run from the link kept before
    would only bring back users that changed since, so the next run must read everything."""
    assert call_callback(granted(tenant.id, start()["state"])).status == 200
    assert cli("sync", "--tenant", tenant.id).exit_code == 0
    count = len(call("list_employees", "GET", {"tenantId": tenant.id}).json["employees"])
    assert count > 0
    removed = call("unlink_tenant", "DELETE", {"tenantId": tenant.id}, {"removeEmployees": "true"})
    assert removed.json["employeesRemoved"] == count

    assert call_callback(granted(tenant.id, start()["state"])).status == 200
    assert cli("sync", "--tenant", tenant.id).exit_code == 0
    assert len(call("list_employees", "GET", {"tenantId": tenant.id}).json["employees"]) == count


def test_a_requested_configuration_that_is_not_an_object_is_named_as_such(connect_env):
    answer = call("connect", "POST", body={"config": "fields=none"})
    assert answer.status == 400 and answer.error_code == "invalid_request"
    assert "$.config must be a JSON object" in answer.json["error"]["message"], answer.text


@pytest.mark.parametrize(
    "callback",
    ["func-x.azurewebsites.net/api/connect/callback", "http://func-x.azurewebsites.net/cb", ""],
)
def test_cli_connect_refuses_a_callback_entra_would_refuse(connect_env, cli, capsys, callback):
    """Entra takes only an absolute https redirect URI (http only for localhost): a URL printed
    with anything else fails at Microsoft's page, after the admin signed in."""
    with pytest.raises(SystemExit) as refused:
        cli("connect", "--callback", callback)
    assert refused.value.code == 2
    assert "--callback" in capsys.readouterr().err
