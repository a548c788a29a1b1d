"""GET /api/connect/{requestId}: a connect request's outcome as the server saw it.

The dashboard reads this (with the function key) instead of trusting the redirect's query: the
redirect carries only the request id and a coarse outcome (docs/api.md, "Linking a tenant").
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sync_core.adapters.tables.connect_requests import ConnectRequest


def connect_request_view(request: ConnectRequest, now: datetime) -> dict[str, Any]:
    outcome = request.outcome
    status = outcome.get("status") or ("expired" if now >= request.expires_at else "pending")
    return {
        "requestId": request.nonce,
        "status": status,  # pending | linked | refused | failed | expired
        "account": request.account,
        "expectedTenant": request.expected_tenant,
        "tenantId": outcome.get("tenantId") or request.signed_in_tenant,
        "tenantName": outcome.get("tenantName"),
        "signedInAs": outcome.get("signedInAs") or request.signed_in_user,
        "alreadyLinked": outcome.get("alreadyLinked"),
        "configReplaced": outcome.get("configReplaced"),
        "connectivity": outcome.get("connectivity"),
        "reasonCode": outcome.get("code"),  # a LinkRefusal, as app/linking.py stored it
        "errorCode": outcome.get("errorCode"),  # with status "failed": what failed
        "reason": outcome.get("reason"),
        "expiresAt": request.expires_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
