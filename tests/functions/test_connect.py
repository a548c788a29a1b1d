"""Linking a tenant: POST /api/connect, the anonymous callback, GET /api/connect/{id}.

Handlers are called directly (functions_harness), against the real simulator and Azurite. The
Microsoft steps are the simulator's: its authorize endpoint signs the admin in (code flow with
PKCE, a signed ID token) and its admin-consent endpoint answers (connect_flow.py follows their
redirects without a browser; the browser test drives the pages). Every attack of issue 14 is
here: each one linked, reconfigured or re-enabled a tenant before the sign-in was required.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import uuid
from urllib.parse import urlsplit

import httpx
import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from connect_flow import (
    CALLBACK,
    follow,
    link,
    posted_answer,
    query_of,
    request_outcome,
    sign_in,
    start,
)
from functions_harness import call, call_callback

from simulator.signin import (
    APPLICATION_ADMINISTRATOR,
    GLOBAL_ADMINISTRATOR,
    PRIVILEGED_ROLE_ADMINISTRATOR,
)
from sync_core.app.service import SyncService
from sync_core.settings import load_settings

RETURN_BASE = "https://dashboard.example.com/tenants"


@pytest.fixture
def connect_env(app_env, monkeypatch):
    monkeypatch.setenv("CONNECT_RETURN_URLS", RETURN_BASE)
    return {**app_env, "CONNECT_RETURN_URLS": RETURN_BASE}


def granted(tenant_id: str, state: str) -> dict[str, str]:
    """What Microsoft's admin-consent redirect carries: plain query values anyone can write."""
    return {"tenant": tenant_id, "admin_consent": "True", "scope": "x/.default", "state": state}


def stored(tenant_id: str) -> dict:
    return call("tenant_config", "GET", {"tenantId": tenant_id}).json


def registered(tenant_id: str) -> bool:
    # The tenant is also ENTRA_TENANT_ID (served with the defaults): registered = stored.
    answer = call("tenant_config", "GET", {"tenantId": tenant_id})
    return answer.status == 200 and answer.json["stored"]


def admin(tenant) -> str:
    return tenant.users[0]["id"]


def test_connect_answers_the_sign_in_url_of_the_configured_authority(connect_env):
    answer = start()
    url = urlsplit(answer["consentUrl"])
    assert f"{url.scheme}://{url.netloc}" == connect_env["ENTRA_AUTHORITY_HOST"]
    assert url.path == "/organizations/oauth2/v2.0/authorize"
    query = query_of(answer["consentUrl"])
    assert query["client_id"] == connect_env["ENTRA_CLIENT_ID"]
    assert query["response_type"] == "code" and query["redirect_uri"] == CALLBACK
    assert {"openid", "profile"} <= set(query["scope"].split())
    assert query["state"] == answer["state"] and query["nonce"]
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["response_mode"] == "form_post"  # the code never sits in a URL
    assert "code=" not in answer["consentUrl"]  # the function key never travels to Microsoft
    assert request_outcome(answer["requestId"])["status"] == "pending"


@pytest.mark.parametrize("account", [None, "", "a\x1bb", "x" * 129])
def test_connect_requires_an_account(connect_env, account):
    body = {} if account is None else {"account": account}
    answer = call("connect", "POST", body=body)
    assert answer.status == 400 and answer.error_code == "invalid_account", answer.text


def test_signed_in_admin_links_the_tenant_and_the_server_keeps_the_outcome(
    connect_env, simulator, tenant
):
    started = start()
    page = follow(simulator, started, tenant.id, admin(tenant))
    assert page.status == 200, page.text
    assert 'id="tenant-name"><bdi>Contoso Ltd<' in page.text and "Connectivity: OK" in page.text
    outcome = request_outcome(started["requestId"])
    assert outcome["status"] == "linked" and outcome["tenantId"] == tenant.id
    assert outcome["account"] == "acct-a" and outcome["tenantName"] == "Contoso Ltd"
    assert outcome["signedInAs"] == tenant.users[0]["userPrincipalName"]
    status = {t["tenantId"]: t for t in call("status").json["tenants"]}
    assert status[tenant.id]["account"] == "acct-a" and status[tenant.id]["enabled"]
    assert stored(tenant.id)["account"] == "acct-a"
    # Each state works once: the sign-in's and the consent's.
    replayed = call_callback({"code": "x", "state": started["state"]})
    assert replayed.status == 400 and "already used" in replayed.text


