"""Microsoft Graph v1.0 ``GET /users/delta``: change tracking of a tenant's users.

Modelled on Graph's docs (api-reference/v1.0/api/user-delta.md, concepts/delta-query-overview.md,
concepts/delta-query-users.md) and PLATFORM-NOTES "Microsoft Graph: delta":

- A *round* is the first request (or a deltaLink) followed by its nextLinks, until a page carries
  ``@odata.deltaLink``; a page never carries both, and can be empty with a nextLink.
- The initial round lists every user; ``$deltatoken=latest`` lists none and answers a deltaLink
  for the current state ("sync from now", supported for directory resources).
- A later round lists the users changed since its token: an updated user carries every selected
  property (changes to properties outside ``$select`` are not reported), a deleted user is
  ``{"id", "@removed": {"reason": "changed"}}`` (soft delete, restorable) or ``"deleted"``
  (hard delete), a restored user comes back without annotation.
- Only ``$select`` and ``$filter=id eq '...'`` (up to 50, joined by ``or``) are accepted, in the
  first request; the links carry them. ``$top``, ``$orderby``, ``$expand`` and other filters are
  refused with 400. (Graph has been seen to ignore ``$top`` on users delta silently, docs issues
  microsoft-graph-docs #7160 and #17516; refusing it keeps the app from relying on it.)
- A token Graph holds no state for (older than 7 days, unknown, or from another tenant) fails
  with ``syncStateNotFound``: 410 Gone with a ``Location`` that starts a fresh round (the
  overview's "synchronization reset"), or 400 as reported for expired directory tokens.

A token is opaque to the client: base64url of an HMAC and a JSON payload naming the tenant, the
change-log position, the ``$select`` set, the id filter and when it was issued.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web

from .context import context_of
from .delta_plan import TOKEN_LIFETIME_SECONDS
from .directory import Change, Directory
from .graph_query import GraphError, parse_select
from .manager import DELTA as MANAGER_DELTA
from .manager import delta_entry, split_select
from .schema import DEFAULT_SELECT

MAX_IDS = 50
_REFUSED = ("$top", "$orderby", "$expand", "$search", "$skip", "$count")
_ID_TERM = re.compile(r"\s*id\s+eq\s+'([^']*)'\s*", re.IGNORECASE)


@dataclass(frozen=True)
class DeltaState:
    """What a delta token encodes. ``since``: the change-log position the round reports changes
    after (None: an initial round, listing every user); ``upto``: the position the round ends
    at (its deltaLink will carry it); ``after``: the last user id a page of the round served."""

    tenant: str
    select: tuple[str, ...]
    ids: tuple[str, ...]
    since: int | None
    upto: int
    after: str | None
    issued: float
    page: int = 0  # counts pages, so an empty page's nextLink differs from the link just used

    def to_json(self) -> dict[str, Any]:
        return {
            "t": self.tenant,
            "sel": list(self.select),
            "ids": list(self.ids),
            "s": self.since,
            "u": self.upto,
            "a": self.after,
            "i": self.issued,
            "p": self.page,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeltaState:
        return cls(
            str(data["t"]),
            tuple(data["sel"]),
            tuple(data["ids"]),
            None if data["s"] is None else int(data["s"]),
            int(data["u"]),
            None if data["a"] is None else str(data["a"]),
            float(data["i"]),
            int(data.get("p", 0)),
        )


def encode_token(state: DeltaState, key: bytes) -> str:
    payload = json.dumps(state.to_json(), separators=(",", ":")).encode()
    mac = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(mac + payload).rstrip(b"=").decode()


def decode_token(token: str, key: bytes) -> DeltaState | None:
    """The state a token encodes; None for anything this simulator did not issue."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, payload = raw[:16], raw[16:]
        if len(mac) < 16 or not hmac.compare_digest(
            mac, hmac.new(key, payload, hashlib.sha256).digest()[:16]
        ):
            return None
        return DeltaState.from_json(json.loads(payload))
    except (ValueError, KeyError, TypeError):
        return None


