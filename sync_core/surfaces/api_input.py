"""What the HTTP API accepts from a caller, and how it refuses the rest: JSON bodies and their
fields, path and query parameters, the continuation tokens it hands out to be given back, and
the problems of a configuration. Every refusal is an ApiError (400, or 409 for a stored
configuration that no longer validates) that lists what was wrong, repeating only short
scalars of what was sent.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

from sync_core.core.config_parse import ConfigError
from sync_core.core.json_document import MAX_DOCUMENT_BYTES, DocumentError, read_json_document
from sync_core.core.report import is_run_id
from sync_core.errors import ErrorCode
from sync_core.settings import TENANT_ID_RULE, is_tenant_id
from sync_core.surfaces.api import ApiError, ApiRequest

MAX_BODY_BYTES = MAX_DOCUMENT_BYTES  # as for a configuration file given to the CLI
MAX_ECHO_CHARS = 200


def json_object(body: bytes, *, required: bool) -> dict[str, Any]:
    """The body as a JSON object; an empty body is {} unless one is required. Read with the
    CLI's reader, so both refuse the same documents in the same words."""
    if not body.strip():
        if required:
            raise ApiError(
                400, ErrorCode.MISSING_BODY, "The request needs a JSON object as its body."
            )
        return {}
    try:
        document = read_json_document(body, max_bytes=MAX_BODY_BYTES)
    except DocumentError as error:
        if error.too_large:
            raise ApiError(
                413, ErrorCode.BODY_TOO_LARGE, f"The body exceeds {MAX_BODY_BYTES} bytes."
            ) from None
        raise ApiError(
            400,
            ErrorCode.MALFORMED_JSON,
            f"The body is not a JSON document this API accepts: {error.message}.",
        ) from None
    if not isinstance(document, dict):
        raise ApiError(400, ErrorCode.INVALID_BODY, "The body must be a JSON object.")
    return document


def body_fields(document: dict[str, Any], kinds: Mapping[str, type]) -> dict[str, Any]:
    """Check a body against {key: bool | str | dict}: every problem reported at once."""
    problems: list[dict[str, Any]] = []
    for key in sorted(set(document) - set(kinds)):
        problems.append(_problem(key, f"unknown key; allowed: {', '.join(kinds)}", document[key]))
    for key, kind in kinds.items():
        if key in document and not _is_kind(document[key], kind):
            expected = {bool: "true or false", dict: "a JSON object"}.get(kind, "a string")
            problems.append(_problem(key, f"must be {expected}", document[key]))
    tenant = document.get("tenantId")
    if isinstance(tenant, str) and "tenantId" in kinds and not is_tenant_id(tenant):
        problems.append(_problem("tenantId", TENANT_ID_RULE, tenant))
    if problems:
        raise ApiError(
            400,
            ErrorCode.INVALID_REQUEST,
            "The request body is invalid: "
            + "; ".join(f"{p['path']} {p['message']}" for p in problems),
            details=problems,
        )
    return document


def run_id_param(
    value: str | None, *, code: ErrorCode = ErrorCode.INVALID_RUN_ID, what: str = "run id"
) -> str:
    if not is_run_id(value):
        raise ApiError(400, code, f"{value!r} is not a {what} this API issued.")
    return value


def int_param(request: ApiRequest, name: str, default: int, low: int, high: int) -> int:
    raw = request.params.get(name)
    if raw is None or raw == "":
        return default
    # isascii: "²".isdigit() holds but int("²") fails; the length bounds int() on huge input.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 9) or not low <= int(raw) <= high:
        raise ApiError(
            400,
            ErrorCode.INVALID_PARAMETER,
            f"{name} must be a whole number from {low} to {high}; got {raw!r}.",
        )
    return int(raw)


def wrap_token(tenant_id: str, token: str | None) -> str | None:
    """A continuation token bound to its tenant: the store's own token is opaque (the table
    service encodes its next keys), so the tenant travels beside it."""
    if token is None:
        return None
    document = json.dumps({"tenantId": tenant_id, "next": token}, separators=(",", ":"))
    return base64.urlsafe_b64encode(document.encode()).decode().rstrip("=")


def unwrap_token(request: ApiRequest, tenant_id: str) -> str | None:
    """The store's token inside `?continuation=`; 400 unless this API issued it for this
    tenant."""
    token = request.params.get("continuation") or None
    if token is None:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        document = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        document = None
    if (
        not isinstance(document, dict)
        or document.get("tenantId") != tenant_id
        or not isinstance(document.get("next"), str)
    ):
        raise ApiError(
            400,
            ErrorCode.INVALID_CONTINUATION,
            "The continuation token is not one this API issued for this tenant; start again "
            "without it.",
        )
    return document["next"]


def _is_kind(value: Any, kind: type) -> bool:
    return isinstance(value, bool) if kind is bool else isinstance(value, kind)


def _problem(key: str, message: str, value: Any) -> dict[str, Any]:
    # The key is the caller's input too (an unknown one may be a megabyte): shortened alike.
    return {"path": f"$.{echo(key)}", "message": message, "value": echo(value)}


def config_problems(error: ConfigError) -> list[dict[str, Any]]:
    # A path names the caller's keys (an unknown one may be a megabyte): shortened too.
    return [
        {**problem, "path": echo(problem["path"]), "value": echo(problem["value"])}
        for problem in error.to_json()
    ]


def invalid_config(error: ConfigError, message: str) -> ApiError:
    """400 for a configuration the request carries: `message` says what was not done, the
    details list every problem."""
    return ApiError(400, ErrorCode.INVALID_CONFIG, message, details=config_problems(error))


def invalid_stored_config(error: ConfigError) -> ApiError:
    """The one 409 for a request that needs the tenant's stored configuration when it no longer
    validates (stored by an older version, or by hand): the caller cannot fix the request, only
    the configuration."""
    return ApiError(
        409,
        ErrorCode.INVALID_STORED_CONFIG,
        "The stored configuration is no longer valid.",
        details=config_problems(error),
        fix="Store a valid one with PUT /api/config/{tenantId}.",
    )


def echo(value: Any) -> Any:
    """What an error may repeat of the caller's input: short scalars only, so an error body
    stays small and valid JSON whatever was sent."""
    if isinstance(value, str):
        return value if len(value) <= MAX_ECHO_CHARS else value[:MAX_ECHO_CHARS] + "..."
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}>"


def one_of(fields: Mapping[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    """The body field `name`, one of `allowed` (the first when absent)."""
    value = fields.get(name, allowed[0])
    if value not in allowed:
        expected = " or ".join(f'"{a}"' for a in allowed)
        raise ApiError(
            400, ErrorCode.INVALID_BODY, f'"{name}" is {value!r}: it must be {expected}.'
        )
    return str(value)
