"""Whether the run holding a tenant's lease is over, though its lease has not lapsed yet.

A run releases its lease on the way out; when it cannot (storage dropped mid-run, the process
was killed), the lease stays for up to its time to live and every run in between was refused
with `tenant_busy`. Two facts show the holder will never write again, and then a new run takes
the lease over at once:
- the holder's run record is final (succeeded, failed, held): it ended, only its release failed;
- the lease row names a process on this host that no longer exists
  (adapters/tables/lease_process.py).
Anything else (another host, a live process, no record yet) is left to the lease's expiry.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from sync_core.adapters.tables.lease_process import process_gone
from sync_core.app.service import SyncService
from sync_core.core.ports import Lease
from sync_core.core.report import FINAL_STATUSES

log = logging.getLogger("sync_core.app.lease_holder")

HolderOver = Callable[[Lease], Awaitable[bool]]


def holder_is_over(service: SyncService) -> HolderOver:
    async def over(lease: Lease) -> bool:
        record = await service.runs.get(lease.tenant_id, lease.holder)
        if record is not None and record.status in FINAL_STATUSES:
            log.warning(
                "run %s of tenant %s ended (%s) without releasing its lease; taking it over",
                lease.holder,
                lease.tenant_id,
                record.status,
            )
            return True
        process = await service.leases.holder_process(lease.tenant_id)
        if process_gone(process):
            log.warning(
                "run %s of tenant %s holds the lease, but its process (%s) is gone; "
                "taking the lease over (the run's record is closed as abandoned)",
                lease.holder,
                lease.tenant_id,
                process,
            )
            return True
        return False

    return over
