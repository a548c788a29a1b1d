"""The routes that link and unlink a tenant (docs/api.md, "Linking a tenant").

`connect_callback` is the one anonymous route: the browser comes back from Microsoft without a
function key, so it trusts nothing but the signed, single-use `state` (app/onboarding.py) and
always answers a page, never JSON.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sync_core.app.connect_view import connect_request_view
from sync_core.app.onboarding import ConnectOutcome, complete_connect, start_connect
from sync_core.app.service import SyncService
from sync_core.app.unlink import HomeTenant, unlink_tenant
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.consent_state import StateError, return_url_allowed
from sync_core.core.report import utc_now
from sync_core.errors import ErrorCode, SyncError
from sync_core.settings import SettingsError, load_settings
from sync_core.surfaces.api import (
    ApiError,
    ApiRequest,
    ApiResponse,
    RouteContext,
    absolute_url,
    ok,
    unknown_tenant,
)
from sync_core.surfaces.api_input import body_fields, invalid_config, json_object
from sync_core.surfaces.connect_page import outcome_page, page, refused_page

log = logging.getLogger("sync_core.surfaces.connect")
CALLBACK_PATH = ("connect", "callback")
_HTML = "text/html"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_ACCOUNT_CHARS = 128
MAX_FORM_BYTES = 64 * 1024


async def connect(request: ApiRequest, context: RouteContext) -> ApiResponse:
    fields = body_fields(
        json_object(request.body, required=False),
        {
            "returnUrl": str,
            "config": dict,
            "account": str,
            "replaceConfig": bool,
            "tenantId": str,  # the organization the link is for (checked: body_fields)
        },
    )
    settings = load_settings(context.environ, needs_graph=True)
    return_url = fields.get("returnUrl")
    if return_url is not None and not return_url_allowed(return_url, settings.connect_return_urls):
        raise ApiError(
            400,
            ErrorCode.RETURN_URL_NOT_ALLOWED,
            "returnUrl is not under one of the URLs in CONNECT_RETURN_URLS (or it holds "
            "control characters, spaces or characters beyond ASCII: percent-encode them).",
            fix="Add its origin and path to the CONNECT_RETURN_URLS app setting, or omit it.",
        )
    account = _account(fields.get("account"))
    config = _requested_config(fields.get("config"))
    async with SyncService(settings) as service:
        link = await start_connect(
            service,
            callback_url=absolute_url(request, CALLBACK_PATH),
            return_url=return_url,
            config=config,
            now=utc_now(),
            account=account,
            replace=bool(fields.get("replaceConfig", False)),
            expected_tenant=fields.get("tenantId"),
        )
    return ok(
        {
            "requestId": link.request_id,
            "consentUrl": link.consent_url,
            "state": link.state,
            "expiresAt": link.expires_at.isoformat().replace("+00:00", "Z"),
        },
        headers={"Cache-Control": "no-store"},
    )


async def connect_callback(request: ApiRequest, context: RouteContext) -> ApiResponse:
    try:
        settings = load_settings(context.environ, needs_graph=True)
        async with SyncService(settings) as service:
            outcome = await complete_connect(service, _answer_of(request), utc_now())
    except StateError as error:
        log.warning("consent callback refused: %s state", error.reason)
        return _page(400, refused_page(f"{error} Nothing was changed."))
    except (SettingsError, SyncError) as error:
        log.error("consent callback failed: %s", getattr(error, "code", ErrorCode.INVALID_SETTINGS))
        text = "The app could not finish linking the tenant; try again in a few minutes."
        return _page(503, page("Tenant not linked", f"<p>{text}</p>"))
    except Exception:  # a bug: still a page for the admin's browser, never the API's JSON
        log.exception("consent callback failed: internal error")
        text = "The app could not finish linking the tenant (an internal error); try again."
        return _page(500, page("Tenant not linked", f"<p>{text}</p>"))
    if outcome.next_url:  # signed in: on to the admin-consent page of that tenant
        return ApiResponse(302, "", {**_NO_STORE, "Location": outcome.next_url}, _HTML)
    if outcome.return_url:
        return ApiResponse(302, "", {**_NO_STORE, "Location": _with_outcome(outcome)}, _HTML)
    return _page(200, outcome_page(outcome))


async def connect_status(request: ApiRequest, context: RouteContext) -> ApiResponse:
    """The request's outcome as the server saw it: what a dashboard trusts, not the redirect."""
    request_id = request.route_params.get("requestId", "")
    requests = context.service.connect_requests
    found = await requests.get(request_id) if _ID.match(request_id) else None
    if found is None:
        raise ApiError(
            404,
            ErrorCode.UNKNOWN_CONNECT_REQUEST,
            "No connect request has that id (or it is older than a day and was swept).",
        )
    return ok(connect_request_view(found, utc_now()), headers={"Cache-Control": "no-store"})


