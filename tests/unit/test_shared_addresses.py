"""A delta run counts the stored holders of the addresses it wrote (core/shared_addresses.py),
with a dict-backed store: holders outside the round count, the round's own rows do not."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sync_core.core.delta import DeltaChanges
from sync_core.core.pages import RunTotals
from sync_core.core.shared_addresses import UNCHECKED, count_stored_holders
from sync_core.errors import RetriableError


class Stored:
    def __init__(self, rows: dict[str, str] | None = None, fails: bool = False):
        self.rows, self.fails, self.asked = rows or {}, fails, []

    async def holders(self, tenant_id: str, addresses: Sequence[str]) -> dict[str, set[str]]:
        self.asked.append(list(addresses))
        if self.fails:
            raise RetriableError("storage_unavailable", "down")
        found: dict[str, set[str]] = {}
        for employee_id, address in self.rows.items():
            if address in addresses:
                found.setdefault(address, set()).add(employee_id)
        return found


def counted(store: Stored, written: dict[str, int], round_ids: list[str]) -> RunTotals:
    tally = RunTotals()
    tally.addresses.update(written)
    changes = DeltaChanges({i: {"id": i} for i in round_ids}, ())
    asyncio.run(count_stored_holders(store, "t", tally, changes))
    return tally


def test_a_stored_holder_outside_the_round_makes_the_address_shared():
    store = Stored({"old": "a@x.com", "new": "a@x.com", "other": "b@x.com"})
    tally = counted(store, {"a@x.com": 1}, ["new"])
    assert tally.addresses["a@x.com"] == 2 and tally.addresses["b@x.com"] == 0
    assert store.asked == [["a@x.com"]]  # only what the round wrote


def test_the_rounds_own_rows_are_not_counted_again():
    tally = counted(
        Stored({"u1": "a@x.com", "u2": "b@x.com"}), {"a@x.com": 1, "b@x.com": 1}, ["u1", "u2"]
    )
    assert dict(tally.addresses) == {"a@x.com": 1, "b@x.com": 1}


def test_an_idle_round_asks_nothing_and_a_failed_lookup_is_a_warning():
    idle = Stored()
    assert counted(idle, {}, []).warnings == [] and idle.asked == []
    tally = counted(Stored(fails=True), {"a@x.com": 1}, ["u1"])
    assert tally.warnings == [f"{UNCHECKED} (storage_unavailable)"]
