"""Linking a tenant in one click: sign-in, admin consent, proof, then the tenant is linked.

`start_connect` records a connect request and begins msal's auth-code flow with a state signed
by the app and bound to that request. The anonymous callback is reached twice:
1. after the sign-in (`code`): the state is taken once, msal redeems the code (PKCE, nonce) and
   app/signin.py validates the ID token; its `tid` is the tenant. A person who may not grant
   Graph application permissions, or a tenant linked to another account, stops here. Otherwise
   the browser goes on to the admin-consent page of that tenant only, with a second state.
2. after consent: accepted only for the signed-in tenant, then app/linking.py proves the consent
   took effect (an app-only token of that tenant with User.Read.All) and links.
Until the proof holds nothing is written but the request itself (its stage and outcome).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sync_core.adapters.tables.connect_requests import (
    CHECKING,
    CONSENT,
    SIGN_IN,
    ConnectRequest,
)
from sync_core.app.linking import OTHER_ACCOUNT, ConnectOutcome, link_tenant, refuse
from sync_core.app.service import SyncService
from sync_core.app.signin import SignInRefused, begin_sign_in, finish_sign_in, msal_credential
from sync_core.core.config import TenantConfig
from sync_core.core.config_parse import stored_form
from sync_core.core.consent_state import (
    CONSENT_PHASE,
    SIGN_IN_PHASE,
    STATE_LIFETIME,
    StateError,
    consent_url,
    sign_state,
    state_digest,
    verify_state,
)
from sync_core.core.limits import clean_text
from sync_core.errors import ErrorCode, FatalError, LinkRefusal, SyncError

__all__ = ["ConnectLink", "ConnectOutcome", "complete_connect", "start_connect"]

NOT_ADMIN = (
    "The account that signed in ({user}) is not a Global Administrator or a Privileged Role "
    "Administrator of its organization. Only they can grant the app permission to read the "
    "directory (Microsoft Graph application permissions). Ask one of them to open the link."
)
# Without `wids` nothing shows the person may grant: the consent answer is plain query values
# and the app-only token proves that someone consented once, not this person (a tenant
# consented before, or unlinked, would be anyone's to link). So an unknown role is a refusal.
# A link can be sent to anyone: without this, a customer could have another company's admin
# link that company's tenant to the customer's account.
UNEXPECTED_TENANT = (
    "{user} signed in to another organization ({tenant}) than the one this link was made for "
    "({expected}). Nothing was linked. The link was made for another organization: open it "
    "as an administrator of {expected}, or ask for a new link."
)
ROLES_UNKNOWN = (
    "The sign-in did not say which administrator roles {user} holds, so the app cannot tell "
    "whether this person may grant it access. Nothing was linked. The app registration must "
    "ask for directory roles in its ID tokens (groupMembershipClaims = DirectoryRole, "
    "docs/deploy.md)."
)


@dataclass(frozen=True)
class ConnectLink:
    consent_url: str  # where the admin goes first: the sign-in, which leads on to consent
    state: str
    expires_at: datetime
    request_id: str


async def start_connect(
    service: SyncService,
    *,
    callback_url: str,
    return_url: str | None,
    config: TenantConfig | None,
    now: datetime,
    account: str = "",
    replace: bool = False,
    expected_tenant: str | None = None,
) -> ConnectLink:
    settings = service.settings
    if settings.client_id is None:
        raise FatalError(
            ErrorCode.NO_CLIENT_ID, "ENTRA_CLIENT_ID is not set.", "Set ENTRA_CLIENT_ID."
        )
    nonce = secrets.token_urlsafe(18)
    expires_at = now + STATE_LIFETIME
    state = sign_state(await service.connect_requests.signing_key(), nonce, expires_at)
    credential = msal_credential(settings, await service.app_credential())
    flow = await begin_sign_in(settings, credential, callback_url, state)
    await service.connect_requests.add(
        ConnectRequest(
            nonce=nonce,
            state_digest=state_digest(state),
            expires_at=expires_at,
            return_url=return_url,
            config_text=stored_form(config) if config is not None else None,
            account=account,
            replace=replace,
            expected_tenant=expected_tenant.lower() if expected_tenant else None,
            flow=json.dumps(flow),
        )
    )
    return ConnectLink(str(flow["auth_uri"]), state, expires_at, nonce)


async def complete_connect(
    service: SyncService, params: Mapping[str, str], now: datetime
) -> ConnectOutcome:
    """`service` is built from settings with the app registration (load_settings' needs_graph).
    StateError when the state is not a live one of this app's requests at its stage."""
    state = params.get("state") or ""
    if not state:
        raise StateError("forged", "The link carries no state; start again from the app.")
    key = await service.connect_requests.signing_key()
    verified = verify_state(key, state, now)
    digest = state_digest(state)
    if verified.phase == SIGN_IN_PHASE:
        request = await service.connect_requests.take(verified.nonce, digest, SIGN_IN, CHECKING)
        return await _finishing(service, request, _after_sign_in(service, request, key, params))
    if verified.phase == CONSENT_PHASE:
        request = await service.connect_requests.take(verified.nonce, digest, CONSENT, CHECKING)
        return await _finishing(service, request, link_tenant(service, request, params))
    raise StateError("forged", "The link's state is not one this app issued.")


async def _finishing(
    service: SyncService, request: ConnectRequest, step: Awaitable[ConnectOutcome]
) -> ConnectOutcome:
    """The step, or, when it fails part-way, the request ended as failed: its state was taken
    (it cannot be used again), and a dashboard polling GET /api/connect/{id} would otherwise
    see it pending until it expires."""
    try:
        return await step
    except Exception as error:  # every failure, a bug too: the request must not stay pending
        code = error.code if isinstance(error, SyncError) else ErrorCode.INTERNAL_ERROR
        text = (
            "The app could not finish linking the tenant "
            f"({code}); nothing more happens with this link: start again in a few minutes."
        )
        with contextlib.suppress(SyncError):  # storage itself may be what failed
            await service.connect_requests.finish(
                request.nonce,
                {
                    "status": "failed",
                    "code": LinkRefusal.NOT_FINISHED,
                    "errorCode": code,
                    "reason": text,
                    "account": request.account,
                    "tenantId": request.signed_in_tenant,
                    "signedInAs": request.signed_in_user,
                },
            )
        raise


async def _after_sign_in(
    service: SyncService, request: ConnectRequest, key: bytes, params: Mapping[str, str]
) -> ConnectOutcome:
    settings = service.settings
    if params.get("error") or not params.get("code"):
        text = clean_text(params.get("error_description") or params.get("error") or "no code")
        return await refuse(
            service,
            request,
            LinkRefusal.SIGN_IN_FAILED,
            f"The sign-in did not succeed: {text[:300]}",
        )
    credential = msal_credential(settings, await service.app_credential())
    try:
        signed = await finish_sign_in(settings, credential, json.loads(request.flow), dict(params))
    except SignInRefused as refused:
        return await refuse(service, request, refused.code, f"{refused} Nothing was linked.")
    user = clean_text(signed.username or signed.object_id)
    expected = request.expected_tenant
    if expected is not None and signed.tenant_id.lower() != expected:
        text = UNEXPECTED_TENANT.format(user=user, tenant=signed.tenant_id, expected=expected)
        return await refuse(service, request, LinkRefusal.UNEXPECTED_TENANT, text)
    if signed.may_grant is None:
        return await refuse(
            service, request, LinkRefusal.ROLES_UNKNOWN, ROLES_UNKNOWN.format(user=user)
        )
    if signed.may_grant is False:
        return await refuse(service, request, LinkRefusal.NOT_ADMIN, NOT_ADMIN.format(user=user))
    holder = await service.configs.account(signed.tenant_id)
    if holder and holder != request.account:
        return await refuse(service, request, LinkRefusal.OTHER_ACCOUNT, OTHER_ACCOUNT)
    consent_state = sign_state(key, request.nonce, request.expires_at, CONSENT_PHASE)
    await service.connect_requests.await_consent(
        request.nonce, state_digest(consent_state), signed.tenant_id, user
    )
    assert settings.client_id is not None  # start_connect checked it
    url = consent_url(
        settings.authority_host,
        settings.client_id,
        settings.graph_base_url,
        json.loads(request.flow)["redirect_uri"],
        consent_state,
        tenant=signed.tenant_id,
    )
    return ConnectOutcome(False, signed.tenant_id, None, False, None, None, None, next_url=url)
