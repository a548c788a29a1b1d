"""A small local development server for the app: the same HTTP routes and handlers as
function_app.py (sync_core.surfaces.routes.ROUTES through sync_core.surfaces.api.handle), and
the same queue worker (devtools/local_worker.py: `sync-requests` in Azurite), without the
Functions host. Sync Now through it runs to `succeeded`.

    .venv/bin/python -m devtools.devserver --port 7071 [--timer] [-v]   # settings: environment

It serves plain http on localhost and checks no function key: it is for a developer's machine
and the browser tests, never for a deployment. `--timer` also runs the timer's tick on
SYNC_SCHEDULE. The simulator accepts an http redirect URI on localhost, so the consent page can
send the browser back to http://localhost:PORT/api/connect/callback (`scripts/demo.sh --keep`
registers it; by hand: `POST /_sim/apps/{clientId}/redirectUris`).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import re
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import timedelta

from aiohttp import web

from devtools.local_worker import run_timer, work_queue
from sync_core.core.schedule import ENQUEUE_SPREAD
from sync_core.surfaces.api import (
    ROUTE_PREFIX,
    ApiError,
    ApiRequest,
    ApiResponse,
    Route,
    handle,
)
from sync_core.surfaces.cli import _configure_logging as configure_logging_as_the_cli
from sync_core.surfaces.routes import ROUTES

log = logging.getLogger("devtools.devserver")


def _pattern(route: Route) -> re.Pattern[str]:
    # Function route templates: "{name}" is one path segment.
    body = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.template)
    return re.compile(f"/{ROUTE_PREFIX}/{body}")


_TABLE = [(_pattern(route), route) for route in ROUTES.values()]


def build_app(
    environ: Mapping[str, str],
    *,
    work_queue_too: bool = False,
    timer: bool = False,
    spread: timedelta = ENQUEUE_SPREAD,
) -> web.Application:
    async def dispatch(request: web.Request) -> web.Response:
        for pattern, route in _TABLE:
            # fullmatch: `$` would also match before a final newline (a path ending in %0A).
            match = pattern.fullmatch(request.path)
            if match:
                api_request = ApiRequest(
                    method=request.method,
                    url=str(request.url),
                    route_params=match.groupdict(),
                    params=dict(request.query),
                    body=await request.read(),
                )
                return _response(await handle(route, api_request, environ))
        return _response(ApiError(404, "not_found", "No such route.").response())

    app = web.Application()
    # [\s\S]: aiohttp's `.*` stops at a newline, so a path with %0A missed this catch-all and
    # got aiohttp's own plain-text 404 instead of the app's JSON answer.
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatch)
    if work_queue_too or timer:
        app.cleanup_ctx.append(_background(environ, work_queue_too, timer, spread))
    return app


def _response(answer: ApiResponse) -> web.Response:
    return web.Response(
        status=answer.status,
        text=answer.text(),
        headers=dict(answer.headers),
        content_type=answer.content_type,
        charset="utf-8",
    )


def _background(
    environ: Mapping[str, str], queue: bool, timer: bool, spread: timedelta
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(work_queue(environ, stop))] if queue else []
        if timer:
            tasks.append(asyncio.create_task(run_timer(environ, stop, spread)))
        yield
        # Ctrl-C stops a run in progress too: its lease is released on the way out and its
        # record closed as abandoned by the next run, as after a stopped function host.
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    return context


class DevServer:
    """The dev server on a background thread (for tests): `start()` returns its base URL."""

    def __init__(
        self,
        environ: Mapping[str, str],
        host: str = "localhost",
        port: int = 0,
        *,
        work_queue: bool = False,
        timer: bool = False,
        spread: timedelta = ENQUEUE_SPREAD,
    ):
        self._environ, self._host, self._port = environ, host, port
        self._work_queue, self._timer, self._spread = work_queue, timer, spread
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.base_url = ""

    def start(self) -> str:
        self._thread = threading.Thread(target=self._serve, name="devserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(30) or not self.base_url:
            raise RuntimeError("the development server did not start")
        return self.base_url

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = build_app(
            self._environ, work_queue_too=self._work_queue, timer=self._timer, spread=self._spread
        )
        runner = web.AppRunner(app)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, self._host, self._port)
        self._loop.run_until_complete(site.start())
        port = runner.addresses[0][1]
        self.base_url = f"http://{self._host}:{port}"
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def stop(self) -> None:
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._thread = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=_port, default=7071)
    parser.add_argument("--timer", action="store_true", help="also run the timer's tick")
    parser.add_argument("--no-queue", action="store_true", help="do not work sync-requests")
    parser.add_argument("-v", "--verbose", action="store_true", help="the SDKs' logs too")
    args = parser.parse_args(argv)
    # The CLI's rules: the app's own messages, the SDKs' only with -v; and this server's lines.
    configure_logging_as_the_cli(args.verbose)
    log.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        # Bound before anything starts, so a busy port is one line, not a trace after the
        # queue worker has already begun.
        sock = socket.create_server((args.host, args.port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(
                f"error: port {args.port} on {args.host} is already in use (another dev "
                "server?); stop it or pick another with --port",
                file=sys.stderr,
            )
        else:  # a host that does not resolve, a port this user may not bind: one line too
            reason = error.strerror or str(error)
            print(
                f"error: cannot listen on {args.host}:{args.port} ({reason}); check --host and "
                "--port",
                file=sys.stderr,
            )
        return 1
    app = build_app(os.environ, work_queue_too=not args.no_queue, timer=args.timer)
    print(f"serving the app's API on http://{args.host}:{args.port}/api (Ctrl-C stops)")
    web.run_app(app, sock=sock, print=None)
    return 0


def _port(text: str) -> int:
    port = int(text)  # argparse turns the ValueError into its own one-line error
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535)")
    return port


if __name__ == "__main__":
    sys.exit(main())
