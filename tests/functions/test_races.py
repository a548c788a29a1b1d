"""Races between the ways a run starts and ends: two presses, a press and a tick, a message
delivered twice, a tenant disabled while its run waits, a late writer after a run ended."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from sync_core.adapters.queue import parse_message
from sync_core.app.dispatch import request_run, scheduled_tick
from sync_core.app.exclusive import RunAlreadyFinished, sync_exclusively
from sync_core.app.service import SyncService
from sync_core.app.worker import process_message
from sync_core.core.engine import RunRequest
from sync_core.core.report import RunProblem, RunStatus, utc_now
from sync_core.settings import load_settings
from tests.functions.run_messages import queue_run

pytestmark = pytest.mark.integration


def test_two_presses_at_once_make_one_run_and_one_message(app_env, tenant, sync_queue):
    async def press_twice():
        settings = load_settings(app_env, needs_graph=False)

        async def press():
            async with SyncService(settings) as service:
                return await request_run(
                    service, tenant.id, dry_run=False, allow_deletes=False, now=utc_now()
                )

        return await asyncio.gather(press(), press())

    first, second = asyncio.run(press_twice())
    assert first.run_id == second.run_id
    assert sorted([first.created, second.created]) == [False, True]
    assert len(sync_queue.raw_texts()) == 1


def test_a_tick_after_a_press_queues_nothing_more(app_env, tenant, sync_queue):
    async def press():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            return await request_run(
                service, tenant.id, dry_run=False, allow_deletes=False, now=utc_now()
            )

    ticket = asyncio.run(press())
    result = asyncio.run(scheduled_tick(load_settings(app_env, needs_graph=False), utc_now()))
    assert tenant.id not in result.failed
    messages = [parse_message(m.content) for m in sync_queue.take_all()]
    assert [m.run_id for m in messages if m.tenant_id == tenant.id] == [ticket.run_id]


def test_a_claim_of_a_finished_run_is_taken_over(app_env, tenant, sync_queue):
    async def claims():
        settings = load_settings(app_env, needs_graph=False)
        async with SyncService(settings) as service:
            first = await request_run(
                service, tenant.id, dry_run=False, allow_deletes=False, now=utc_now()
            )
            record = await service.runs.get(tenant.id, first.run_id)
            await service.runs.save(
                replace(record, status=RunStatus.SUCCEEDED, finished_at=utc_now())
            )
            second = await request_run(
                service, tenant.id, dry_run=False, allow_deletes=False, now=utc_now()
            )
            return first, second

    first, second = asyncio.run(claims())
    assert second.created and second.run_id != first.run_id


def test_a_message_delivered_again_after_its_run_finished_does_nothing(app_env, tenant, simulator):
    message = queue_run(app_env, tenant.id)
    first = asyncio.run(process_message(app_env, message))
    assert first.action == "ran" and first.report.status == "succeeded"
    simulator.clear_requests()
    again = asyncio.run(process_message(app_env, message, dequeue_count=2))
    assert again.action == "already_finished"
    assert not [r for r in simulator.requests if r.surface == "graph"]


def test_the_record_is_looked_at_again_under_the_lease(app_env, tenant):
    # The delivery that waited for the lease must not run a run another delivery finished.
    message = parse_message(queue_run(app_env, tenant.id))

    async def finish_then_run():
        async with SyncService(load_settings(app_env)) as service:
            record = await service.runs.get(tenant.id, message.run_id)
            await service.runs.save(
                replace(record, status=RunStatus.SUCCEEDED, finished_at=utc_now())
            )
            request = RunRequest(tenant.id, run_id=message.run_id, trigger="api")
            with pytest.raises(RunAlreadyFinished):
                await sync_exclusively(service, request)
            return await service.leases.get(tenant.id)

    assert asyncio.run(finish_then_run()) is None  # and the lease was given back


def test_a_tenant_disabled_while_its_run_waited_is_not_synced(app_env, tenant, simulator):
    other = "7c0f1b0e-5d2a-4c3b-9e8f-0a1b2c3d4e5f"
    simulator.add_tenant({"id": other, "displayName": "Paused Ltd", "users": []})

    async def register_disabled():
        from sync_core.core.config_parse import parse_config

        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            await service.configs.put(other, parse_config({"enabled": True}))

    asyncio.run(register_disabled())
    message = queue_run(app_env, other)

    async def disable():
        from sync_core.core.config_parse import parse_config

        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            await service.configs.put(other, parse_config({"enabled": False}))

    asyncio.run(disable())
    outcome = asyncio.run(process_message(app_env, message))
    assert outcome.action == "tenant_disabled"
    assert outcome.report.status == "failed"
    assert outcome.report.errors[-1].code == "tenant_disabled"


def test_a_late_writer_never_rewrites_an_ended_run(app_env, tenant):
    message = parse_message(queue_run(app_env, tenant.id))

    async def late_write():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            record = await service.runs.get(tenant.id, message.run_id)
            done = replace(record, status=RunStatus.SUCCEEDED, finished_at=utc_now())
            await service.runs.save(done)
            late = record.closed_with(RunProblem("gave_up", "late"), utc_now())
            written = await service.runs.save_unless_final(late)
            return written, await service.runs.get(tenant.id, message.run_id)

    written, stored = asyncio.run(late_write())
    assert written is False and stored.status == RunStatus.SUCCEEDED


def test_the_tick_closes_an_abandoned_run_and_queues_a_new_one(app_env, tenant, sync_queue):
    from datetime import timedelta

    from sync_core.core.report import RunReport, RunStatus, new_run_id

    long_ago = utc_now() - timedelta(hours=1)
    lost = RunReport.begun(
        new_run_id(long_ago), tenant.id, RunStatus.QUEUED, dry_run=False, trigger="api", at=long_ago
    )

    async def save_lost():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            await service.runs.save(lost)

    asyncio.run(save_lost())
    result = asyncio.run(scheduled_tick(load_settings(app_env, needs_graph=False), utc_now()))
    assert tenant.id in result.due

    async def records():
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            return await service.runs.latest(tenant.id)

    newest, closed = asyncio.run(records())
    assert closed.run_id == lost.run_id
    assert closed.status == "failed" and closed.errors[-1].code == "abandoned"
    # The new run's message waits for the tenant's offset in the tick: its record says queued.
    assert newest.status == "queued" and newest.run_id in result.enqueued
