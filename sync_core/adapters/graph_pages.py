"""The rules a page of Graph's user listing must keep before the app believes it: a `value` list
of objects with ids, a next link on the same listing that moves forward. A page that breaks one
is never taken as the end of the directory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from sync_core.adapters.errors import GraphRequestError
from sync_core.errors import ErrorCode, FatalError, RetriableError, SyncError

# Why a listing is refused: a page that does not prove where the directory ends must never be
# taken as its end (an empty 200 read as "no more users" would delete every employee).
_INCOMPLETE = "The listing cannot be proven complete, so the run stopped and deleted nothing."


def malformed_page_failure(page_number: int, problem: str) -> SyncError:
    return RetriableError(
        ErrorCode.GRAPH_MALFORMED_PAGE,
        f"Microsoft Graph's answer to page {page_number} of the user listing is not a users "
        f"collection: {problem}. {_INCOMPLETE}",
        "Usually transient: the next run reads again. If it repeats, check what sits between "
        "the app and Graph (a proxy, a TLS-inspecting firewall, a gateway rewriting answers) "
        "and the Microsoft 365 service health.",
    )


def unexpected_next_link_failure(page_number: int, problem: str) -> SyncError:
    return FatalError(
        ErrorCode.GRAPH_UNEXPECTED_NEXT_LINK,
        f"Page {page_number} of the user listing links its next page {problem}; the app only "
        f"follows links back to the listing it asked Graph for. {_INCOMPLETE}",
        "Check GRAPH_BASE_URL and any proxy that rewrites Graph's answers; next links must "
        "stay on the same scheme, host and path as the listing.",
    )


def pagination_loop_failure(page_number: int) -> SyncError:
    return RetriableError(
        ErrorCode.GRAPH_PAGINATION_LOOP,
        f"Page {page_number} of the user listing links back to a page already read (the same "
        f"next link or the same page token): following it would loop forever. {_INCOMPLETE}",
        "Usually transient: the next run reads again. If it repeats, check for a proxy or "
        "cache that replays Graph's answers, and report it to Microsoft support.",
    )


def page_token_expired_failure(restarts: int) -> SyncError:
    return RetriableError(
        ErrorCode.GRAPH_PAGE_TOKEN_EXPIRED,
        f"Microsoft Graph's page token expired again after the listing restarted {restarts} "
        f"time(s) from the first page. {_INCOMPLETE}",
        "Usually transient on large tenants: the next run reads again. If it repeats, run the "
        "sync when the directory is quieter, or narrow filter.odata so the listing is shorter.",
    )


EXPIRED_PAGE_TOKEN = "Directory_ExpiredPageToken"
UNSUPPORTED_QUERY = "Request_UnsupportedQuery"
# A listing restarts at most this often after its page token expired; then the run fails.
MAX_LISTING_RESTARTS = 2


@dataclass(frozen=True)
class UsersPage:
    users: list[dict[str, Any]]
    next_link: str | None


def parse_users_page(content: bytes | None, page_number: int) -> UsersPage:
    """A listing page, proven well-formed: a JSON object whose `value` is a list of objects each
    with a non-empty string `id`. Anything else (no body, a 204, HTML from a proxy, a body
    without `value`) raises: it is not the end of the directory, whatever its status was."""
    if not content:
        raise malformed_page_failure(page_number, "the answer has no body (HTTP 204 or empty)")
    try:
        body = json.loads(content)
    except ValueError:
        raise malformed_page_failure(page_number, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise malformed_page_failure(page_number, "the body is not a JSON object")
    if "value" not in body:
        raise malformed_page_failure(page_number, "the body has no 'value'")
    users = body["value"]
    if not isinstance(users, list):
        raise malformed_page_failure(page_number, "'value' is not a list")
    for position, user in enumerate(users, start=1):
        if not isinstance(user, dict):
            raise malformed_page_failure(page_number, f"item {position} is not an object")
        user_id = user.get("id")
        if not isinstance(user_id, str) or not user_id.strip():
            raise malformed_page_failure(page_number, f"item {position} has no 'id'")
    next_link = body.get("@odata.nextLink")
    if next_link is not None and not isinstance(next_link, str):
        raise unexpected_next_link_failure(page_number, "with a value that is not a URL")
    return UsersPage(users, next_link)


class PageTrail:
    """The links one listing has followed: each next link must lead back to the listing asked
    for (same scheme, host and path) and to a page token not seen before, or it would read
    another resource or loop forever."""

    def __init__(self, first_url: str):
        parts = urlsplit(first_url)
        self._origin = (parts.scheme, parts.netloc.lower(), parts.path)
        self._links = {first_url}
        self._tokens: set[str | None] = {_page_token(first_url)}
        self.page_number = 1

    def follow(self, next_link: str | None) -> None:
        if next_link is None:
            return
        parts = urlsplit(next_link)
        if (parts.scheme, parts.netloc.lower(), parts.path) != self._origin:
            where = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else next_link
            raise unexpected_next_link_failure(self.page_number, f"to {where[:200]}")
        token = _page_token(next_link)
        if next_link in self._links or token in self._tokens:
            raise pagination_loop_failure(self.page_number)
        self._links.add(next_link)
        self._tokens.add(token)
        self.page_number += 1


def _page_token(url: str) -> str | None:
    for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if name.lower() == "$skiptoken":
            return value
    return None


def is_expired_page_token(error: GraphRequestError) -> bool:
    return error.status == 400 and error.code == EXPIRED_PAGE_TOKEN


def refuses_advanced_query(error: GraphRequestError) -> bool:
    """Azure AD B2C has no advanced queries and answers 400 Request_BadRequest to `$count` and
    `ConsistencyLevel: eventual` ("This request is not supported by the service", "$count is
    not currently supported": microsoft-graph-docs issues #9856, #10493). Filter errors Graph
    raises in any tenant come back the same way without the parameters, so retrying without
    them costs one request and hides nothing."""
    return error.status == 400 and error.code == "Request_BadRequest"


@dataclass(frozen=True)
class DeltaRoundPage:
    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


def parse_delta_page(content: bytes | None, page_number: int) -> DeltaRoundPage:
    """A page of a delta round: the same rules as a listing page (removed users carry an id
    too), and exactly one of nextLink and deltaLink (Graph's delta-query overview): a page
    with neither does not end the round, and one with both is not Graph's."""
    page = parse_users_page(content, page_number)
    body = json.loads(content or b"{}")
    delta_link = body.get("@odata.deltaLink")
    if delta_link is not None and not isinstance(delta_link, str):
        raise unexpected_next_link_failure(page_number, "with a delta link that is not a URL")
    if (page.next_link is None) == (delta_link is None):
        which = "both a nextLink and a deltaLink" if delta_link else "neither link"
        raise malformed_page_failure(page_number, f"the delta page has {which}")
    return DeltaRoundPage(page.users, page.next_link, delta_link)
