"""What the table modules share: opening the tables, splitting long text into properties,
continuation tokens."""

from __future__ import annotations

import base64
import json
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ResourceExistsError,
)
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.names import TABLE_NAMES

CHUNK_UNITS = 32_000  # UTF-16 code units, under a string property's 32,767


def open_tables(
    connection_string: str | None, endpoint: str | None, credential: AsyncTokenCredential | None
) -> TableServiceClient:
    if connection_string:
        return TableServiceClient.from_connection_string(connection_string)
    if endpoint and credential is not None:
        return TableServiceClient(endpoint=endpoint, credential=credential)
    raise ValueError("table storage needs a connection string or an endpoint with a credential")


async def ensure_tables(service: TableServiceClient) -> None:
    for name in TABLE_NAMES:
        try:
            await service.create_table(name)
        except ResourceExistsError:
            pass


def utf16_chunks(text: str, units: int) -> list[str]:
    """`text` in pieces of at most `units` UTF-16 code units each (a character outside the
    Basic Multilingual Plane counts two), never splitting a character."""
    chunks: list[str] = []
    start = size = 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > units:
            chunks.append(text[start:index])
            start, size = index, 0
        size += width
    chunks.append(text[start:])
    return chunks


def encode_token(token: Any) -> str | None:
    if not token:
        return None
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def decode_token(token: str | None) -> Any:
    if not token:
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, json.JSONDecodeError):
        raise ValueError("the continuation token is not one this API issued") from None
