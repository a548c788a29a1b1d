"""Microsoft Graph v1.0 groups: ``/groups/{id}``, ``/groups/{id}/transitiveMembers`` (with an
OData cast to users or groups) and ``/groups/delta`` (membership changes), from Microsoft's pages:

- Permissions: application ``GroupMember.Read.All`` is the least privileged for all three
  (learn.microsoft.com/graph/api/group-get, group-list-transitivemembers, group-delta; also
  Group.Read.All, Directory.Read.All and the ReadWrite ones); else 403
  ``Authorization_RequestDenied``. A group with hidden membership lists its members only with
  ``Member.Read.Hidden`` (group-list-transitivemembers: "To list the members of a group with
  hidden membership, the Member.Read.Hidden permission is required"); here that is a 403.
- An unknown (or deleted) group: 404 ``Request_ResourceNotFound``.
- ``transitiveMembers`` is "a flat list of all nested members"; casting it to a type
  (``/microsoft.graph.user``) is an advanced query (concepts/aad-advanced-queries.md): it needs
  ``ConsistencyLevel: eventual`` and ``$count=true``, else 400 ``Request_UnsupportedQuery``; a
  cast to a type groups cannot hold is 400 ``Request_UnsupportedQuery`` too. ``$top`` 1..999
  (default 100), next links carry a ``$skiptoken``.
- ``/groups/delta`` (group-delta, concepts/delta-query-groups.md): ``$filter=id eq '..'`` joined
  by ``or`` and ``$select`` in the first request only; with ``members`` selected each group
  carries ``members@delta``: in the initial round its direct members, later only the members
  added or removed since (a removed one with ``"@removed": {"reason": "deleted"}``); a deleted
  group is ``{"id", "@removed": {"reason": "changed"}}``. A large group's members are split over
  several pages, the group repeated on each ("merge per group id"); here a page holds at most
  MEMBERS_PER_PAGE member entries (the real size is not documented).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from .context import context_of
from .delta import parse_id_filter
from .delta_plan import TOKEN_LIFETIME_SECONDS
from .graph_query import GraphError, make_skiptoken, read_skiptoken

READ_GROUP_MEMBERS = frozenset(
    {
        "GroupMember.Read.All",
        "GroupMember.ReadWrite.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
READ_HIDDEN = "Member.Read.Hidden"
MEMBERS_PER_PAGE = 200
_TYPES = {"user": "#microsoft.graph.user", "group": "#microsoft.graph.group"}
_GROUP_PROPERTIES = ("id", "displayName", "members", "description", "mail", "securityEnabled")
Authorize = Callable[[web.Request, frozenset[str]], Any]
Json = Callable[[web.Request, dict[str, Any]], web.Response]


def dispatch(
    request: web.Request, tail: list[str], authorize: Authorize, answer: Json
) -> web.Response:
    grant = authorize(request, READ_GROUP_MEMBERS)
    tenant = grant.tenant_id
    if tail in (["delta"], ["delta()"]):
        return answer(request, groups_delta(request, tenant))
    group = context_of(request).groups.group(tenant, tail[0])
    if group is None:
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{tail[0]}' does not exist or one of its queried reference-property "
            "objects are not present.",
        )
    if len(tail) == 1:
        return answer(request, {"id": group.id, "displayName": group.display_name})
    if tail[1] == "transitiveMembers" and len(tail) <= 3:
        if group.hidden_membership and READ_HIDDEN not in grant.roles:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        cast = tail[2] if len(tail) == 3 else None
        if cast == "microsoft.graph.group" and group.unified:
            # group-list-transitivemembers: a cast to an unsupported member type is 400
            # Request_UnsupportedQuery, "for example, /groups/{id}/transitiveMembers/
            # microsoft.graph.group ... when the group is a Microsoft 365 group".
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "The specified type cast 'microsoft.graph.group' is not supported for "
                "Microsoft 365 groups.",
            )
        return answer(request, transitive_members(request, tenant, group.id, cast))
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{tail[1]}'.")


def transitive_members(
    request: web.Request, tenant: str, group_id: str, cast: str | None
) -> dict[str, Any]:
    ctx = context_of(request)
    options = {k.lower(): v for k, v in request.query.items()}
    kind = None
    if cast is not None:
        kind = {"microsoft.graph.user": "user", "microsoft.graph.group": "group"}.get(cast)
        if kind is None:
            raise GraphError(400, "Request_UnsupportedQuery", f"Unsupported cast '{cast}'.")
        advanced = options.get("$count") == "true" and (
            request.headers.get("ConsistencyLevel", "").lower() == "eventual"
        )
        if not advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "The requested query requires ConsistencyLevel:eventual and $count=true "
                "(an OData cast on transitiveMembers is an advanced query).",
            )
    top = int(options.get("$top", "100")) if options.get("$top", "100").isdigit() else 0
    if not 1 <= top <= 999:
        raise GraphError(400, "Request_BadRequest", "Invalid page size specified.")
    kept = tuple((k, v) for k, v in request.query.items() if k.lower() != "$skiptoken")
    after = None
    if "$skiptoken" in options:
        after = read_skiptoken(options["$skiptoken"], ctx.page_key, tenant, kept)
    members = [m for m in ctx.groups.transitive(tenant, group_id) if kind in (None, m[1])]
    remaining = [m for m in members if after is None or m[0] > after]
    page = remaining[:top]
    body: dict[str, Any] = {"@odata.context": f"{_root(request)}/$metadata#directoryObjects"}
    if options.get("$count") == "true" and after is None:
        body["@odata.count"] = len(members)
    if len(remaining) > top:
        token = make_skiptoken(page[-1][0], ctx.page_key, tenant, kept)
        query = urlencode([*kept, ("$skiptoken", token)], quote_via=quote, safe="$,'()/:@")
        body["@odata.nextLink"] = f"{request.scheme}://{request.host}{request.path}?{query}"
    body["value"] = [{"@odata.type": _TYPES[k], "id": i} for i, k in page]
    return body


def groups_delta(request: web.Request, tenant: str) -> dict[str, Any]:
    ctx = context_of(request)
    options = {k.lower(): v for k, v in request.query.items()}
    token = options.get("$skiptoken") or options.get("$deltatoken")
    if token is not None:
        state = _decode(token, ctx.page_key)
        if (
            state is None
            or state["t"] != tenant
            or ctx.delta.now() - state["i"] > TOKEN_LIFETIME_SECONDS
        ):
            raise GraphError(410, "syncStateNotFound", "The sync state generation is not found.")
        if "$deltatoken" in options:  # a deltaLink starts a round: changes up to now
            state = {**state, "u": ctx.groups.position(tenant), "o": 0}
    else:
        for name in ("$top", "$orderby", "$expand", "$search", "$skip", "$count"):
            if name in options:
                raise GraphError(
                    400, "Request_UnsupportedQuery", f"'{name}' is not supported with group delta."
                )
        select = [s.strip() for s in options.get("$select", "id,displayName").split(",")]
        for name in select:
            if name not in _GROUP_PROPERTIES:
                raise GraphError(
                    400,
                    "Request_BadRequest",
                    f"Could not find a property named '{name}' on type 'microsoft.graph.group'.",
                )
        ids = parse_id_filter(options["$filter"]) if "$filter" in options else ()
        state = {
            "t": tenant,
            "ids": list(ids),
            "sel": select,
            "s": None,
            "u": ctx.groups.position(tenant),
            "o": 0,
            "i": ctx.delta.now(),
        }
    items = _round_items(ctx.groups, state)
    page, offset, used = [], state["o"], 0
    while offset < len(items) and used < MEMBERS_PER_PAGE:
        item = items[offset]
        page.append(item)
        used += max(1, len(item.get("members@delta", ())))
        offset += 1
    final = offset >= len(items)
    following = {**state, "o": offset}
    if final:
        following = {**state, "s": state["u"], "o": 0, "i": ctx.delta.now()}
    name = "$deltatoken" if final else "$skiptoken"
    link = f"{_root(request)}/groups/delta?{urlencode([(name, _encode(following, ctx.page_key))])}"
    return {
        "@odata.context": f"{_root(request)}/$metadata#groups",
        "@odata.deltaLink" if final else "@odata.nextLink": link,
        "value": page,
    }


def _round_items(store: Any, state: dict[str, Any]) -> list[dict[str, Any]]:
    """The round's items, each group's member entries cut in chunks of MEMBERS_PER_PAGE."""
    tenant, ids, select = state["t"], state["ids"], state["sel"]
    if state["s"] is None:
        touched: dict[str, dict[str, str] | None] = {i: None for i in ids} if ids else {}
    else:
        touched = {}
        for event in store.events(tenant, state["s"], state["u"]):
            if not ids or event.group_id in ids:
                touched.setdefault(event.group_id, {})
                if event.member_id:
                    touched[event.group_id][event.member_id] = event.member_kind
    items: list[dict[str, Any]] = []
    for group_id in sorted(touched):
        group = store.group(tenant, group_id)
        if group is None:
            if state["s"] is not None:
                items.append({"id": group_id, "@removed": {"reason": "changed"}})
            continue
        if touched[group_id] is None:  # initial round: every direct member
            entries = [
                {"@odata.type": _TYPES[k], "id": m} for m, k in sorted(group.members.items())
            ]
        else:
            entries = []
            for member, last_kind in sorted(touched[group_id].items()):
                kind = group.members.get(member)
                if kind is not None:
                    entries.append({"@odata.type": _TYPES[kind], "id": member})
                else:
                    entries.append(
                        {
                            "@odata.type": _TYPES[last_kind],
                            "id": member,
                            "@removed": {"reason": "deleted"},
                        }
                    )
        base: dict[str, Any] = {"id": group.id}
        if "displayName" in select:
            base["displayName"] = group.display_name
        if "members" not in select:
            items.append(base)
            continue
        chunks = [
            entries[i : i + MEMBERS_PER_PAGE] for i in range(0, len(entries), MEMBERS_PER_PAGE)
        ]
        items.extend({**base, "members@delta": chunk} for chunk in chunks or [[]])
    return items


def _encode(state: dict[str, Any], key: bytes) -> str:
    payload = json.dumps(state, separators=(",", ":")).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()


def _decode(token: str, key: bytes) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        return None
    mac, payload = raw[:16], raw[16:]
    if len(mac) < 16 or not hmac.compare_digest(
        mac, hmac.new(key, payload, hashlib.sha256).digest()[:16]
    ):
        return None
    state: dict[str, Any] = json.loads(payload)
    return state


def _root(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}/v1.0"
