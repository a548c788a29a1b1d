"""Calling the functions of function_app.py directly, without a Functions host.

`app.get_functions()` may run once per process (a second call raises on "duplicate" names), so the
built functions are cached here. An HTTP call builds a `func.HttpRequest` as the host would, with
a function key in the query string, to prove no answer ever echoes it.
"""

from __future__ import annotations

import asyncio
import functools
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from sync_core.adapters.storage_names import SYNC_QUEUE
from sync_core.surfaces.routes import ROUTES

HOST = "https://sync.example.net"
FUNCTION_KEY = "k3y-N0t-T0-B3-3ch0ed"


@functools.cache
def built_functions() -> dict[str, Any]:
    import function_app

    return {function.get_function_name(): function for function in function_app.app.get_functions()}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error_code(self) -> str:
        return self.json["error"]["code"]


def call(
    name: str,
    method: str = "GET",
    route_params: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    body: bytes | str | dict[str, Any] | list[Any] | None = None,
) -> Answer:
    """Invoke the HTTP function `name` as the host would."""
    route_params = route_params or {}
    path = ROUTES[name].template.format(**route_params)
    if isinstance(body, dict | list):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    request = func.HttpRequest(
        method,
        f"{HOST}/api/{path}?code={FUNCTION_KEY}",
        headers={"content-type": "application/json", "x-functions-key": FUNCTION_KEY},
        params={"code": FUNCTION_KEY, **(params or {})},
        route_params=route_params,
        body=body or b"",
    )
    function = built_functions()[name].get_user_function()
    response: func.HttpResponse = asyncio.run(function(request))
    text = response.get_body().decode()
    assert response.mimetype == "application/json"
    assert FUNCTION_KEY not in text and FUNCTION_KEY not in json.dumps(dict(response.headers))
    return Answer(response.status_code, dict(response.headers), text)


def route_of(url: str) -> dict[str, str]:
    """The route parameters of a runs/{tenantId}/{runId} URL this API answered with."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == HOST and not parts.query
    _, api, runs, tenant, run_id = parts.path.split("/")
    assert (api, runs) == ("api", "runs")
    return {"tenantId": tenant, "runId": run_id}


def deliver(body: str, dequeue_count: int = 1, name: str = "sync_worker") -> None:
    """Hand a queue message (its decoded text, as the trigger does) to a queue function."""
    # azure.functions.queue.QueueMessage is the class the host's converter builds (with the
    # dequeue count); func.QueueMessage is its base without it.
    message = QueueMessage(body=body.encode(), dequeue_count=dequeue_count)
    asyncio.run(built_functions()[name].get_user_function()(message))


class SyncQueue:
    """The real `sync-requests` queue in Azurite, read as the trigger would read it."""

    def __init__(self, connection_string: str):
        policies = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": TextBase64DecodePolicy(),
        }
        self.client = QueueClient.from_connection_string(connection_string, SYNC_QUEUE, **policies)
        self.raw = QueueClient.from_connection_string(connection_string, SYNC_QUEUE)

    def clear(self) -> None:
        try:
            self.client.create_queue()
        except ResourceExistsError:
            pass
        self.client.clear_messages()

    def raw_texts(self) -> list[str]:
        """The visible messages as stored: base64 text, without taking them."""
        return [message.content for message in self.raw.peek_messages(max_messages=32)]

    def take_all(self) -> list[Any]:
        taken = []
        for message in self.client.receive_messages(max_messages=32, visibility_timeout=30):
            self.client.delete_message(message)
            taken.append(message)
        return taken


def call_callback(params: dict[str, str], *, form: bool = False) -> Answer:
    """The consent callback as the admin's browser reaches it: anonymous, no function key.
    `form`: posted as a form (the sign-in's answer, response_mode=form_post)."""
    request = func.HttpRequest(
        "POST" if form else "GET",
        f"{HOST}/api/{ROUTES['connect_callback'].template}",
        headers={"Content-Type": "application/x-www-form-urlencoded"} if form else {},
        params={} if form else params,
        route_params={},
        body=urlencode(params).encode() if form else b"",
    )
    function = built_functions()["connect_callback"].get_user_function()
    response: func.HttpResponse = asyncio.run(function(request))
    assert response.mimetype == "text/html"
    return Answer(response.status_code, dict(response.headers), response.get_body().decode())
