"""The continuation tokens the HTTP API hands out for listings: the SDK's own token (a dict of
next partition and row keys), opaque to the client."""

from __future__ import annotations

import base64
import json
from typing import Any


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
