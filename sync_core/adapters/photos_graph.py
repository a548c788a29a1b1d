"""Profile photos from Graph: metadata through JSON `$batch`, content one GET per changed photo.

`POST {graph}/v1.0/$batch` carries up to 20 requests; the batch answers 200 while each inner
response has its own status, headers and body, and a throttled inner request says so with its
own 429 and `Retry-After` (learn.microsoft.com/graph/json-batching; concepts/throttling.md).
Those are asked again, together, after the longest Retry-After, a bounded number of times; a
few batches are in flight at once.

This is the one POST the app sends to Graph; `is_read_only_batch` is what the transport checks
before letting it through (adapters/graph.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import httpx
from kiota_abstractions.method import Method
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation

from sync_core.adapters.errors import GraphRequestError, classify_graph_error
from sync_core.adapters.graph_send import send_raw
from sync_core.core.photos import (
    BATCH_SIZE,
    MAX_INNER_RETRIES,
    PHOTO_PERMISSION_FIX,
    Outcome,
    PhotoMeta,
    PhotoUnavailable,
    batch_body,
    batches,
    classify,
    retry_delay,
)
from sync_core.errors import ErrorCode, RetriableError

log = logging.getLogger(__name__)

BATCHES_IN_FLIGHT = 8  # 160 metadata reads in flight; each is another mailbox (bench/README.md)
Sleep = Callable[[float], Awaitable[None]]


def is_read_only_batch(method: str, url: httpx.URL, content: bytes, batch_url: str) -> bool:
    """A POST of exactly `{graph}/v1.0/$batch` whose inner requests are all GETs without a
    body: reads bundled into one round trip, so the app stays read-only toward Entra ID.
    Strict on purpose (only what batch_body builds passes): the method spelled exactly "GET",
    a path relative to the version (not "//host/..."), no keys but id, method, url and headers,
    no method-override header, and no duplicate JSON key (a parser that keeps the first of two
    "method"s would read a write where this one reads a GET)."""
    if method != "POST" or url.query or str(url.copy_with(query=None)) != batch_url:
        return False
    try:
        body = json.loads(content, object_pairs_hook=_unique_keys)
    except ValueError:
        return False
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not 0 < len(requests) <= BATCH_SIZE:
        return False
    return all(isinstance(r, dict) and _is_plain_get(r) for r in requests)


_INNER_KEYS = frozenset({"id", "method", "url", "headers"})


def _is_plain_get(inner: dict[str, object]) -> bool:
    target = inner.get("url")
    headers = inner.get("headers", {})
    return (
        inner.get("method") == "GET"
        and set(inner) <= _INNER_KEYS
        and isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not urlsplit(target).scheme
        and isinstance(headers, dict)
        and not any("method" in str(name).lower() for name in headers)
    )


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate key")
    return dict(pairs)


def _inner_body(body: object) -> object:
    """An inner response's body: JSON inline, or (json-batching "Response format") base64,
    which some workloads send for a JSON body too, by design; decoded when it is JSON."""
    if not isinstance(body, str):
        return body
    try:
        decoded = json.loads(base64.b64decode(body, validate=True))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return body
    return decoded if isinstance(decoded, dict) else body


class PhotoReader:
    """One tenant's photo reads over the directory's request adapter (its token and retries)."""

    def __init__(self, adapter: RequestAdapter, api: str, sleep: Sleep = asyncio.sleep):
        self._adapter = adapter
        self._api = api
        self._sleep = sleep

    async def photo_metadata(self, user_ids: Sequence[str], size: str) -> list[PhotoMeta]:
        gate = asyncio.Semaphore(BATCHES_IN_FLIGHT)

        async def one(chunk: list[str]) -> list[PhotoMeta]:
            async with gate:
                return await self._batch(chunk, size)

        reads = [asyncio.ensure_future(one(chunk)) for chunk in batches(user_ids)]
        try:
            results = await asyncio.gather(*reads)
        except BaseException:
            # A batch failed, or the run was cancelled from outside (the lease keeper's cancel,
            # app/exclusive.py): the batches still going are stopped, so no request of a
            # failed run goes out after it, and that failure or that cancel is what is raised.
            for read in reads:
                read.cancel()
            await asyncio.gather(*reads, return_exceptions=True)
            raise
        return [meta for chunk in results for meta in chunk]

    async def _batch(self, user_ids: list[str], size: str) -> list[PhotoMeta]:
        """One batch; the throttled requests asked again (only they), bounded."""
        done: dict[str, PhotoMeta] = {}
        pending = list(user_ids)
        for attempt in range(MAX_INNER_RETRIES + 1):
            answers = await self._post(pending, size)
            retry = [meta for meta in answers if meta.outcome is Outcome.RETRY]
            done.update((m.user_id, m) for m in answers if m.outcome is not Outcome.RETRY)
            if not retry:
                break
            pending = [meta.user_id for meta in retry]
            if attempt == MAX_INNER_RETRIES:
                for meta in retry:
                    done[meta.user_id] = PhotoMeta(
                        meta.user_id, Outcome.FAILED, reason=f"{meta.reason} after retries"
                    )
                break
            delay = retry_delay([m.retry_after for m in retry], attempt)
            log.info("%d photo request(s) of a batch throttled; again in %.1f s", len(retry), delay)
            await self._sleep(delay)
        return [done[user_id] for user_id in user_ids]

    async def _post(self, user_ids: list[str], size: str) -> list[PhotoMeta]:
        request = RequestInformation()
        request.http_method = Method.POST
        request.url = f"{self._api}/$batch"
        request.headers.try_add("Accept", "application/json")
        request.headers.try_add("Content-Type", "application/json")
        request.content = json.dumps(batch_body(user_ids, size)).encode()
        try:
            content = await send_raw(self._adapter, request)
        except GraphRequestError as error:
            if error.status not in (401, 403):
                # Not a refusal (a gateway's 502, Graph down after retries): no permission to
                # grant; the next run reads the photos again.
                raise classify_graph_error(error) from None
            raise RetriableError(
                ErrorCode.PHOTOS_UNREADABLE,
                f"Graph refused the batch of photo reads ({error.status} {error.code}).",
                PHOTO_PERMISSION_FIX,
            ) from None
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):  # mangled on the way: every request asked again
            responses = []
        by_id = {str(r.get("id")): r for r in responses if isinstance(r, dict) and "id" in r}
        metas = []
        for n, user_id in enumerate(user_ids):
            answer = by_id.get(str(n))
            if answer is None:  # a batch that lost a response: ask for that one again
                metas.append(PhotoMeta(user_id, Outcome.RETRY, reason="no answer in the batch"))
                continue
            status = answer.get("status")
            headers = answer.get("headers")
            metas.append(
                classify(
                    user_id,
                    status if isinstance(status, int) else 0,
                    headers if isinstance(headers, dict) else {},
                    _inner_body(answer.get("body")),
                )
            )
        return metas

    async def photo_content(self, user_id: str, size: str) -> bytes:
        request = RequestInformation()
        request.http_method = Method.GET
        request.url = f"{self._api}/users/{user_id}/photos/{size}/$value"
        request.headers.try_add("Accept", "image/*")
        try:
            content = await send_raw(self._adapter, request)
        except GraphRequestError as error:
            meta = classify(user_id, error.status, {}, {"error": {"code": error.code}})
            raise PhotoUnavailable(
                meta.reason or f"HTTP {error.status}", missing=meta.outcome is Outcome.MISSING
            ) from None
        if not content:
            raise PhotoUnavailable("Graph sent an empty photo")
        return content
