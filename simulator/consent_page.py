"""The admin-consent endpoint and page (see simulator/consent.py for the Microsoft model and the
plan that drives outcomes in tests)."""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from aiohttp import web

from .consent import ConsentRecord
from .context import context_of, request_id

SESSION_COOKIE = "sim_session"  # set by the sign-in (signin_page.py)

_ANY_TENANT = ("organizations", "common")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{tenant}/v2.0/adminconsent", admin_consent),
        web.post("/{tenant}/v2.0/adminconsent", admin_consent_decision),
    ]


@dataclass(frozen=True)
class _Request:
    client_id: str
    app_name: str
    scope: str
    redirect_uri: str
    state: str | None
    authority_tenant: str | None  # None: "organizations"
    permissions: tuple[str, ...]


async def admin_consent(request: web.Request) -> web.StreamResponse:
    checked = _check(request, dict(request.query))
    if isinstance(checked, web.StreamResponse):
        return checked
    ctx = context_of(request)
    settings = ctx.consent.settings
    tenant = (
        checked.authority_tenant
        or _known(request, request.query.get("sim_tenant"))
        or _known(request, settings.tenant_id)
        or next(iter(ctx.directory.tenant_ids()), None)
    )
    if settings.auto:
        return _decide(
            request, checked, tenant, settings.outcome, admin=_signed_in_admin(request, tenant)
        )
    return _page(request, checked, tenant)


async def admin_consent_decision(request: web.Request) -> web.StreamResponse:
    form = {k: str(v) for k, v in (await request.post()).items()}
    checked = _check(request, form)
    if isinstance(checked, web.StreamResponse):
        return checked
    tenant = checked.authority_tenant or _known(request, form.get("tenant"))
    if form.get("action") != "accept":
        return _decide(request, checked, tenant, "cancel", admin=True)
    if tenant is None:
        return _error_page(request, 400, 90002, "Choose the tenant to consent for.")
    outcome = context_of(request).consent.settings.outcome
    admin = form.get("account") != "user" and _signed_in_admin(request, tenant)
    return _decide(request, checked, tenant, outcome, admin=admin)


def _signed_in_admin(request: web.Request, tenant: str | None) -> bool:
    """Whether the account signed in (the sign-in cookie, simulator/signin.py) may grant Graph
    application permissions in ``tenant``. Without a sign-in the page's own choice decides."""
    ctx = context_of(request)
    session = ctx.signin.session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return True
    signed_tenant, user = session
    return tenant == signed_tenant and ctx.signin.is_admin(signed_tenant, user)


def _known(request: web.Request, name: str | None) -> str | None:
    if not name:
        return None
    found = context_of(request).directory.find_tenant(name)
    return found.id if found else None


def _check(request: web.Request, params: dict[str, str]) -> _Request | web.StreamResponse:
    """Problems Entra shows on its own page (it cannot trust the redirect URI yet) come first;
    the rest are sent back to the (registered) redirect URI."""
    ctx = context_of(request)
    client_id = params.get("client_id", "").strip().lower()
    if not client_id:
        return _error_page(
            request,
            400,
            900144,
            "The request body must contain the following parameter: 'client_id'.",
        )
    app = ctx.world.app(client_id)
    if app is None:
        return _error_page(
            request,
            400,
            700016,
            f"Application with identifier '{client_id}' was not found in the directory. This "
            "can happen if the application has not been installed by the administrator of the "
            "tenant or consented to by any user in the tenant.",
        )
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app.redirect_uris and not ctx.consent.has_redirect_uri(
        client_id, redirect_uri
    ):
        return _error_page(
            request,
            400,
            50011,
            f"The redirect URI '{redirect_uri}' specified in the request does not match the "
            f"redirect URIs configured for the application '{client_id}'. Make sure the redirect "
            "URI sent in the request matches one added to your application in the Azure portal.",
        )
    name = request.match_info["tenant"]
    authority_tenant: str | None = None
    if name.lower() not in _ANY_TENANT:
        found = ctx.directory.find_tenant(name)
        if found is None:
            return _error_page(request, 400, 90002, f"Tenant '{name}' not found.")
        authority_tenant = found.id
    checked = _Request(
        client_id,
        app.display_name or client_id,
        params.get("scope", ""),
        redirect_uri,
        params.get("state"),
        authority_tenant,
        app.permissions,
    )
    scopes = checked.scope.split()
    if not scopes:
        return _redirect(
            checked,
            error="invalid_request",
            error_description=_described(
                request, 900144, "The request body must contain the following parameter: 'scope'."
            ),
        )
    if not all(s.endswith("/.default") for s in scopes):
        return _redirect(
            checked,
            error="invalid_request",
            error_description=_described(
                request,
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope "
                f"{checked.scope} is not valid. The admin consent endpoint takes only "
                "'<resource>/.default' scopes.",
            ),
        )
    return checked


