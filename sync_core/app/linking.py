"""The last step of linking: the consent answer, the proof that it took effect, the link.

Microsoft's admin-consent redirect proves nothing by itself (its `tenant` and `admin_consent` are
plain query values), so it is accepted only for the tenant the admin signed in to
(app/onboarding.py), and then an app-only token of that tenant must carry `tid` = the tenant
and `roles` with User.Read.All ("Admin consent on the Microsoft identity platform"; the token's
claims per "Access token claims reference"). Only then is the tenant written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from sync_core.adapters.tables.connect_requests import ConnectRequest
from sync_core.app.check import CheckResult, check_connectivity
from sync_core.app.service import SyncService
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import parse_config
from sync_core.core.limits import clean_text
from sync_core.errors import ErrorCode, LinkRefusal, SyncError

# Consent replicates in seconds: until then Entra ID answers AADSTS700016 (the app is not in the
# tenant yet) or tokens carry no roles. The proof retries that long, then reports it.
CONSENT_WAIT_SECONDS = 30.0
CONSENT_RETRY_SECONDS = 1.0
REQUIRED_ROLE = "User.Read.All"
_NOT_REPLICATED = {ErrorCode.UNKNOWN_APP, ErrorCode.MISSING_CONSENT}
# A token of another tenant: no error an admin sees by that name (the refusal is
# consent_not_in_effect), only the words that say so.
_WRONG_TENANT = "wrong_tenant"
OTHER_ACCOUNT = (
    "This organization is already linked to another account of the service. Nothing was "
    "changed. Unlink it there first, or contact support."
)


@dataclass(frozen=True)
class ConnectOutcome:
    linked: bool
    tenant_id: str | None
    tenant_name: str | None
    already_linked: bool
    reason: str | None  # plain words when nothing was linked
    check: CheckResult | None
    return_url: str | None
    request_id: str = ""
    next_url: str | None = None  # signed in: the admin-consent page comes next
    code: LinkRefusal | None = None  # why nothing was linked


async def refuse(
    service: SyncService, request: ConnectRequest, code: LinkRefusal, reason: str
) -> ConnectOutcome:
    """Nothing linked: the request's row records why, nothing else is written."""
    await service.connect_requests.finish(
        request.nonce,
        {
            "status": "refused",
            "code": code,
            "reason": reason,
            "account": request.account,
            "tenantId": request.signed_in_tenant,
            "signedInAs": request.signed_in_user,
        },
    )
    return ConnectOutcome(
        False, None, None, False, reason, None, request.return_url, request.nonce, code=code
    )


async def link_tenant(
    service: SyncService, request: ConnectRequest, params: Mapping[str, str]
) -> ConnectOutcome:
    tenant = request.signed_in_tenant or ""
    refused = consent_refusal(params, tenant)
    if refused is not None:
        return await refuse(service, request, *refused)
    missing = await consent_in_effect(service, tenant)
    if missing is not None:
        return await refuse(service, request, LinkRefusal.CONSENT_NOT_IN_EFFECT, missing)
    config = _requested(request).model_copy(update={"enabled": True})
    # New: the configuration and the account in one write. Linked before: the account is
    # claimed first (conditional: of two accounts racing, one wins), and only then, when asked,
    # the configuration is replaced; otherwise it and its `enabled` flag stay as they are.
    already = not await service.configs.create_linked(tenant, config, request.account)
    if already:
        if not await service.configs.claim(tenant, request.account):
            return await refuse(service, request, LinkRefusal.OTHER_ACCOUNT, OTHER_ACCOUNT)
        if request.replace:
            await service.configs.put(tenant, config)
    name = await _tenant_name(service, tenant)
    result = await check_connectivity(service.settings, tenant)
    name = clean_text(name or result.tenant_name or "") or None
    await service.configs.set_tenant_name(tenant, name)
    await service.connect_requests.finish(
        request.nonce,
        {
            "status": "linked",
            "tenantId": tenant,
            "tenantName": name,
            "account": request.account,
            "signedInAs": request.signed_in_user,
            "alreadyLinked": already,
            "configReplaced": not already or request.replace,
            "connectivity": "ok" if result.ok else "problems",
        },
    )
    return ConnectOutcome(
        True, tenant, name, already, None, result, request.return_url, request.nonce
    )


