"""The development server runs what the cloud runs: Sync Now over HTTP is worked from the
`sync-requests` queue in Azurite by the app's own worker and reaches `succeeded`; with the timer
on, a tick enqueues the due tenant and the run happens. Its edges: a busy port is one plain line,
the app's messages without the SDKs' dumps, and the app's JSON answers for odd paths."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from devtools.azurite import Azurite, start_azurite
from devtools.devserver import DevServer
from tests.app_settings import app_settings

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def own_azurite() -> Iterator[Azurite]:
    """An Azurite of these tests' own: the session's queue holds messages other tests sent and
    nobody worked, which a dev server here would work first."""
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture
def env(simulator, tenant, own_azurite, monkeypatch) -> dict[str, str]:
    values = app_settings(simulator, tenant.id, own_azurite.connection_string, monkeypatch)
    return values


@pytest.fixture
def worked(env) -> Iterator[str]:
    server = DevServer(dict(os.environ), work_queue=True)
    yield server.start()
    server.stop()


def _wait_final(http: httpx.Client, url: str, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = http.get(url).json()
        if run["status"] in ("succeeded", "failed", "held"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"the run did not finish: {run}")


def test_sync_now_runs_to_succeeded(worked, tenant):
    with httpx.Client(timeout=30) as http:
        answer = http.post(f"{worked}/api/sync", json={"tenantId": tenant.id})
        assert answer.status_code == 202, answer.text
        run = _wait_final(http, answer.json()["statusUrl"])
    assert run["status"] == "succeeded", run
    assert run["counts"]["created"] > 0


def test_the_timer_tick_enqueues_and_the_queue_runs_it(env, tenant, monkeypatch):
    monkeypatch.setenv("SYNC_SCHEDULE", "*/2 * * * * *")  # every 2 s: the test needs no wait
    server = DevServer(dict(os.environ), work_queue=True, timer=True, spread=timedelta(0))
    base = server.start()
    try:
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                runs = http.get(f"{base}/api/runs/{tenant.id}").json()["runs"]
                if any(r["status"] == "succeeded" for r in runs):
                    break
                time.sleep(0.2)
    finally:
        server.stop()
    assert [r["trigger"] for r in runs if r["status"] == "succeeded"][:1] == ["schedule"], runs


@pytest.mark.parametrize("path", ["/api/runs/%0A", "/api/runs/abc%0A", "/api/config/x%0Ay"])
def test_a_path_with_a_newline_gets_the_apps_json_answer(worked, path):
    answer = httpx.get(worked + path)
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"]


def test_an_unknown_route_is_a_json_404(worked):
    answer = httpx.get(f"{worked}/api/nothing%0Ahere")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _devserver(port: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.devserver", "--port", str(port), *extra],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_port_in_use_is_one_plain_line(env):
    with socket.socket() as busy:
        busy.bind(("localhost", 0))
        busy.listen()
        process = _devserver(busy.getsockname()[1])
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "Traceback" not in stderr, stderr
    (line,) = stderr.strip().splitlines()
    assert "already in use" in line and "--port" in line


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid"),
        (["--port", "70000"], "70000 is not a port"),
    ],
)
def test_a_host_or_port_that_cannot_be_used_is_a_plain_error(env, args, said):
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.devserver", *args],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (1, 2)
    assert "Traceback" not in stderr, stderr
    assert said in stderr.strip().splitlines()[-1]


@pytest.mark.timeout(180)
def test_the_logs_are_the_apps_messages_without_sdk_dumps(env, tenant):
    port = _free_port()
    process = _devserver(port)
    try:
        base = f"http://localhost:{port}"
        with httpx.Client(timeout=30) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    answer = http.post(f"{base}/api/sync", json={"tenantId": tenant.id})
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline and process.poll() is None
                    time.sleep(0.2)
            run = _wait_final(http, answer.json()["statusUrl"])
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert run["status"] == "succeeded"
    assert f"run {run['runId']}: ran (succeeded)" in stderr, stderr
    # azure-core's HTTP logging policy ("Request URL: ...", headers) and MSAL stay out.
    assert "Request URL" not in stderr and "Request headers" not in stderr, stderr
    assert "Traceback" not in stderr, stderr
