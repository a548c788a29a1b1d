"""The stand-ins a benchmark runs against: Azurite and the simulator serving one generated
tenant, with the app's settings in os.environ, stopped whatever the benchmark did."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from simulator.testing import prepare_trust


@contextmanager
def simulated_tenant(
    *, adjust: Callable[[dict[str, Any]], None] | None = None, **options: Any
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """(simulator, tenant) for a world made with GeneratorOptions(**options); `adjust` may
    change the tenant (its consents, say) before the simulator serves it."""
    # The CA is trusted before aiohttp is imported (simulator/testing.py says why).
    ca = prepare_trust(Path(tempfile.mkdtemp(prefix="bench-trust-")))
    from devtools.azurite import start_azurite
    from simulator import Simulator, World
    from simulator.generator import GeneratorOptions, generate_world

    world = generate_world(GeneratorOptions(**options))
    tenant = world["tenants"][0]
    if adjust is not None:
        adjust(tenant)
    azurite = start_azurite()
    simulator = Simulator(World.from_dict(world), ca=ca)
    simulator.start()
    try:
        os.environ.update(simulator.environment(tenant["id"]))
        os.environ["TABLES_CONNECTION_STRING"] = azurite.connection_string
        yield simulator, tenant
    finally:
        simulator.stop()
        azurite.stop()
