"""The Entra credential of the app registration, of the kind ENTRA_CREDENTIAL chooses.

- `secret`: a client secret from Key Vault (or ENTRA_CLIENT_SECRET in local runs).
- `certificate`: a certificate with its private key, read from Key Vault once per process (the
  PEM secret Key Vault keeps beside every certificate). Signing in the vault (CryptographyClient)
  would keep the key there; the simulator does not model /keys, so this reads it (docs/deploy.md).
- `federated`: no secret at all. The function app's managed identity gets a token for
  `api://AzureADTokenExchange` and Entra ID accepts it as the client assertion of the app
  registration, which trusts that identity (a federated identity credential).

Key Vault and Table Storage are reached with the app's own identity (the managed identity in
Azure), never with the app registration: the registration only reads the directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ManagedIdentityCredential
from azure.identity.aio import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
)
from azure.keyvault.secrets.aio import SecretClient

from sync_core.adapters.credential_errors import classify_credential_error, vault_token_rejected
from sync_core.adapters.errors import classify_token_error, classify_vault_error
from sync_core.errors import ErrorCode, FatalError, SyncError
from sync_core.settings import Settings

TOKEN_EXCHANGE_SCOPE = "api://AzureADTokenExchange/.default"


@dataclass(frozen=True)
class AppCredential:
    """What the app registration proves itself with; the secret material never in a repr."""

    kind: str  # secret | certificate | federated
    described: str  # for messages: "the client secret 'x' in Key Vault"
    material: bytes = field(default=b"", repr=False)
    expires_on: datetime | None = None  # Key Vault's `exp` attribute
    from_environment: bool = False


# Certificates are read once per process: every run would otherwise read the private key again.
_CERTIFICATES: dict[tuple[str, str], AppCredential] = {}


def azure_identity(settings: Settings) -> AsyncTokenCredential:
    """The app's own identity: the user-assigned managed identity in Azure, `az login` locally."""
    return DefaultAzureCredential(
        managed_identity_client_id=settings.managed_identity_client_id,
        exclude_interactive_browser_credential=True,
    )


async def load_app_credential(settings: Settings) -> AppCredential:
    if settings.credential == "federated":
        return AppCredential("federated", "the managed identity's federated credential")
    if settings.credential == "certificate":
        cache_key = (settings.key_vault_url or "", settings.certificate_name)
        if cache_key not in _CERTIFICATES:
            value, expires_on = await _vault_secret(settings, settings.certificate_name)
            _CERTIFICATES[cache_key] = AppCredential(
                "certificate",
                f"The certificate {settings.certificate_name!r} in Key Vault",
                value.encode(),
                expires_on,
            )
        return _CERTIFICATES[cache_key]
    if settings.client_secret:
        return AppCredential(
            "secret", "ENTRA_CLIENT_SECRET", settings.client_secret.encode(), None, True
        )
    value, expires_on = await _vault_secret(settings, settings.client_secret_name)
    return AppCredential(
        "secret",
        f"The client secret {settings.client_secret_name!r} in Key Vault",
        value.encode(),
        expires_on,
    )


async def read_client_secret(settings: Settings) -> str:
    """The client secret (ENTRA_CREDENTIAL=secret); never logged."""
    return (await load_app_credential(settings)).material.decode()


async def _vault_secret(settings: Settings, name: str) -> tuple[str, datetime | None]:
    if not settings.key_vault_url:
        raise FatalError(
            ErrorCode.NO_SECRET_SOURCE,
            "No Key Vault: KEY_VAULT_URL is not set.",
            "Set KEY_VAULT_URL to the vault holding the app registration's credential.",
        )
    identity = azure_identity(settings)
    try:
        async with SecretClient(settings.key_vault_url, identity) as client:
            secret = await client.get_secret(name)
    except Exception as error:  # noqa: BLE001 - every vault failure is classified for the admin
        url = settings.key_vault_url
        raise (vault_token_rejected(error, url) or classify_vault_error(error, url, name)) from None
    finally:
        await identity.close()
    if not secret.value:
        raise FatalError(
            ErrorCode.SECRET_EMPTY,
            f"The secret {name!r} in Key Vault is empty.",
            "Store the app registration's credential in it.",
        )
    return secret.value, secret.properties.expires_on


class _Classified(AsyncTokenCredential):
    """Any of the credentials, its failures classified for its kind (plain words, the fix)."""

    def __init__(self, inner: Any, kind: str, from_environment: bool):
        self._inner, self._kind, self._from_environment = inner, kind, from_environment

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            token: AccessToken = await self._inner.get_token(*scopes, **kwargs)
            return token
        except ClientAuthenticationError as error:
            raise self._classified(error) from error

    async def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        try:
            info: AccessTokenInfo = await self._inner.get_token_info(*scopes, **kwargs)
            return info
        except ClientAuthenticationError as error:
            raise self._classified(error) from error

    def _classified(self, error: ClientAuthenticationError) -> SyncError:
        if self._kind == "secret":
            return classify_token_error(error, secret_from_environment=self._from_environment)
        return classify_credential_error(error, self._kind)

    async def close(self) -> None:
        await self._inner.close()

    async def __aexit__(self, *args: Any) -> None:
        await self.close()


def entra_credential(
    settings: Settings, tenant_id: str, app: AppCredential
) -> AsyncTokenCredential:
    """The app registration's credential in one tenant (the app may serve several)."""
    if settings.client_id is None:
        raise FatalError(
            ErrorCode.NO_CLIENT_ID, "ENTRA_CLIENT_ID is not set.", "Set ENTRA_CLIENT_ID."
        )
    common: dict[str, Any] = {
        "authority": settings.authority_host,
        # Instance discovery asks login.microsoftonline.com about the authority; a sovereign or
        # local authority is not in its list, so discovery would fail or leak the call.
        "disable_instance_discovery": not settings.authority_is_microsoft,
    }
    inner: Any
    if app.kind == "federated":
        inner = ClientAssertionCredential(
            tenant_id, settings.client_id, token_exchange(settings), **common
        )
    elif app.kind == "certificate":
        inner = CertificateCredential(
            tenant_id, settings.client_id, certificate_data=app.material, **common
        )
    else:
        inner = ClientSecretCredential(
            tenant_id, settings.client_id, app.material.decode(), **common
        )
    return _Classified(inner, app.kind, app.from_environment)


def token_exchange(settings: Settings) -> Any:
    """The assertion: a managed-identity token for api://AzureADTokenExchange. The callback is
    synchronous (ClientAssertionCredential calls it so), hence the synchronous identity; it runs
    about once an hour per tenant, when the Graph token is renewed (and once per sign-in of
    an admin who links a tenant: msal takes the same callable, app/signin.py)."""
    identity = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)

    def assertion() -> str:
        try:
            return identity.get_token(TOKEN_EXCHANGE_SCOPE).token
        except ClientAuthenticationError as error:
            raise ClientAuthenticationError(
                f"ManagedIdentity token for the exchange failed: {error}"
            ) from error

    return assertion
