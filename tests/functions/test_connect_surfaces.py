"""Linking, around the proof: states, Microsoft's refusals, the return URL, hostile texts from
Microsoft in every surface, and the CLI's connect. connect_flow.py follows the simulator's
sign-in and consent redirects; the handlers are called as the Functions host would."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import zlib
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from connect_flow import CALLBACK, follow, link, posted_answer, query_of, request_outcome, start
from functions_harness import call, call_callback

from simulator.signin import GLOBAL_ADMINISTRATOR
from sync_core.app.onboarding import complete_connect
from sync_core.app.service import SyncService
from sync_core.core.consent_state import StateError, sign_state
from sync_core.core.report import utc_now
from sync_core.settings import load_settings
from tests.conftest import BASE_SEED, add_tenant

RETURN_BASE = "https://dashboard.example.com/tenants"
# A lone surrogate, a NUL, and what a terminal obeys: ESC sequences (clear screen, window
# title), BEL, CR (overwrites the line) and a right-to-left override.
HOSTILE_NAME = "Evil\ud800 Corp\x00 \x1b[2J\x1b]0;pwned\x07\rFake\u202eemaN"


@pytest.fixture
def connect_env(app_env, monkeypatch):
    monkeypatch.setenv("CONNECT_RETURN_URLS", RETURN_BASE)
    return {**app_env, "CONNECT_RETURN_URLS": RETURN_BASE}


def registered(tenant_id: str) -> bool:
    answer = call("tenant_config", "GET", {"tenantId": tenant_id})
    return answer.status == 200 and answer.json["stored"]


def nonce_of(state: str) -> str:
    body = state.partition(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["n"]


def test_forged_states_get_400_and_leave_the_request_usable(connect_env, simulator, tenant):
    started = start()
    state = started["state"]
    body, _, signature = state.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for change in ({"e": payload["e"] + 3600}, {"p": "c"}):  # a longer life, the other phase
        forged_body = base64.urlsafe_b64encode(json.dumps({**payload, **change}).encode())
        forged = f"{forged_body.rstrip(b'=').decode()}.{signature}"
        assert call_callback({"code": "x", "state": forged}).status == 400
    for forged in (state[:-2] + "AA", "not-a-state", ""):
        answer = call_callback({"code": "x", "state": forged})
        assert answer.status == 400 and (
            "Nothing was changed" in answer.text or "no state" in answer.text
        )
    assert follow(simulator, started, tenant.id, tenant.users[0]["id"]).status == 200


def test_an_expired_state_is_refused(connect_env, tenant):
    state = start()["state"]

    async def late() -> None:
        async with SyncService(load_settings(connect_env)) as service:
            await complete_connect(
                service, {"code": "x", "state": state}, utc_now() + timedelta(minutes=16)
            )

    with pytest.raises(StateError) as refused:
        asyncio.run(late())
    assert refused.value.reason == "expired"
    assert not registered(tenant.id)


def test_a_consent_state_made_for_a_request_that_never_signed_in_is_refused(connect_env, tenant):
    """Validly signed (as if the key leaked) for the consent phase of a request still at its
    sign-in: the request's row has no consent digest for it, so nothing is linked."""
    started = start()

    async def forged() -> str:
        async with SyncService(load_settings(connect_env)) as service:
            key = await service.connect_requests.signing_key()
        return sign_state(key, nonce_of(started["state"]), utc_now() + timedelta(minutes=5), "c")

    params = {"tenant": tenant.id, "admin_consent": "True", "state": asyncio.run(forged())}
    answer = call_callback(params)
    assert answer.status == 400 and "does not belong" in answer.text
    assert not registered(tenant.id)


def test_crossed_replayed_and_parallel_answers_link_nothing_twice(connect_env, simulator, tenant):
    """One request's code with another's state, one sign-in answer posted twice at once, a
    sign-in state brought to the consent step and a consent state to the sign-in step."""
    crossing, crossed, posted = start(), start(), start()
    admin = tenant.users[0]["id"]
    simulator.add_redirect_uri(connect_env["ENTRA_CLIENT_ID"], CALLBACK)
    simulator.signin.set_roles(tenant.id, admin, (GLOBAL_ADMINISTRATOR,))
    simulator.signin.plan(tenant_id=tenant.id, user_id=admin, auto=True)
    trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    try:  # the plan's clear() drops unredeemed codes: everything is answered before it
        with httpx.Client(verify=trust) as http:
            answers = [
                posted_answer(http.get(r["consentUrl"])) for r in (crossing, crossed, posted)
            ]
        page = call_callback({**answers[1], "code": answers[0]["code"]}, form=True)
        assert page.status == 200 and "Nothing was linked" in page.text, page.text  # PKCE
        with ThreadPoolExecutor(2) as pool:
            twice = list(pool.map(lambda a: call_callback(a, form=True), [answers[2]] * 2))
    finally:
        simulator.signin.clear()
    assert sorted(a.status for a in twice) == [302, 400]
    onward = next(a for a in twice if a.status == 302).headers["Location"]
    sign_in_state, consent_state = answers[2]["state"], query_of(onward)["state"]
    replayed = {"tenant": tenant.id, "admin_consent": "True", "state": sign_in_state}
    assert call_callback(replayed).status == 400
    assert call_callback({**answers[2], "state": consent_state}, form=True).status == 200
    assert not registered(tenant.id)  # a consent state is spent once, whatever it carried
    statuses = [request_outcome(r["requestId"])["status"] for r in (crossing, crossed, posted)]
    assert statuses == ["pending", "refused", "refused"]