def _requested(request: ConnectRequest) -> TenantConfig:
    if request.config_text is not None:
        return parse_config(json.loads(request.config_text))
    return TenantConfig()


async def consent_in_effect(service: SyncService, tenant: str) -> str | None:
    """None once an app-only token of `tenant` says so (tid, roles); else why not, in words.
    Waits for replication (AADSTS700016, or a token without roles) as long as it takes."""
    from sync_core.adapters.credentials import entra_credential

    settings = service.settings
    waited = 0.0
    while True:
        credential = entra_credential(settings, tenant, await service.app_credential())
        try:
            token = (await credential.get_token(f"{settings.graph_base_url}/.default")).token
            problem = _token_problem(_claims(token), tenant)
        except SyncError as failure:
            problem = failure.code if failure.code in _NOT_REPLICATED else failure.message
        finally:
            await credential.close()
        if problem is None:
            return None
        if problem not in _NOT_REPLICATED or waited >= CONSENT_WAIT_SECONDS:
            return (
                "Microsoft did not confirm the consent: the app's token for that organization "
                f"{_words(problem)}. Nothing was linked; open the link again in a minute."
            )
        await asyncio.sleep(CONSENT_RETRY_SECONDS)
        waited += CONSENT_RETRY_SECONDS


def _claims(token: str) -> dict[str, Any]:
    # Received over TLS straight from the token endpoint: its claims need no signature check.
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _token_problem(claims: dict[str, Any], tenant: str) -> str | None:
    if str(claims.get("tid", "")).lower() != tenant:
        return _WRONG_TENANT
    if REQUIRED_ROLE not in (claims.get("roles") or []):
        return ErrorCode.MISSING_CONSENT  # as Graph's 403 would say: may still be replicating
    return None


def _words(problem: str) -> str:
    return {
        _WRONG_TENANT: "belongs to another organization",
        ErrorCode.MISSING_CONSENT: f"does not carry the {REQUIRED_ROLE} permission",
        ErrorCode.UNKNOWN_APP: "could not be issued (the app is not in that organization)",
    }.get(problem, f"could not be issued ({clean_text(problem)[:200]})")


async def _tenant_name(service: SyncService, tenant: str) -> str | None:
    try:
        directory = await service.open_directory(tenant)
        try:
            organization = await directory.organization()
        finally:
            await directory.close()
    except SyncError:
        return None  # the connectivity check that follows reports the problem with its fix
    return organization.display_name if organization is not None else None


def consent_refusal(params: Mapping[str, str], tenant: str) -> tuple[LinkRefusal, str] | None:
    """Why nothing is linked (code, plain words); None when consent was granted for `tenant`."""
    error = params.get("error")
    description = clean_text(params.get("error_description") or "")
    if error:
        if "AADSTS65004" in description or params.get("error_subcode") == "cancel":
            return (
                LinkRefusal.DECLINED,
                "The administrator declined the consent, so nothing was linked.",
            )
        if "AADSTS90094" in description:
            return LinkRefusal.NOT_ADMIN, (
                "The account that signed in is not an administrator of that tenant. Ask a "
                "Global Administrator or a Privileged Role Administrator to open the link."
            )
        if error == "unauthorized_client" or "AADSTS7000112" in description:
            return LinkRefusal.APP_BLOCKED, (
                "The app is not allowed in that tenant (disabled or blocked by its policies). "
                "An administrator there must allow it under Enterprise applications."
            )
        return LinkRefusal.CONSENT_ERROR, (
            f"Microsoft did not grant consent ({clean_text(error)[:100]}): {description[:300]}"
        )
    if params.get("admin_consent", "").lower() != "true":
        return LinkRefusal.NO_CONSENT, "Microsoft's answer did not say consent was granted."
    if (params.get("tenant") or "").lower() != tenant:
        return LinkRefusal.TENANT_MISMATCH, (
            "The consent answer names another organization than the one the administrator "
            "signed in to, so nothing was linked."
        )
    return None
