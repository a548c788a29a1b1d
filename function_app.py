"""The Azure Functions surface (Python v2 programming model): parse, call sync_core, answer.

Nothing here decides anything: the schedule lives in sync_core.core.schedule and
sync_core.app.dispatch, the queue worker in sync_core.app.worker, the HTTP API in
sync_core.surfaces.routes (docs/api.md). No client is built at import time: the host imports
this module within its start-up limit, and every
invocation opens what it needs.

HTTP routes declare no method list on purpose: for a method a route does not list, the host
answers a bare 404 (azure-functions-host#10098), so each route accepts every method and the app
answers 405 with an `Allow` header itself.
"""

from __future__ import annotations

import logging
import os

import azure.functions as func

from sync_core.adapters.storage_names import POISON_QUEUE, SYNC_QUEUE
from sync_core.app.dispatch import scheduled_tick
from sync_core.app.housekeeping import sweep_connect_requests
from sync_core.app.worker import fail_poisoned_run, process_message
from sync_core.core.report import utc_now
from sync_core.settings import load_settings
from sync_core.surfaces.api import ApiRequest, handle
from sync_core.surfaces.routes import ROUTES

# The Azure SDKs log every HTTP request at INFO: noise in Application Insights.
logging.getLogger("azure").setLevel(logging.WARNING)

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# The queue trigger's connection: identity-based AzureWebJobsStorage__* in Azure (infra/), the
# storage emulator locally (local.settings.sample.json).
STORAGE_CONNECTION = "AzureWebJobsStorage"


@app.timer_trigger(schedule="%SYNC_SCHEDULE%", arg_name="timer", run_on_startup=False)
async def scheduled_sync(timer: func.TimerRequest) -> None:
    settings, now = load_settings(os.environ, needs_graph=False), utc_now()
    await scheduled_tick(settings, now)
    await sweep_connect_requests(settings, now)


@app.queue_trigger(arg_name="message", queue_name=SYNC_QUEUE, connection=STORAGE_CONNECTION)
async def sync_worker(message: func.QueueMessage) -> None:
    await process_message(os.environ, message.get_body(), message.dequeue_count)


@app.queue_trigger(arg_name="message", queue_name=POISON_QUEUE, connection=STORAGE_CONNECTION)
async def sync_poison(message: func.QueueMessage) -> None:
    await fail_poisoned_run(os.environ, message.get_body())


@app.route(route=ROUTES["sync_now"].template)
async def sync_now(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("sync_now", req)


@app.route(route=ROUTES["get_run"].template)
async def get_run(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("get_run", req)


@app.route(route=ROUTES["list_runs"].template)
async def list_runs(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("list_runs", req)


@app.route(route=ROUTES["status"].template)
async def status(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("status", req)


@app.route(route=ROUTES["check_connectivity"].template)
async def check_connectivity(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("check_connectivity", req)


@app.route(route=ROUTES["tenant_config"].template)
async def tenant_config(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("tenant_config", req)


@app.route(route=ROUTES["list_employees"].template)
async def list_employees(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("list_employees", req)


@app.route(route=ROUTES["connect"].template)
async def connect(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("connect", req)


# The one anonymous route: the browser returns here from Microsoft's consent page without a
# function key; the handler trusts nothing but the signed, single-use state.
@app.route(route=ROUTES["connect_callback"].template, auth_level=func.AuthLevel.ANONYMOUS)
async def connect_callback(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("connect_callback", req)


@app.route(route=ROUTES["connect_status"].template)
async def connect_status(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("connect_status", req)


@app.route(route=ROUTES["unlink_tenant"].template)
async def unlink_tenant(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("unlink_tenant", req)


@app.route(route=ROUTES["explain_user"].template)
async def explain_user(req: func.HttpRequest) -> func.HttpResponse:
    return await _answer("explain_user", req)


async def _answer(function: str, req: func.HttpRequest) -> func.HttpResponse:
    request = ApiRequest(
        method=req.method,
        url=req.url,
        route_params=dict(req.route_params),
        params=dict(req.params),
        body=req.get_body() or b"",
    )
    response = await handle(ROUTES[function], request, os.environ)
    return func.HttpResponse(
        response.text(),
        status_code=response.status,
        headers=dict(response.headers),
        mimetype=response.content_type,
        charset="utf-8",
    )
