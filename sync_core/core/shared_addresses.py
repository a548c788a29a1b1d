"""A delta run warns about addresses shared by several employees as a full run does.

A full run sees every employee, so counting the addresses it maps finds each shared one
(engine._sum_up). A delta run maps only the users that changed: an address it writes may also
belong to a stored employee it never read. So it asks the store who holds the addresses it
wrote (AddressHolders: a bounded query per few addresses, O(what changed), never the whole
table) and counts every holder outside the round, whose row is as stored. Pure: the store is a
port.
"""

from __future__ import annotations

from sync_core.core.delta import DeltaChanges
from sync_core.core.pages import RunTotals
from sync_core.core.ports import AddressHolders
from sync_core.errors import SyncError

UNCHECKED = "Whether the addresses this run wrote are shared with other employees was not checked"


async def count_stored_holders(
    store: AddressHolders, tenant_id: str, tally: RunTotals, changes: DeltaChanges
) -> None:
    written = sorted(tally.addresses)
    if not written:
        return
    in_round = set(changes.users) | set(changes.removed)
    try:
        holders = await store.holders(tenant_id, written)
    except SyncError as error:  # a warning's lookup never fails a run whose writes succeeded
        tally.warnings.append(f"{UNCHECKED} ({error.code})")
        return
    for address, ids in holders.items():
        # Users of the round are counted as they are now, not as their stored rows say.
        tally.addresses[address] += len(ids - in_round)