def test_a_privileged_role_administrator_may_link(connect_env, simulator, tenant):
    page = link(simulator, tenant.id, admin(tenant), roles=(PRIVILEGED_ROLE_ADMINISTRATOR,))
    assert page.status == 200 and "Tenant linked" in page.text, page.text


def test_a_random_tenant_id_in_the_callback_registers_nothing(connect_env, tenant):
    started = start()
    stranger = str(uuid.uuid4())
    for params in (granted(stranger, started["state"]), granted(tenant.id, started["state"])):
        answer = call_callback(params)
        assert answer.status in (200, 400) and "Tenant linked" not in answer.text
    assert not registered(stranger) and not registered(tenant.id)
    assert request_outcome(started["requestId"])["status"] == "refused"


def test_an_unsigned_answer_never_replaces_a_configuration_or_re_enables_a_tenant(
    connect_env, simulator, tenant
):
    first = {"config": {"fields": [{"name": "Dept", "source": "department"}]}}
    assert link(simulator, tenant.id, admin(tenant), body=first).status == 200
    paused = {**stored(tenant.id)["config"], "enabled": False}
    assert call("tenant_config", "PUT", {"tenantId": tenant.id}, body=paused).status == 200
    before = stored(tenant.id)
    hostile = {"config": {"fields": [{"name": "X", "source": "id"}], "cleanUp": {"enabled": True}}}
    for body in (hostile, {}, {"account": "acct-b", **hostile}):
        started = start(body)
        assert call_callback(granted(tenant.id, started["state"])).status in (200, 400)
    assert stored(tenant.id) == before  # one field, Clean Up and enabled as they were


def test_linking_again_keeps_the_configuration_and_enabled_unless_asked_to_replace(
    connect_env, simulator, tenant
):
    first = {"config": {"fields": [{"name": "Dept", "source": "department"}]}}
    assert link(simulator, tenant.id, admin(tenant), body=first).status == 200
    paused = {**stored(tenant.id)["config"], "enabled": False}
    call("tenant_config", "PUT", {"tenantId": tenant.id}, body=paused)
    other = {"config": {"fields": [{"name": "Title", "source": "jobTitle"}]}}
    again = link(simulator, tenant.id, admin(tenant), body=other)
    assert again.status == 200 and "linked before" in again.text
    assert stored(tenant.id)["config"] == paused
    replaced = link(simulator, tenant.id, admin(tenant), body={**other, "replaceConfig": True})
    assert replaced.status == 200
    config = stored(tenant.id)["config"]
    assert [f["name"] for f in config["fields"]] == ["Title"] and config["enabled"] is True


def test_a_tenant_linked_by_one_account_cannot_be_taken_by_another(connect_env, simulator, tenant):
    assert link(simulator, tenant.id, admin(tenant)).status == 200
    before = stored(tenant.id)
    started = start({"account": "acct-b", "returnUrl": f"{RETURN_BASE}/b"})
    answer = follow(simulator, started, tenant.id, admin(tenant))
    assert answer.status == 302
    assert query_of(answer.headers["Location"]) == {
        "connect": "refused",
        "requestId": started["requestId"],
    }
    outcome = request_outcome(started["requestId"])
    assert outcome["status"] == "refused" and outcome["reasonCode"] == "other_account"
    assert stored(tenant.id) == before and before["account"] == "acct-a"


def test_a_consent_answer_for_another_tenant_than_the_signed_in_one_is_refused(
    connect_env, simulator, tenant
):
    """The admin of A (tenant) signs in; the answer is edited to name B, a tenant that has
    consented to the app already (the simulator's base tenant), where that person is no one."""
    other = simulator.world.tenants[0].id
    assert other != tenant.id and not registered(other)
    page = link(
        simulator,
        tenant.id,
        admin(tenant),
        tamper_consent=lambda params: {**params, "tenant": other},
    )
    assert page.status == 200 and "another organization" in page.text, page.text
    assert not registered(other) and not registered(tenant.id)


