"""Headless Chromium for the browser tests (Debian's chromium + chromium-driver, through
Selenium), installed by scripts/install-browser.sh. A browser that cannot start fails the test
that asked for it, never skips it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def headless_chromium(*extra_arguments: str) -> Iterator[webdriver.Chrome]:
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), (
        "Chromium is missing: run scripts/install-browser.sh as root (it installs Debian's chromium "
        "and chromium-driver), or `apt-get install -y chromium chromium-driver`"
    )
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: CI runs as root.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *extra_arguments):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()
