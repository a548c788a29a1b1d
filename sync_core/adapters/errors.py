"""Where the SDKs' errors become the app's (sync_core.errors): each adapter calls these once, at its
boundary, and raises the result `from` the original; nobody above classifies again."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from sync_core.errors import ErrorCode, FatalError, RetriableError, SyncError


class GraphRequestError(Exception):
    """Graph answered with an error after the retry handler gave up."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"Graph answered {status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _Known:
    code: ErrorCode
    message: str
    fix: str


_AADSTS: dict[str, _Known] = {
    "7000215": _Known(
        ErrorCode.WRONG_SECRET,
        "Entra ID rejected the client secret.",
        "Create a new client secret for the app registration and store its Value (not its "
        "Secret ID) in Key Vault under ENTRA_CLIENT_SECRET_NAME.",
    ),
    "7000222": _Known(
        ErrorCode.EXPIRED_SECRET,
        "The client secret has expired.",
        "Create a new client secret for the app registration and store it in Key Vault.",
    ),
    "90002": _Known(
        ErrorCode.UNKNOWN_TENANT,
        "Entra ID does not know this tenant.",
        "Check the tenant id (ENTRA_TENANT_ID or the tenant you passed): use the Directory "
        "(tenant) ID from the Entra admin center.",
    ),
    "500011": _Known(
        ErrorCode.GRAPH_RESOURCE_UNKNOWN,
        "Entra ID does not know the Graph resource the app asked a token for.",
        "Check GRAPH_BASE_URL: it must be the Microsoft Graph root of the same cloud as "
        "ENTRA_AUTHORITY_HOST (https://graph.microsoft.com for the public cloud).",
    ),
    "700016": _Known(
        ErrorCode.UNKNOWN_APP,
        "The app registration was not found in this tenant.",
        "Check ENTRA_CLIENT_ID; for another organisation's tenant, an administrator there "
        "must first grant admin consent to the app.",
    ),
}


# A secret given in ENTRA_CLIENT_SECRET (local runs) is fixed there, not in Key Vault.
_FROM_ENVIRONMENT: dict[str, _Known] = {
    "7000215": _Known(
        ErrorCode.WRONG_SECRET,
        "Entra ID rejected the client secret taken from ENTRA_CLIENT_SECRET.",
        "Create a new client secret for the app registration and set ENTRA_CLIENT_SECRET to its "
        "Value (not its Secret ID); or unset ENTRA_CLIENT_SECRET to read the secret from Key "
        "Vault.",
    ),
    "7000222": _Known(
        ErrorCode.EXPIRED_SECRET,
        "The client secret taken from ENTRA_CLIENT_SECRET has expired.",
        "Create a new client secret for the app registration and set ENTRA_CLIENT_SECRET to its "
        "Value.",
    ),
}


def classify_token_error(
    error: BaseException, *, secret_from_environment: bool = False
) -> SyncError:
    """`secret_from_environment`: the secret came from ENTRA_CLIENT_SECRET, not Key Vault, so
    the advice about a rejected secret names that setting."""
    text = _chain_text(error)
    for code in re.findall(r"AADSTS(\d+)", text):
        if secret_from_environment and code in _FROM_ENVIRONMENT:
            known = _FROM_ENVIRONMENT[code]
            return FatalError(known.code, f"{known.message} (AADSTS{code})", known.fix)
        if code in _AADSTS:
            known = _AADSTS[code]
            return FatalError(known.code, f"{known.message} (AADSTS{code})", known.fix)
    if "invalid_tenant" in text or re.search(r"[Tt]enant .* not found", text):
        known = _AADSTS["90002"]
        return FatalError(known.code, known.message, known.fix)
    if _is_connection_problem(error):
        return RetriableError(
            ErrorCode.AUTHORITY_UNREACHABLE,
            "The Entra token endpoint could not be reached.",
            "Check outbound network access to ENTRA_AUTHORITY_HOST.",
        )
    return FatalError(
        ErrorCode.TOKEN_FAILED,
        f"Getting a token from Entra ID failed: {_first_line(text)}",
        "Check ENTRA_TENANT_ID, ENTRA_CLIENT_ID and the client secret.",
    )


def classify_graph_error(error: BaseException) -> SyncError:
    if isinstance(error, SyncError):
        return error
    if isinstance(error, AzureError):
        # Graph itself is reached over httpx; an Azure SDK error here came from the credential.
        return classify_token_error(error)
    if isinstance(error, GraphRequestError):
        if error.status == 403:
            return FatalError(
                ErrorCode.MISSING_CONSENT,
                "Microsoft Graph refused to list users: the app lacks the User.Read.All "
                "application permission in this tenant.",
                "In the Entra admin center, open the app registration > API permissions, add "
                "Microsoft Graph application permission User.Read.All and grant admin consent.",
            )
        if error.status == 401:
            return FatalError(
                ErrorCode.TOKEN_REJECTED,
                f"Microsoft Graph rejected the access token ({error.code}).",
                "Check that GRAPH_BASE_URL and ENTRA_AUTHORITY_HOST belong to the same cloud.",
            )
        if error.status == 429:
            return RetriableError(
                ErrorCode.THROTTLED,
                "Microsoft Graph kept throttling the app after every retry.",
                "Nothing to fix: the next run starts again. If it persists, sync less often.",
            )
        if error.status >= 500:
            return RetriableError(
                ErrorCode.GRAPH_UNAVAILABLE,
                f"Microsoft Graph answered {error.status} ({error.code}) after retries.",
                "Usually transient: the next run retries. Check the Microsoft 365 service health.",
            )
        return FatalError(
            ErrorCode.GRAPH_REJECTED_REQUEST,
            f"Microsoft Graph refused the request: {error.message}",
            "Check filter.odata and the field sources in the tenant configuration.",
        )
    if _is_connection_problem(error):
        return RetriableError(
            ErrorCode.GRAPH_UNREACHABLE,
            "Microsoft Graph could not be reached.",
            "Check GRAPH_BASE_URL and outbound network access from the app.",
        )
    return FatalError(ErrorCode.GRAPH_FAILED, f"Reading from Microsoft Graph failed: {error}")


def filter_needs_advanced_query_failure(error: GraphRequestError) -> SyncError:
    return FatalError(
        ErrorCode.FILTER_NEEDS_ADVANCED_QUERY,
        "This tenant refuses Graph's advanced queries (as Azure AD B2C tenants do), and "
        f"filter.odata needs one: {error.message}",
        "In filter.odata use only eq, startsWith and in on properties Graph filters by default "
        "(docs/configuration.md lists them), and express the rest as include/exclude rules, "
        "which the app evaluates itself.",
    )


def classify_vault_error(error: BaseException, vault_url: str, secret_name: str) -> SyncError:
    if isinstance(error, ResourceNotFoundError):
        return FatalError(
            ErrorCode.SECRET_NOT_FOUND,
            f"Key Vault {vault_url} has no secret named {secret_name!r}.",
            f"Store the client secret: az keyvault secret set --vault-name <vault> "
            f"--name {secret_name} --value <secret>.",
        )
    if isinstance(error, HttpResponseError) and error.status_code == 403:
        return FatalError(
            ErrorCode.KEY_VAULT_FORBIDDEN,
            f"The app's identity may not read secrets in {vault_url}.",
            "Give the app's managed identity the Key Vault Secrets User role on the vault.",
        )
    if isinstance(error, ClientAuthenticationError):
        return FatalError(
            ErrorCode.KEY_VAULT_IDENTITY_FAILED,
            "No identity could get a token for Key Vault.",
            "In Azure, check the managed identity (AZURE_CLIENT_ID); locally, sign in with "
            "`az login` or set ENTRA_CLIENT_SECRET for local runs.",
        )
    if _is_connection_problem(error):
        return RetriableError(
            ErrorCode.KEY_VAULT_UNREACHABLE,
            f"Key Vault {vault_url} could not be reached.",
            "Check KEY_VAULT_URL and the vault's network settings.",
        )
    return FatalError(
        ErrorCode.KEY_VAULT_FAILED, f"Reading the client secret failed: {_first_line(str(error))}"
    )


def classify_storage_error(error: BaseException) -> SyncError:
    if isinstance(error, SyncError):
        return error
    if (
        isinstance(error, HttpResponseError)
        and error.status_code == 403
        and _signature_refused(error)
    ):
        # A shared-key signature that does not verify: the key, not a role. Azure answers
        # AuthenticationFailed (Table service error codes); Azurite AuthorizationFailure, both
        # with "Server failed to authenticate the request".
        return FatalError(
            ErrorCode.STORAGE_KEY_REJECTED,
            "Table Storage could not verify the request's signature: the account key (or SAS) "
            "in TABLES_CONNECTION_STRING is not the account's.",
            "Copy key1 or key2 again from the storage account's Access keys (locally: the "
            "connection string Azurite prints); in Azure, use TABLES_ENDPOINT with the managed "
            "identity instead of a key.",
        )
    if isinstance(error, HttpResponseError) and error.status_code == 403:
        return FatalError(
            ErrorCode.STORAGE_FORBIDDEN,
            "Table Storage refused access.",
            "Give the app's managed identity the Storage Table Data Contributor role.",
        )
    if _is_connection_problem(error):
        return RetriableError(
            ErrorCode.STORAGE_UNREACHABLE,
            "Table Storage could not be reached.",
            "Check TABLES_ENDPOINT or TABLES_CONNECTION_STRING (locally: is Azurite running?).",
        )
    return FatalError(ErrorCode.STORAGE_FAILED, f"Table Storage failed: {_first_line(str(error))}")


def _signature_refused(error: HttpResponseError) -> bool:
    code = str(getattr(error, "error_code", "") or "")
    return code.endswith("AuthenticationFailed") or "failed to authenticate the request" in str(
        error.message or error
    )


def _is_connection_problem(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(
            current,
            ServiceRequestError
            | ServiceResponseError
            | httpx.TransportError
            | ConnectionError
            | OSError,
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def _chain_text(error: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:300] if text.strip() else "unknown error"
