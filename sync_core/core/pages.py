"""One page of the listing, from Graph's users to the employees the plan compares: each user
counted once, scoped (with the reason it is left out) and mapped. The engine and Check
Connectivity both go through `scope_and_map`, so they count alike."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import datetime
from typing import Any

from sync_core.core.limits import clean_text
from sync_core.core.mapping import Employee, Mapper
from sync_core.core.ports import StoredIndex
from sync_core.core.report import Counts
from sync_core.core.scope import Scope

# Scope rules (RE2: linear in the value) and mapping cost a bounded time per user; handing the
# event loop back every so many users keeps the lease renewal (exclusive.LeaseKeeper, a task on
# the same loop) and the writer's batches going however large the page and heavy the rules.
USERS_BETWEEN_YIELDS = 32


class RunTotals:
    """The run's running totals; turned into the frozen report at the end."""

    def __init__(self) -> None:
        self.counts = Counts()
        self.excluded_by: Counter[str] = Counter()
        self.skipped: list[str] = []
        self.no_address: list[str] = []
        # In scope without an address and already marked by an earlier run: id -> since when.
        self.marked_since: dict[str, datetime] = {}
        self.unstorable: list[str] = []
        self.warnings: list[str] = []
        self.read_ids: set[str] = set()
        self.in_scope_ids: set[str] = set()
        self.addresses: dict[str, int] = Counter()
        # What the run wrote, for the tenant's summary: each written row's mark (None: it has
        # an address), and the rows it deleted.
        self.row_marks: dict[str, datetime | None] = {}
        self.removed: list[str] = []
        # For the photo step (core/photo_run.py): the employees whose row is current after the
        # writes, those of them this run replaced, and those Clean Up removed.
        self.placed_ids: set[str] = set()
        self.rewritten_ids: set[str] = set()
        self.deleted_ids: tuple[str, ...] = ()


async def scope_and_map(
    page: list[dict[str, Any]], scope: Scope, mapper: Mapper, index: StoredIndex, tally: RunTotals
) -> list[Employee]:
    employees: list[Employee] = []
    counts = tally.counts
    for position, user in enumerate(page):
        if position % USERS_BETWEEN_YIELDS == USERS_BETWEEN_YIELDS - 1:
            await asyncio.sleep(0)
        user_id = user.get("id")
        # Paging over a changing directory can repeat a user; the first sighting counts.
        if not user_id or user_id in tally.read_ids:
            continue
        tally.read_ids.add(user_id)
        counts.read += 1
        reason = scope.exclusion_reason(user)
        if reason is not None:
            counts.excluded += 1
            tally.excluded_by[reason] += 1
            continue
        counts.inScope += 1
        # In scope without an address still counts as present: clean-up must not remove an
        # employee because a mailbox property was briefly empty.
        tally.in_scope_ids.add(user_id)
        employee = mapper.employee(user)
        if employee.email is None:
            if user_id not in index.hashes:
                counts.skippedNoEmail += 1
                # Cleaned: a lone surrogate in a UPN must not break the report's JSON or text.
                tally.skipped.append(clean_text(user.get("userPrincipalName") or user_id))
                continue
            # Stored, but its address is gone: the row stays (marked, its fields kept current)
            # until it has had no address for the grace period; see docs/configuration.md.
            counts.noAddress += 1
            tally.no_address.append(clean_text(user.get("userPrincipalName") or user_id))
            if user_id in index.email_missing_since:
                tally.marked_since[user_id] = index.email_missing_since[user_id]
        else:
            tally.addresses[employee.email] += 1
        employees.append(employee)
    return employees


_END = object()


async def prefetched(
    pages: AsyncIterator[list[dict[str, Any]]],
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Read the next page while the current one is mapped and written; one page ahead at most."""
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

    async def produce() -> None:
        try:
            async for page in pages:
                await queue.put(page)
        except Exception as error:  # noqa: BLE001 - re-raised by the consumer
            await queue.put(error)
        else:
            await queue.put(_END)

    producer = asyncio.create_task(produce())
    try:
        while (item := await queue.get()) is not _END:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        producer.cancel()
        try:
            await producer
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the consumer has its error
            pass
