"""The queue and timer functions of function_app.py, run by the development server without the
Functions host: `sync-requests` in Azurite is worked by the same sync_core.app.worker code the
`sync_worker` function calls, and (with --timer) the timer's tick runs on SYNC_SCHEDULE.

What the host does is copied where it matters (host.json): up to `batchSize` (4) messages at
once, a failed message retried after `visibilityTimeout` (2 min), and after `maxDequeueCount`
(5) attempts the poison handler's work (`fail_poisoned_run`). Only Azurite's queue
(TABLES_CONNECTION_STRING) is worked: a dev server must never take messages from a deployed
app's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

from devtools.ncrontab import next_after
from sync_core.adapters.storage_names import SYNC_QUEUE
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.worker import MAX_DEQUEUE_COUNT, fail_poisoned_run, process_message
from sync_core.core.report import utc_now
from sync_core.core.schedule import ENQUEUE_SPREAD
from sync_core.settings import load_settings

log = logging.getLogger("devtools.devserver")

BATCH_SIZE = 4  # host.json extensions.queues.batchSize
RETRY_AFTER = timedelta(minutes=2)  # host.json extensions.queues.visibilityTimeout
# While a message is worked it stays invisible this long (the host renews its own hold; a
# run that takes longer than this is seen again, and the lease keeps the second delivery out).
HOLD = timedelta(minutes=10)


async def work_queue(environ: Mapping[str, str], stop: asyncio.Event, poll: float = 1.0) -> None:
    connection = environ.get("TABLES_CONNECTION_STRING")
    if not connection:
        log.warning("not working the sync-requests queue: TABLES_CONNECTION_STRING (Azurite) unset")
        return
    # A short retry: the poll itself is the retry, and the SDK's default (15 s, then longer)
    # would leave Sync Now waiting a minute after Azurite comes back.
    # (The storage SDK's ExponentialRetry takes these from the client's keywords.)
    retry = {"retry_total": 1, "initial_backoff": 1, "increment_base": 1}
    # Short socket timeouts too: a connection Azurite left half-open when it stopped would
    # otherwise hold the poll for the transport's default read timeout.
    retry |= {"connection_timeout": 5, "read_timeout": 15}
    async with QueueClient.from_connection_string(
        connection, SYNC_QUEUE, message_decode_policy=TextBase64DecodePolicy(), **retry
    ) as queue:
        log.info("working the sync-requests queue in Azurite")
        down = False  # said once per outage, not at every poll
        created = False  # the queue is made in the loop: Azurite may be down from the start
        while not stop.is_set():
            try:
                if not created:
                    with contextlib.suppress(ResourceExistsError):
                        await queue.create_queue()
                    created = True
                batch = [
                    m
                    async for m in queue.receive_messages(
                        max_messages=BATCH_SIZE,
                        messages_per_page=BATCH_SIZE,
                        visibility_timeout=int(HOLD.total_seconds()),
                    )
                ]
            except ResourceNotFoundError:  # Azurite restarted empty
                with contextlib.suppress(ResourceExistsError):
                    await queue.create_queue()
                batch = []
            except Exception as error:  # noqa: BLE001 - Azurite stopped: say so, keep polling
                if not down:
                    log.warning(
                        "cannot read the sync-requests queue (%s); retrying until Azurite is back",
                        type(error).__name__,
                    )
                down, batch = True, []
            else:
                if down:
                    log.info("reading the sync-requests queue again")
                down = False
            await asyncio.gather(*(_guarded(environ, queue, message) for message in batch))
            if not batch:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), poll)


async def _guarded(environ: Mapping[str, str], queue: QueueClient, message: Any) -> None:
    """One message; whatever fails here (storage gone while deleting it) leaves the message to
    come back after its hold, and the loop goes on."""
    try:
        await _work_one(environ, queue, message)
    except Exception as error:  # noqa: BLE001 - the message reappears after HOLD
        log.warning("sync request left for later: %s", getattr(error, "message", repr(error)))


async def _work_one(environ: Mapping[str, str], queue: QueueClient, message: Any) -> None:
    try:
        outcome = await process_message(environ, message.content, message.dequeue_count)
    except Exception as error:  # noqa: BLE001 - the host retries whatever raised; so do we
        if message.dequeue_count >= MAX_DEQUEUE_COUNT:
            await fail_poisoned_run(environ, message.content)
            await queue.delete_message(message)
            log.warning("sync request gave up after %d attempts", message.dequeue_count)
        else:
            await queue.update_message(message, visibility_timeout=int(RETRY_AFTER.total_seconds()))
            log.warning(
                "sync request failed (attempt %d of %d), retried in %d s: %s",
                message.dequeue_count,
                MAX_DEQUEUE_COUNT,
                RETRY_AFTER.total_seconds(),
                getattr(error, "message", type(error).__name__),
            )
        return
    await queue.delete_message(message)
    status = outcome.report.status if outcome.report else "-"
    log.info("run %s: %s (%s)", outcome.run_id or "-", outcome.action, status)


async def run_timer(
    environ: Mapping[str, str], stop: asyncio.Event, spread: timedelta = ENQUEUE_SPREAD
) -> None:
    """The timer function: scheduled_tick at every moment SYNC_SCHEDULE names (`spread`: how
    far a tick's runs are spread, as deployed unless a test wants them at once)."""
    settings = load_settings(environ, needs_graph=False)
    log.info("timer on: %s", settings.sync_schedule)
    while not stop.is_set():
        now = utc_now()
        wait = (next_after(settings.sync_schedule, now) - now).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, wait))
        if stop.is_set():
            return
        try:
            tick = await scheduled_tick(settings, utc_now(), spread=spread)
        except Exception as error:  # noqa: BLE001 - the next tick tries again, as the host's
            log.warning("schedule tick failed: %s", getattr(error, "message", repr(error)))
            continue
        log.info("schedule tick: %d due, %d enqueued", len(tick.due), len(tick.enqueued))
