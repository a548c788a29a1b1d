"""The authorize endpoint and its sign-in page (the model is in simulator/signin.py)."""

from __future__ import annotations

import html
import time
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from .consent_page import SESSION_COOKIE, error_page
from .context import context_of
from .signin import CODE_LIFETIME, IssuedCode

_ANY_TENANT = ("organizations", "common")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{tenant}/oauth2/v2.0/authorize", authorize),
        web.post("/{tenant}/oauth2/v2.0/authorize", sign_in_decision),
    ]


async def authorize(request: web.Request) -> web.StreamResponse:
    params = dict(request.query)
    refused = _check(request, params)
    if refused is not None:
        return refused
    plan = context_of(request).signin.settings
    if plan.auto:
        tenant = _authority_tenant(request) or plan.tenant_id
        user = plan.user_id or _first_user(request, tenant)
        if tenant is None or user is None:
            return error_page(request, 400, 90002, "There is no account to sign in with.")
        return _signed_in(request, params, tenant, user)
    return _page(request, params)


async def sign_in_decision(request: web.Request) -> web.StreamResponse:
    form = {k: str(v) for k, v in (await request.post()).items()}
    refused = _check(request, form)
    if refused is not None:
        return refused
    tenant, _, user = form.get("account", "").partition("/")
    authority = _authority_tenant(request)
    ctx = context_of(request)
    if (authority and tenant != authority) or ctx.directory.find_tenant(tenant) is None:
        return error_page(request, 400, 50020, "The account is not in the tenant.")
    if ctx.directory.user(tenant, user) is None:
        return error_page(request, 400, 50034, "The user account does not exist.")
    return _signed_in(request, form, tenant, user)


def _check(request: web.Request, params: dict[str, str]) -> web.Response | None:
    """What Entra shows on its own page (client, redirect URI, tenant), then the request's own
    requirements: response_type=code and the openid scope (v2-protocols-oidc)."""
    ctx = context_of(request)
    client_id = params.get("client_id", "").strip().lower()
    app = ctx.world.app(client_id)
    if app is None:
        return error_page(request, 400, 700016, f"Application '{client_id}' was not found.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris and not ctx.consent.has_redirect_uri(
        client_id, redirect_uri
    ):
        return error_page(
            request, 400, 50011, f"The redirect URI '{redirect_uri}' does not match the app's."
        )
    name = request.match_info["tenant"]
    if name.lower() not in _ANY_TENANT and ctx.directory.find_tenant(name) is None:
        return error_page(request, 400, 90002, f"Tenant '{name}' not found.")
    if params.get("response_type") != "code" or "openid" not in params.get("scope", "").split():
        return error_page(
            request, 400, 900144, "This sign-in takes response_type=code and scope openid."
        )
    method = params.get("code_challenge_method", "plain")
    if params.get("code_challenge") and method not in ("S256", "plain"):
        return error_page(request, 400, 501491, "Invalid code_challenge_method.")
    return None


def _authority_tenant(request: web.Request) -> str | None:
    name = request.match_info["tenant"]
    if name.lower() in _ANY_TENANT:
        return None
    found = context_of(request).directory.find_tenant(name)
    return found.id if found else None


def _first_user(request: web.Request, tenant: str | None) -> str | None:
    if tenant is None:
        return None
    users = context_of(request).directory.active_ids(tenant)
    return users[0] if users else None


def _signed_in(
    request: web.Request, params: dict[str, str], tenant: str, user: str
) -> web.StreamResponse:
    ctx = context_of(request)
    found = ctx.directory.user(tenant, user)
    user_id = str(found["id"]) if found else user
    code = ctx.signin.new_code(
        IssuedCode(
            client_id=params["client_id"].strip().lower(),
            redirect_uri=params["redirect_uri"],
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method", "plain"),
            nonce=params.get("nonce"),
            scope=params.get("scope", ""),
            tenant_id=tenant,
            user_id=user_id,
            expires_at=time.time() + CODE_LIFETIME,
        )
    )
    answer = {"code": code}
    if params.get("state") is not None:
        answer["state"] = params["state"]
    session = ctx.signin.new_session(tenant, user_id)
    if params.get("response_mode") == "form_post":
        # "response_mode=form_post": a page whose form posts the answer to the redirect URI as
        # soon as it loads (v2-oauth2-auth-code-flow, "Request an authorization code").
        response = web.Response(
            text=_form_post(params["redirect_uri"], answer), content_type="text/html"
        )
        response.set_cookie(SESSION_COOKIE, session, secure=True, httponly=True)
        return response
    parts = urlsplit(params["redirect_uri"])
    query = f"{parts.query}&{urlencode(answer)}" if parts.query else urlencode(answer)
    found_redirect = web.HTTPFound(urlunsplit(parts._replace(query=query)))
    found_redirect.set_cookie(SESSION_COOKIE, session, secure=True, httponly=True)
    raise found_redirect


def _form_post(redirect_uri: str, answer: dict[str, str]) -> str:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in answer.items()
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Working...</title>'
        f'</head><body><form method="post" id="answer" action="{html.escape(redirect_uri)}">'
        f"{fields}<noscript><button>Continue</button></noscript></form>"
        "<script>document.getElementById('answer').submit()</script></body></html>"
    )


def _page(request: web.Request, params: dict[str, str]) -> web.Response:
    ctx = context_of(request)
    plan = ctx.signin.settings
    tenants = [_authority_tenant(request) or plan.tenant_id or ""]
    options = []
    for tenant_id in tenants:
        for user_id in ctx.directory.active_ids(tenant_id) if tenant_id else ():
            user = ctx.directory.user(tenant_id, user_id) or {}
            admin = " (administrator)" if ctx.signin.is_admin(tenant_id, user_id) else ""
            label = f"{user.get('userPrincipalName', user_id)}{admin}"
            chosen = " selected" if user_id == plan.user_id else ""
            options.append(
                f'<option value="{html.escape(tenant_id)}/{html.escape(user_id)}"{chosen}>'
                f"{html.escape(label)}</option>"
            )
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
        if name != "account"
    )
    # The page posts the sign-in to itself; the answer's mode (query or form_post) goes along.
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title></head>
<body><h1>Sign in</h1><form method="post">{hidden}
<label for="account">Pick an account</label>
<select id="account" name="account">{"".join(options)}</select>
<button id="sign-in" type="submit">Sign in</button></form></body></html>"""
    return web.Response(text=body, content_type="text/html")