def test_a_link_made_for_one_organization_links_nothing_when_another_signs_in(
    connect_env, simulator, tenant
):
    """Consent phishing: a customer makes a sign-in link for its own organization and sends it
    to an administrator of another company, whose tenant would then be linked to the
    customer's account. A link made with `tenantId` serves that organization only."""
    expected = simulator.world.tenants[0].id
    assert expected != tenant.id
    started = start({"tenantId": expected.upper()})  # a GUID in any case
    assert request_outcome(started["requestId"])["expectedTenant"] == expected
    page = follow(simulator, started, tenant.id, admin(tenant))  # another company's admin
    assert page.status == 200 and "made for another organization" in page.text, page.text
    assert not registered(tenant.id) and not registered(expected)
    outcome = request_outcome(started["requestId"])
    assert (outcome["status"], outcome["reasonCode"]) == ("refused", "unexpected_tenant")
    assert simulator.consent.history == []  # never sent on to the consent page

    # Made for the organization that signs in, the link works as any other.
    page = link(simulator, tenant.id, admin(tenant), body={"tenantId": tenant.id})
    assert page.status == 200 and "Tenant linked" in page.text, page.text


def test_a_refused_sign_in_answered_again_is_refused_as_replayed_and_stays_refused(
    connect_env, simulator, tenant
):
    """The sign-in answer of a link made for another organization, sent again (the browser's
    back button, or its holder trying once more): 400, and the request's outcome is the
    refusal it had, not failed."""
    other = simulator.world.tenants[0].id
    started = start({"tenantId": other})
    client_id = connect_env["ENTRA_CLIENT_ID"]
    simulator.add_redirect_uri(client_id, CALLBACK)
    simulator.signin.set_roles(tenant.id, admin(tenant), (GLOBAL_ADMINISTRATOR,))
    simulator.signin.plan(tenant_id=tenant.id, user_id=admin(tenant), auto=True)
    try:
        trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
        with httpx.Client(verify=trust) as http:
            fields = posted_answer(http.get(started["consentUrl"]))
        answered = call_callback(fields, form=True)
        assert answered.status == 200 and "made for another organization" in answered.text
        again = call_callback(fields, form=True)
    finally:
        simulator.signin.clear()
    assert again.status == 400, again.text
    outcome = request_outcome(started["requestId"])
    assert (outcome["status"], outcome["reasonCode"]) == ("refused", "unexpected_tenant")
    assert not registered(tenant.id)


def test_a_callback_that_fails_part_way_says_so_instead_of_pending(connect_env, simulator, tenant):
    """The dashboard polls GET /api/connect/{id}: a callback that could not finish (here the
    app's secret cannot be read from Key Vault when the consent comes back) must end the
    request, or the dashboard waits until it expires, 15 minutes later."""
    started = start()

    def vault_down(params: dict[str, str]) -> dict[str, str]:
        simulator.faults.bad_gateway(20, path_prefix="/secrets/")
        return params

    page = follow(simulator, started, tenant.id, admin(tenant), tamper_consent=vault_down)
    simulator.faults.clear()
    assert page.status == 503, page.text
    outcome = request_outcome(started["requestId"])
    assert outcome["status"] == "failed", outcome
    assert outcome["reasonCode"] == "not_finished" and "start again" in outcome["reason"]
    assert outcome["errorCode"].startswith("key_vault")
    assert not registered(tenant.id)
    # Started again, it links.
    assert link(simulator, tenant.id, admin(tenant)).status == 200


def test_a_callback_that_fails_on_a_bug_ends_its_request_too(connect_env, simulator, tenant):
    """Not only the classified failures: a request whose stored configuration no longer reads
    (a row edited by hand, or written by another version) ends failed as well, as
    `internal_error`, instead of staying pending."""
    started = start({"config": {"fields": [{"name": "Title", "source": "jobTitle"}]}})
    rows = TableServiceClient.from_connection_string(connect_env["TABLES_CONNECTION_STRING"])
    table = rows.get_table_client("TenantConfigs")
    table.update_entity(
        {"PartitionKey": "~connect", "RowKey": f"request-{started['requestId']}", "Config0": "{"},
        mode=UpdateMode.MERGE,
    )
    page = follow(simulator, started, tenant.id, admin(tenant))
    assert page.status == 500, page.text
    outcome = request_outcome(started["requestId"])
    assert (outcome["status"], outcome["reasonCode"]) == ("failed", "not_finished"), outcome
    assert outcome["errorCode"] == "internal_error" and "{" not in outcome["reason"]
    assert not registered(tenant.id)


