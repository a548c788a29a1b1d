"""Linking a tenant in one click: the admin-consent link, its callback, and unlinking.

`start_connect` records a connect request (a nonce row) and signs a state bound to it;
`complete_connect` trusts nothing of the callback but that state: signed by the app's key,
not expired, naming a request whose row holds its digest, taken once. Only then does it read
what Microsoft answered, register the tenant, read its name and check its connectivity.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sync_core.adapters.tables.connect_requests import ConnectRequest
from sync_core.app.check import CheckResult, check_connectivity
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import parse_config, stored_form
from sync_core.core.consent_state import (
    STATE_LIFETIME,
    StateError,
    consent_url,
    sign_state,
    state_digest,
    verify_state,
)
from sync_core.errors import FatalError, SyncError
from sync_core.settings import is_tenant_id

# Consent replicates in seconds: until then Entra ID answers AADSTS700016 (the app is not in the
# tenant yet) or Graph 403 (no roles yet). The first reads retry that long, then report it.
CONSENT_WAIT_SECONDS = 30.0
CONSENT_RETRY_SECONDS = 1.0
_NOT_REPLICATED = {"unknown_app", "missing_consent"}


@dataclass(frozen=True)
class ConnectLink:
    consent_url: str
    state: str
    expires_at: datetime


@dataclass(frozen=True)
class ConnectOutcome:
    linked: bool
    tenant_id: str | None
    tenant_name: str | None
    already_linked: bool
    reason: str | None  # plain words when nothing was linked
    check: CheckResult | None
    return_url: str | None


async def start_connect(
    service: SyncService,
    *,
    callback_url: str,
    return_url: str | None,
    config: TenantConfig | None,
    now: datetime,
) -> ConnectLink:
    settings = service.settings
    if settings.client_id is None:
        raise FatalError("no_client_id", "ENTRA_CLIENT_ID is not set.", "Set ENTRA_CLIENT_ID.")
    nonce = secrets.token_urlsafe(18)
    expires_at = now + STATE_LIFETIME
    state = sign_state(await service.connect_requests.signing_key(), nonce, expires_at)
    await service.connect_requests.add(
        ConnectRequest(
            nonce=nonce,
            state_digest=state_digest(state),
            expires_at=expires_at,
            return_url=return_url,
            config_text=stored_form(config) if config is not None else None,
        )
    )
    url = consent_url(
        settings.authority_host, settings.client_id, settings.graph_base_url, callback_url, state
    )
    return ConnectLink(url, state, expires_at)


async def take_request(
    service: SyncService, params: Mapping[str, str], now: datetime
) -> ConnectRequest:
    """The connect request the callback's state names, taken once; StateError otherwise."""
    state = params.get("state") or ""
    if not state:
        raise StateError("forged", "The link carries no state; start again from the app.")
    key = await service.connect_requests.signing_key()
    verified = verify_state(key, state, now)
    return await service.connect_requests.consume(verified.nonce, state_digest(state))


async def complete_connect(
    service: SyncService, params: Mapping[str, str], now: datetime
) -> ConnectOutcome:
    """`service` is built from settings with the app registration (load_settings' needs_graph)."""
    request = await take_request(service, params, now)
    tenant = (params.get("tenant") or "").lower()
    refused = _refusal(params, tenant)
    if refused is not None:
        return ConnectOutcome(False, None, None, False, refused, None, request.return_url)
    already = await service.registry.enabled(tenant) is not None
    config = await _config_to_apply(service, request, tenant, already)
    await service.configs.put(tenant, config.model_copy(update={"enabled": True}))
    name = await _tenant_name_after_consent(service, tenant)
    result = await check_connectivity(service.settings, tenant)
    name = name or result.tenant_name
    await service.configs.set_tenant_name(tenant, name)
    return ConnectOutcome(True, tenant, name, already, None, result, request.return_url)


async def unlink_tenant(service: SyncService, tenant_id: str, *, remove_employees: bool) -> int:
    """Stop serving the tenant; its employees are removed only when asked. Returns how many
    were removed. Raises LookupError for a tenant that is not registered."""
    if not await service.configs.remove(tenant_id):
        raise LookupError(tenant_id)
    if not remove_employees:
        return 0
    writer = await service.employees.writer(tenant_id)
    removed = 0
    try:
        async for entity in service.employees.all(tenant_id):
            await writer.delete(entity["RowKey"])
            removed += 1
        await writer.flush()
    finally:
        await writer.abort()
    if (photos := service.photo_store()) is not None:
        await photos.remove_tenant(tenant_id)  # the tenant's photo blobs go with its employees
    return removed


async def _config_to_apply(
    service: SyncService, request: ConnectRequest, tenant: str, already: bool
) -> TenantConfig:
    # Linked again: the stored configuration stays unless the request brought one.
    if request.config_text is not None:
        return parse_config(json.loads(request.config_text))
    if already:
        return await service.effective_config(tenant)
    return TenantConfig()


async def _tenant_name_after_consent(service: SyncService, tenant: str) -> str | None:
    waited = 0.0
    while True:
        try:
            directory = await service.open_directory(tenant)
            try:
                organization = await directory.organization()
            finally:
                await directory.close()
            if organization is not None:
                return organization.display_name
            problem = "missing_consent"
        except SyncError as failure:
            problem = failure.code
        if problem not in _NOT_REPLICATED or waited >= CONSENT_WAIT_SECONDS:
            return None  # the check that follows reports the problem with its fix
        await asyncio.sleep(CONSENT_RETRY_SECONDS)
        waited += CONSENT_RETRY_SECONDS


def _refusal(params: Mapping[str, str], tenant: str) -> str | None:
    """Why nothing is linked, in plain words; None when consent was granted."""
    error = params.get("error")
    description = params.get("error_description") or ""
    if error:
        if "AADSTS65004" in description or params.get("error_subcode") == "cancel":
            return "The administrator declined the consent, so nothing was linked."
        if "AADSTS90094" in description:
            return (
                "The account that signed in is not an administrator of that tenant. Ask a "
                "Global Administrator (or a Cloud Application Administrator) to open the link."
            )
        if error == "unauthorized_client" or "AADSTS7000112" in description:
            return (
                "The app is not allowed in that tenant (disabled or blocked by its policies). "
                "An administrator there must allow it under Enterprise applications."
            )
        return f"Microsoft did not grant consent ({error}): {description[:300]}"
    if params.get("admin_consent", "").lower() != "true" or not is_tenant_id(tenant):
        return "Microsoft's answer did not say consent was granted, so nothing was linked."
    return None
