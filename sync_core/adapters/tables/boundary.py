"""Where the app meets the Table service: opening the account's tables, creating them once, and
the one point where the SDK's errors become the app's (storage_boundary)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ResourceExistsError
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.errors import classify_storage_error
from sync_core.adapters.storage_names import TABLE_NAMES

_Class = TypeVar("_Class", bound=type)
# What Table Storage's SDK raises (azure-core wraps aiohttp's errors); OSError for a socket
# that fails before azure-core sees it.
_STORAGE_ERRORS = (AzureError, OSError)


def storage_boundary(cls: _Class) -> _Class:
    """The Table adapters' one translation point: every public coroutine (and async generator)
    of `cls` raises the app's SyncError in place of the SDK's errors, `from` the original. What
    a method handles itself (a 404 that means "none", a 412 that means "someone else won")
    never reaches here."""
    for name, member in list(vars(cls).items()):
        if name.startswith("_"):
            continue
        if inspect.isasyncgenfunction(member):
            setattr(cls, name, _translated_generator(member))
        elif inspect.iscoroutinefunction(member):
            setattr(cls, name, _translated(member))
    return cls


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except _STORAGE_ERRORS as error:
            raise classify_storage_error(error) from error

    return translated


def _translated_generator(method: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def translated(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        try:
            async for item in method(*args, **kwargs):
                yield item
        except _STORAGE_ERRORS as error:
            raise classify_storage_error(error) from error

    return translated


def open_tables(
    connection_string: str | None,
    endpoint: str | None,
    credential: AsyncTokenCredential | None,
    request_hook: Callable[[Any], None] | None = None,
) -> TableServiceClient:
    """`request_hook`: called with each request as sent (azure-core's CustomHookPolicy, which
    the Tables SDK keeps for every table client); the benchmarks count requests with it
    (devtools/table_requests.py)."""
    extra: dict[str, Any] = {"raw_request_hook": request_hook} if request_hook else {}
    if connection_string:
        return TableServiceClient.from_connection_string(connection_string, **extra)
    if endpoint and credential is not None:
        return TableServiceClient(endpoint=endpoint, credential=credential, **extra)
    raise ValueError("table storage needs a connection string or an endpoint with a credential")


async def ensure_tables(service: TableServiceClient) -> None:
    try:
        for name in TABLE_NAMES:
            try:
                await service.create_table(name)
            except ResourceExistsError:
                pass
    except _STORAGE_ERRORS as error:
        raise classify_storage_error(error) from error
