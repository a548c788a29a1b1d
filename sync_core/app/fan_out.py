"""The timer's fan-out: a shard of due tenants, sent by the tick through `sync-requests`, is
enqueued by the queue invocation that receives it (dispatch.scheduled_tick, SHARD_SIZE).

Each tenant is looked at again (one keyed read of its run index) before its run is queued: a
shard delivered twice, or late, queues nothing for a tenant whose run is already in flight or
no longer due, and the claim (RunStore.claim, on the row's ETag) settles a race with Sync Now.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sync_core.adapters.queue import RunQueue, ShardMessage
from sync_core.app.dispatch import TickResult, enqueue_due
from sync_core.app.service import SyncService
from sync_core.app.tenant_schedules import tenant_schedule
from sync_core.app.tenants import tenant_enabled
from sync_core.settings import Settings

log = logging.getLogger("sync_core.app.fan_out")


async def enqueue_shard(settings: Settings, shard: ShardMessage, now: datetime) -> TickResult:
    async with SyncService(settings) as service, RunQueue(settings) as queue:
        due = []
        for tenant_id in shard.tenant_ids:
            if not await tenant_enabled(service, tenant_id):
                continue
            if (await tenant_schedule(service, tenant_id, now, close_abandoned=True)).due:
                due.append(tenant_id)
        result = await enqueue_due(service, queue, due, now)
    log.info(
        "schedule shard: %d tenant(s), %d enqueued",
        len(shard.tenant_ids),
        len(result.enqueued),
        extra={"event": "schedule_shard", "tenants": len(shard.tenant_ids)},
    )
    return result