def unlink_params(request: ApiRequest, tenant: str | None) -> bool:
    """Whether to remove the tenant's employees too (the body's or the query's flag)."""
    fields = body_fields(json_object(request.body, required=False), {"removeEmployees": bool})
    flag = request.params.get("removeEmployees", "").lower()
    if flag not in ("", "true", "false"):
        raise ApiError(400, ErrorCode.INVALID_PARAMETER, "removeEmployees must be true or false.")
    return bool(fields.get("removeEmployees", False) or flag == "true")


async def unlink(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant = context.tenant
    try:
        removed = await unlink_tenant(context.service, tenant, remove_employees=context.parsed)
    except LookupError:
        raise unknown_tenant(tenant) from None
    except HomeTenant:
        raise ApiError(
            409,
            ErrorCode.HOME_TENANT,
            "This tenant is ENTRA_TENANT_ID, the app's home tenant, which is served "
            "whether it is linked or not; unlinking it would not stop that. Nothing was "
            "changed.",
            fix='Pause it with PUT /api/config/{tenantId} and "enabled": false, or '
            "point ENTRA_TENANT_ID at another tenant.",
        ) from None
    return ok({"tenantId": tenant, "unlinked": True, "employeesRemoved": removed})


def _requested_config(document: dict[str, Any] | None) -> TenantConfig | None:
    if document is None:
        return None
    try:
        return parse_config(document)
    except ConfigError as error:
        message = f"config is invalid ({len(error.problems)} problem(s)); no link was made."
        raise invalid_config(error, message) from None


def _with_outcome(outcome: ConnectOutcome) -> str:
    """The allow-listed return URL with the request id and a coarse outcome (its own query
    kept): the dashboard reads the rest with GET /api/connect/{requestId}, never from here."""
    parts = urlsplit(outcome.return_url or "")
    added = {"connect": "linked" if outcome.linked else "refused", "requestId": outcome.request_id}
    query = f"{parts.query}&{urlencode(added)}" if parts.query else urlencode(added)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _answer_of(request: ApiRequest) -> dict[str, str]:
    """What Microsoft answered: the query of a GET (admin consent), the form of a POST (the
    sign-in, response_mode=form_post). One value per name, the first; a body far larger than a
    code and a state is not Microsoft's."""
    if request.method.upper() != "POST":
        return dict(request.params)
    if len(request.body) > MAX_FORM_BYTES:
        raise StateError("forged", "The sign-in answer is not one Microsoft sends.")
    fields: dict[str, str] = {}
    for name, value in parse_qsl(request.body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(name, value)
    return fields


def _account(value: str | None) -> str:
    if value is None or not value.strip():
        raise ApiError(
            400,
            ErrorCode.INVALID_ACCOUNT,
            "account is required: the dashboard's id of the customer who links the tenant.",
            fix="Send account, an opaque string of 1 to 128 printable characters.",
        )
    if len(value) > MAX_ACCOUNT_CHARS or not value.isprintable():
        raise ApiError(
            400,
            ErrorCode.INVALID_ACCOUNT,
            f"account must be 1 to {MAX_ACCOUNT_CHARS} printable characters.",
        )
    return value


def _page(status: int, html: str) -> ApiResponse:
    return ApiResponse(status, html, _NO_STORE, _HTML)