def parse_id_filter(value: str) -> tuple[str, ...]:
    """``id eq 'a' or id eq 'b'`` (up to 50 ids): the only ``$filter`` delta accepts on users."""
    terms = re.split(r"\s+or\s+", value.strip(), flags=re.IGNORECASE)
    ids: list[str] = []
    for term in terms:
        match = _ID_TERM.fullmatch(term)
        if match is None:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "Unsupported query filter for delta: only \"id eq '<id>'\" terms joined by "
                f"'or' are supported, found '{term.strip()}'.",
            )
        ids.append(match.group(1).lower())
    if len(ids) > MAX_IDS:
        raise GraphError(
            400,
            "Request_UnsupportedQuery",
            f"Too many ids in the delta filter: {len(ids)}, at most {MAX_IDS} are supported.",
        )
    return tuple(dict.fromkeys(ids))


Projector = Callable[[Mapping[str, Any], tuple[str, ...], tuple[str, ...]], dict[str, Any]]


def users_delta(
    request: web.Request, tenant_id: str, roles: tuple[str, ...], project: Projector
) -> dict[str, Any]:
    """The body of one delta page; ``project`` shapes a user to a ``$select`` as ``/users``
    does (gated properties included)."""
    ctx = context_of(request)
    plan = ctx.delta
    options = {key.lower(): value for key, value in request.query.items()}
    token = options.get("$skiptoken") or options.get("$deltatoken")
    if token is not None and token.lower() != "latest":
        state = _state_from_token(request, token, tenant_id)
        if "$deltatoken" in options:  # a deltaLink starts a round: the changes up to now
            upto = ctx.directory.change_position(tenant_id)
            state = replace(state, upto=upto, after=None, page=0)
    else:
        state = _first_request(options, tenant_id, ctx.directory, plan.now())
        if token is not None:  # $deltatoken=latest: no users, the link for the current state
            latest = DeltaState(
                tenant_id, state.select, state.ids, state.upto, state.upto, None, plan.now()
            )
            return _body(request, latest, [], ctx.page_key, final=True)
    if plan.take_empty_page():
        following = replace(state, page=state.page + 1)
        return _body(request, following, [], ctx.page_key, final=False)
    candidates = _candidates(ctx.directory, state)
    size = plan.page_size()
    page_ids = candidates[:size]
    final = len(candidates) <= size
    items = [_item(ctx.directory, state, user_id, roles, project) for user_id in page_ids]
    if final:
        items += [
            _item(ctx.directory, state, user_id, roles, project) for user_id in plan.take_repeats()
        ]
        following = DeltaState(
            tenant_id, state.select, state.ids, state.upto, state.upto, None, plan.now()
        )
    else:
        following = replace(state, after=page_ids[-1], page=state.page + 1)
    return _body(request, following, [i for i in items if i], ctx.page_key, final)


def _first_request(
    options: Mapping[str, str], tenant_id: str, directory: Directory, now: float
) -> DeltaState:
    for name in _REFUSED:
        if name in options:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"The query option '{name}' is not supported with delta queries on users.",
            )
    # `manager` is a relationship, selectable on delta only (simulator/manager.py).
    listed, with_manager = split_select(
        tuple(s.strip() for s in options["$select"].split(",")) if "$select" in options else ()
    )
    select = parse_select(",".join(listed), collection=True) if listed else DEFAULT_SELECT
    select = (*select, "manager") if with_manager else select
    ids = parse_id_filter(options["$filter"]) if "$filter" in options else ()
    return DeltaState(tenant_id, select, ids, None, directory.change_position(tenant_id), None, now)


def _state_from_token(request: web.Request, token: str, tenant_id: str) -> DeltaState:
    ctx = context_of(request)
    status = ctx.delta.take_expiry()
    state = decode_token(token, ctx.page_key)
    if status is None and (
        state is None
        or state.tenant != tenant_id
        or ctx.delta.now() - state.issued > TOKEN_LIFETIME_SECONDS
    ):
        status = 410
    if status is None and state is not None:
        return state
    restart = _restart_link(request, state if state and state.tenant == tenant_id else None)
    headers = {"Location": restart} if status == 410 else {}
    raise GraphError(
        status or 410,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be "
        "synchronized again.",
        headers,
    )


