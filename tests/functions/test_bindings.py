"""The bindings the host will read: triggers, schedule, queues, routes, auth; and host.json."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from functions_harness import built_functions

from sync_core.adapters.storage_names import POISON_QUEUE, SYNC_QUEUE
from sync_core.app.exclusive import LEASE_RENEW_EVERY, LEASE_TTL
from sync_core.app.worker import MAX_DEQUEUE_COUNT
from sync_core.core.schedule import QUEUED_TTL
from sync_core.surfaces.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]


def trigger(name: str) -> dict[str, Any]:
    bindings = built_functions()[name].get_bindings_dict()["bindings"]
    triggers = [b for b in bindings if str(b["type"]).endswith("Trigger")]
    assert len(triggers) == 1
    return triggers[0]


def timespan(text: str) -> timedelta:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_the_app_has_exactly_the_documented_functions() -> None:
    assert set(built_functions()) == {"scheduled_sync", "sync_worker", "sync_poison", *ROUTES}


def test_timer_ticks_on_the_schedule_setting_and_not_at_start_up() -> None:
    timer = trigger("scheduled_sync")
    assert timer["type"] == "timerTrigger"
    assert timer["schedule"] == "%SYNC_SCHEDULE%"
    assert timer["runOnStartup"] is False


@pytest.mark.parametrize(
    ("name", "queue"), [("sync_worker", SYNC_QUEUE), ("sync_poison", POISON_QUEUE)]
)
def test_queue_functions_read_the_sync_queues(name: str, queue: str) -> None:
    binding = trigger(name)
    assert binding["type"] == "queueTrigger"
    assert binding["queueName"] == queue
    assert binding["connection"] == "AzureWebJobsStorage"  # identity-based in infra/


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_http_route_is_documented_and_needs_a_function_key(name: str) -> None:
    binding = trigger(name)
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == ROUTES[name].template
    # The consent callback is reached by the admin's browser coming back from Microsoft.
    expected = "anonymous" if name == ANONYMOUS_ROUTE else "function"
    assert str(binding["authLevel"].value) == expected
    # No method list: the host would answer undeclared methods with a bare 404, so every method
    # reaches the app, which answers 405 (tests/functions/test_http_errors.py).
    assert "methods" not in binding
    api_doc = (ROOT / "docs" / "api.md").read_text()
    for method in ROUTES[name].methods:
        assert f"{method} /api/{ROUTES[name].template}" in api_doc


def test_openapi_documents_every_route_and_method() -> None:
    document = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
    documented = {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    expected = {(f"/{r.template}", m) for r in ROUTES.values() for m in r.methods}
    assert documented == expected
    assert document["security"] == [{"functionKey": []}, {"functionKeyQuery": []}]
    schemes = document["components"]["securitySchemes"]
    assert schemes["functionKey"] == {"type": "apiKey", "in": "header", "name": "x-functions-key"}


ANONYMOUS_ROUTE = "connect_callback"


def test_only_the_consent_callback_is_anonymous() -> None:
    anonymous = {
        name
        for name, function in built_functions().items()
        for binding in function.get_bindings_dict()["bindings"]
        if binding["type"] == "httpTrigger" and str(binding["authLevel"].value) == "anonymous"
    }
    assert anonymous == {ANONYMOUS_ROUTE}


def test_host_json_queue_and_timeout_settings_fit_the_lease_and_the_schedule() -> None:
    host = json.loads((ROOT / "host.json").read_text())
    assert host["version"] == "2.0"
    assert host["extensionBundle"]["version"] == "[4.*, 5.0.0)"
    queues = host["extensions"]["queues"]
    assert queues["maxDequeueCount"] == MAX_DEQUEUE_COUNT
    assert queues["messageEncoding"] == "base64"
    retry_delay = timespan(queues["visibilityTimeout"])
    # A redelivered attempt of a run whose worker died waits for that worker's lease to expire:
    # the retries must span longer than a lease, and a queued record must outlive the retries.
    assert retry_delay * (MAX_DEQUEUE_COUNT - 1) > LEASE_TTL
    assert retry_delay * MAX_DEQUEUE_COUNT + timedelta(minutes=10) < QUEUED_TTL
    assert LEASE_RENEW_EVERY * 3 < LEASE_TTL
    assert timespan(host["functionTimeout"]) >= timedelta(minutes=30)
    assert host["extensions"]["http"]["routePrefix"] == "api"


def test_importing_the_app_needs_no_settings_and_builds_no_client() -> None:
    # The host imports function_app.py within Flex Consumption's 30 s start-up limit, before any
    # setting may be valid: importing must not read settings or open connections.
    code = "import function_app; print(len(function_app.app.get_functions()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(len(ROUTES) + 3)
    assert "Traceback" not in result.stderr


def test_the_callback_route_wins_over_the_connect_request_route() -> None:
    """`connect/callback` also matches `connect/{requestId}`, and the Functions host tries routes
    in the alphabetical order of their functions' names, not literal segments first as ASP.NET
    Core does (Azure/azure-functions-host#9876, #3153): renamed so that it sorts after
    connect_status, Microsoft's redirect would meet a function key check."""
    templates = {name: ROUTES[name].template for name in ("connect_callback", "connect_status")}
    assert templates == {
        "connect_callback": "connect/callback",
        "connect_status": "connect/{requestId}",
    }
    names = sorted(built_functions())
    assert names.index("connect_callback") < names.index("connect_status")