@pytest.mark.parametrize(
    ("outcome", "words"),
    [("cancel", "declined"), ("app_blocked", "not allowed in that tenant")],
)
def test_consent_refused_by_microsoft_links_nothing_and_says_why(
    connect_env, simulator, tenant, outcome, words
):
    page = link(simulator, tenant.id, tenant.users[0]["id"], consent_outcome=outcome)
    assert page.status == 200 and words in page.text, page.text
    assert not registered(tenant.id)


def test_linking_waits_for_the_consent_to_replicate(connect_env, simulator, tenant):
    """For 2 s after the consent the token endpoint still answers AADSTS700016: the proof
    (an app-only token with User.Read.All) is retried, then the tenant is linked."""
    page = link(simulator, tenant.id, tenant.users[0]["id"], replication_delay=2.0)
    assert page.status == 200 and "Connectivity: OK" in page.text, page.text


def test_a_consent_without_the_users_permission_links_nothing(connect_env, simulator, tenant):
    """The admin consented, but the app-only token carries no User.Read.All (the registration
    asked for less): the consent did not take effect as needed."""
    client_id = connect_env["ENTRA_CLIENT_ID"]
    app = simulator.world.app(client_id)
    kept = app.permissions
    object.__setattr__(app, "permissions", ("Organization.Read.All",))
    try:
        page = link(simulator, tenant.id, tenant.users[0]["id"])
    finally:
        object.__setattr__(app, "permissions", kept)
    assert page.status == 200 and "User.Read.All" in page.text, page.text
    assert not registered(tenant.id)


@pytest.mark.parametrize(
    "bad",
    [
        "https://dashboard.example.com.evil.net/tenants",
        "https://dashboard.example.com/other",
        "javascript:alert(1)",
        "https://user@dashboard.example.com/tenants",
        f"{RETURN_BASE}/ok\x00",
        f"{RETURN_BASE}/ok\r\nSet-Cookie: x=1",
        f"{RETURN_BASE}/\x1b[2Jok",
        # C1 controls (NEL), a bidi override, a line separator: control characters too, and
        # none can go into the Location header that carries the URL (RFC 9110 5.5: ASCII).
        f"{RETURN_BASE}/ok\x85Set-Cookie: x=1",
        f"{RETURN_BASE}/\u202eko",
        f"{RETURN_BASE}/ok\u2028",
    ],
)
def test_a_return_url_not_allowed_or_with_control_characters_is_refused(connect_env, bad):
    answer = call("connect", "POST", body={"account": "acct-a", "returnUrl": bad})
    assert answer.status == 400 and answer.error_code == "return_url_not_allowed", bad


def test_the_return_url_receives_only_the_request_id_and_a_coarse_outcome(
    connect_env, simulator, tenant
):
    started = start({"returnUrl": f"{RETURN_BASE}/linked?from=dash"})
    answer = follow(simulator, started, tenant.id, tenant.users[0]["id"])
    assert answer.status == 302
    target = answer.headers["Location"]
    assert target.startswith(f"{RETURN_BASE}/linked?")
    assert query_of(target) == {
        "from": "dash",
        "connect": "linked",
        "requestId": started["requestId"],
    }
    assert request_outcome(started["requestId"])["tenantName"] == "Contoso Ltd"


def test_an_unknown_request_id_is_404(connect_env):
    for unknown in ("nope", "a" * 200, "..%2f"):
        answer = call("connect_status", "GET", {"requestId": unknown})
        assert answer.status == 404 and answer.error_code == "unknown_connect_request"


def test_microsofts_error_text_is_cleaned_and_escaped(connect_env):
    started = start()
    description = "AADSTS50000 \ud800 <b>hi</b>\x00"
    page = call_callback(
        {"error": "x<script>", "error_description": description, "state": started["state"]}
    )
    assert page.status == 200
    assert "<script>" not in page.text and "<b>" not in page.text and "&lt;b&gt;" in page.text
    outcome = request_outcome(started["requestId"])  # JSON: a lone surrogate would not encode
    assert outcome["status"] == "refused" and "\x00" not in outcome["reason"]
    assert "\ud800" not in outcome["reason"]


