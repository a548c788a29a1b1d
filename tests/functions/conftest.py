"""Fixtures of the function tests; the helpers live in functions_harness.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from functions_harness import SyncQueue


@pytest.fixture
def sync_queue(azurite: Any) -> Iterator[SyncQueue]:
    queue = SyncQueue(azurite.connection_string)
    queue.clear()
    yield queue
    queue.clear()
