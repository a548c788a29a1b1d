"""`GET /api/explain/{tenantId}/{user}` (and `POST` with `{"apply": true}`): the `explain`
command over HTTP, answered with the same document as `explain --json` (docs/api.md)."""

from __future__ import annotations

from sync_core.app.exclusive import TenantBusy
from sync_core.app.explain import explain_user
from sync_core.app.user_lookup import MAX_USER_KEY, AmbiguousUser
from sync_core.core.config_parse import ConfigError
from sync_core.errors import ErrorCode, FatalError
from sync_core.surfaces.api import ApiError, ApiRequest, ApiResponse, RouteContext, ok
from sync_core.surfaces.api_input import body_fields, invalid_stored_config, json_object
from sync_core.surfaces.explain_output import busy_error


def explain_params(request: ApiRequest, tenant: str | None) -> tuple[str, bool]:
    """The user's key, and whether to apply (a POST's `{"apply": true}`)."""
    key = (request.route_params.get("user") or "").strip()
    if not key or len(key) > MAX_USER_KEY or not key.isprintable():
        raise ApiError(
            400,
            ErrorCode.INVALID_USER,
            f"{{user}} must be an object id, UPN or email address (1-{MAX_USER_KEY} printable "
            "characters).",
        )
    apply = False
    if request.method.upper() == "POST":
        apply = body_fields(json_object(request.body, required=False), {"apply": bool}).get(
            "apply", False
        )
    return key, apply


async def explain(request: ApiRequest, context: RouteContext) -> ApiResponse:
    tenant, (key, apply) = context.tenant, context.parsed
    try:
        explanation = await explain_user(context.service, tenant, key, apply=apply)
    except ConfigError as error:
        raise invalid_stored_config(error) from None
    except TenantBusy as busy:
        failure = busy_error(busy)
        raise ApiError(409, failure.code, failure.message, fix=failure.fix) from None
    except AmbiguousUser as several:
        raise ApiError(
            409, several.code, several.message, details=several.matches, fix=several.fix
        ) from None
    except FatalError as failure:
        if failure.code not in (ErrorCode.USER_NOT_FOUND, ErrorCode.TENANT_DISABLED):
            raise
        status = 404 if failure.code == ErrorCode.USER_NOT_FOUND else 409
        raise ApiError(status, failure.code, failure.message, fix=failure.fix) from None
    return ok(explanation.to_json())
