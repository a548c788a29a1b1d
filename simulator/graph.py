"""Microsoft Graph v1.0: ``/organization``, ``/users``, ``/users/$count``, ``/users/{id}``,
``/users/delta`` (in delta.py) and ``/groups/...`` (in groups_api.py).

Read-only on purpose: any other method is answered 405 (and logged), so a test can assert the
app never writes to a customer's directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from . import batch, delta, groups_api, manager, odata, photos
from .context import context_of, request_id, utc_now
from .graph_query import GraphError, make_skiptoken, parse_select, parse_users_query
from .schema import DEFAULT_SELECT, empty_value
from .tokens import Grant, TokenError

READ_USERS = frozenset(
    {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}
)
# Application permissions of GET /organization (Graph docs, api-reference/v1.0/api/
# organization-get.md): User.Read.All is not among them, so an app without Organization.Read.All
# (or a Directory.* role) is refused with 403.
READ_ORGANIZATION = frozenset(
    {
        "Organization.Read.All",
        "Organization.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_MAILBOX_SETTINGS = frozenset({"MailboxSettings.Read", "MailboxSettings.ReadWrite"})
# Properties Graph serves only with a further permission and otherwise sends as null, without
# an error: the lifecycle dates need User-LifeCycleInfo.Read.All in app-only calls (Graph's user
# resource page; a field report of both coming back null without it: Azure/LogicAppsUX #4925).
_READ_LIFECYCLE = frozenset({"User-LifeCycleInfo.Read.All", "User-LifeCycleInfo.ReadWrite.All"})
GATED_PROPERTIES: dict[str, frozenset[str]] = {
    "employeeHireDate": _READ_LIFECYCLE,
    "employeeLeaveDateTime": _READ_LIFECYCLE,
}
_ORGANIZATION_PROPERTIES = (
    "id",
    "displayName",
    "verifiedDomains",
    "tenantType",
    "countryLetterCode",
    "createdDateTime",
)


def routes() -> list[web.RouteDef]:
    return [web.route("*", "/v1.0/{tail:.*}", dispatch)]


async def dispatch(request: web.Request) -> web.Response:
    try:
        if request.match_info["tail"].strip("/") == "$batch":  # simulator/batch.py: a POST
            return _json(request, await batch.handle(request, authenticate, _root(request)))
        if request.method != "GET":
            raise GraphError(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request uri.",
                {"Allow": "GET"},
            )
        segments = [s for s in request.match_info["tail"].split("/") if s]
        if segments == ["organization"]:
            return organization(request)
        if segments == ["users"]:
            return users(request)
        if segments in (["users", "delta"], ["users", "delta()"]):
            return users_delta(request)
        if segments == ["users", "$count"]:
            return users_count(request)
        if len(segments) == 2 and segments[0] == "users":
            return user(request, segments[1])
        if len(segments) >= 2 and segments[0] == "groups":
            return groups_api.dispatch(request, segments[1:], authorize, _json)
        if len(segments) == 3 and segments[0] == "users" and segments[2] == manager.MANAGER:
            return user_manager(request, segments[1])
        if photos.is_photo_path(segments):
            return photo(request, segments)
        first = segments[0] if segments else ""
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")
    except GraphError as error:
        return graph_error(request, error)


def graph_error(request: web.Request, error: GraphError) -> web.Response:
    rid = request_id(request)
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": utc_now().strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": rid,
                "client-request-id": request.headers.get("client-request-id", rid),
            },
        }
    }
    return web.json_response(
        body, status=error.status, headers={**error.headers, **_id_headers(request)}
    )


def authorize(request: web.Request, allowed_roles: frozenset[str]) -> Grant:
    grant = authenticate(request)
    if not allowed_roles.intersection(grant.roles):
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
    return grant


def authenticate(request: web.Request) -> Grant:
    """The token's grant, checked for everything but its roles (a JSON batch checks the roles
    of each inner request)."""
    ctx = context_of(request)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
    try:
        grant = ctx.issuer.verify(token.strip())
    except TokenError as error:
        raise GraphError(401, "InvalidAuthenticationToken", error.reason) from None
    if grant.audience not in ctx.endpoints.graph_audiences:
        raise GraphError(
            401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
        )
    if ctx.directory.find_tenant(grant.tenant_id) is None:
        raise GraphError(
            401, "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer."
        )
    return grant


def organization(request: web.Request) -> web.Response:
    ctx = context_of(request)
    grant = authorize(request, READ_ORGANIZATION)
    tenant = ctx.directory.find_tenant(grant.tenant_id)
    assert tenant is not None  # authorize() checked it
    full = {
        "id": tenant.id,
        "displayName": tenant.display_name,
        "verifiedDomains": [
            {"capabilities": "Email, OfficeCommunicationsOnline", "type": "Managed", **d}
            for d in tenant.verified_domains
        ],
        "tenantType": tenant.tenant_type,
        "countryLetterCode": None,
        "createdDateTime": None,
    }
    wanted = _ORGANIZATION_PROPERTIES
    if "$select" in request.query:
        wanted = tuple(p.strip() for p in request.query["$select"].split(","))
        for name in wanted:
            if name not in _ORGANIZATION_PROPERTIES:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named "
                    f"'{name}' on type 'microsoft.graph.organization'.",
                )
    item = {"id": tenant.id} | {name: full[name] for name in wanted}
    return _json(
        request, {"@odata.context": f"{_root(request)}/$metadata#organization", "value": [item]}
    )


def users(request: web.Request) -> web.Response:
    ctx = context_of(request)
    grant = authorize(request, READ_USERS)
    _refuse_advanced_query_in_b2c(request, grant.tenant_id)
    query = parse_users_query(
        request.query,
        request.headers.get("ConsistencyLevel"),
        ctx.page_key,
        grant.tenant_id,
        page_token_max_age=ctx.faults.page_token_max_age(),
    )
    predicate = _predicate(query.filter)
    page = ctx.directory.page(grant.tenant_id, query.after, predicate, query.top)
    context_select = f"({','.join(query.select)})" if query.selected else ""
    body: dict[str, Any] = {"@odata.context": f"{_root(request)}/$metadata#users{context_select}"}
    if query.count and query.after is None:
        body["@odata.count"] = ctx.directory.count(grant.tenant_id, predicate)
    if page.more and page.last_id:
        token = make_skiptoken(page.last_id, ctx.page_key, grant.tenant_id, query.options)
        body["@odata.nextLink"] = _next_link(request, query.options, token)
    body["value"] = [_project(u, query.select, grant.roles) for u in page.users]
    if query.expand_manager is not None:
        select = query.expand_manager or DEFAULT_SELECT
        manager.expand(ctx.directory, grant.tenant_id, body["value"], page.users,
                       lambda boss: _project(boss, select, grant.roles))  # fmt: skip
    return _json(request, body)


def users_delta(request: web.Request) -> web.Response:
    grant = authorize(request, READ_USERS)
    return _json(request, delta.users_delta(request, grant.tenant_id, grant.roles, _project))


def users_count(request: web.Request) -> web.Response:
    ctx = context_of(request)
    grant = authorize(request, READ_USERS)
    _refuse_advanced_query_in_b2c(request, grant.tenant_id)
    if request.headers.get("ConsistencyLevel", "").strip().lower() != "eventual":
        raise GraphError(
            400,
            "Request_BadRequest",
            "Count is not currently supported without ConsistencyLevel:eventual.",
        )
    node = None
    if "$filter" in request.query:
        try:
            node = odata.parse_filter(request.query["$filter"])
        except odata.FilterError as error:
            raise GraphError(400, "Request_BadRequest", str(error)) from None
    total = ctx.directory.count(grant.tenant_id, _predicate(node))
    return web.Response(text=str(total), content_type="text/plain", headers=_id_headers(request))


def user(request: web.Request, key: str) -> web.Response:
    ctx = context_of(request)
    grant = authorize(request, READ_USERS)
    select = parse_select(request.query.get("$select"), collection=False)
    if "mailboxSettings" in select and not READ_MAILBOX_SETTINGS.intersection(grant.roles):
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )
    found = ctx.directory.user(grant.tenant_id, key)
    if found is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{key}' does not exist or "
            "one of its queried reference-property objects are not present.",
        )
    suffix = f"({','.join(select)})" if select else ""
    body = {"@odata.context": f"{_root(request)}/$metadata#users{suffix}/$entity"}
    body |= _project(found, select or DEFAULT_SELECT, grant.roles)
    return _json(request, body)


def user_manager(request: web.Request, key: str) -> web.Response:
    """``GET /users/{id}/manager`` (simulator/manager.py)."""
    ctx = context_of(request)
    grant = authorize(request, READ_USERS)
    select = parse_select(request.query.get("$select"), collection=False)
    found = ctx.directory.user(grant.tenant_id, key)
    boss = None if found is None else manager.manager_of(ctx.directory, grant.tenant_id, found)
    if boss is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            "Resource 'manager' does not exist or one of its queried reference-property "
            "objects are not present.",
        )
    body = {"@odata.context": f"{_root(request)}/$metadata#directoryObjects/$entity"}
    body |= {"@odata.type": "#microsoft.graph.user"}
    body |= _project(boss, select or DEFAULT_SELECT, grant.roles)
    return _json(request, body)


def photo(request: web.Request, segments: list[str]) -> web.Response:
    """A user's photo metadata or bytes (simulator/photos.py)."""
    ctx = context_of(request)
    grant = authorize(request, photos.READ_PHOTOS)
    found = ctx.directory.user(grant.tenant_id, segments[1])
    answer = photos.answer(ctx.photos, grant.tenant_id, found, segments[2:], _root(request))
    if answer.content is not None:
        return web.Response(
            body=answer.content,
            headers={**answer.headers, **_id_headers(request)},
        )
    return _json(request, answer.json or {})


