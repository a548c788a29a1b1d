"""Finding the one user `explain` is about: by object id, or by UPN or address.

Several matches are listed and none is chosen; none is an answer too (`user_not_found`).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sync_core.errors import ErrorCode, FatalError

if TYPE_CHECKING:  # msgraph loads only when a user is read (function_app's cold start)
    from sync_core.adapters.graph import GraphDirectory

# A UPN is at most 113 characters and an address fits in 254: one name, never text.
MAX_USER_KEY = 256
MAX_MATCHES = 10  # a UPN or address names one user; more than this is listed as "10 or more"
SHOWN = ("id", "userPrincipalName", "displayName", "mail", "userType", "accountEnabled")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def is_object_id(key: str) -> bool:
    return _GUID.match(key) is not None


class AmbiguousUser(FatalError):
    """A UPN or address that names several users: they are listed, none is chosen."""

    def __init__(self, key: str, matches: list[dict[str, Any]]):
        more = " or more" if len(matches) >= MAX_MATCHES else ""
        super().__init__(
            ErrorCode.USER_AMBIGUOUS,
            f"{len(matches)}{more} users match {key!r}: "
            + "; ".join(f"{m.get('userPrincipalName')} ({m['id']})" for m in matches),
            "Explain one of them by its object id.",
        )
        self.matches = [{name: m.get(name) for name in SHOWN} for m in matches]


async def find_user(directory: GraphDirectory, key: str, select: Iterable[str]) -> dict[str, Any]:
    """The one user `key` names: by id with GET /users/{id}, else by UPN or address with a
    $filter (learn.microsoft.com/graph/api/user-list, "Use $filter": userPrincipalName, mail,
    otherMails and proxyAddresses support `eq`, the collections with `any`)."""
    key = key.strip()
    if not key:
        raise FatalError(
            ErrorCode.INVALID_USER, "--user is empty.", "Give an object id, UPN or address."
        )
    if len(key) > MAX_USER_KEY or not key.isprintable():
        # As the HTTP route refuses it: no user has such a name, and a key of kilobytes would
        # reach Graph as a URL it refuses, reported as if the tenant's filter were wrong.
        raise FatalError(
            ErrorCode.INVALID_USER,
            f"--user must be an object id, UPN or email address (1-{MAX_USER_KEY} printable "
            f"characters); got {len(key)} characters"
            + ("" if key.isprintable() else " with control characters")
            + ".",
            "Give one user's object id, UPN or address.",
        )
    if _GUID.match(key):
        found = await directory.user(key, select)
        matches = [found] if found is not None else []
    else:
        literal = key.replace("'", "''")  # OData doubles a quote inside a string literal
        odata = (
            f"userPrincipalName eq '{literal}' or mail eq '{literal}' or "
            f"otherMails/any(a:a eq '{literal}') or proxyAddresses/any(p:p eq 'smtp:{literal}')"
        )
        matches = []
        pages = directory.users(select, odata, page_size=MAX_MATCHES)
        async with contextlib.aclosing(pages):  # type: ignore[type-var]
            async for page in pages:
                matches = page[:MAX_MATCHES]
                break
    if not matches:
        raise FatalError(
            ErrorCode.USER_NOT_FOUND,
            f"No user of this tenant has the object id, UPN or address {key!r}.",
            "Check the spelling (a guest's UPN has the #EXT# form); the user may also have "
            "been deleted.",
        )
    if len(matches) > 1:
        raise AmbiguousUser(key, matches)
    return matches[0]


async def listed_by_odata(
    directory: GraphDirectory, user_id: str, odata: str | None, select: Iterable[str]
) -> bool:
    """Whether a run's listing returns this user: filter.odata narrows what Graph returns
    (passes.full_pass sends it as the listing's $filter), so a user outside it is never read.
    Asked of Graph itself with the run's filter and `id eq` (user-list, "Use $filter")."""
    if odata is None:
        return True
    pages = directory.users(select, f"id eq '{user_id}' and ({odata})", page_size=1)
    async with contextlib.aclosing(pages):  # type: ignore[type-var]
        async for page in pages:
            return any(user.get("id") == user_id for user in page)
    return False
