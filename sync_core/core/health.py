"""A tenant's health in one word, for GET /api/status and a dashboard: the same conditions the
alert rules in infra/modules/alerts.bicep fire on (pure).

- `failing`: the newest counted run failed (`since`: the end of the last success, the time from
  which no run has worked; null when none ever did), with the newest error code;
- `held`: the newest run held its deletions (Clean Up over its guard);
- `credentialExpiring`: the app's Key Vault credential expires within 30 days (or has expired),
  as the newest run's warnings say;
- `ok`: none of these (also a tenant that has not run yet).
Computed from facts the status already has (last run, last success, failures in a row), so it
does not depend on how they are stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_core.core.credential_expiry import expiry_in_warnings
from sync_core.core.report import RunReport, RunStatus


def tenant_health(
    last_run: RunReport | None, last_success: RunReport | None, consecutive_failures: int
) -> dict[str, Any]:
    expires = expiry_in_warnings(last_run.warnings) if last_run is not None else None
    health: dict[str, Any] = {
        "state": "ok",
        "credentialExpiresOn": expires.isoformat() if expires else None,
    }
    if last_run is None:
        return health
    # `last_run` is the newest counted run that is over: failed, or left queued/running by a
    # worker that died (abandoned), both counted in `consecutive_failures`.
    if consecutive_failures > 0 and last_run.status not in (RunStatus.SUCCEEDED, RunStatus.HELD):
        since = last_success.finished_at if last_success is not None else None
        health.update(
            state="failing",
            since=_iso(since) if since else None,
            consecutiveFailures=consecutive_failures,
            lastErrorCode=last_run.errors[-1].code if last_run.errors else None,
        )
    elif last_run.status == RunStatus.HELD:
        health.update(state="held", deletesHeld=last_run.counts.deletesHeld)
    elif expires is not None:
        health["state"] = "credentialExpiring"
    return health


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
