"""Key Vault refusing the token the app's identity got (401, here an expired one) is reported as
what happened, not as "no identity could get a token". Through the CLI's `check` and `sync`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from simulator import Simulator, World
from simulator.generator import GeneratorOptions, generate_world
from sync_core.surfaces.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def skewed(simulator: Simulator) -> Iterator[Simulator]:
    """A simulator whose tokens are expired when issued, as a vault sees the tokens of a host
    whose clock is 10 minutes fast (its `exp` is already past by the vault's clock)."""
    world = generate_world(GeneratorOptions(users=5, seed=17, tenant_name="Skewed Ltd"))
    own = Simulator(World.from_dict(world), ca=simulator.ca, token_lifetime=-600)
    own.start()
    yield own
    own.stop()


@pytest.fixture
def skewed_env(skewed, azurite, monkeypatch) -> None:
    for name in ("ENTRA_CLIENT_SECRET", "TABLES_ENDPOINT", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    env = {**skewed.environment(), "TABLES_CONNECTION_STRING": azurite.connection_string}
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("command", [["check", "--json"], ["sync", "--json"]])
def test_an_expired_token_is_named_as_the_vaults_refusal(skewed_env, capsys, command):
    assert main(command) == 1
    document = json.loads(capsys.readouterr().out)
    problems = document["problems"] if command[0] == "check" else document["errors"]
    (problem,) = [p for p in problems if p["code"].startswith("key_vault")]
    assert problem["code"] == "key_vault_token_rejected"
    assert "refused the token" in problem["message"]
    assert "the token is expired" in problem["message"]  # the vault's own words
    assert "clock" in problem["fix"] and "AZURE_CLIENT_ID" not in problem["fix"]