def _refuse_advanced_query_in_b2c(request: web.Request, tenant_id: str) -> None:
    """Azure AD B2C has no advanced queries (concepts/aad-advanced-queries.md: "not available
    for Azure AD B2C tenants"); it answers $count and ConsistencyLevel with 400
    Request_BadRequest (microsoft-graph-docs issues #9856 and #10493 quote the answers)."""
    tenant = context_of(request).directory.find_tenant(tenant_id)
    if tenant is None or tenant.tenant_type != "AADB2C":
        return
    if request.headers.get("ConsistencyLevel"):
        raise GraphError(400, "Request_BadRequest", "This request is not supported by the service")
    if request.path.endswith("/$count") or any(k.lower() == "$count" for k in request.query):
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")


def _predicate(node: odata.Node | None) -> Any:
    if node is None:
        return lambda _user: True
    return lambda candidate: odata.matches(node, candidate)


def _project(
    user: Mapping[str, Any], select: tuple[str, ...], roles: tuple[str, ...]
) -> dict[str, Any]:
    projected: dict[str, Any] = {}
    for name in select:
        gate = GATED_PROPERTIES.get(name)
        if gate is not None and not gate.intersection(roles):
            projected[name] = empty_value(name)
        elif name in user:
            projected[name] = user[name]
        elif name.startswith("extension_"):
            # Directory extension names are matched case-insensitively, like other properties.
            match = next((k for k in user if k.lower() == name.lower()), None)
            projected[name] = user[match] if match else None
        else:
            projected[name] = empty_value(name)
    return projected


def _root(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/v1.0"


def _next_link(request: web.Request, options: tuple[tuple[str, str], ...], token: str) -> str:
    # Graph's links keep $, commas, quotes and parentheses readable; anything else is escaped.
    query = urlencode([*options, ("$skiptoken", token)], quote_via=quote, safe="$,'()/:@")
    return f"{request.scheme}://{request.host}{request.path}?{query}"


def _json(request: web.Request, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, headers=_id_headers(request))


def _id_headers(request: web.Request) -> dict[str, str]:
    rid = request_id(request)
    return {"request-id": rid, "client-request-id": request.headers.get("client-request-id", rid)}
