"""The queue side: run one requested sync while holding the tenant's lease; give up on poison.

What happens to a message:
- malformed (not one this app wrote): logged and dropped; retrying could never help.
- its run already finished (a redelivery after the host lost track): ignored.
- the app registration settings are missing: the run is recorded failed with the problems.
- another run of the tenant holds the lease: this run is recorded failed with code `superseded`
  and does nothing. The live run syncs the tenant anyway; retrying later would only repeat it.
- an earlier attempt of *this* run still holds the lease (its instance died a moment ago, or the
  message was delivered twice): RunBusy is raised and the host retries after its visibility
  timeout, by which time the dead attempt's lease has expired.
- anything else that raises (storage down): the error is noted on the run record and raised, so
  the host retries; after maxDequeueCount the message lands in `sync-requests-poison` and
  `fail_poisoned_run` marks the run failed with the last noted cause.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sync_core.adapters.queue import MalformedMessage, RunMessage, parse_message, parse_shard
from sync_core.app.closing import close_failed
from sync_core.app.exclusive import (
    LEASE_RENEW_EVERY,
    LEASE_TTL,
    RunAlreadyFinished,
    RunBusy,
    TenantBusy,
    sync_exclusively,
)
from sync_core.app.fan_out import enqueue_shard
from sync_core.app.run_history import held_by_explain
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.report import FINAL_STATUSES, RunProblem, RunReport, RunStatus, utc_now
from sync_core.errors import ErrorCode, RetriableError, SyncError, internal_error
from sync_core.settings import SettingsError, load_settings

log = logging.getLogger("sync_core.app.worker")

# The host's retry delay (host.json visibilityTimeout, 2 minutes) times its 5 attempts spans
# longer than a lease (exclusive.LEASE_TTL), so a dead attempt's lease is gone before the last try.
MAX_DEQUEUE_COUNT = 5  # host.json extensions.queues.maxDequeueCount


class WorkAction(StrEnum):
    """What the worker did with a message (tests and logs compare the strings)."""

    RAN = "ran"
    DROPPED = "dropped"
    ALREADY_FINISHED = "already_finished"
    SUPERSEDED = ErrorCode.SUPERSEDED
    INVALID_SETTINGS = ErrorCode.INVALID_SETTINGS
    TENANT_DISABLED = ErrorCode.TENANT_DISABLED
    LEASE_LOST = ErrorCode.LEASE_LOST
    GAVE_UP = ErrorCode.GAVE_UP
    STILL_RUNNING = "still_running"
    SHARD = "shard"  # a shard of the timer's fan-out, enqueued


@dataclass(frozen=True)
class WorkOutcome:
    action: WorkAction
    run_id: str | None = None
    report: RunReport | None = None
    enqueued: tuple[str, ...] = ()  # SHARD: the run ids queued


async def process_message(
    environ: Mapping[str, str],
    body: str | bytes,
    dequeue_count: int | None = None,
    *,
    now: Callable[[], datetime] = utc_now,
    lease_ttl: timedelta = LEASE_TTL,
    renew_every: timedelta = LEASE_RENEW_EVERY,
    table_request_hook: Callable[[Any], None] | None = None,
) -> WorkOutcome:
    """The `sync_worker` function: one message of `sync-requests` (a run, or a shard of the
    timer's fan-out). `table_request_hook`: sees each table request (devtools/table_requests.py)."""
    try:
        shard = parse_shard(body)
        if shard is not None:
            settings = load_settings(environ, needs_graph=False)
            result = await enqueue_shard(settings, shard, now())
            return WorkOutcome(WorkAction.SHARD, report=None, run_id=None, enqueued=result.enqueued)
        message = parse_message(body)
    except MalformedMessage as error:
        log.error(
            "dropped a malformed sync request: %s",
            error,
            extra={"event": "sync_request_dropped", "dequeueCount": dequeue_count},
        )
        return WorkOutcome(WorkAction.DROPPED)
    settings = load_settings(environ, needs_graph=False)  # raises: nothing to record it in
    attempt = dequeue_count or 1
    async with SyncService(
        settings, refuse_disabled=True, table_request_hook=table_request_hook
    ) as service:
        try:
            return await _work(service, environ, message, attempt, now, lease_ttl, renew_every)
        except Exception as error:
            await _note_failed_attempt(service, message, attempt, error, now())
            raise


async def fail_poisoned_run(
    environ: Mapping[str, str], body: str | bytes, *, now: Callable[[], datetime] = utc_now
) -> WorkOutcome:
    """The poison function: the message failed MAX_DEQUEUE_COUNT times; close its run."""
    try:
        message = parse_message(body)
    except MalformedMessage as error:
        log.error("dropped a malformed poison message: %s", error)
        return WorkOutcome(WorkAction.DROPPED)
    settings = load_settings(environ, needs_graph=False)
    async with SyncService(settings) as service:
        record = await service.runs.get(message.tenant_id, message.run_id)
        if record is not None and record.status in FINAL_STATUSES:
            return WorkOutcome(WorkAction.ALREADY_FINISHED, message.run_id, record)
        lease = await service.leases.get(message.tenant_id)
        if lease is not None and lease.holder == message.run_id and lease.live(now()):
            # An attempt of this run is alive (the poison message is a stale duplicate).
            log.warning("run %s is still running; its poison message is ignored", message.run_id)
            return WorkOutcome(WorkAction.STILL_RUNNING, message.run_id, record)
        base = record or _queued(message, now())
        causes = [e.message for e in base.errors if e.code == ErrorCode.ATTEMPT_FAILED]
        return await _close_unrun(
            service,
            base,
            WorkAction.GAVE_UP,
            RunProblem(
                ErrorCode.GAVE_UP,
                f"The sync request failed {MAX_DEQUEUE_COUNT} times and was moved to the "
                f"poison queue. {causes[-1] if causes else 'No cause was recorded.'}",
                "Look up this run id in the function log (Application Insights). The timer "
                "requests a new run at its next tick; Sync Now can ask for one at once.",
            ),
            now(),
        )


async def _work(
    service: SyncService,
    environ: Mapping[str, str],
    message: RunMessage,
    attempt: int,
    now: Callable[[], datetime],
    lease_ttl: timedelta,
    renew_every: timedelta,
) -> WorkOutcome:
    refusal = _refusal(environ)
    if refusal is not None:
        return await _refuse(service, message, refusal, attempt, now)
    request = RunRequest(
        message.tenant_id,
        dry_run=message.dry_run,
        allow_deletes=message.allow_deletes,
        trigger=message.trigger,
        run_id=message.run_id,
        full=message.full,
    )
    try:
        report = await sync_exclusively(
            service,
            request,
            now=now,
            ttl=lease_ttl,
            renew_every=renew_every,
            claimed=message.claimed,
        )
    except RunAlreadyFinished as finished:
        log.info("run %s already finished; message ignored", message.run_id)
        return WorkOutcome(WorkAction.ALREADY_FINISHED, message.run_id, finished.record)
    except TenantBusy as busy:
        return await _superseded(service, message, busy, attempt, now)
    last = report.errors[-1].code if report.errors else None
    by_code: dict[str, WorkAction] = {
        ErrorCode.LEASE_LOST: WorkAction.LEASE_LOST,
        ErrorCode.TENANT_DISABLED: WorkAction.TENANT_DISABLED,
    }
    return WorkOutcome(by_code.get(last or "", WorkAction.RAN), message.run_id, report)


async def _refuse(
    service: SyncService,
    message: RunMessage,
    refusal: tuple[WorkAction, RunProblem],
    attempt: int,
    now: Callable[[], datetime],
) -> WorkOutcome:
    """The run closed as refused, unless it already ended. Whether it did is asked under the
    lease otherwise (sync_exclusively, from the row the lease is taken from); a refused run
    takes no lease, so here."""
    record = await service.runs.get(message.tenant_id, message.run_id)
    if record is not None and record.status in FINAL_STATUSES:
        log.info("run %s already finished (%s); message ignored", record.run_id, record.status)
        return WorkOutcome(WorkAction.ALREADY_FINISHED, message.run_id, record)
    action, problem = refusal
    return await _close_unrun(
        service, record or _queued(message, now()), action, problem, now(), attempt
    )


async def _superseded(
    service: SyncService,
    message: RunMessage,
    busy: TenantBusy,
    attempt: int,
    now: Callable[[], datetime],
) -> WorkOutcome:
    """Another run holds the tenant: this one is closed as superseded, unless it already ended
    or the holder is an explain, which ends in seconds (the host retries: RunBusy)."""
    record = await service.runs.get(message.tenant_id, message.run_id)
    if record is not None and record.status in FINAL_STATUSES:
        return WorkOutcome(WorkAction.ALREADY_FINISHED, message.run_id, record)
    if await held_by_explain(service.runs, message.tenant_id, busy.holder):
        raise RunBusy(f"an explain of one user ({busy.holder}) holds the lease") from None
    return await _close_unrun(
        service,
        record or _queued(message, now()),
        WorkAction.SUPERSEDED,
        RunProblem(
            ErrorCode.SUPERSEDED,
            f"Another run of this tenant ({busy.holder}) was in progress, so this request "
            "did nothing: that run syncs the tenant.",
        ),
        now(),
        attempt,
    )


def _refusal(environ: Mapping[str, str]) -> tuple[WorkAction, RunProblem] | None:
    """Why this message must not run at all, checked before the tenant's lease is taken. (A
    tenant disabled since the run was queued is refused at the run's read of its configuration:
    app/served_configs.py.)"""
    try:
        load_settings(environ, needs_graph=True)
    except SettingsError as error:
        return WorkAction.INVALID_SETTINGS, RunProblem(
            ErrorCode.INVALID_SETTINGS,
            "The app cannot reach Microsoft Graph: " + "; ".join(error.problems),
            "Fix the function app's settings (see the README's Settings), then Sync Now.",
        )
    return None


async def _note_failed_attempt(
    service: SyncService, message: RunMessage, attempt: int, error: Exception, now: datetime
) -> None:
    """Best effort: keep the cause on the run record for the poison handler and the status URL;
    never over a record the run itself has changed meanwhile (see RunStore.note)."""
    if isinstance(error, SyncError):  # classified by the adapter that met it
        failure = error
    elif isinstance(error, RunBusy):
        failure = RetriableError(ErrorCode.RUN_BUSY, str(error))
    else:
        # The record is shown over HTTP: the type only; the message and trace go to the log.
        failure = internal_error(error)
    log.warning(
        "attempt %d of run %s failed: %s",
        attempt,
        message.run_id,
        failure.message,
        exc_info=not isinstance(error, RunBusy | SyncError),
        extra={
            "event": "sync_attempt_failed",
            "tenantId": message.tenant_id,
            "runId": message.run_id,
            "attempt": attempt,
            "code": failure.code,
        },
    )
    note = RunProblem(
        ErrorCode.ATTEMPT_FAILED, f"Attempt {attempt} failed: {failure.message}", failure.fix
    )
    try:
        await service.runs.note(_queued(message, now), note, replaces=ErrorCode.ATTEMPT_FAILED)
    except Exception:  # storage may be what failed; the log line above has the cause
        log.warning("could not note the failure on run %s", message.run_id, exc_info=True)


async def _close_unrun(
    service: SyncService,
    record: RunReport,
    action: WorkAction,
    problem: RunProblem,
    now: datetime,
    attempt: int | None = None,
) -> WorkOutcome:
    """The run closed as failed without being run, and what the worker did."""
    logged = {} if attempt is None else {"attempt": attempt}
    final = (await close_failed(service.runs, record, problem, now, **logged)).report
    return WorkOutcome(action, record.run_id, final)


def _queued(message: RunMessage, now: datetime) -> RunReport:
    return RunReport.begun(
        message.run_id,
        message.tenant_id,
        RunStatus.QUEUED,
        dry_run=message.dry_run,
        trigger=message.trigger,
        at=now,
    )
