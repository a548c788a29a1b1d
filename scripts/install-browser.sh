#!/usr/bin/env bash
# Installs what the browser test (tests/integration/test_connect_browser.py) needs; scripts/test.sh
# runs it. The demo does not need a browser, so scripts/bootstrap.sh leaves it out.
set -euo pipefail
# The browser test needs Debian's Chromium and its driver (never a browser build downloaded by a
# tool). Installed only when missing: apt-get update and the install take a while.
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "install-browser: installing chromium and chromium-driver (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "install-browser: chromium is missing and cannot be installed here (needs root and apt-get):" \
      "run 'apt-get install -y chromium chromium-driver' as root; the browser test fails" \
      "without it." >&2
  fi
fi
