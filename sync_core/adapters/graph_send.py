"""One request to Graph through the SDK's request adapter, its body read raw: the errors of
every kind (Graph's JSON error, a body-less gateway answer, a dropped connection) turned into
GraphRequestError or the app's classified errors once, here (adapters/errors.py)."""

from __future__ import annotations

import httpx
from azure.core.exceptions import AzureError
from kiota_abstractions.api_error import APIError
from kiota_abstractions.request_adapter import RequestAdapter
from kiota_abstractions.request_information import RequestInformation
from msgraph.generated.models.o_data_errors.o_data_error import ODataError

from sync_core.adapters.errors import GraphRequestError, classify_graph_error


async def send_raw(adapter: RequestAdapter, request: RequestInformation) -> bytes | None:
    try:
        content: bytes | None = await adapter.send_primitive_async(
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
    return content
