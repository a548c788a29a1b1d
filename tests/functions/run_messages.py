"""The run message a request put on the sync-requests queue, as the queue trigger receives it."""

from __future__ import annotations

import base64
import json
from typing import Any


def take_run_message(sync_queue: Any, run_id: str) -> str:
    raw = sync_queue.raw_texts()
    assert len(raw) == 1
    decoded = json.loads(base64.b64decode(raw[0]))  # base64, as the queue trigger expects
    assert decoded["runId"] == run_id
    (message,) = sync_queue.take_all()
    return message.content
