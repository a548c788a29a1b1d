"""Entra ID's token side: OIDC discovery, the client-credentials token endpoint, signing keys,
and the App Service managed-identity endpoint.

Error bodies, codes and AADSTS texts follow what Entra answers, because the app classifies
failures by them ("wrong secret" and "not consented" need different advice to an admin).
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Mapping

from aiohttp import web

from . import consent_page, signin_page
from .assertions import JWT_BEARER, AssertionRefused, check_assertion
from .context import Context, context_of, request_id, utc_now
from .directory import TenantInfo
from .world import TOKEN_EXCHANGE_AUDIENCE, App

_TENANT_NAME = re.compile(r"^[A-Za-z0-9.-]+$")
_RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})
MSI_API_VERSION = "2019-08-01"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{tenant}/v2.0/.well-known/openid-configuration", discovery),
        web.get("/{tenant}/.well-known/openid-configuration", discovery),
        web.get("/{tenant}/discovery/v2.0/keys", keys),
        web.get("/{tenant}/discovery/keys", keys),
        web.post("/{tenant}/oauth2/v2.0/token", token),
        web.get("/msi/token", managed_identity_token),
        *consent_page.routes(),
        *signin_page.routes(),
    ]


# ---------------------------------------------------------------------------- Entra endpoints


async def discovery(request: web.Request) -> web.Response:
    ctx = context_of(request)
    name = request.match_info["tenant"]
    if name.lower() in ("organizations", "common"):
        # Any work tenant: the issuer names the placeholder `{tenantid}`, as Entra's does; the
        # ID token's `iss` carries the signed-in user's tenant (v2-protocols-oidc).
        base, issuer = (
            f"{ctx.endpoints.base_url}/{name}",
            f"{ctx.endpoints.base_url}/{{tenantid}}/v2.0",
        )
    else:
        tenant = ctx.directory.find_tenant(name)
        if tenant is None:
            return _tenant_problem(request, name, "invalid_tenant")
        base = f"{ctx.endpoints.base_url}/{tenant.id}"
        issuer = f"{base}/v2.0"
    return web.json_response(
        {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            # Matches the authority the client used, which is what MSAL compares when it validates.
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "simulator.local",
            "msgraph_host": ctx.endpoints.base_url.split("://", 1)[1],
        }
    )


async def keys(request: web.Request) -> web.Response:
    return web.json_response(context_of(request).issuer.jwks())


async def token(request: web.Request) -> web.Response:
    ctx = context_of(request)
    name = request.match_info["tenant"]
    form = await request.post()
    grant_type = str(form.get("grant_type", ""))
    if grant_type == "authorization_code" and (
        name.lower() in ("organizations", "common") or ctx.directory.find_tenant(name)
    ):
        from .signin_token import redeem_code

        return await redeem_code(request, name, form)
    tenant = ctx.directory.find_tenant(name)
    if tenant is None:
        return _tenant_problem(request, name, "invalid_request")
    client_id = str(form.get("client_id", "")).strip().lower()
    if grant_type != "client_credentials":
        return entra_error(
            request,
            400,
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant_type}'.",
        )
    if not client_id:
        return _missing_parameter(request, "client_id")
    app = ctx.world.app(client_id)
    consent = ctx.consent.settings
    replicating = app is not None and ctx.directory.replicating(tenant.id, client_id)
    if (
        app is None
        or ctx.directory.roles(tenant.id, client_id) is None
        or (replicating and consent.replication_effect == "token")
    ):
        return entra_error(
            request,
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory "
            f"'{tenant.display_name or tenant.id}'. This can happen if the application has not "
            "been installed by the administrator of the tenant or consented to by any user in "
            "the tenant. You may have sent your authentication request to the wrong tenant.",
        )
    refused = authenticate_client(request, ctx, app, tenant, name, form)
    if refused is not None:
        return refused
    scopes = [s for s in str(form.get("scope", "")).split() if s not in _RESERVED_SCOPES]
    if not scopes:
        return _missing_parameter(request, "scope")
    if len(scopes) > 1 or not scopes[0].endswith("/.default"):
        return entra_error(
            request,
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {' '.join(scopes)} is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource identifier "
            "(application ID URI).",
        )
    resource = scopes[0][: -len("/.default")]
    if not _known_resource(ctx, resource):
        return _unknown_resource(request, resource, tenant)
    # A consent still replicating with the "graph" effect: the token carries no roles yet, so
    # Graph answers 403 until it has replicated.
    roles = () if replicating else _graph_roles(ctx, tenant.id, client_id, resource)
    access_token, _ = ctx.issuer.issue(tenant.id, client_id, resource, roles, kind="app")
    return web.json_response(
        {
            "token_type": "Bearer",
            "expires_in": ctx.issuer.lifetime,
            "ext_expires_in": ctx.issuer.lifetime,
            "access_token": access_token,
        }
    )


def authenticate_client(
    request: web.Request,
    ctx: Context,
    app: App,
    tenant: TenantInfo,
    name: str,
    form: Mapping[str, object],
) -> web.Response | None:
    """The client's credential: a secret, or a client assertion (certificate or federated).
    None when it is accepted."""
    assertion = form.get("client_assertion")
    assertion_type = form.get("client_assertion_type")
    if assertion is not None or assertion_type is not None:
        if assertion_type != JWT_BEARER:
            return entra_error(
                request,
                400,
                "invalid_request",
                700026,
                f"The client_assertion_type must be '{JWT_BEARER}' for a client assertion.",
            )
        # The assertion's aud is the token endpoint, written with the tenant id or the name the
        # client used ("certificate credentials": aud = https://login.microsoftonline.com/
        # {tenant}/oauth2/v2.0/token).
        endpoints = {f"{ctx.endpoints.base_url}/{t}/oauth2/v2.0/token" for t in (tenant.id, name)}
        try:
            check_assertion(str(assertion), app, endpoints, ctx.issuer, ctx.endpoints.base_url)
        except AssertionRefused as refused:
            return entra_error(
                request, refused.status, refused.error, refused.code, refused.description
            )
        return None
    secret = form.get("client_secret")
    if not secret:
        return entra_error(
            request,
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or "
            "'client_secret'.",
        )
    matching = [p for p in app.password_credentials if secrets.compare_digest(str(secret), p.value)]
    if not matching:
        return entra_error(
            request,
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the "
            "client secret value, not the client secret ID, for a secret added to app "
            f"'{app.client_id}'.",
        )
    now = utc_now()
    if all(p.expired(now) for p in matching):
        # Wording of Entra's answer for an expired secret (AADSTS7000222,
        # InvalidClientSecretExpiredKeysProvided in the error-code reference).
        return entra_error(
            request,
            401,
            "invalid_client",
            7000222,
            f"The provided client secret keys for app '{app.client_id}' are expired. Visit the "
            "Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or "
            "consider using certificate credentials for added security: "
            "https://aka.ms/certCreds.",
        )
    return None


def entra_error(
    request: web.Request, status: int, error: str, code: int, description: str
) -> web.Response:
    trace_id = request_id(request)
    correlation_id = request.headers.get("client-request-id") or str(uuid.uuid4())
    stamp = utc_now().strftime("%Y-%m-%d %H:%M:%SZ")
    return web.json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace_id} "
            f"Correlation ID: {correlation_id} Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"{context_of(request).endpoints.base_url}/error?code={code}",
        },
        status=status,
    )


def _tenant_problem(request: web.Request, name: str, error: str) -> web.Response:
    if not _TENANT_NAME.match(name):
        return entra_error(
            request,
            400,
            "invalid_request",
            900023,
            f"Specified tenant identifier '{name}' is neither a valid DNS name, nor a valid "
            "external domain.",
        )
    return entra_error(
        request,
        400,
        error,
        90002,
        f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are "
        "signing into the correct cloud. Check with your subscription administrator, this may "
        "happen if there are no active subscriptions for the tenant.",
    )


def _missing_parameter(request: web.Request, name: str) -> web.Response:
    return entra_error(
        request,
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
    )


def _unknown_resource(request: web.Request, resource: str, tenant: TenantInfo) -> web.Response:
    return entra_error(
        request,
        400,
        "invalid_resource",
        500011,
        f"The resource principal named {resource} was not found in the tenant named "
        f"{tenant.display_name or tenant.id}. This can happen if the application has not been "
        "installed by the administrator of the tenant or consented to by any user in the tenant. "
        "You might have sent your authentication request to the wrong tenant.",
    )


def _known_resource(ctx: Context, resource: str) -> bool:
    return resource in ctx.endpoints.graph_audiences or resource in ctx.endpoints.vault_audiences


def _graph_roles(ctx: Context, tenant_id: str, client_id: str, resource: str) -> tuple[str, ...]:
    # Application permissions are Graph's; a vault token carries none (Key Vault uses RBAC).
    if resource not in ctx.endpoints.graph_audiences:
        return ()
    return ctx.directory.roles(tenant_id, client_id) or ()


# ------------------------------------------------------------------ managed identity (App Service)


async def managed_identity_token(request: web.Request) -> web.Response:
    ctx = context_of(request)
    header = request.headers.get("X-IDENTITY-HEADER")
    if header is None:
        return _msi_error(request, 400, "The request is missing the X-IDENTITY-HEADER header.")
    if not secrets.compare_digest(header, ctx.identity_header):
        return _msi_error(request, 401, "The X-IDENTITY-HEADER header is not valid.")
    api_version = request.query.get("api-version")
    if api_version != MSI_API_VERSION:
        return _msi_error(
            request, 400, f"api-version '{api_version}' is not supported; use {MSI_API_VERSION}."
        )
    resource = request.query.get("resource", "").removesuffix("/.default")
    if not resource:
        return _msi_error(request, 400, "The 'resource' query parameter is required.")
    identity = ctx.world.managed_identity
    client_id = request.query.get("client_id", "").lower()
    # Only a user-assigned identity is modelled: asking for none (system-assigned) or another
    # one fails like an App Service app that has no such identity.
    if identity is None or client_id != identity.client_id:
        return _msi_error(request, 400, "Unable to load the proper Managed Identity.")
    # api://AzureADTokenExchange: the audience a federated identity credential expects ("Configure
    # an application to trust a managed identity"); the token is exchanged, never sent to an API.
    if not _known_resource(ctx, resource) and resource != TOKEN_EXCHANGE_AUDIENCE:
        return _msi_error(
            request,
            400,
            f"AADSTS500011: The resource principal named {resource} was not found in the tenant.",
        )
    roles: tuple[str, ...] = ()
    if ctx.directory.find_tenant(identity.tenant_id) is not None:
        roles = _graph_roles(ctx, identity.tenant_id, identity.client_id, resource)
    access_token, expires_on = ctx.issuer.issue(
        identity.tenant_id,
        identity.client_id,
        resource,
        roles,
        kind="managed_identity",
        subject=identity.subject,
    )
    return web.json_response(
        {
            "access_token": access_token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
    )


def _msi_error(request: web.Request, status: int, message: str) -> web.Response:
    return web.json_response(
        {"statusCode": status, "message": message, "correlationId": request_id(request)},
        status=status,
    )
