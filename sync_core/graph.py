"""Microsoft Graph reads through msgraph-sdk: the organisation and pages of users, as plain JSON.

The SDK provides authentication, the retry handler (429/503/504 honouring Retry-After) and error
mapping; list pages are read as raw JSON through its request adapter because typed `User` models
cost about 8 ms of CPU per user (PLATFORM-NOTES). This is the only module that imports msgraph.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError
from kiota_abstractions.api_client_builder import register_default_deserializer
from kiota_abstractions.api_error import APIError
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from .errors import GraphRequestError, classify_graph_error

log = logging.getLogger(__name__)

PAGE_SIZE = 999  # Graph's maximum for /users: fewest round trips and throttling units
# The SDK's retry handler: up to 6 retries, a 2 s base delay; Retry-After wins when Graph sends it.
RETRY = RetryHandlerOption(delay=2, max_retries=6)
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


@dataclass
class GraphStats:
    requests: int = 0
    throttled: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class Organization:
    id: str
    display_name: str | None
    default_domain: str | None


class _GuardedTransport(httpx.AsyncBaseTransport):
    """Innermost transport: sees every attempt, so it counts retries and throttling honestly."""

    def __init__(self, inner: httpx.AsyncBaseTransport, stats: GraphStats):
        self._inner = inner
        self._stats = stats

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "GET":
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


class GraphDirectory:
    """The user source of a sync run: one tenant's directory, read-only."""

    def __init__(
        self,
        credential: AsyncTokenCredential,
        graph_base_url: str,
        *,
        owns_credential: bool = False,
    ):
        self.stats = GraphStats()
        self._credential = credential
        self._owns_credential = owns_credential
        self._api = f"{graph_base_url}/v1.0"
        host = urlsplit(graph_base_url).hostname or ""
        # Tokens are attached only to allowed hosts; a sovereign cloud or the simulator is not in
        # the SDK's default list, and without this requests would leave with no token at all.
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[f"{graph_base_url}/.default"], allowed_hosts=[host]
        )
        # Kept to close it: the SDK wraps the client's transport in one that cannot close it.
        self._transport = _GuardedTransport(httpx.AsyncHTTPTransport(http2=True), self.stats)
        self._http = httpx.AsyncClient(
            transport=self._transport, timeout=httpx.Timeout(100.0, connect=30.0)
        )
        client = GraphClientFactory.create_with_default_middleware(
            client=self._http, options={RetryHandlerOption.get_key(): RETRY}
        )
        # Error bodies are parsed into ODataError by the JSON parse node, which GraphServiceClient
        # would register; the raw adapter needs it registered here.
        register_default_deserializer(JsonParseNodeFactory)
        self._adapter = GraphRequestAdapter(auth, client=client)
        self._adapter.base_url = self._api

    async def organization(self) -> Organization:
        body = await self._get(f"{self._api}/organization?$select=id,displayName,verifiedDomains")
        org = (body.get("value") or [{}])[0]
        domains = org.get("verifiedDomains") or []
        default = next((d.get("name") for d in domains if d.get("isDefault")), None)
        return Organization(org.get("id", ""), org.get("displayName"), default)

    async def users(
        self, select: Iterable[str], odata_filter: str | None = None, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of users with only the selected properties, following @odata.nextLink."""
        query = [("$select", ",".join(sorted(select))), ("$top", str(page_size))]
        advanced = odata_filter is not None and needs_advanced_query(odata_filter)
        if odata_filter is not None:
            query.append(("$filter", odata_filter))
        if advanced:
            query.append(("$count", "true"))
        url: str | None = f"{self._api}/users?" + "&".join(
            f"{name}={quote(value, safe=',/$')}" for name, value in query
        )
        seen_links: set[str] = set()
        while url is not None:
            body = await self._get(url, advanced_query=advanced)
            yield body.get("value") or []
            url = body.get("@odata.nextLink")
            if url is not None:
                # A link that repeats would loop forever and read the tenant again and again.
                if url in seen_links:
                    raise GraphRequestError(
                        500, "PagingLoop", "Graph returned the same nextLink twice"
                    )
                seen_links.add(url)

    async def count_probe(self) -> None:
        """One cheap listing request: proves the token and the User.Read.All permission."""
        await self._get(f"{self._api}/users?$select=id&$top=1")

    async def close(self) -> None:
        await self._http.aclose()
        await self._transport.aclose()
        if self._owns_credential:
            await self._credential.close()

    async def _get(self, url: str, *, advanced_query: bool = False) -> dict[str, Any]:
        request = RequestInformation()
        request.http_method = Method.GET
        request.url = url
        request.headers.try_add("Accept", "application/json")
        if advanced_query:
            request.headers.try_add("ConsistencyLevel", "eventual")
        try:
            content = await self._adapter.send_primitive_async(
                request, "bytes", {"XXX": ODataError}
            )
        except ODataError as error:
            main = error.error
            raise GraphRequestError(
                error.response_status_code or 0,
                (main.code if main else None) or "unknown",
                (main.message if main else None) or str(error),
            ) from None
        except APIError as error:
            # An error without Graph's JSON body: a gateway's HTML 502, an empty 503.
            status = error.response_status_code or 0
            raise GraphRequestError(status, f"HTTP{status}", "no Graph error body") from None
        except (httpx.HTTPError, AzureError) as error:
            raise classify_graph_error(error) from error
        return json.loads(content) if content else {}


def needs_advanced_query(odata_filter: str) -> bool:
    """Graph serves `ne`, `not`, `endsWith` and `$count` only as advanced queries, which need
    `ConsistencyLevel: eventual` and `$count=true`; without them the request fails with 400."""
    code = _without_string_literals(odata_filter).lower()
    words = set(code.replace("(", " ").replace(")", " ").split())
    return bool(words & {"ne", "not"}) or "endswith(" in code.replace(" ", "") or "$count" in code


def _without_string_literals(text: str) -> str:
    out: list[str] = []
    in_string = False
    for char in text:
        if char == "'":
            in_string = not in_string  # '' inside a literal toggles twice: still inside
            out.append(" ")
        elif not in_string:
            out.append(char)
    return "".join(out)
