"""The innermost transport under the Graph SDK: every attempt passes through it, so it is where
the app stays read-only toward Entra ID (only GETs leave, and JSON batches of GETs), where a
dropped connection is retried (the SDK's retry handler sees only HTTP answers), and where
requests, retries and throttling are counted honestly (GraphStats)."""

from __future__ import annotations

import asyncio
import logging

import httpx

from sync_core.adapters.photos_graph import is_read_only_batch
from sync_core.core.ports import GraphStats

# The Graph adapter's logger, as before this module was split from graph.py: the retry notice
# keeps the category that log queries and filters name.
log = logging.getLogger("sync_core.adapters.graph")

# Dropped connections are not HTTP answers, so the SDK's handler never sees them; GETs are safe
# to repeat, and these retries cover exactly that gap.
CONNECTION_RETRIES = 4
_CONNECTION_FAULTS = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.RemoteProtocolError,
    httpx.WriteError,
)


class ReadOnlyViolation(RuntimeError):
    """The app is read-only toward Entra ID; anything but GET is a bug, stopped before it leaves."""


class GuardedTransport(httpx.AsyncBaseTransport):
    """Innermost transport: sees every attempt, so it counts retries and throttling honestly."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, stats: GraphStats, batch_url: str | None = None
    ):
        self._inner = inner
        self._stats = stats
        self._batch_url = batch_url

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # The one exception to GET-only: JSON $batch is a POST by protocol, but a batch whose
        # inner requests are all GETs only reads (photo metadata, 20 reads per round trip).
        # Anything else that is not a GET (or a batch holding a write) never leaves.
        batch = self._batch_url is not None and is_read_only_batch(
            request.method, request.url, request.content, self._batch_url
        )
        if request.method != "GET" and not batch:
            raise ReadOnlyViolation(
                f"refusing to send {request.method} {request.url.path} to Graph"
            )
        for attempt in range(CONNECTION_RETRIES + 1):
            try:
                response = await self._inner.handle_async_request(request)
                # The body is read here, inside the retry: a page of 999 users is large, and a
                # connection dropped half-way through it is the likeliest drop of all.
                await response.aread()
            except _CONNECTION_FAULTS as error:
                self._stats.dropped += 1
                if attempt == CONNECTION_RETRIES:
                    raise
                delay = min(0.5 * 2.0**attempt, 30.0)
                # A name that does not resolve or a refused connection never reached Graph:
                # "unreachable", not a connection that dropped half-way.
                connected = not isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)
                what = "connection dropped" if connected else "could not be reached"
                log.warning("Graph %s; retrying in %.1f s", what, delay)
                await asyncio.sleep(delay)
                continue
            self._stats.requests += 1
            if response.status_code == 429:
                self._stats.throttled += 1
            return response
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        await self._inner.aclose()
