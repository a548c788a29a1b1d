"""Graph's query options on ``/users``: ``$select``, ``$top``, ``$filter``, ``$count`` and the
``$skiptoken`` of next links, checked the way Graph checks them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from . import odata
from .schema import DEFAULT_SELECT, NOT_IN_COLLECTION, canonical_property

MAX_TOP = 999
DEFAULT_TOP = 100
# Options this simulator does not implement: answering 501 says "simulator gap", not "app bug".
_UNIMPLEMENTED = ("$orderby", "$search", "$format", "$apply", "$compute")


class GraphError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ):
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        super().__init__(f"{status} {code}: {message}")


@dataclass(frozen=True)
class UsersQuery:
    select: tuple[str, ...]
    selected: bool  # False: Graph's default property set
    top: int
    filter: odata.Node | None
    count: bool
    after: str | None  # the last user id of the previous page
    options: tuple[tuple[str, str], ...]  # every option but $skiptoken, for next links
    expand_manager: tuple[str, ...] | None = None  # $expand=manager: its $select (manager.py)


def parse_users_query(
    query: Mapping[str, str],
    consistency_level: str | None,
    page_key: bytes,
    tenant_id: str,
    collection: bool = True,
    page_token_max_age: float | None = None,
) -> UsersQuery:
    options = {key.lower(): value for key, value in query.items()}
    for name in _UNIMPLEMENTED:
        if name in options:
            raise GraphError(
                501,
                "NotImplemented",
                f"The simulator does not implement the query option '{name}'.",
            )
    if "$skip" in options:
        raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    select = _select(options.get("$select"), collection)
    top = _top(options.get("$top"))
    count = _flag(options.get("$count"))
    advanced = count and (consistency_level or "").strip().lower() == "eventual"
    if count and not advanced:
        raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
    node = None
    if "$filter" in options:
        try:
            node = odata.parse_filter(options["$filter"])
        except odata.FilterError as error:
            raise GraphError(400, "Request_BadRequest", str(error)) from None
        needs_advanced = odata.advanced_operators(node)
        if needs_advanced and not advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Operator '{needs_advanced[0]}' {odata.ADVANCED_QUERY_HINT}",
            )
        advanced_only = odata.advanced_properties(node)
        if advanced_only and not advanced:
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                f"Unsupported or invalid query filter clause specified for property "
                f"'{advanced_only[0].split('/')[0]}' of resource 'User'.",
            )
    kept = tuple((k, v) for k, v in query.items() if k.lower() != "$skiptoken")
    after = None
    if "$skiptoken" in options:
        after = read_skiptoken(options["$skiptoken"], page_key, tenant_id, kept, page_token_max_age)
    expand = None
    if "$expand" in options:
        from .manager import EXPANDED_PAGE_MAX, parse_expand

        expand = parse_expand(options["$expand"])
        top = min(top, EXPANDED_PAGE_MAX)  # the known-issues cap (manager.py), not a 400
        if advanced:
            # concepts/aad-advanced-queries.md: "$expand is not currently supported with
            # advanced queries" (the manager page's `$levels` example says otherwise, for one
            # user only; simulator/manager.py).
            raise GraphError(
                400,
                "Request_UnsupportedQuery",
                "$expand is not currently supported with advanced queries.",
            )
    return UsersQuery(select or DEFAULT_SELECT, bool(select), top, node, count, after, kept, expand)


def parse_select(value: str | None, collection: bool) -> tuple[str, ...]:
    return _select(value, collection)


def _select(value: str | None, collection: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    names: list[str] = []
    for raw in value.split(","):
        name = raw.strip()
        if not name:
            raise GraphError(400, "BadRequest", f"Syntax error: invalid $select value '{value}'.")
        canonical = canonical_property(name)
        if canonical is None:
            raise GraphError(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
        if collection and canonical in NOT_IN_COLLECTION:
            raise GraphError(
                501,
                "NotImplemented",
                f"This operation target is not yet supported. Selecting '{canonical}' is only "
                "supported for a single user, not for a collection.",
            )
        if canonical not in names:
            names.append(canonical)
    if "id" not in names:
        names.insert(0, "id")
    return tuple(names)


def _top(value: str | None) -> int:
    if value is None:
        return DEFAULT_TOP
    try:
        top = int(value)
    except ValueError:
        top = 0
    if not 1 <= top <= MAX_TOP:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{value}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return top


def _flag(value: str | None) -> bool:
    if value is None or value.lower() == "false":
        return False
    if value.lower() == "true":
        return True
    raise GraphError(400, "BadRequest", f"Invalid $count value '{value}': use true or false.")


# ------------------------------------------------------------------------------- skiptokens
# A skiptoken names the last id served, bound by an HMAC to the tenant and to the rest of the
# query: a tampered token, or one pasted onto a different query, is rejected rather than
# silently paging something else.


def make_skiptoken(
    last_id: str,
    key: bytes,
    tenant_id: str,
    options: tuple[tuple[str, str], ...],
    issued: float | None = None,
) -> str:
    stamp = time.time() if issued is None else issued
    payload = json.dumps({"t": tenant_id, "a": last_id, "i": stamp}, separators=(",", ":"))
    mac = _mac(key, payload.encode(), options)
    return base64.urlsafe_b64encode(mac + payload.encode()).rstrip(b"=").decode()


def expired_page_token() -> GraphError:
    """Graph's answer to a page token it no longer honours (field reports: msgraph-sdk-dotnet
    #2254); the client has to list again from the first page."""
    return GraphError(
        400,
        "Directory_ExpiredPageToken",
        "The specified page token value has expired or is invalid and can no longer be included "
        "in your request.",
    )


def read_skiptoken(
    token: str,
    key: bytes,
    tenant_id: str,
    options: tuple[tuple[str, str], ...],
    max_age: float | None = None,
) -> str:
    """The last id served before this token; a token older than ``max_age`` seconds has
    expired, as page tokens do on Graph."""
    invalid = expired_page_token()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:
        raise invalid from None
    mac, payload = raw[:16], raw[16:]
    if len(mac) < 16 or not hmac.compare_digest(mac, _mac(key, payload, options)):
        raise invalid
    data = json.loads(payload)
    if data.get("t") != tenant_id:
        raise invalid
    if max_age is not None and time.time() - float(data.get("i", 0)) > max_age:
        raise invalid
    return str(data["a"])


def _mac(key: bytes, payload: bytes, options: tuple[tuple[str, str], ...]) -> bytes:
    normalized = json.dumps(sorted((k.lower(), v) for k, v in options)).encode()
    return hmac.new(key, payload + b"\0" + normalized, hashlib.sha256).digest()[:16]
