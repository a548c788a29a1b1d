"""What the timer tidies besides scheduling runs: connect requests past their retention.

A connect request's row keeps its outcome for a day (GET /api/connect/{id}); after that it is
deleted, consumed or not. Each tick deletes at most SWEEP_PER_TICK rows, so a flood of
abandoned links costs a bounded amount per tick and is cleared over the next ones.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sync_core.app.service import SyncService
from sync_core.errors import SyncError
from sync_core.settings import Settings

log = logging.getLogger("sync_core.app.housekeeping")
SWEEP_PER_TICK = 100


async def sweep_connect_requests(
    settings: Settings, now: datetime, limit: int = SWEEP_PER_TICK
) -> int:
    """How many were deleted; a storage failure is logged, never fails the tick."""
    try:
        async with SyncService(settings) as service:
            removed = await service.connect_requests.sweep(now, limit)
    except SyncError:
        log.warning("could not sweep the old connect requests", exc_info=True)
        return 0
    if removed:
        log.info("swept %d old connect request(s)", removed)
    return removed
