"""Shared fixtures: Azurite and the simulator, started once per session on free ports.

The simulator's CA must be trusted before anything imports aiohttp (azure-core's async
transport builds its TLS context at import), so trust is prepared first, before other imports.
"""

from __future__ import annotations

import tempfile

from simulator.testing import prepare_trust

CA = prepare_trust(tempfile.mkdtemp(prefix="entra-sync-trust-"))

import json  # noqa: E402 - after the trust setup on purpose
import os  # noqa: E402
import uuid  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Iterator, Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from devtools.azurite import Azurite, start_azurite  # noqa: E402
from simulator import Simulator, World  # noqa: E402
from simulator.generator import GeneratorOptions, generate_world, kind_of  # noqa: E402
from sync_core.surfaces.cli import main  # noqa: E402
from tests.app_settings import app_settings  # noqa: E402

BASE_SEED = 20261126

# Hypothesis profiles (tests/README.md): `ci` is derandomised, so CI runs the same examples every
# time; `dev` (the local default) draws new ones each run; `long` searches far longer, locally.
# The number of examples of a slow property test is chosen per test from the profile's name.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("long", deadline=None, print_blob=True, max_examples=1000)


def hypothesis_profile(environ: Mapping[str, str]) -> str:
    """HYPOTHESIS_PROFILE when set, else `ci` under CI=true, else `dev`."""
    chosen = environ.get("HYPOTHESIS_PROFILE") or (
        "ci" if environ.get("CI", "").lower() in ("true", "1") else "dev"
    )
    if chosen not in ("ci", "dev", "long"):
        raise ValueError(f"HYPOTHESIS_PROFILE={chosen!r}: use ci, dev or long")
    return chosen


settings.load_profile(hypothesis_profile(os.environ))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A skipped test proves nothing: fail the run (the integration tests must always run)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and exitstatus == 0:
        reporter.write_line(f"FAILED: {skipped} test(s) skipped; every test must run", red=True)
        session.exitstatus = 1


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = start_azurite()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    world = generate_world(GeneratorOptions(users=20, seed=BASE_SEED, tenant_name="Base Tenant"))
    sim = Simulator(World.from_dict(world), ca=CA)
    sim.start()
    yield sim
    sim.stop()


@dataclass
class SimTenant:
    """A tenant of its own for one test, in the shared simulator."""

    id: str
    name: str
    users: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [user for user in self.users if kind_of(user) == kind]


def add_tenant(simulator: Simulator, users: int, seed: int, name: str) -> SimTenant:
    tenant_id = str(uuid.UUID(int=uuid.uuid4().int))
    world = generate_world(
        GeneratorOptions(
            users=users,
            seed=seed,
            tenant_id=tenant_id,
            client_id=simulator.world.apps[0].client_id,
            tenant_name=name,
        )
    )
    tenant = world["tenants"][0]
    simulator.add_tenant(tenant)
    return SimTenant(tenant_id, name, tenant["users"])


@pytest.fixture
def reset_delta_and_faults(simulator: Simulator) -> Iterator[None]:
    """After the test, the session's simulator without the delta plans and faults it set (a
    module asks for it with `pytest.mark.usefixtures("reset_delta_and_faults")`)."""
    yield
    simulator.delta.clear()
    simulator.faults.clear()


@pytest.fixture
def tenant(simulator: Simulator, request: pytest.FixtureRequest) -> SimTenant:
    """60 generated users of every kind; the seed follows the test's name, so runs repeat."""
    seed = BASE_SEED + zlib.crc32(request.node.name.encode())
    return add_tenant(simulator, 60, seed, "Contoso Ltd")


@pytest.fixture
def app_env(
    simulator: Simulator, azurite: Azurite, tenant: SimTenant, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The app's settings for this tenant and the session's Azurite (tests/app_settings.py)."""
    return app_settings(simulator, tenant.id, azurite.connection_string, monkeypatch)


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def cli(app_env: dict[str, str], capsys: pytest.CaptureFixture[str]):
    """Runs `python -m sync_core ...` in-process, as an admin would from a shell."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