def _decide(
    request: web.Request, checked: _Request, tenant: str | None, outcome: str, *, admin: bool
) -> web.StreamResponse:
    ctx = context_of(request)
    settings = ctx.consent.settings
    if outcome == "accept" and not admin:
        outcome = "not_admin"
    ctx.consent.record(
        ConsentRecord(time.time(), checked.client_id, tenant, outcome, checked.redirect_uri)
    )
    if outcome == "cancel":
        return _redirect(
            checked,
            error="access_denied",
            error_subcode="cancel",
            error_description=_described(
                request, 65004, "User declined to consent to access the app."
            ),
        )
    if outcome == "not_admin":
        return _redirect(
            checked,
            error="access_denied",
            error_description=_described(
                request,
                90094,
                "The grant requires admin permission. The signed-in account is not an "
                "administrator of the tenant.",
            ),
        )
    if outcome == "app_blocked":
        return _redirect(
            checked,
            error="unauthorized_client",
            error_description=_described(
                request,
                7000112,
                f"Application '{checked.client_id}'({checked.app_name}) is disabled in this "
                "tenant.",
            ),
        )
    if tenant is None:
        return _error_page(request, 400, 90002, "There is no tenant to consent for.")
    ctx.directory.grant_consent(
        tenant, checked.client_id, checked.permissions, settings.replication_delay
    )
    return _redirect(checked, tenant=tenant, admin_consent="True", scope=checked.scope)


def _redirect(checked: _Request, **params: str) -> web.StreamResponse:
    if checked.state is not None:
        params["state"] = checked.state
    parts = urlsplit(checked.redirect_uri)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    raise web.HTTPFound(urlunsplit(parts._replace(query=query)))


def _described(request: web.Request, code: int, text: str) -> str:
    return f"AADSTS{code}: {text} Trace ID: {request_id(request)}"


_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;max-width:34rem;margin:3rem auto;color:#1b1b1b}"
    "button{padding:.5rem 1.5rem;margin-right:.5rem}select{margin:.25rem 0 1rem;width:100%}"
)


def _page(request: web.Request, checked: _Request, tenant: str | None) -> web.Response:
    ctx = context_of(request)
    options = []
    for tenant_id in ctx.directory.tenant_ids():
        if checked.authority_tenant and tenant_id != checked.authority_tenant:
            continue
        info = ctx.directory.find_tenant(tenant_id)
        label = f"{info.display_name} ({tenant_id})" if info and info.display_name else tenant_id
        chosen = " selected" if tenant_id == tenant else ""
        options.append(
            f'<option value="{html.escape(tenant_id)}"{chosen}>{html.escape(label)}</option>'
        )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
        for name, value in (
            ("client_id", checked.client_id),
            ("scope", checked.scope),
            ("redirect_uri", checked.redirect_uri),
            *((("state", checked.state),) if checked.state is not None else ()),
        )
    )
    permissions = "".join(f"<li>{html.escape(p)}</li>" for p in checked.permissions)
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Permissions requested</title>
<style>{_STYLE}</style></head>
<body><h1>Permissions requested</h1>
<p id="app"><strong>{html.escape(checked.app_name)}</strong> wants to:</p>
<ul id="permissions">{permissions}</ul>
<p>Accepting grants these permissions on behalf of your organization.</p>
<form method="post">{hidden}
<label for="tenant">Organization (the account you signed in with)</label>
<select id="tenant" name="tenant">{"".join(options)}</select>
<label for="account">Signed in as</label>
<select id="account" name="account"><option value="admin" selected>a Global Administrator
</option><option value="user">a user without admin rights</option></select>
<button id="accept" type="submit" name="action" value="accept">Accept</button>
<button id="cancel" type="submit" name="action" value="cancel">Cancel</button>
</form></body></html>"""
    return web.Response(text=body, content_type="text/html")


def _error_page(request: web.Request, status: int, code: int, text: str) -> web.Response:
    body = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in error</title>
<style>{_STYLE}</style></head>
<body><h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error">AADSTS{code}: {html.escape(text)}</p>
<p>Request Id: {html.escape(request_id(request))}</p></body></html>"""
    return web.Response(status=status, text=body, content_type="text/html")


error_page = _error_page  # the sign-in page shows Entra's errors the same way
