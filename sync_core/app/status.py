"""GET /api/status: per tenant, the last run, the last success, when it is due next."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_core.app.service import SyncService
from sync_core.app.tenant_schedules import schedule_of
from sync_core.app.tenants import served_tenants
from sync_core.core.health import tenant_health
from sync_core.core.report import RunReport
from sync_core.core.run_index import RECENT_RUNS, RunIndex
from sync_core.core.schedule import TenantSchedule

STATUS_HISTORY = RECENT_RUNS  # what the run index keeps of each tenant


async def status_of_tenants(service: SyncService, now: datetime) -> list[dict[str, Any]]:
    """Per tenant: last run, last success, next due, employees (as of the last success)."""
    tenants = await served_tenants(service)
    names = await service.registry.names()
    accounts = await service.registry.accounts()
    # The schedule of every tenant: one query of the run index rows (with their leases).
    rows = await service.runs.index.all()
    indexes = {tenant: row.index for tenant, row in rows.items()}
    leases = {tenant: row.lease for tenant, row in rows.items() if row.lease is not None}
    statuses = []
    for tenant_id in sorted(tenants):
        index = indexes.get(tenant_id, RunIndex())
        plan = await schedule_of(service, tenant_id, index, leases, now, close_abandoned=False)
        status = tenant_status_json(plan, tenants[tenant_id], names.get(tenant_id))
        statuses.append({**status, "account": accounts.get(tenant_id)})  # who linked it
    return statuses


def tenant_status_json(
    plan: TenantSchedule, enabled: bool, name: str | None = None
) -> dict[str, Any]:
    def run(report: RunReport | None) -> dict[str, Any] | None:
        if report is None:
            return None
        data = report.to_json()
        keys = ("runId", "status", "trigger", "dryRun", "startedAt", "finishedAt", "errors")
        return {key: data[key] for key in keys}

    success = plan.last_success
    return {
        "tenantId": plan.tenant_id,
        "tenantName": name,  # stored when the tenant was linked
        "enabled": enabled,
        "intervalHours": round(plan.interval.total_seconds() / 3600, 2),
        "lastRun": run(plan.last_run),
        "lastSuccess": run(success),
        "consecutiveFailures": plan.consecutive_failures,
        "inFlight": run(plan.in_flight),
        "due": enabled and plan.due,
        "nextDueAt": _iso(plan.next_due_at) if enabled and plan.next_due_at else None,
        "employees": success.counts.employees if success else None,
        "health": tenant_health(plan.last_over, success, plan.consecutive_failures),
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