def _candidates(directory: Directory, state: DeltaState) -> list[str]:
    """The user ids this round reports after ``state.after``, in id order."""
    if state.since is None:
        ids = directory.active_ids(state.tenant)
    else:
        selected = {name.lower() for name in state.select}
        changes = directory.changes(state.tenant, state.since, state.upto)
        ids = sorted({c.user_id for c in changes if _reported(c, selected)})
    if state.ids:
        wanted = set(state.ids)
        ids = [i for i in ids if i in wanted]
    return [i for i in ids if state.after is None or i > state.after]


def _reported(change: Change, selected: set[str]) -> bool:
    # With $select, only changes to selected properties produce an item (delta-query-users.md).
    return change.kind != "updated" or bool(change.properties & selected)


def _item(
    directory: Directory,
    state: DeltaState,
    user_id: str,
    roles: tuple[str, ...],
    project: Projector,
) -> dict[str, Any] | None:
    found = directory.user_state(state.tenant, user_id)
    if found.user is None:
        if state.since is None:
            return None  # an initial round lists existing users only
        return {"id": found.user_id or user_id, "@removed": {"reason": "deleted"}}
    if found.deleted:
        if state.since is None:
            return None
        return {"id": found.user["id"], "@removed": {"reason": "changed"}}
    plain, with_manager = split_select(state.select)
    item = project(found.user, plain, roles)
    if with_manager and (state.since is None or _manager_changed(directory, state, user_id)):
        entry = delta_entry(directory, state.tenant, found.user)
        if entry or state.since is not None:
            item[MANAGER_DELTA] = entry
    if state.since is None:
        return item
    # In a later round an updated user carries every selected property it has; one never set is
    # omitted (delta-query-users.md; PLATFORM-NOTES), so absent must read as null.
    present = {name.lower() for name in found.user} | {MANAGER_DELTA}
    return {k: v for k, v in item.items() if k == "id" or k.lower() in present}


def _manager_changed(directory: Directory, state: DeltaState, user_id: str) -> bool:
    """Whether a later round's item carries `manager@delta`: its manager changed, or the user is
    new to the client (created, or restored after its removal was listed), and "newly created
    instances ... are represented ... using their standard representation", relationships
    included as `propertyName@delta` annotations (delta-query-overview.md, "Resource
    representation in the delta query response")."""
    changes = directory.changes(state.tenant, state.since or 0, state.upto)
    return any(
        c.user_id == user_id.lower()
        and ("manager" in c.properties or c.kind in ("created", "restored"))
        for c in changes
    )


def _body(
    request: web.Request,
    state: DeltaState,
    items: list[dict[str, Any]],
    key: bytes,
    final: bool,
) -> dict[str, Any]:
    root = f"{request.scheme}://{request.host}/v1.0"
    body: dict[str, Any] = {"@odata.context": f"{root}/$metadata#users({','.join(state.select)})"}
    name = "$deltatoken" if final else "$skiptoken"
    link = f"{root}/users/delta?{_query([(name, encode_token(state, key))])}"
    body["@odata.deltaLink" if final else "@odata.nextLink"] = link
    body["value"] = items
    return body


def _restart_link(request: web.Request, state: DeltaState | None) -> str:
    options: list[tuple[str, str]] = []
    if state is not None:
        options.append(("$select", ",".join(state.select)))
        if state.ids:
            options.append(("$filter", " or ".join(f"id eq '{i}'" for i in state.ids)))
    query = _query(options)
    return f"{request.scheme}://{request.host}/v1.0/users/delta" + (f"?{query}" if query else "")


def _query(options: list[tuple[str, str]]) -> str:
    return urlencode(options, quote_via=quote, safe="$,'()/:@")
