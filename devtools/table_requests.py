"""Counting the Table Storage requests a run makes, as the SDK sends them (not guessed).

A request hook (`SyncService(settings, table_request_hook=counter)`, azure-core's
CustomHookPolicy) sees each request as it is sent, retries included: a transaction (`$batch`)
is one request, attributed to the table of its operations. Used by the benchmarks and by the
tests that pin what a run reads and writes.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from azure.core.pipeline import PipelineRequest

_TABLE = re.compile(r"^/(?:[^/]+/)?([A-Za-z][A-Za-z0-9]{2,62})(?:\(|$)")


@dataclass(frozen=True)
class TableRequest:
    table: str
    method: str
    write: bool


@dataclass(eq=False)
class TableRequestCounter:
    requests: list[TableRequest] = field(default_factory=list)

    def __call__(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        http = request.http_request
        self.requests.append(TableRequest(_table_of(http), http.method, http.method != "GET"))

    def clear(self) -> None:
        self.requests.clear()

    def by_table(self, *, writes: bool | None = None) -> Counter[str]:
        return Counter(r.table for r in self.requests if writes is None or r.write is writes)

    @property
    def total(self) -> int:
        return len(self.requests)

    @property
    def writes(self) -> int:
        return sum(1 for r in self.requests if r.write)


def _table_of(http: Any) -> str:
    # A transaction nests its operations in a changeset: the first operation names the table.
    parts = (getattr(http, "multipart_mixed_info", None) or [[]])[0]
    if parts:
        return _table_of(parts[0])
    path = unquote(urlparse(http.url).path)
    match = _TABLE.match(path)
    return match.group(1) if match else path
