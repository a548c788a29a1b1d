"""`scripts/demo.sh --keep` (devtools.demo --keep), the newcomer's path: it leaves the simulator
and Azurite running for the CLI, and registers the development server's callback as a redirect
URI of the demo's app, so the README's linking walkthrough works the first time (the consent URL
the app makes for that callback opens the sign-in page, not Entra's AADSTS50011 "the redirect
URI ... does not match" error page). One demo serves both tests."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CALLBACK = "http://localhost:7071/api/connect/callback"  # devtools.devserver's default port


@pytest.fixture(scope="module")
def kept_demo() -> Iterator[tuple[str, str]]:
    """(the env file the demo says to source, what it printed), the demo still running."""
    demo = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--users", "30", "--keep"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        env_file, lines = None, []
        assert demo.stdout is not None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("source ") and env_file is None:
                env_file = line.split(maxsplit=1)[1].split(";")[0].strip()
            if "Press Ctrl-C" in line:
                break
        printed = "".join(lines)
        assert env_file is not None, printed
        yield env_file, printed
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    assert demo.returncode == 0


def in_demo_shell(env_file: str, command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`command` in a shell that sourced the demo's env file, as the README says to."""
    return subprocess.run(
        ["bash", "-c", f"source {env_file} && {command}"],
        cwd=cwd,
        env={k: v for k, v in os.environ.items() if not k.startswith(("ENTRA_", "TABLES_"))},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(300)
def test_demo_keep_leaves_the_simulator_and_azurite_running_for_the_cli(
    kept_demo, tmp_path
) -> None:
    env_file, _ = kept_demo
    result = in_demo_shell(env_file, f"{ROOT}/bin/sync-core runs --json", tmp_path)
    assert result.returncode == 0, result.stderr
    assert [run["status"] for run in json.loads(result.stdout)["runs"]] == [
        "succeeded",
        "succeeded",
    ]


@pytest.mark.timeout(300)
def test_demo_keep_registers_the_dev_servers_callback(kept_demo, tmp_path) -> None:
    env_file, printed = kept_demo
    assert "devtools.devserver --port 7071" in printed and CALLBACK in printed
    # The walkthrough's consent URL, made by the app for the dev server's callback.
    made = in_demo_shell(
        env_file,
        f"{ROOT}/bin/sync-core connect --json --account demo --callback {CALLBACK}",
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    consent_url = json.loads(made.stdout)["consentUrl"]
    ca = in_demo_shell(env_file, "echo $SSL_CERT_FILE", tmp_path).stdout.strip()
    page = httpx.get(consent_url, verify=ssl.create_default_context(cafile=ca))
    assert page.status_code == 200, page.text[:2000]
    # The sign-in page (the admin signs in first, then consents): the callback is registered.
    assert "AADSTS50011" not in page.text and 'id="sign-in"' in page.text