def test_a_hostile_tenant_name_breaks_no_surface(connect_env, simulator, cli, request):
    seed = BASE_SEED + zlib.crc32(request.node.name.encode())
    evil = add_tenant(simulator, 8, seed, HOSTILE_NAME)
    page = link(simulator, evil.id, evil.users[0]["id"])
    assert page.status == 200, page.text
    assert '<strong id="tenant-name"><bdi>' in page.text  # its override cannot reorder the page
    status = call("status")
    assert status.status == 200
    name = {t["tenantId"]: t for t in status.json["tenants"]}[evil.id]["tenantName"]
    assert name == HOSTILE_NAME.replace("\ud800", "\ufffd").replace("\x00", "")
    assert cli("sync", "--tenant", evil.id).exit_code == 0
    assert call("list_runs", "GET", {"tenantId": evil.id}).status == 200
    text = cli("runs", "--tenant", evil.id)
    assert text.exit_code == 0
    for raw in ("\x1b", "\x07", "\r", "\u202e", "\x00", "\ud800"):
        assert raw not in text.stdout, repr(raw)
    assert "\\x1b[2J" in text.stdout and "\\u202e" in text.stdout
    exact = cli("runs", "--tenant", evil.id, "--json")
    assert exact.json["tenantName"] == name  # --json keeps the value as stored


def test_cli_connect_prints_a_sign_in_url_that_links_for_its_account(
    connect_env, simulator, tenant, cli
):
    printed = cli("connect", "--callback", CALLBACK, "--account", "ops", "--json")
    assert printed.exit_code == 0, printed.stderr
    query = query_of(printed.json["consentUrl"])
    assert query["redirect_uri"] == CALLBACK and query["code_challenge_method"] == "S256"
    page = follow(simulator, printed.json, tenant.id, tenant.users[0]["id"])
    assert page.status == 200, page.text
    assert request_outcome(printed.json["requestId"])["account"] == "ops"
    assert cli("sync", "--tenant", tenant.id).exit_code == 0
    runs = cli("runs", "--tenant", tenant.id)
    assert runs.stdout.startswith(f"Runs of Contoso Ltd ({tenant.id})")


def test_cli_connect_with_a_tenant_makes_a_link_for_that_organization_only(
    connect_env, simulator, tenant, cli
):
    other = simulator.world.tenants[0].id
    printed = cli(
        "connect", "--callback", CALLBACK, "--account", "ops", "--tenant", other, "--json"
    )
    assert printed.exit_code == 0, printed.stderr
    assert request_outcome(printed.json["requestId"])["expectedTenant"] == other
    page = follow(simulator, printed.json, tenant.id, tenant.users[0]["id"])
    assert "made for another organization" in page.text, page.text
    assert request_outcome(printed.json["requestId"])["reasonCode"] == "unexpected_tenant"


def test_cli_connect_with_an_empty_tenant_is_refused_not_a_link_for_any_organization(
    connect_env, cli
):
    # `connect --tenant "$CUSTOMER_TENANT"` with the variable unset: the operator asked for one
    # organization's link; an empty --tenant read as "not given" printed one for any of them.
    printed = cli("connect", "--callback", CALLBACK, "--account", "ops", "--tenant", "", "--json")
    assert printed.exit_code == 2, printed.stdout
    assert "consentUrl" not in printed.stdout and "--tenant" in printed.stderr + printed.stdout


@pytest.mark.parametrize(
    "callback",
    ["func-x.azurewebsites.net/api/connect/callback", "http://func-x.azurewebsites.net/cb", ""],
)
def test_cli_connect_refuses_a_callback_entra_would_refuse(connect_env, cli, capsys, callback):
    """Entra takes only an absolute https redirect URI (http only for localhost): a URL printed
    with anything else fails at Microsoft's page, after the admin signed in."""
    with pytest.raises(SystemExit) as refused:
        cli("connect", "--callback", callback, "--account", "ops")
    assert refused.value.code == 2
    assert "--callback" in capsys.readouterr().err


def test_cli_connect_needs_an_account(connect_env, cli, capsys):
    with pytest.raises(SystemExit) as refused:
        cli("connect", "--callback", CALLBACK)
    assert refused.value.code == 2 and "--account" in capsys.readouterr().err


def test_a_requested_configuration_that_is_invalid_is_refused_at_connect(connect_env):
    for config, code in (({"fields": "no"}, "invalid_config"), ("fields=none", "invalid_request")):
        answer = call("connect", "POST", body={"account": "a", "config": config})
        assert answer.status == 400 and answer.error_code == code, answer.text


def test_an_unreachable_authority_is_a_clear_503(connect_env, monkeypatch):
    monkeypatch.setenv("ENTRA_AUTHORITY_HOST", "https://127.0.0.1:9")  # discard: nothing answers
    answer = call("connect", "POST", body={"account": "acct-a"})
    assert answer.status == 503 and answer.error_code == "authority_unreachable", answer.text
