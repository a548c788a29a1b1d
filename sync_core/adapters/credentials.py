"""The Entra credential of the app registration; its client secret comes from Key Vault.

Key Vault and Table Storage are reached with the app's own identity (the managed identity in
Azure), never with the app registration: the registration only reads the directory.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from sync_core.adapters.errors import classify_token_error, classify_vault_error
from sync_core.errors import FatalError, SyncError
from sync_core.settings import Settings


def azure_identity(settings: Settings) -> AsyncTokenCredential:
    """The app's own identity: the user-assigned managed identity in Azure, `az login` locally."""
    return DefaultAzureCredential(
        managed_identity_client_id=settings.managed_identity_client_id,
        exclude_interactive_browser_credential=True,
    )


async def read_client_secret(settings: Settings) -> str:
    """The secret from the environment (local runs) or from Key Vault; never logged."""
    if settings.client_secret:
        return settings.client_secret
    if not settings.key_vault_url:
        raise FatalError(
            "no_secret_source",
            "No client secret: KEY_VAULT_URL is not set.",
            "Set KEY_VAULT_URL to the vault holding the secret.",
        )
    identity = azure_identity(settings)
    try:
        async with SecretClient(settings.key_vault_url, identity) as client:
            secret = await client.get_secret(settings.client_secret_name)
    except Exception as error:  # noqa: BLE001 - every vault failure is classified for the admin
        raise classify_vault_error(
            error, settings.key_vault_url, settings.client_secret_name
        ) from None
    finally:
        await identity.close()
    if not secret.value:
        raise FatalError(
            "secret_empty",
            f"The secret {settings.client_secret_name!r} in Key Vault is empty.",
            "Store the app registration's client secret value in it.",
        )
    return secret.value


class EntraCredential(ClientSecretCredential):
    """The app registration's credential. It knows where its secret came from, so a secret
    Entra ID refuses is classified with the right advice: ENTRA_CLIENT_SECRET is fixed in the
    environment, a Key Vault secret in the vault."""

    def __init__(self, *args: Any, secret_from_environment: bool, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._secret_from_environment = secret_from_environment

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return await super().get_token(*scopes, **kwargs)
        except ClientAuthenticationError as error:
            raise self._classified(error) from error

    async def get_token_info(self, *scopes: str, **kwargs: Any) -> AccessTokenInfo:
        try:
            return await super().get_token_info(*scopes, **kwargs)
        except ClientAuthenticationError as error:
            raise self._classified(error) from error

    def _classified(self, error: ClientAuthenticationError) -> SyncError:
        return classify_token_error(error, secret_from_environment=self._secret_from_environment)


def entra_credential(settings: Settings, tenant_id: str, client_secret: str) -> EntraCredential:
    """The app registration's credential in one tenant (the app may serve several)."""
    if settings.client_id is None:
        raise FatalError("no_client_id", "ENTRA_CLIENT_ID is not set.", "Set ENTRA_CLIENT_ID.")
    return EntraCredential(
        tenant_id,
        settings.client_id,
        client_secret,
        authority=settings.authority_host,
        # Instance discovery asks login.microsoftonline.com about the authority; a sovereign or
        # local authority is not in its list, so discovery would fail or leak the call.
        disable_instance_discovery=not settings.authority_is_microsoft,
        # read_client_secret prefers the environment: the secret came from there when set.
        secret_from_environment=bool(settings.client_secret),
    )
