"""Linking through the simulator's real Microsoft steps, without a browser: the sign-in
(authorize endpoint, auto) and the admin consent (auto) answer redirects that these helpers
follow, and the app's callback is called with what they carry (call_callback)."""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
from functions_harness import HOST, Answer, call, call_callback

from simulator.signin import GLOBAL_ADMINISTRATOR

CALLBACK = f"{HOST}/api/connect/callback"
Tamper = Callable[[dict[str, str]], dict[str, str]]


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def posted_answer(page: httpx.Response) -> dict[str, str]:
    """The fields of the simulator's form_post page (what the browser would post)."""
    assert page.status_code == 200, page.text
    assert f'action="{CALLBACK}"' in page.text
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text))


def sign_in(simulator, started: dict) -> Answer:
    """Through the authorize endpoint (planned: auto) to the app's callback, as the form posts."""
    trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    with httpx.Client(verify=trust) as http:
        return call_callback(posted_answer(http.get(started["consentUrl"])), form=True)


def start(body: dict | None = None) -> dict:
    answer = call("connect", "POST", body={"account": "acct-a", **(body or {})})
    assert answer.status == 200, answer.text
    return answer.json


def link(
    simulator,
    tenant_id: str,
    user_id: str,
    *,
    body: dict | None = None,
    roles: tuple[str, ...] = (GLOBAL_ADMINISTRATOR,),
    consent_outcome: str = "accept",
    tamper_consent: Tamper | None = None,
    replication_delay: float = 0.0,
) -> Answer:
    """Start a connect request, sign in as `user_id` of `tenant_id` holding `roles`, consent,
    and answer the app's last page (or redirect)."""
    return follow(
        simulator,
        start(body),
        tenant_id,
        user_id,
        roles=roles,
        consent_outcome=consent_outcome,
        tamper_consent=tamper_consent,
        replication_delay=replication_delay,
    )


def follow(
    simulator,
    started: dict,
    tenant_id: str,
    user_id: str,
    *,
    roles: tuple[str, ...] = (GLOBAL_ADMINISTRATOR,),
    consent_outcome: str = "accept",
    tamper_consent: Tamper | None = None,
    replication_delay: float = 0.0,
) -> Answer:
    client_id = os.environ["ENTRA_CLIENT_ID"]
    simulator.add_redirect_uri(client_id, CALLBACK)
    simulator.signin.set_roles(tenant_id, user_id, roles)
    simulator.signin.plan(tenant_id=tenant_id, user_id=user_id, auto=True)
    simulator.consent.plan(
        tenant_id=tenant_id,
        outcome=consent_outcome,
        replication_delay=replication_delay,
        auto=True,
    )
    trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    try:
        with httpx.Client(verify=trust) as http:
            signed_in = http.get(started["consentUrl"])
            answer = call_callback(posted_answer(signed_in), form=True)
            if answer.status != 302 or not answer.headers["Location"].startswith(
                simulator.base_url
            ):
                return answer  # refused after the sign-in (or an error page)
            consented = http.get(answer.headers["Location"])
            assert consented.status_code == 302, consented.text
            params = query_of(consented.headers["location"])
            if tamper_consent is not None:
                params = tamper_consent(params)
            return call_callback(params)
    finally:
        simulator.signin.clear()
        simulator.consent.clear()


def request_outcome(request_id: str) -> dict:
    answer = call("connect_status", "GET", {"requestId": request_id})
    assert answer.status == 200, answer.text
    return answer.json
