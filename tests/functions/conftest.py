"""Fixtures of the function tests; the helpers live in functions_harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from functions_harness import SyncQueue

from devtools.azurite import Azurite, start_azurite


@pytest.fixture
def sync_queue(azurite: Any) -> Iterator[SyncQueue]:
    queue = SyncQueue(azurite.connection_string)
    queue.clear()
    yield queue
    queue.clear()


@pytest.fixture(scope="module")
def own_storage() -> Iterator[Azurite]:
    """A storage account no other test module writes to, so a tick's result can be compared
    exactly (one per module that asks for it)."""
    instance = start_azurite()
    yield instance
    instance.stop()
