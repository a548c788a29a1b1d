"""End to end in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) opens the sign-in URL the app made, signs in on the simulator's authorize page as a
Global Administrator, is sent on to the admin-consent page of that tenant, accepts, and comes back
to the callback served by the development server (devtools/devserver.py, the same handlers as
function_app.py), whose page shows the tenant's name and connectivity.

scripts/install-browser.sh (run by scripts/test.sh) installs the browser when it is missing; a browser that cannot start FAILS
this test (never a skip).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from devtools.devserver import DevServer
from simulator.signin import GLOBAL_ADMINISTRATOR
from tests.integration.browser import headless_chromium

pytestmark = pytest.mark.integration


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    # The simulator's certificate comes from the test CA, which Chromium's store lacks.
    with headless_chromium("--ignore-certificate-errors") as driver:
        yield driver


@pytest.fixture
def dev_server(app_env) -> Iterator[str]:
    server = DevServer(dict(os.environ))
    yield server.start()
    server.stop()


def test_an_admin_links_the_tenant_in_the_browser(simulator, tenant, dev_server, browser):
    trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    with httpx.Client(verify=trust) as http:
        link = http.post(f"{dev_server}/api/connect", json={"account": "cust-1"}).json()
    callback = f"{dev_server}/api/connect/callback"
    simulator.add_redirect_uri(os.environ["ENTRA_CLIENT_ID"], callback)
    admin = tenant.users[0]["id"]
    simulator.signin.set_roles(tenant.id, admin, (GLOBAL_ADMINISTRATOR,))
    simulator.signin.plan(tenant_id=tenant.id, user_id=admin)  # preselects the account
    try:
        browser.get(link["consentUrl"])
        assert "Sign in" in browser.page_source
        browser.find_element(By.ID, "sign-in").click()
        WebDriverWait(browser, 120).until(
            expected_conditions.presence_of_element_located((By.ID, "accept"))
        )
        assert "Entra Employee Sync" in browser.page_source
        assert f"/{tenant.id}/v2.0/adminconsent" in browser.current_url  # that tenant only
        browser.find_element(By.ID, "accept").click()
        WebDriverWait(browser, 120).until(
            expected_conditions.presence_of_element_located((By.ID, "tenant-name"))
        )
    finally:
        simulator.signin.clear()
    assert browser.current_url.startswith(callback)
    assert browser.find_element(By.ID, "tenant-name").text == "Contoso Ltd"
    assert browser.find_element(By.ID, "tenant-id").text == tenant.id
    assert browser.find_element(By.ID, "connectivity").text == "Connectivity: OK"
    assert int(browser.find_element(By.ID, "users-in-scope").text) > 0
    with httpx.Client(verify=trust) as http:
        outcome = http.get(f"{dev_server}/api/connect/{link['requestId']}").json()
    assert outcome["status"] == "linked" and outcome["account"] == "cust-1"
    assert outcome["signedInAs"] == tenant.users[0]["userPrincipalName"]
