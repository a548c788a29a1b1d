"""The idle budget holds for a group-scoped tenant with manager fields too (issues 15, 16, 19):
a scheduled idle delta run makes at most 3 Graph requests (/organization, the users' and the
groups' delta pages) and, through the tick's claim and the worker, at most 4 table requests, 2
of them writes (the lease): no group or manager table read, no row written."""

from __future__ import annotations

from datetime import timedelta

import pytest

from devtools.table_requests import TableRequestCounter
from sync_core.adapters.storage_names import CONFIGS_TABLE, LEASES_TABLE
from sync_core.app.worker import WorkAction
from sync_core.core.report import utc_now
from tests.integration import group_scopes, idle_runs
from tests.integration.group_scopes import scoped
from tests.integration.helpers import MANAGER_FIELDS, configure, graph_requests
from tests.integration.idle_runs import synced_then_ticked, work

pytestmark = pytest.mark.integration
nested, own_storage = group_scopes.nested, idle_runs.own_storage  # fixtures


def test_an_idle_run_of_a_group_scoped_tenant_with_manager_fields_keeps_the_budget(
    own_storage,
    cli,
    tenant,
    simulator,
    tmp_path,
    nested,
):
    configure(cli, tmp_path, {**MANAGER_FIELDS, **scoped([nested["alpha"]])})
    later = utc_now() + timedelta(minutes=16)
    body = synced_then_ticked(tenant.id, later)
    simulator.clear_requests()
    counter = TableRequestCounter()
    outcome = work(body, later, counter)
    report = outcome.report
    assert outcome.action == WorkAction.RAN
    assert (report.mode, report.status, report.idle) == ("delta", "succeeded", True)
    assert report.counts.employees == 2  # Alpha's members, Beta's through it
    assert len(graph_requests(simulator, tenant.id)) == report.graph_requests <= 3
    assert counter.total <= 4 and counter.writes <= 2, counter.requests
    assert counter.by_table(writes=True) == {LEASES_TABLE: 2}, counter.requests
    assert counter.by_table(writes=False) == {CONFIGS_TABLE: 2}, counter.requests
