"""Fixtures of the function tests; the helpers live in functions_harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient
from functions_harness import SyncQueue

from devtools.azurite import Azurite, start_azurite
from sync_core.adapters.storage_names import SYNC_QUEUE


@pytest.fixture
def sync_queue(azurite: Any) -> Iterator[SyncQueue]:
    queue = SyncQueue(azurite.connection_string)
    queue.clear()
    yield queue
    queue.clear()


@pytest.fixture(scope="module")
def own_storage() -> Iterator[Azurite]:
    """A storage account no other test module writes to, so a tick's result can be compared
    exactly (one per module that asks for it). Its sync-requests queue exists from the start, as
    in a deployment: a test that drains the queue before its tick may run first, or alone."""
    instance = start_azurite()
    QueueClient.from_connection_string(instance.connection_string, SYNC_QUEUE).create_queue()
    yield instance
    instance.stop()
