"""Graph's user delta query (/users/delta) for one directory: the "sync from now" link and the
rounds that follow a stored link, read as raw JSON like the listing (see graph.py).

Facts from Graph's docs (api-reference user-delta.md, concepts/delta-query-overview.md;
PLATFORM-NOTES "Microsoft Graph: delta"): only `$select` on the first request, the links carry
it; a round ends on the page with `@odata.deltaLink`; an expired or unknown token answers 410
Gone (or 400) `syncStateNotFound`; where delta is not offered (some national clouds) the request
fails with 400 or 501.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from sync_core.adapters.errors import GraphRequestError, classify_graph_error
from sync_core.adapters.graph_pages import (
    PageTrail,
    parse_delta_page,
    unexpected_next_link_failure,
)
from sync_core.core.ports import DeltaPage, DeltaStateLost, DeltaUnavailable

log = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[bytes | None]]
SYNC_STATE_NOT_FOUND = "syncStateNotFound"


def delta_url(api: str, select: Iterable[str], *, latest: bool) -> str:
    url = f"{api}/users/delta?$select={quote(','.join(sorted(select)), safe=',/$')}"
    return url + "&$deltatoken=latest" if latest else url


async def latest_delta_link(send: Send, api: str, select: Iterable[str]) -> str:
    """The link for "now" without reading users; if Graph refuses `latest`, the link at the
    end of an initial round (its users are not kept: the full listing reads them)."""
    selected = sorted(select)
    try:
        return await _round_end(send, delta_url(api, selected, latest=True))
    except GraphRequestError as error:
        if error.status == 501:
            raise DeltaUnavailable(error.message) from None
        if error.status != 400:
            raise classify_graph_error(error) from error
        log.warning("Graph refused $deltatoken=latest (%s); reading an initial round", error.code)
    try:
        return await _round_end(send, delta_url(api, selected, latest=False))
    except GraphRequestError as error:
        if error.status in (400, 501):
            raise DeltaUnavailable(error.message) from None
        raise classify_graph_error(error) from error


MAX_IDS = 50  # user-delta.md: `$filter=id eq '...'` joined by `or`, up to 50 ids
ROUNDS_IN_FLIGHT = 4


async def users_by_id(
    send: Send, api: str, ids: list[str], select: Iterable[str]
) -> list[dict[str, Any]]:
    """The users as they are now: an initial delta round filtered by id lists each with every
    selected property and, with `manager` selected, `manager@delta` (user-delta.md, examples
    with `$filter` and with `manager`); its delta link is not kept. The ones gone are left out.
    Rounds of 50 ids, a few at a time (the SDK's retry handler honours each 429)."""
    limit = asyncio.Semaphore(ROUNDS_IN_FLIGHT)

    async def one_round(chunk: list[str]) -> list[dict[str, Any]]:
        terms = " or ".join(f"id eq '{i}'" for i in chunk)
        url = delta_url(api, select, latest=False) + f"&$filter={quote(terms, safe='')}"
        found: list[dict[str, Any]] = []
        async with limit:
            try:
                async for page in _pages(send, url):
                    found += [item for item in page.items if "@removed" not in item]
            except GraphRequestError as error:
                raise classify_graph_error(error) from error
        return found

    chunks = [ids[i : i + MAX_IDS] for i in range(0, len(ids), MAX_IDS)]
    rounds = await asyncio.gather(*(one_round(chunk) for chunk in chunks))
    return [user for found in rounds for user in found]


async def _round_end(send: Send, first: str) -> str:
    link: str | None = None
    async for page in _pages(send, first):
        link = page.delta_link
    assert link is not None  # _pages ends only on a page with a delta link
    return link


async def delta_pages(send: Send, delta_link: str) -> AsyncIterator[DeltaPage]:
    """The round after `delta_link`; DeltaStateLost when Graph no longer knows it."""
    try:
        async for page in _pages(send, delta_link):
            yield page
    except GraphRequestError as error:
        # 410 is Graph's documented answer; expired directory tokens have also come back as 400,
        # and any 400 on a link Graph itself issued means the link is no longer good.
        if error.status == 410 or error.code == SYNC_STATE_NOT_FOUND or error.status == 400:
            raise DeltaStateLost(f"{error.status} {error.code}") from None
        if error.status == 501:
            raise DeltaUnavailable(error.message) from None
        raise classify_graph_error(error) from error


async def _pages(send: Send, first: str) -> AsyncIterator[DeltaPage]:
    """Raises GraphRequestError for Graph's refusals (the callers tell them apart), SyncError
    for pages that break the rules."""
    trail = PageTrail(first)
    origin = urlsplit(first)
    url: str | None = first
    while url is not None:
        page = parse_delta_page(await send(url), trail.page_number)
        trail.follow(page.next_link)
        if page.delta_link is not None:
            link = urlsplit(page.delta_link)
            if (link.scheme, link.netloc.lower(), link.path) != (
                origin.scheme,
                origin.netloc.lower(),
                origin.path,
            ):
                raise unexpected_next_link_failure(trail.page_number, "to another resource")
        yield DeltaPage(page.items, page.delta_link)
        url = page.next_link
