"""Sync Now from a browser, against the development server, waits for the run and sees it
succeed: the dev server works the `sync-requests` queue (devtools/local_worker.py), so the run
does not stay `queued`. Headless Chromium (Debian's chromium + chromium-driver, via Selenium),
as in test_connect_browser.py; a browser that cannot start FAILS this test (never a skip).

The app has no page of its own with a Sync Now button (a dashboard calls the API from its
server, so the function key never reaches a browser): the page here is the smallest such
dashboard, a button whose click POSTs /api/sync and polls the statusUrl it answers."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devtools.azurite import start_azurite
from devtools.devserver import DevServer
from tests.app_settings import app_settings
from tests.integration.browser import headless_chromium

pytestmark = pytest.mark.integration

# Loaded into a page of the dev server's origin: the button and what it does.
DASHBOARD = """
document.body.innerHTML = '<button id="sync-now">Sync Now</button><p id="status">idle</p>';
document.getElementById('sync-now').onclick = async () => {
  const status = document.getElementById('status');
  const answer = await fetch('/api/sync', {method: 'POST', body: JSON.stringify({tenantId: arguments[0]})});
  const {statusUrl} = await answer.json();
  status.textContent = 'queued';
  while (true) {
    const run = await (await fetch(statusUrl)).json();
    status.textContent = run.status;
    if (['succeeded', 'failed', 'held'].includes(run.status)) return;
    await new Promise(done => setTimeout(done, 200));
  }
};
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture
def dev_server(simulator, tenant, monkeypatch) -> Iterator[str]:
    # Its own Azurite: the session's queue holds messages other tests sent and nobody worked.
    storage = start_azurite()
    app_settings(simulator, tenant.id, storage.connection_string, monkeypatch)
    server = DevServer(dict(os.environ), work_queue=True)
    yield server.start()
    server.stop()
    storage.stop()


@pytest.mark.timeout(240)
def test_sync_now_in_the_browser_waits_for_the_run_to_succeed(tenant, dev_server, browser):
    browser.get(f"{dev_server}/api/status")  # any page of the dev server's origin
    browser.execute_script(DASHBOARD, tenant.id)
    browser.find_element(By.ID, "sync-now").click()
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 180).until(
        lambda _: status.text in ("succeeded", "failed", "held"), message=status.text
    )
    assert status.text == "succeeded"
