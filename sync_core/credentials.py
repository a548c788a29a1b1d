"""The Entra credential of the app registration; its client secret comes from Key Vault.

Key Vault and Table Storage are reached with the app's own identity (the managed identity in
Azure), never with the app registration: the registration only reads the directory.
"""

from __future__ import annotations

from azure.core.credentials_async import AsyncTokenCredential
from azure.identity.aio import ClientSecretCredential, DefaultAzureCredential
from azure.keyvault.secrets.aio import SecretClient

from .errors import SyncFailure, classify_vault_error
from .settings import Settings


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
        raise SyncFailure(
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
        raise SyncFailure(
            "secret_empty",
            f"The secret {settings.client_secret_name!r} in Key Vault is empty.",
            "Store the app registration's client secret value in it.",
        )
    return secret.value


def entra_credential(
    settings: Settings, tenant_id: str, client_secret: str
) -> ClientSecretCredential:
    """The app registration's credential in one tenant (the app may serve several)."""
    if settings.client_id is None:
        raise SyncFailure("no_client_id", "ENTRA_CLIENT_ID is not set.", "Set ENTRA_CLIENT_ID.")
    return ClientSecretCredential(
        tenant_id,
        settings.client_id,
        client_secret,
        authority=settings.authority_host,
        # Instance discovery asks login.microsoftonline.com about the authority; a sovereign or
        # local authority is not in its list, so discovery would fail or leak the call.
        disable_instance_discovery=not settings.authority_is_microsoft,
    )
