"""Azure Key Vault secrets: the read path the app uses to fetch its client secret.

SecretClient first calls without a token, expects a 401 challenge naming the tenant and the
resource, then retries with a token for that resource; the challenge is shaped to pass its checks.
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from .context import Context, context_of
from .tokens import Grant, TokenError

_STARTED = int(time.time())
_CERTIFICATE_TYPES = ("application/x-pem-file", "application/x-pkcs12")


def routes() -> list[web.RouteDef]:
    return [
        web.route("*", "/secrets/{name}", secret),
        # SecretClient asks for the latest version as ".../secrets/{name}/" (empty version).
        web.route("*", "/secrets/{name}/", secret),
        web.route("*", "/secrets/{name}/{version}", secret),
    ]


async def secret(request: web.Request) -> web.Response:
    ctx = context_of(request)
    if request.method != "GET":
        return _error(405, "BadParameter", f"Method {request.method} is not served here.")
    grant_or_response = _authenticate(request, ctx)
    if isinstance(grant_or_response, web.Response):
        return grant_or_response
    grant = grant_or_response
    if "api-version" not in request.query:
        return _error(400, "BadParameter", "The 'api-version' query parameter is missing.")
    name = request.match_info["name"]
    if grant.client_id.lower() not in ctx.world.key_vault.readers:
        return _forbidden(ctx, grant, name)
    stored = next(
        ((k, v) for k, v in ctx.world.key_vault.secrets.items() if k.lower() == name.lower()), None
    )
    requested_version = request.match_info.get("version")
    version = _version(*stored) if stored else None
    if stored is None or (requested_version and requested_version != version):
        shown = f"{name}/{requested_version}" if requested_version else name
        return _error(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {shown} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125182",
        )
    # Key Vault's SecretBundle (REST "Get Secret"): attributes.exp / nbf are epoch seconds and
    # contentType tells a PEM or PKCS#12 certificate from a plain secret; the app warns before exp.
    extra = ctx.world.key_vault.attributes.get(stored[0])
    attributes: dict[str, object] = {
        "enabled": True,
        "created": _STARTED,
        "updated": _STARTED,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    }
    body: dict[str, object] = {
        "value": stored[1],
        "id": f"{ctx.endpoints.vault_url}/secrets/{stored[0]}/{version}",
        "attributes": attributes,
        "tags": {},
    }
    if extra is not None:
        if extra.expires is not None:
            attributes["exp"] = int(extra.expires.timestamp())
        if extra.not_before is not None:
            attributes["nbf"] = int(extra.not_before.timestamp())
        if extra.content_type is not None:
            body["contentType"] = extra.content_type
        if extra.content_type in _CERTIFICATE_TYPES:
            # A certificate's secret is managed by Key Vault and points at its key
            # ("About Azure Key Vault certificates": the addressable key and secret).
            body["managed"] = True
            body["kid"] = f"{ctx.endpoints.vault_url}/keys/{stored[0]}/{version}"
    return web.json_response(body)


def _authenticate(request: web.Request, ctx: Context) -> Grant | web.Response:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _challenge(ctx, "AKV10000: Request is missing a Bearer or PoP token.")
    try:
        grant = ctx.issuer.verify(token.strip())
    except TokenError as error:
        return _challenge(ctx, f"AKV10032: Invalid token. {error.reason}")
    if grant.audience not in ctx.endpoints.vault_audiences:
        return _challenge(
            ctx,
            f"AKV10022: Invalid audience. Expected "
            f"{ctx.endpoints.vault_resource}, found: {grant.audience}.",
        )
    hosting = _hosting_tenant(ctx)
    if grant.tenant_id != hosting:
        return _challenge(
            ctx,
            f"AKV10032: Invalid issuer. Expected one of "
            f"{ctx.endpoints.base_url}/{hosting}/, found: "
            f"{ctx.endpoints.base_url}/{grant.tenant_id}/.",
        )
    return grant


def _challenge(ctx: Context, message: str) -> web.Response:
    header = (
        f'Bearer authorization="{ctx.endpoints.base_url}/{_hosting_tenant(ctx)}", '
        f'resource="{ctx.endpoints.vault_resource}"'
    )
    return _error(401, "Unauthorized", message, {"WWW-Authenticate": header})


def _forbidden(ctx: Context, grant: Grant, name: str) -> web.Response:
    return _error(
        403,
        "Forbidden",
        "Caller is not authorized to perform action on resource.\r\n"
        "If role assignments, deny assignments or role definitions were changed recently, "
        "please observe propagation time.\r\n"
        f"Caller: appid={grant.client_id};iss={ctx.endpoints.base_url}/{grant.tenant_id}/\r\n"
        "Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\n"
        f"Resource: '{ctx.endpoints.vault_url}/secrets/{name}'\r\n"
        "Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\n"
        "Vault: simulator;location=local\r\n",
        inner={"code": "ForbiddenByRbac"},
    )


def _error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    inner: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, object] = {"code": code, "message": message}
    if inner:
        error["innererror"] = inner
    return web.json_response({"error": error}, status=status, headers=headers)


def _hosting_tenant(ctx: Context) -> str:
    identity = ctx.world.managed_identity
    if identity:
        return identity.tenant_id
    return ctx.world.tenants[0].id if ctx.world.tenants else "common"


def _version(name: str, value: str) -> str:
    # Stable across restarts for the same value, and changes when the value changes.
    return hashlib.sha256(f"{name}\0{value}".encode()).hexdigest()[:32]
