"""On-demand behaviour of ``/users/delta`` for tests: a simulated clock, expired tokens, empty
pages, users repeated within a round, and the page size.

Graph documents these as things a delta client must cope with (concepts/delta-query-overview.md;
PLATFORM-NOTES "Microsoft Graph: delta"): pages can be empty and still carry a nextLink, the same
object can come more than once in a round, and a token Graph no longer holds state for fails with
``syncStateNotFound`` (410 Gone, or 400 as reported when directory tokens reached their 7 days).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

# Directory delta links live seven days (Microsoft 365 Developer Blog, "Duration of change
# tracking tokens for identity and education resources", 2020-07-03).
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600
DEFAULT_PAGE_SIZE = 100
EXPIRED_STATUSES = (400, 410)


@dataclass(frozen=True)
class PendingExpiry:
    remaining: int
    status: int


class DeltaPlan:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock_offset = 0.0
        self._expiries: list[PendingExpiry] = []
        self._empty_pages = 0
        self._repeats: list[str] = []
        self._page_size = DEFAULT_PAGE_SIZE

    # --------------------------------------------------------------------------- clock

    def now(self) -> float:
        """The simulated time delta tokens are stamped and aged with (seconds since the epoch)."""
        with self._lock:
            return time.time() + self._clock_offset

    def advance_clock(self, seconds: float) -> None:
        """Move the simulated clock forward: tokens issued before age by ``seconds``."""
        if seconds < 0:
            raise ValueError("the clock only moves forward: seconds must be >= 0")
        with self._lock:
            self._clock_offset += seconds

    # ------------------------------------------------------------------------- knobs

    def expire_tokens(self, count: int = 1, status: int = 410) -> None:
        """Answer the next ``count`` delta requests that carry a token (a nextLink or a
        deltaLink) as if Graph had lost the sync state: ``status`` 410 (Gone, with a Location)
        or 400, both with code ``syncStateNotFound``."""
        if count < 1:
            raise ValueError("count must be >= 1")
        if status not in EXPIRED_STATUSES:
            raise ValueError(f"status must be one of {EXPIRED_STATUSES}, not {status!r}")
        with self._lock:
            self._expiries.append(PendingExpiry(count, status))

    def take_expiry(self) -> int | None:
        """The status to answer this token-carrying request with, if one is pending."""
        with self._lock:
            if not self._expiries:
                return None
            first = self._expiries[0]
            if first.remaining <= 1:
                self._expiries.pop(0)
            else:
                self._expiries[0] = PendingExpiry(first.remaining - 1, first.status)
            return first.status

    def empty_pages(self, count: int) -> None:
        """The next ``count`` delta pages (of a round, not ``latest``) come back empty with a
        nextLink that continues where the round was."""
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._empty_pages += count

    def take_empty_page(self) -> bool:
        with self._lock:
            if self._empty_pages == 0:
                return False
            self._empty_pages -= 1
            return True

    def repeat(self, user_id: str, times: int = 1) -> None:
        """Send the user again (its state at that moment) at the end of the next round that
        reaches its final page, ``times`` more times."""
        if times < 1:
            raise ValueError("times must be >= 1")
        if not user_id:
            raise ValueError("user_id is required")
        with self._lock:
            self._repeats.extend([user_id.lower()] * times)

    def take_repeats(self) -> list[str]:
        with self._lock:
            repeats, self._repeats = self._repeats, []
            return repeats

    def page_size(self, size: int | None = None) -> int:
        """The number of users per delta page; with ``size``, set it first."""
        with self._lock:
            if size is not None:
                if not 1 <= size <= 999:
                    raise ValueError("the delta page size must be between 1 and 999")
                self._page_size = size
            return self._page_size

    def clear(self) -> None:
        """Forget every knob. The clock stays where it is: tokens keep their age."""
        with self._lock:
            self._expiries.clear()
            self._empty_pages = 0
            self._repeats.clear()
            self._page_size = DEFAULT_PAGE_SIZE

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {
                "clockOffsetSeconds": self._clock_offset,
                "expiries": [{"count": e.remaining, "status": e.status} for e in self._expiries],
                "emptyPages": self._empty_pages,
                "repeats": list(self._repeats),
                "pageSize": self._page_size,
            }
