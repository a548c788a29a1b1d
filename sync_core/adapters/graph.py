"""Microsoft Graph reads through msgraph-sdk: the organisation and pages of users, as plain JSON.

The SDK provides authentication, the retry handler (429/503/504 honouring Retry-After) and error
mapping; list pages are read as raw JSON through its request adapter because typed `User` models
cost about 8 ms of CPU per user (PLATFORM-NOTES). Under the SDK, the transport keeps the app
read-only and retries dropped connections (graph_transport.py). This is the only module that
builds the msgraph client.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from azure.core.credentials_async import AsyncTokenCredential
from kiota_abstractions.api_client_builder import register_default_deserializer
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.middleware.options import RetryHandlerOption
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph_core import GraphClientFactory

from sync_core.adapters.errors import (
    GraphRequestError,
    classify_graph_error,
    filter_needs_advanced_query_failure,
)
from sync_core.adapters.graph_delta import delta_pages, latest_delta_link, users_by_id
from sync_core.adapters.graph_groups import GraphGroups
from sync_core.adapters.graph_manager import EXPANDED_PAGE_SIZE, expand_manager
from sync_core.adapters.graph_pages import (
    MAX_LISTING_RESTARTS,
    UNSUPPORTED_QUERY,
    PageTrail,
    is_expired_page_token,
    page_token_expired_failure,
    parse_users_page,
    refuses_advanced_query,
)
from sync_core.adapters.graph_send import send_raw
from sync_core.adapters.graph_transport import GuardedTransport
from sync_core.adapters.photos_graph import PhotoReader
from sync_core.core.limits import clean_text
from sync_core.core.photos import PhotoMeta
from sync_core.core.ports import DeltaPage, GraphStats, Organization

log = logging.getLogger(__name__)

PAGE_SIZE = 999  # Graph's maximum for /users: fewest round trips and throttling units
# With manager fields 100 (EXPANDED_PAGE_SIZE): Graph's docs disagree on `$expand` (known issues
# and advanced queries against the manager page); the finding is in graph_manager.py.
# The SDK's retry handler: up to 6 retries, a 2 s base delay; Retry-After wins when Graph sends it.
RETRY = RetryHandlerOption(delay=2, max_retries=6)


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
        self._transport = GuardedTransport(
            httpx.AsyncHTTPTransport(http2=True), self.stats, batch_url=f"{self._api}/$batch"
        )
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

    async def organization(self) -> Organization | None:
        """The tenant's name and default domain; None when Graph refuses (403: reading
        /organization may need Organization.Read.All, which the sync does not)."""
        url = f"{self._api}/organization?$select=id,displayName,verifiedDomains"
        try:
            body = await self._get(url)
        except GraphRequestError as error:
            if error.status == 403:
                return None
            raise classify_graph_error(error) from error
        # Only the tenant's name and domain come from here, for display: an odd answer leaves
        # them unknown instead of failing the run.
        value = body.get("value")
        org = value[0] if isinstance(value, list) and value and isinstance(value[0], dict) else {}
        domains = org.get("verifiedDomains")
        default = next(
            (
                d.get("name")
                for d in (domains if isinstance(domains, list) else [])
                if isinstance(d, dict) and d.get("isDefault")
            ),
            None,
        )
        name = org.get("displayName")
        # Cleaned as user values are (lone surrogates, NUL): the name is shown in every run
        # report, and one tenant's bad name must not break GET /api/runs or the CLI.
        return Organization(
            str(org.get("id", "")),
            clean_text(name) if isinstance(name, str) else None,
            clean_text(default) if isinstance(default, str) else None,
        )

    async def users(
        self,
        select: Iterable[str],
        odata_filter: str | None = None,
        page_size: int = PAGE_SIZE,
        expand: str | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Pages of users with only the selected properties, following @odata.nextLink.

        The listing ends only on a well-formed page without a nextLink: any other answer raises,
        so the caller never mistakes a broken page for the end of the directory."""
        query = [("$select", ",".join(sorted(select))), ("$top", str(page_size))]
        if expand is not None:
            query.append(("$expand", expand))
        if odata_filter is not None:
            query.append(("$filter", odata_filter))
        # Every $filter goes as an advanced query: many ordinary-looking filters need it (the
        # per-property table of Graph's concepts/aad-advanced-queries.md), and default filters
        # work with it too. Only a tenant that refuses advanced queries (Azure AD B2C) reads
        # without them, after Graph said so on the first page.
        advanced = odata_filter is not None
        first = self._users_url(query, advanced)
        url: str | None = first
        listing = PageTrail(first)
        restarts = 0
        fell_back = False  # the advanced parameters were refused: reading without them
        while url is not None:
            try:
                content = await self._send(url, advanced_query=advanced)
            except GraphRequestError as error:
                if url != first and is_expired_page_token(error):
                    restarts += 1
                    if restarts > MAX_LISTING_RESTARTS:
                        raise page_token_expired_failure(restarts - 1) from None
                    # Graph's page tokens expire on large tenants and slow readers; the
                    # listing starts again and the caller counts each user once.
                    self.stats.listing_restarts += 1
                    log.warning("Graph's page token expired; listing users from the start again")
                    url = first
                    listing = PageTrail(first)
                    continue
                if url == first and advanced and refuses_advanced_query(error):
                    advanced, fell_back = False, True
                    log.warning("Graph refused an advanced query; reading without it (B2C?)")
                    url = first = self._users_url(query, advanced=False)
                    listing = PageTrail(first)
                    continue
                if fell_back and error.code == UNSUPPORTED_QUERY:
                    raise filter_needs_advanced_query_failure(error) from None
                raise classify_graph_error(error) from error
            # Said only once the plain query worked: a filter refused both ways (a typo) is
            # reported as Graph's refusal, not as a tenant without advanced queries.
            self.stats.advanced_query_refused = fell_back
            page = parse_users_page(content, listing.page_number)
            listing.follow(page.next_link)
            yield page.users
            url = page.next_link

    async def user(self, user_id: str, select: Iterable[str]) -> dict[str, Any] | None:
        """One user by object id, `GET /users/{id}` (learn.microsoft.com/graph/api/user-get);
        None when Graph answers 404 (no such user). `explain` reads one user this way."""
        fields = quote(",".join(sorted(select)), safe=",")
        url = f"{self._api}/users/{quote(user_id, safe='')}?$select={fields}"
        try:
            body = await self._get(url)
        except GraphRequestError as error:
            if error.status == 404:
                return None
            raise classify_graph_error(error) from error
        return body if isinstance(body.get("id"), str) else None

    async def latest_delta_link(self, select: Iterable[str]) -> str:
        return await latest_delta_link(self._send, self._api, select)

    def delta_pages(self, delta_link: str) -> AsyncIterator[DeltaPage]:
        return delta_pages(self._send, delta_link)

    @property
    def groups(self) -> GraphGroups:
        """Scope groups: transitive members, group delta, users by id (graph_groups.py)."""
        return GraphGroups(self._send, self._api)

    def users_with_manager(
        self, select: Iterable[str], manager_select: Iterable[str], odata_filter: str | None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The listing with each user's manager (core/manager_pass.py; graph_manager.py)."""
        return self.users(select, odata_filter, EXPANDED_PAGE_SIZE, expand_manager(manager_select))

    async def users_by_id(self, ids: list[str], select: Iterable[str]) -> list[dict[str, Any]]:
        return await users_by_id(self._send, self._api, ids, select)

    async def photo_metadata(self, user_ids: Sequence[str], size: str) -> list[PhotoMeta]:
        return await PhotoReader(self._adapter, self._api).photo_metadata(user_ids, size)

    async def photo_content(self, user_id: str, size: str) -> bytes:
        return await PhotoReader(self._adapter, self._api).photo_content(user_id, size)

    def _users_url(self, query: list[tuple[str, str]], advanced: bool) -> str:
        options = [*query, ("$count", "true")] if advanced else query
        return f"{self._api}/users?" + "&".join(
            f"{name}={quote(value, safe=',/$')}" for name, value in options
        )

    async def count_probe(self) -> None:
        """One cheap listing request: proves the token and the User.Read.All permission."""
        try:
            await self._get(f"{self._api}/users?$select=id&$top=1")
        except GraphRequestError as error:
            raise classify_graph_error(error) from error

    async def close(self) -> None:
        await self._http.aclose()
        await self._transport.aclose()
        if self._owns_credential:
            await self._credential.close()

    async def _get(self, url: str) -> dict[str, Any]:
        content = await self._send(url)
        try:
            body = json.loads(content) if content else {}
        except ValueError:
            body = {}
        return body if isinstance(body, dict) else {}

    async def _send(self, url: str, *, advanced_query: bool = False) -> bytes | None:
        """The raw body of a GET; None when Graph (or something in between) sent none."""
        request = RequestInformation()
        request.http_method = Method.GET
        request.url = url
        request.headers.try_add("Accept", "application/json")
        if advanced_query:
            request.headers.try_add("ConsistencyLevel", "eventual")
        return await send_raw(self._adapter, request)
