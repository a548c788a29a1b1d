"""The request log: what each client sent, minus anything secret, and how it was answered."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass

# Never kept: bearer tokens, the managed-identity header (a shared secret) and cookies.
_REDACTED_HEADERS = frozenset({"authorization", "x-identity-header", "cookie", "set-cookie"})
_REDACTED_QUERY = frozenset({"client_secret", "client_assertion", "code"})


@dataclass(frozen=True)
class RequestRecord:
    time: float
    method: str
    path: str
    query: Mapping[str, str]
    surface: str  # "token" | "graph" | "vault" | "msi" | "control"
    tenant: str | None
    status: int | None  # None: the connection was dropped without an answer
    fault: str | None
    headers: Mapping[str, str]

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"query": dict(self.query), "headers": dict(self.headers)}


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _REDACTED_HEADERS}


def safe_query(query: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k.lower() not in _REDACTED_QUERY}


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()
