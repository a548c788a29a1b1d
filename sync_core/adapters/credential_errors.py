"""What Entra ID says about a certificate or federated credential, in plain words with the fix.

The codes are Microsoft's (AADSTS error codes reference, entra/identity-platform/reference-error-
codes; workload identity federation troubleshooting); simulator/README.md models the same.
"""

from __future__ import annotations

import re

from azure.core.exceptions import HttpResponseError

from sync_core.adapters.errors import classify_token_error
from sync_core.errors import ErrorCode, FatalError, SyncError

_FEDERATED_SETUP = (
    "Add (or correct) the federated credential on the app registration with the issuer, "
    "subject and audience that `azd up` printed (FEDERATED_CREDENTIAL_*; docs/deploy.md gives "
    "the `az ad app federated-credential create` command)."
)
_FEDERATED: dict[str, tuple[ErrorCode, str, str]] = {
    "70021": (
        ErrorCode.FEDERATED_CREDENTIAL_MISSING,
        "The app registration has no federated credential matching the function app's "
        "managed identity.",
        _FEDERATED_SETUP,
    ),
    "700211": (
        ErrorCode.FEDERATED_ISSUER_MISMATCH,
        "The app registration's federated credential names another issuer than the managed "
        "identity's tenant.",
        "Set the federated credential's issuer to FEDERATED_CREDENTIAL_ISSUER "
        "(https://login.microsoftonline.com/<hosting tenant id>/v2.0).",
    ),
    "700212": (
        ErrorCode.FEDERATED_AUDIENCE_MISMATCH,
        "The app registration's federated credential expects another audience than "
        "api://AzureADTokenExchange.",
        "Set the federated credential's audience to api://AzureADTokenExchange.",
    ),
    "700213": (
        ErrorCode.FEDERATED_SUBJECT_MISMATCH,
        "The app registration's federated credential names another subject than the managed "
        "identity.",
        "Set the federated credential's subject to the managed identity's object (principal) "
        "id, FEDERATED_CREDENTIAL_SUBJECT; check AZURE_CLIENT_ID names that identity.",
    ),
}
_CERT_FIX = (
    "Upload the certificate's public part (.cer) under the app registration's Certificates & "
    "secrets, or point ENTRA_CERTIFICATE_NAME at a certificate that is registered there."
)


def classify_credential_error(error: BaseException, kind: str) -> SyncError:
    """`kind` is ENTRA_CREDENTIAL; a secret's failures keep their existing classification."""
    text = str(error)
    codes = re.findall(r"AADSTS(\d+)", text)
    if kind == "federated":
        for code in codes:
            if code in _FEDERATED:
                name, message, fix = _FEDERATED[code]
                return FatalError(name, f"{message} (AADSTS{code})", fix)
        if not codes and "ManagedIdentity" in type(error).__name__ + text:
            return FatalError(
                ErrorCode.MANAGED_IDENTITY_UNAVAILABLE,
                "The managed identity could not get a token to exchange.",
                "Assign the user-assigned identity to the function app and set AZURE_CLIENT_ID "
                "to its client id.",
            )
    if kind == "certificate" and "700027" in codes:
        if "expired" in text.lower():
            return FatalError(
                ErrorCode.CERTIFICATE_EXPIRED,
                "The certificate registered on the app registration has expired (AADSTS700027).",
                "Create a new certificate in Key Vault under ENTRA_CERTIFICATE_NAME and upload "
                "its public part to the app registration.",
            )
        return FatalError(
            ErrorCode.CERTIFICATE_NOT_REGISTERED,
            "Entra ID does not accept the certificate: it is not registered on the app "
            "registration, or the key does not match (AADSTS700027).",
            _CERT_FIX,
        )
    return classify_token_error(error)


def vault_token_rejected(error: BaseException, vault_url: str) -> SyncError | None:
    """Key Vault answered 401 to the token the app's identity got: the identity worked, the vault
    refused its token (azure-keyvault's challenge policy already asked for a new token and sent
    it once more). The vault's own words (AKV100xx) say why; None for any other failure, such as
    no identity getting a token at all (azure-identity raises without an HTTP response)."""
    if not isinstance(error, HttpResponseError) or error.status_code != 401:
        return None
    said = getattr(getattr(error, "error", None), "message", None) or error.reason or "Unauthorized"
    return FatalError(
        ErrorCode.KEY_VAULT_TOKEN_REJECTED,
        f"Key Vault {vault_url} refused the token the app's identity got (HTTP 401: {said}).",
        "An expired token usually means this machine's clock is wrong (compare it with an "
        "internet time source); an invalid issuer or audience, that the vault belongs to another "
        "tenant than the identity or KEY_VAULT_URL names another cloud's vault.",
    )
