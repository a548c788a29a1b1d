"""The app's settings for one simulated tenant, put in os.environ as a deployment would have
them (azure-identity reads the managed-identity endpoint from there): the session's Azurite
(tests/conftest.py app_env) or one of a test's own."""

from __future__ import annotations

from typing import Any

import pytest

# Set on a developer's machine, they would make the app sign in or store elsewhere.
FOREIGN = ("ENTRA_CLIENT_SECRET", "TABLES_ENDPOINT", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID")


def app_settings(
    simulator: Any, tenant_id: str, tables_connection_string: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    for name in FOREIGN:
        monkeypatch.delenv(name, raising=False)
    env = {
        **simulator.environment(tenant_id),
        "TABLES_CONNECTION_STRING": tables_connection_string,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
