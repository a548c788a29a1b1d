"""The stand-ins a benchmark runs against: Azurite and the simulator serving one generated
tenant, with the app's settings in os.environ, stopped whatever the benchmark did."""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class MeasuredRun:
    report: Any  # the run's RunReport
    seconds: float
    graph_requests: int  # the tenant's requests on the simulator's Graph surface
    peak_mib: float | None  # the Python heap's peak during the run, when traced


async def measured_run(
    service: Any, simulator: Any, tenant_id: str, *, full: bool, trace_memory: bool = False
) -> MeasuredRun:
    """One run through `sync_exclusively`, as the CLI and the worker run it, on a cleared
    request log; it must succeed (a benchmark of a failed run measures nothing)."""
    from sync_core.app.exclusive import sync_exclusively
    from sync_core.core.engine import RunRequest

    simulator.clear_requests()
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        report = await sync_exclusively(service, RunRequest(tenant_id, full=full))
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace_memory else None
    finally:
        if trace_memory:
            tracemalloc.stop()
    assert report.status == "succeeded", report.errors
    graph = sum(1 for r in simulator.requests if r.surface == "graph" and r.tenant == tenant_id)
    return MeasuredRun(report, seconds, graph, peak)
