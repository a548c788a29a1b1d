"""The app's one error vocabulary: the stable codes, the exception hierarchy, where each lives.

Every failure an admin may see is a `SyncError` with a stable `ErrorCode`, a plain message and
what to do about it. Adapters translate their SDK's errors into these once, at their boundary
(sync_core/adapters/errors.py); callers only ask which branch an error is on. Fatal: repeating
cannot help until someone fixes the cause. Retriable: the next attempt may well succeed (an
HTTP surface answers 503, the queue retries).

The hierarchy (singer_sdk's exceptions.py is the model), every exception class of the app:

    SyncError                        here: what an admin sees (code, message, fix)
    +-- FatalError                   here
    |   +-- AmbiguousUser            app/user_lookup.py (lists the matching users it was given)
    +-- RetriableError               here
    Signals across the ports: an adapter raises them, core/ decides what the run does; no admin
    sees them as such. Defined here, re-exported where they were (core/ports.py, ...):
    LeaseLost, UnstorableEmployee, DeltaStateLost, DeltaUnavailable (core/ports.py),
    PhotoUnavailable (core/photos.py), GroupStateMissing (core/group_sync.py),
    RunPending (core/run_index.py)

Kept beside what they describe; each is turned into a code above by the surface that catches it:
- The validation of one input, carrying its list of problems: SettingsError (settings.py ->
  invalid_settings), ConfigError (core/config_parse.py -> invalid_config), DocumentError
  (core/json_document.py -> malformed_json/body_too_large), PathError (core/paths.py, a
  ValueError inside ConfigError's problems).
- The lease protocol's answers, holding the holder, its expiry or the finished RunReport (which
  this module, below core/, cannot import): TenantBusy, RunBusy, RunAlreadyFinished
  (app/exclusive.py -> tenant_busy, run_busy).
- One use case's refusals, caught by its own route: HomeTenant (app/unlink.py -> home_tenant),
  SignInRefused (app/signin.py), whose code is a `LinkRefusal` (below), and StateError
  (core/consent_state.py: a forged, expired, replayed or unbound state, logged, never stored).
- A surface's own control flow: ApiError (surfaces/api.py: the HTTP answer itself, status and
  headers; its codes are ErrorCode members), Interrupted (surfaces/cli_sync.py: Ctrl-C ->
  cancelled).
- Inside one adapter, never leaving it but as a SyncError: GraphRequestError (adapters/errors.py),
  MalformedMessage (adapters/queue.py, dropped and logged), ReadOnlyViolation
  (adapters/graph_transport.py, a bug: only GET goes to Graph), _NoGroupMembers
  (adapters/graph_groups.py).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar


class ErrorCode(StrEnum):
    """Every stable code an admin may see: in a run report's `errors[].code`, an HTTP error's
    `error.code`, the CLI's error line, Check Connectivity's problems. A member equals its string
    (StrEnum), so stored reports and JSON answers read the same as before; a test checks this
    list against docs/runbook.md's "Failure codes" table. As azure-data-tables' TableErrorCode.
    """

    # Credentials and tokens (adapters/errors.py, credential_errors.py, credentials.py)
    WRONG_SECRET = "wrong_secret"
    EXPIRED_SECRET = "expired_secret"
    UNKNOWN_TENANT = "unknown_tenant"
    UNKNOWN_APP = "unknown_app"
    GRAPH_RESOURCE_UNKNOWN = "graph_resource_unknown"
    FEDERATED_CREDENTIAL_MISSING = "federated_credential_missing"
    FEDERATED_ISSUER_MISMATCH = "federated_issuer_mismatch"
    FEDERATED_AUDIENCE_MISMATCH = "federated_audience_mismatch"
    FEDERATED_SUBJECT_MISMATCH = "federated_subject_mismatch"
    MANAGED_IDENTITY_UNAVAILABLE = "managed_identity_unavailable"
    CERTIFICATE_NOT_REGISTERED = "certificate_not_registered"
    CERTIFICATE_EXPIRED = "certificate_expired"
    AUTHORITY_UNREACHABLE = "authority_unreachable"
    TOKEN_FAILED = "token_failed"
    TOKEN_REJECTED = "token_rejected"
    NO_CLIENT_ID = "no_client_id"
    NO_SECRET_SOURCE = "no_secret_source"
    # Key Vault (adapters/errors.py, adapters/credentials.py)
    SECRET_NOT_FOUND = "secret_not_found"
    SECRET_EMPTY = "secret_empty"
    KEY_VAULT_FORBIDDEN = "key_vault_forbidden"
    KEY_VAULT_UNREACHABLE = "key_vault_unreachable"
    KEY_VAULT_IDENTITY_FAILED = "key_vault_identity_failed"
    KEY_VAULT_TOKEN_REJECTED = "key_vault_token_rejected"
    KEY_VAULT_FAILED = "key_vault_failed"
    # Graph (adapters/errors.py, graph_pages.py, graph_groups.py, core/group_sync.py)
    MISSING_CONSENT = "missing_consent"
    THROTTLED = "throttled"
    GRAPH_UNAVAILABLE = "graph_unavailable"
    GRAPH_UNREACHABLE = "graph_unreachable"
    GRAPH_REJECTED_REQUEST = "graph_rejected_request"
    GRAPH_FAILED = "graph_failed"
    GRAPH_MALFORMED_PAGE = "graph_malformed_page"
    GRAPH_UNEXPECTED_NEXT_LINK = "graph_unexpected_next_link"
    GRAPH_PAGINATION_LOOP = "graph_pagination_loop"
    GRAPH_PAGE_TOKEN_EXPIRED = "graph_page_token_expired"
    FILTER_NEEDS_ADVANCED_QUERY = "filter_needs_advanced_query"
    GROUP_NOT_FOUND = "group_not_found"
    GROUP_DELETED = "group_deleted"
    GROUP_PERMISSION_MISSING = "group_permission_missing"
    PHOTOS_UNREADABLE = "photos_unreadable"
    # Check Connectivity's photo link (app/check_photos.py)
    PHOTOS_FORBIDDEN = "photos_forbidden"
    PHOTOS_NO_STORAGE = "photos_no_storage"
    # Table Storage and the queue (adapters/errors.py, adapters/queue.py, app/dispatch.py)
    STORAGE_UNREACHABLE = "storage_unreachable"
    STORAGE_FORBIDDEN = "storage_forbidden"
    STORAGE_KEY_REJECTED = "storage_key_rejected"
    STORAGE_FAILED = "storage_failed"
    RUN_INDEX_CONTENDED = "run_index_contended"
    QUEUE_NOT_CONFIGURED = "queue_not_configured"
    QUEUE_UNAVAILABLE = "queue_unavailable"
    # Settings and configuration
    INVALID_SETTINGS = "invalid_settings"
    INVALID_CONFIG = "invalid_config"
    INVALID_STORED_CONFIG = "invalid_stored_config"
    # How a run ends, or is closed without running (app/worker.py, closing.py, exclusive.py,
    # core/run_notes.py, core/schedule.py, surfaces/cli_sync.py)
    TENANT_BUSY = "tenant_busy"
    RUN_BUSY = "run_busy"
    SUPERSEDED = "superseded"
    LEASE_LOST = "lease_lost"
    ATTEMPT_FAILED = "attempt_failed"
    GAVE_UP = "gave_up"
    ABANDONED = "abandoned"
    CANCELLED = "cancelled"
    TENANT_DISABLED = "tenant_disabled"
    # Explain one user (app/user_lookup.py)
    INVALID_USER = "invalid_user"
    USER_NOT_FOUND = "user_not_found"
    USER_AMBIGUOUS = "user_ambiguous"
    # Linking and unlinking (surfaces/connect_routes.py)
    HOME_TENANT = "home_tenant"
    INVALID_ACCOUNT = "invalid_account"
    RETURN_URL_NOT_ALLOWED = "return_url_not_allowed"
    UNKNOWN_CONNECT_REQUEST = "unknown_connect_request"
    CONFIG_CONTENDED = "config_contended"
    # The HTTP API's requests (surfaces/api.py, surfaces/routes.py)
    METHOD_NOT_ALLOWED = "method_not_allowed"
    MISSING_BODY = "missing_body"
    BODY_TOO_LARGE = "body_too_large"
    MALFORMED_JSON = "malformed_json"
    INVALID_BODY = "invalid_body"
    INVALID_REQUEST = "invalid_request"
    INVALID_TENANT_ID = "invalid_tenant_id"
    INVALID_RUN_ID = "invalid_run_id"
    INVALID_CONTINUATION = "invalid_continuation"
    INVALID_PARAMETER = "invalid_parameter"
    UNKNOWN_RUN = "unknown_run"
    CHECK_TIMEOUT = "check_timeout"
    # A bug
    INTERNAL_ERROR = "internal_error"


class LinkRefusal(StrEnum):
    """Why a linking attempt linked nothing: the `reasonCode` of GET /api/connect/{requestId},
    stored with the connect request (app/linking.py, app/onboarding.py, app/signin.py).

    A vocabulary of its own, not ErrorCode members: these are not failures of the app with a fix
    for its admin, but the outcome of one person's attempt, read by the dashboard (many are
    that person's doing: `declined`, `not_admin`), and nothing raises them as a SyncError. So a
    value may equal an ErrorCode's (`authority_unreachable`) without being that error. A test
    checks this list against docs/runbook.md's "Linking refusal codes" table and
    docs/openapi.yaml's `reasonCode` enum.
    """

    # The sign-in (app/onboarding.py, app/signin.py)
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_IN_INVALID = "sign_in_invalid"
    ID_TOKEN_INVALID = "id_token_invalid"
    AUTHORITY_UNREACHABLE = "authority_unreachable"
    ROLES_UNKNOWN = "roles_unknown"
    NOT_ADMIN = "not_admin"
    OTHER_ACCOUNT = "other_account"
    UNEXPECTED_TENANT = "unexpected_tenant"  # not the organization the link was made for
    # Microsoft's consent answer and its proof (app/linking.py)
    DECLINED = "declined"
    APP_BLOCKED = "app_blocked"
    CONSENT_ERROR = "consent_error"
    NO_CONSENT = "no_consent"
    TENANT_MISMATCH = "tenant_mismatch"
    CONSENT_NOT_IN_EFFECT = "consent_not_in_effect"
    # The callback itself failed part-way (`"status": "failed"`, the ErrorCode in `errorCode`)
    NOT_FINISHED = "not_finished"


class SyncError(Exception):
    """A failure with a stable code, a plain message and what to do about it."""

    retriable: ClassVar[bool] = False

    def __init__(self, code: ErrorCode, message: str, fix: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


class FatalError(SyncError):
    """Trying again cannot help until an admin fixes the cause (the fix says how)."""


class RetriableError(SyncError):
    """Transient: the next attempt may succeed."""

    retriable = True


def internal_error(error: BaseException) -> FatalError:
    """A bug, not a failure of the outside world: the exception's type only, never its message.

    The one policy for every surface (a run's report, the queue worker's record, the CLI's error
    line): a message may hold data (a user's attribute, a URL with a token, a connection string)
    and the report is shown over HTTP and kept for months, so the text and the trace belong in the
    log only, where the caller writes them (the CLI prints them with -v)."""
    return FatalError(ErrorCode.INTERNAL_ERROR, f"Unexpected {type(error).__name__}.")


# --- Signals across the ports (see the module docstring) ---------------------------------------


class LeaseLost(Exception):
    """The lease was taken over or removed: the holder must stop writing."""


class UnstorableEmployee(Exception):
    """Table Storage cannot hold this employee's row at all; the run skips it and goes on."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class DeltaStateLost(Exception):
    """Graph holds no state for the stored delta link (410 Gone or 400 syncStateNotFound):
    the run goes on as a full run."""


class DeltaUnavailable(Exception):
    """Graph does not serve user delta queries here (400 or 501 on the request: some national
    clouds): the tenant keeps to full runs."""


class PhotoUnavailable(Exception):
    """A photo could not be downloaded; `missing` when Graph says there is none (any more)."""

    def __init__(self, reason: str, *, missing: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.missing = missing


class GroupStateMissing(Exception):
    """The stored membership graph is gone or was never written: the run goes full."""


class RunPending(Exception):
    """The tenant already has a run queued or running."""

    def __init__(self, run_id: str):
        super().__init__(f"run {run_id} is pending")
        self.run_id = run_id
