"""A run that lost its lease writes nothing more: the fence rows in the employees partition make
Table Storage (Azurite here) refuse a stale writer's transactions whole."""

from __future__ import annotations

import asyncio
import http.client
import os
import threading
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.data.tables.aio import TableServiceClient

from sync_core.adapters.graph import GraphDirectory
from sync_core.adapters.tables.boundary import ensure_tables
from sync_core.adapters.tables.employees import TableEmployeeStore
from sync_core.adapters.tables.leases import LeaseStore
from sync_core.app.exclusive import sync_exclusively
from sync_core.app.service import SyncService
from sync_core.core.engine import RunRequest
from sync_core.core.ports import LeaseLost
from sync_core.core.report import new_run_id, utc_now
from sync_core.settings import load_settings
from sync_core.surfaces.cli import main
from tests.integration.helpers import stored_rows

pytestmark = pytest.mark.integration


class StallingDirectory:
    """The real Graph directory, with a stall after each page is read and before the run gets
    it: the run's host frozen (a paused VM, a long GC) while its lease runs out."""

    def __init__(self, inner: GraphDirectory, page_read: asyncio.Event, resume: asyncio.Event):
        self._inner, self._page_read, self._resume = inner, page_read, resume
        self.stats = inner.stats

    async def organization(self) -> Any:
        return await self._inner.organization()

    async def users(
        self, select: Iterable[str], odata_filter: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        async for page in self._inner.users(select, odata_filter):
            self._page_read.set()
            await self._resume.wait()
            yield page

    async def latest_delta_link(self, select: Iterable[str]) -> str:
        return await self._inner.latest_delta_link(select)

    async def close(self) -> None:
        await self._inner.close()


class StallingService(SyncService):
    def __init__(self, settings: Any):
        super().__init__(settings)
        self.page_read, self.resume = asyncio.Event(), asyncio.Event()

    async def open_directory(self, tenant_id: str) -> Any:
        inner = await super().open_directory(tenant_id)
        return StallingDirectory(inner, self.page_read, self.resume)


def test_a_run_that_lost_its_lease_cannot_overwrite_the_newer_runs_rows(
    tenant, simulator, app_env, capsys
):
    member = tenant.of_kind("member")[0]
    ttl = timedelta(seconds=1)

    async def scenario() -> tuple[int, Any]:
        async with StallingService(load_settings(os.environ)) as service:
            # Run A: a short lease, and a renewal that will not come in time (its host stalls).
            stale = asyncio.create_task(
                sync_exclusively(
                    service, RunRequest(tenant.id), ttl=ttl, renew_every=timedelta(minutes=1)
                )
            )
            await service.page_read.wait()  # A has read the directory as it was
            simulator.patch_user(tenant.id, member["id"], {"jobTitle": "Newer Title"})
            await asyncio.sleep(ttl.total_seconds() + 0.5)  # A's lease has expired
            # Run B takes the lease over and writes the newer data.
            newer = await asyncio.get_running_loop().run_in_executor(None, main, ["sync"])
            service.resume.set()  # A wakes up and goes on writing what it read
            return newer, await stale

    newer_exit, report = asyncio.run(scenario())
    assert newer_exit == 0, capsys.readouterr()

    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert rows and {row["RunId"] for row in rows.values()} != {report.run_id}
    (newer_run,) = {row["RunId"] for row in rows.values()}
    assert rows[member["id"]]["Title"] == "Newer Title"  # B's row survived

    # A's report says what happened and what it wrote: nothing.
    assert report.status == "failed"
    assert [error.code for error in report.errors] == ["lease_lost"]
    assert report.counts.created == report.counts.updated == report.counts.deleted == 0
    assert "0 added, 0 updated, 0 removed" in report.errors[0].message
    assert f"{len(rows)} planned write(s) were not made" in report.errors[0].message

    async def records() -> tuple[Any, Any]:
        async with SyncService(load_settings(os.environ, needs_graph=False)) as service:
            return (
                await service.runs.get(tenant.id, report.run_id),
                await service.runs.get(tenant.id, newer_run),
            )

    stored_a, stored_b = asyncio.run(records())
    assert stored_a.errors[0].code == "lease_lost" and stored_a.status == "failed"
    assert stored_b.status == "succeeded" and stored_b.counts.created == len(rows)


def test_a_run_that_trusts_nothing_written_fences_before_it_reads_after_a_stale_writer(
    tenant, app_env, capsys
):
    """A stale holder that opened its writer (summary marked, fence raised) and still has a
    transaction to send, and a newer run that writes nothing at all (an idle delta run): the
    newer run raises the fence before it reads the table (core/delta_reads.py), so the stale
    transaction is refused. Were the table read first, the stale row would land after the
    newer run judged the table current, and stay until the daily reconciliation."""
    before = _synced_member(tenant, app_env, capsys)
    ttl = timedelta(minutes=1)

    async def scenario() -> Any:
        async with SyncService(load_settings(app_env)) as service:
            stale_run, stale = await _stale_holder(service, tenant.id, ttl)
            # What the engine's writer does as it opens (core/lazy_writer.py): mark, fence.
            await service.sync_state.mark_writing(tenant.id, stale_run)
            early = await service.employees.writer(tenant.id, stale)
            await early.put_entity({**before, "Title": "Stale Title", "RunId": stale_run})

            # Its host freezes past the lease; a worker whose clock says so takes the tenant.
            later = await sync_exclusively(
                service, RunRequest(tenant.id), now=lambda: utc_now() + 2 * ttl
            )
            with pytest.raises(LeaseLost):
                await early.flush()  # the frozen host wakes up and sends what it had
            return later

    later = asyncio.run(scenario())
    assert later.status == "succeeded" and later.mode == "delta", later.to_json()
    assert sum(later.to_json()["counts"][k] for k in ("created", "updated", "deleted")) == 0
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[_member_id(tenant)]
    assert after["Title"] == before["Title"] and after["RunId"] == before["RunId"]


def test_a_stale_runs_writing_mark_that_lands_late_stops_its_writes(tenant, app_env, capsys):
    """The argument of core/delta_reads.py: a run marks the summary before its first write, so a
    newer holder that finds the summary trusted may read before it fences. A mark checked the
    lease and then went out: a stale holder whose host froze between the check and the send
    (its fence already raised, as the engine raises both at once) marks the summary after the
    newer holder, an idle run that raises no fence, read it as trusted. Were the mark to count,
    the stale run's rows would land after that run judged the table current."""
    before = _synced_member(tenant, app_env, capsys)
    ttl = timedelta(minutes=1)

    async def scenario() -> Any:
        async with SyncService(load_settings(app_env)) as service:
            stale_run, stale = await _stale_holder(service, tenant.id, ttl)
            early = await service.employees.writer(tenant.id, stale)  # fence raised, checked
            store = service.run_sync_state.for_lease(service.leases, stale)  # the run's store
            table = store._table
            send, sending, wake = table.submit_transaction, asyncio.Event(), asyncio.Event()

            async def frozen(operations: Any, **kwargs: Any) -> Any:
                sending.set()  # the host freezes with the mark about to go out
                await wake.wait()
                return await send(operations, **kwargs)

            table.submit_transaction = frozen  # type: ignore[method-assign]
            mark = asyncio.create_task(store.mark_writing(tenant.id, stale_run))
            await sending.wait()
            later = await sync_exclusively(
                service, RunRequest(tenant.id), now=lambda: utc_now() + 2 * ttl
            )
            wake.set()  # the frozen host wakes up and goes on
            try:
                await mark
            except LeaseLost:
                pass  # the stale run stops before its first write (core/lazy_writer.py)
            else:
                await early.put_entity({**before, "Title": "Stale Title", "RunId": stale_run})
                await early.flush()
            return later

    later = asyncio.run(scenario())
    assert later.status == "succeeded" and later.mode == "delta", later.to_json()
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[_member_id(tenant)]
    assert after["Title"] == before["Title"] and after["RunId"] == before["RunId"]


def _synced_member(tenant: Any, app_env: dict[str, str], capsys: Any) -> dict[str, Any]:
    """A member's row after a full run (a trusted summary, a delta link)."""
    assert main(["sync"]) == 0, capsys.readouterr()
    return stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[_member_id(tenant)]


def _member_id(tenant: Any) -> str:
    return str(tenant.of_kind("member")[0]["id"])


async def _stale_holder(service: SyncService, tenant_id: str, ttl: timedelta) -> tuple[str, Any]:
    """A run's id and the lease it holds: the holder that goes stale."""
    now = utc_now()
    stale_run = new_run_id(now)
    stale = await service.leases.acquire(tenant_id, stale_run, now, ttl)
    assert stale is not None
    return stale_run, stale


def row(tenant_id: str, number: int, title: str) -> dict[str, Any]:
    return {
        "PartitionKey": tenant_id,
        "RowKey": f"{number:08d}-0000-4000-8000-000000000000",
        "Email": f"user{number}@contoso.com",
        "Title": title,
        "SourceHash": title,
    }


def test_a_stale_holder_raising_the_fence_late_is_refused_and_the_holder_goes_on(tenant, app_env):
    now = utc_now()

    async def scenario() -> None:
        async with SyncService(load_settings(app_env, needs_graph=False)) as service:
            employees, leases = service.employees, service.leases
            ttl = timedelta(minutes=1)
            stale = await leases.acquire(tenant.id, new_run_id(now), now - 2 * ttl, ttl)
            assert stale is not None
            early = await employees.writer(tenant.id, stale)  # raised while it held the lease
            newer = await leases.acquire(tenant.id, new_run_id(now), now, ttl)  # took it over
            assert newer is not None
            current = await employees.writer(tenant.id, newer)

            # The stale holder raising the fence only now: its rows go up, its check fails...
            with pytest.raises(LeaseLost):
                await employees.writer(tenant.id, stale)
            # ...and the holder, whose slots it rewrote, raises them again and writes.
            for number in range(150):
                await current.put_entity(row(tenant.id, number, "new"), "created")
            await current.flush()
            assert current.committed["created"] == 150

            # A writer from before the take-over: refused whole, nothing of it written.
            await early.put_entity(row(tenant.id, 1, "old"), "updated")
            await early.put_entity(row(tenant.id, 999, "old"), "created")
            with pytest.raises(LeaseLost):
                await early.flush()
            assert sum(early.committed.values()) == 0
            await leases.release(newer)

    asyncio.run(scenario())
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert len(rows) == 150 and {r["Title"] for r in rows.values()} == {"new"}


class LosingProxy:
    """A proxy in front of Azurite that forwards every request and, for the first `lose`
    transactions, answers 503 once Azurite has committed them: a front end that timed out after
    the storage did the work. azure-core resends a POST answered 500/503/504
    (azure/core/pipeline/policies/_retry.py, `_is_method_retryable`)."""

    def __init__(self, table_port: int, lose: int):
        self.lose, self.lost = lose, 0
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", table_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                if self.path.endswith("$batch") and proxy.lose > proxy.lost:
                    proxy.lost += 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            # http.server dispatches on these names.
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_MERGE = _forward  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LosingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def test_a_transaction_resent_after_its_answer_was_lost_is_not_a_lost_lease(
    tenant, azurite, app_env
):
    with LosingProxy(azurite.table_port, lose=2) as proxy:
        through_proxy = azurite.connection_string.replace(
            f":{azurite.table_port}/", f":{proxy.port}/"
        )

        async def scenario() -> dict[str, int]:
            async with TableServiceClient.from_connection_string(through_proxy) as service:
                await ensure_tables(service)
                leases = LeaseStore(service)
                lease = await leases.acquire(tenant.id, new_run_id(utc_now()), utc_now(),
                                             timedelta(minutes=5))  # fmt: skip
                assert lease is not None
                writer = await TableEmployeeStore(service).writer(tenant.id, lease)
                for number in range(120):  # two transactions, each landing unanswered once
                    await writer.put_entity(row(tenant.id, number, "new"), "created")
                await writer.flush()
                await leases.release(lease)
                return dict(writer.committed)

        committed = asyncio.run(scenario())
    assert proxy.lost == 2
    assert committed == {"created": 120}
    assert len(stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)) == 120