@pytest.mark.parametrize(
    "value",
    [
        "contoso.com",
        "not-a-guid",
        42,
        "",
        None,
        "{3de359df-dfff-4ff9-9861-84356d050736}",  # braces: one tenant named two ways
        " 3de359df-dfff-4ff9-9861-84356d050736",
        "3de359dfdfff4ff9986184356d050736",
        "urn:uuid:3de359df-dfff-4ff9-9861-84356d050736",
    ],
)
def test_a_connect_request_with_a_tenant_that_is_not_a_tenant_id_is_refused(connect_env, value):
    answer = call("connect", "POST", body={"account": "acct-a", "tenantId": value})
    assert answer.status == 400, answer.text
    assert "tenantId" in answer.json["error"]["message"]


@pytest.mark.parametrize("roles", [(), (APPLICATION_ADMINISTRATOR,)])
def test_a_person_who_may_not_grant_application_permissions_is_told_so(
    connect_env, simulator, tenant, roles
):
    started = start()
    page = follow(simulator, started, tenant.id, admin(tenant), roles=roles)
    assert page.status == 200
    assert "not a Global Administrator or a Privileged Role Administrator" in page.text
    assert not registered(tenant.id)
    assert request_outcome(started["requestId"])["reasonCode"] == "not_admin"
    assert simulator.consent.history == []  # never sent on to the consent page


def test_without_the_admins_roles_in_the_id_token_nobody_links_a_consented_tenant(
    connect_env, simulator
):
    """A registration without groupMembershipClaims: the ID token carries no `wids`. A person
    of a tenant that consented to the app long ago (the simulator's base tenant) signs in, skips
    Microsoft's consent page (which would refuse a non-admin) and writes its answer himself:
    the app-only token proves a consent, not that this person gave it."""
    base = simulator.world.tenants[0]
    nobody = base.users[-1]["id"]
    started = start({"account": "acct-intruder"})
    simulator.add_redirect_uri(connect_env["ENTRA_CLIENT_ID"], CALLBACK)
    simulator.signin.set_roles(base.id, nobody, ())
    simulator.signin.plan(tenant_id=base.id, user_id=nobody, auto=True, wids=False)
    try:
        answer = sign_in(simulator, started)
    finally:
        simulator.signin.clear()
    if answer.status == 302:  # sent on to the consent page: answer it without Microsoft
        consent_state = query_of(answer.headers["Location"])["state"]
        answer = call_callback(granted(base.id, consent_state))
    assert answer.status == 200 and "Tenant linked" not in answer.text, answer.text
    assert "groupMembershipClaims" in answer.text
    assert not registered(base.id)
    outcome = request_outcome(started["requestId"])
    assert outcome["status"] == "refused" and outcome["reasonCode"] == "roles_unknown"


@pytest.mark.parametrize(
    "defect",
    [
        "audience",
        "nonce",
        "signature",
        "issuer",
        "expired",
        "template_issuer",
        "alg_none",
        "hs256",
        "unknown_kid",
    ],
)
def test_an_id_token_that_does_not_validate_links_nothing(connect_env, simulator, tenant, defect):
    started = start()
    simulator.signin.set_roles(tenant.id, admin(tenant), (GLOBAL_ADMINISTRATOR,))
    simulator.add_redirect_uri(connect_env["ENTRA_CLIENT_ID"], CALLBACK)
    simulator.signin.plan(
        tenant_id=tenant.id, user_id=admin(tenant), auto=True, id_token_defect=defect
    )
    try:
        page = sign_in(simulator, started)
    finally:
        simulator.signin.clear()
    assert page.status == 200 and "Nothing was linked" in page.text, page.text
    assert not registered(tenant.id)
    outcome = request_outcome(started["requestId"])
    assert outcome["status"] == "refused"
    assert outcome["reasonCode"] in ("id_token_invalid", "sign_in_invalid")


def test_of_accounts_claiming_a_tenant_at_once_exactly_one_wins(connect_env, tenant):
    """The account is claimed with an ETag-conditional write (tables/configurations.py)."""
    assert call(
        "tenant_config",
        "PUT",
        {"tenantId": tenant.id},
        body={"fields": [{"name": "Title", "source": "jobTitle"}]},
    ).status in (
        200,
        201,
    )
    accounts = ("acct-a", "acct-b", "acct-c", "acct-d")

    async def race() -> list[bool]:
        async with SyncService(load_settings(connect_env, needs_graph=False)) as service:
            return list(
                await asyncio.gather(*(service.configs.claim(tenant.id, a) for a in accounts))
            )

    won = asyncio.run(race())
    assert won.count(True) == 1
    assert stored(tenant.id)["account"] == accounts[won.index(True)]
