"""Faults on demand: throttling, outages, dropped connections, latency, malformed listing pages
and expired page tokens.

Faults are consumed in the order they were added, one per matching request, so a test can script
"two 429s, then one 503, then success" and assert exactly how the client recovered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

GRAPH_PREFIX = "/v1.0/"
USERS_PREFIX = "/v1.0/users"
# Answers a proxy or a faulty gateway can put in place of a listing page (PLATFORM-NOTES: never
# trust a 2xx blindly). Each is the real page, altered:
MALFORMED_FORMS = (
    "empty_body",  # 200 with no body
    "no_content",  # 204
    "no_value",  # 200 JSON without "value"
    "value_not_list",  # "value" is an object
    "item_without_id",  # the first user has no "id"
    "member_without_id",  # the first entry of the first `members@delta` has no "id" (groups)
    "foreign_next_link",  # the next link points to another host
    "repeat_next_link",  # the next link is the link just requested
    "responses_not_list",  # a JSON batch's "responses" is a number (simulator/batch.py)
)
# Only a request that follows a next link carries a page token that can expire.
EXPIRED_PAGE_TOKEN = "expired_page_token"


@dataclass(frozen=True)
class Fault:
    # "throttle" | "unavailable" | "drop_connection" | "bad_gateway" | "cut_body"
    # | "expired_page_token" | one of MALFORMED_FORMS
    kind: str
    path_prefix: str
    retry_after: int | None = None


@dataclass(frozen=True)
class PendingFault:
    fault: Fault
    remaining: int
    after: int = 0  # matching requests let through first: a failure in the middle of paging


class FaultPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[PendingFault] = []
        self._latency_ms = 0
        self._latency_prefix = GRAPH_PREFIX
        self._page_token_lifetime: float | None = None

    def throttle(
        self, count: int, retry_after: int = 1, path_prefix: str = GRAPH_PREFIX, after: int = 0
    ) -> None:
        """Answer the next ``count`` matching requests (after ``after`` more) with 429."""
        self._add(Fault("throttle", path_prefix, retry_after), count, after)

    def unavailable(
        self,
        count: int,
        retry_after: int | None = None,
        path_prefix: str = GRAPH_PREFIX,
        after: int = 0,
    ) -> None:
        """Answer the next ``count`` matching requests (after ``after`` more) with 503
        (``Retry-After`` if given)."""
        self._add(Fault("unavailable", path_prefix, retry_after), count, after)

    def drop_connection(self, count: int, path_prefix: str = GRAPH_PREFIX, after: int = 0) -> None:
        """Close the connection without answering the next ``count`` matching requests."""
        self._add(Fault("drop_connection", path_prefix), count, after)

    def bad_gateway(self, count: int, path_prefix: str = GRAPH_PREFIX, after: int = 0) -> None:
        """Answer 502 with an HTML page, as a gateway in front of Graph does: no Graph error
        body to parse."""
        self._add(Fault("bad_gateway", path_prefix), count, after)

    def cut_body(self, count: int, path_prefix: str = GRAPH_PREFIX, after: int = 0) -> None:
        """Send the real answer's headers and half its body, then drop the connection."""
        self._add(Fault("cut_body", path_prefix), count, after)

    def malformed_page(
        self, form: str, count: int = 1, path_prefix: str = USERS_PREFIX, after: int = 0
    ) -> None:
        """Answer the next ``count`` matching requests (after ``after`` more) with the real
        answer altered into ``form``, one of ``MALFORMED_FORMS``."""
        if form not in MALFORMED_FORMS:
            raise ValueError(f"unknown malformed form {form!r}: use one of {MALFORMED_FORMS}")
        self._add(Fault(form, path_prefix), count, after)

    def expire_page_tokens(
        self, count: int = 1, path_prefix: str = USERS_PREFIX, after: int = 0
    ) -> None:
        """Answer the next ``count`` requests that follow a next link (after ``after`` more of
        them) with 400 ``Directory_ExpiredPageToken``, as Graph does when a token has expired."""
        self._add(Fault(EXPIRED_PAGE_TOKEN, path_prefix), count, after)

    def page_token_lifetime(self, seconds: float | None) -> None:
        """Page tokens older than ``seconds`` are answered as expired (None: they never
        expire) until cleared."""
        if seconds is not None and seconds < 0:
            raise ValueError("the page token lifetime must be >= 0 seconds")
        with self._lock:
            self._page_token_lifetime = seconds

    def page_token_max_age(self) -> float | None:
        with self._lock:
            return self._page_token_lifetime

    def latency(self, ms: int, path_prefix: str = GRAPH_PREFIX) -> None:
        """Delay every matching request by ``ms`` milliseconds until cleared (0 turns it off)."""
        if ms < 0:
            raise ValueError("latency must be >= 0 ms")
        with self._lock:
            self._latency_ms = ms
            self._latency_prefix = path_prefix

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._latency_ms = 0
            self._page_token_lifetime = None

    def take(self, path: str, *, follows_next_link: bool = False) -> Fault | None:
        """The fault to inject into this request, if any; consuming it counts it down."""
        with self._lock:
            for index, pending in enumerate(self._pending):
                if pending.fault.kind == EXPIRED_PAGE_TOKEN and not follows_next_link:
                    continue
                if path.startswith(pending.fault.path_prefix):
                    if pending.after > 0:
                        self._pending[index] = PendingFault(
                            pending.fault, pending.remaining, pending.after - 1
                        )
                        return None
                    if pending.remaining <= 1:
                        del self._pending[index]
                    else:
                        self._pending[index] = PendingFault(pending.fault, pending.remaining - 1)
                    return pending.fault
        return None

    def delay_ms(self, path: str) -> int:
        with self._lock:
            return self._latency_ms if path.startswith(self._latency_prefix) else 0

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "pending": [
                    {
                        "kind": p.fault.kind,
                        "count": p.remaining,
                        "pathPrefix": p.fault.path_prefix,
                        "retryAfter": p.fault.retry_after,
                        "after": p.after,
                    }
                    for p in self._pending
                ],
                "latencyMs": self._latency_ms,
                "latencyPathPrefix": self._latency_prefix,
                "pageTokenLifetime": self._page_token_lifetime,
            }

    def _add(self, fault: Fault, count: int, after: int = 0) -> None:
        if count < 1 or after < 0:
            raise ValueError("count must be >= 1 and after >= 0")
        with self._lock:
            self._pending.append(PendingFault(fault, count, after))
