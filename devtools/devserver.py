"""A small local development server for the app's HTTP API: the same routes and handlers as
function_app.py (sync_core.surfaces.routes.ROUTES through sync_core.surfaces.api.handle),
without the Functions host.

    .venv/bin/python -m devtools.devserver --port 7071    # settings from the environment

It serves plain http on localhost and checks no function key: it is for a developer's machine
and the browser test, never for a deployment. The simulator accepts an http redirect URI on
localhost, so the consent page can send the browser back to http://localhost:PORT/api/connect/
callback (add it with `POST /_sim/apps/{clientId}/redirectUris`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import threading
from collections.abc import Mapping

from aiohttp import web

from sync_core.surfaces.api import ROUTE_PREFIX, ApiRequest, Route, handle
from sync_core.surfaces.routes import ROUTES


def _pattern(route: Route) -> re.Pattern[str]:
    # Function route templates: "{name}" is one path segment.
    body = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", route.template)
    return re.compile(f"^/{ROUTE_PREFIX}/{body}$")


_TABLE = [(_pattern(route), route) for route in ROUTES.values()]


def build_app(environ: Mapping[str, str]) -> web.Application:
    async def dispatch(request: web.Request) -> web.Response:
        for pattern, route in _TABLE:
            match = pattern.match(request.path)
            if match:
                api_request = ApiRequest(
                    method=request.method,
                    url=str(request.url),
                    route_params=match.groupdict(),
                    params=dict(request.query),
                    body=await request.read(),
                )
                answer = await handle(route, api_request, environ)
                return web.Response(
                    status=answer.status,
                    text=answer.text(),
                    headers=dict(answer.headers),
                    content_type=answer.content_type,
                    charset="utf-8",
                )
        return web.Response(status=404, text="no such route")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app


class DevServer:
    """The dev server on a background thread (for tests): `start()` returns its base URL."""

    def __init__(self, environ: Mapping[str, str], host: str = "localhost", port: int = 0):
        self._environ, self._host, self._port = environ, host, port
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
        runner = web.AppRunner(build_app(self._environ))
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
            self._thread.join(timeout=10)
            self._thread = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    web.run_app(build_app(os.environ), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
