"""App settings, read from the environment once and validated as a whole.

A problem names the setting and the shape it expects, never the value: a connection string
carries an account key, and a client secret pasted into the wrong setting must not reach a log.

The same names are the Function App's app settings; `SETTINGS` is the single definition that the
infrastructure tests compare the Bicep template against.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

from sync_core.settings_rules import (
    canonical_connection_string,
    connection_string_problems,
    credential_problems,
    hours,
    is_guid,
    retention_days,
    schedule_problems,
    storage_problems,
    url_problems,
)


class Where(Enum):
    """Where a setting belongs: in the deployed app's settings, or in local runs only."""

    DEPLOYED = "deployed"
    LOCAL_ONLY = "local-only"


@dataclass(frozen=True)
class SettingSpec:
    name: str
    meaning: str
    default: str | None = None
    where: Where = Where.DEPLOYED


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("ENTRA_TENANT_ID", "Tenant the CLI (and a single-tenant deployment) works on."),
    SettingSpec("ENTRA_CLIENT_ID", "Application (client) id of the Entra app registration."),
    SettingSpec(
        "ENTRA_CREDENTIAL",
        "How the app proves itself to Entra ID: federated (the managed identity, no secret), "
        "certificate (from Key Vault) or secret (from Key Vault).",
        "secret",
    ),
    SettingSpec(
        "KEY_VAULT_URL", "Vault holding the app registration's client secret or certificate."
    ),
    SettingSpec(
        "ENTRA_CERTIFICATE_NAME",
        "Name of the certificate (its PEM secret: key + certificate) in the vault.",
        "entra-certificate",
    ),
    SettingSpec(
        "CONNECT_RETURN_URLS",
        "Comma-separated URLs the browser may be sent to after linking a tenant (allow-list).",
    ),
    SettingSpec(
        "ENTRA_CLIENT_SECRET_NAME", "Name of the client secret in the vault.", "entra-client-secret"
    ),
    SettingSpec(
        "ENTRA_CLIENT_SECRET",
        "The client secret itself, for local runs only; wins over Key Vault.",
        where=Where.LOCAL_ONLY,
    ),
    SettingSpec(
        "ENTRA_AUTHORITY_HOST",
        "Token authority; a non-Microsoft host disables instance discovery.",
        "https://login.microsoftonline.com",
    ),
    SettingSpec(
        "GRAPH_BASE_URL",
        "Graph root without the version segment; the app adds /v1.0.",
        "https://graph.microsoft.com",
    ),
    SettingSpec(
        "TABLES_CONNECTION_STRING",
        "Storage connection string (Azurite, local runs).",
        where=Where.LOCAL_ONLY,
    ),
    SettingSpec("TABLES_ENDPOINT", "Table endpoint for identity-based access in Azure."),
    SettingSpec(
        "SYNC_SCHEDULE",
        "NCRONTAB of the timer's tick; each tick syncs the tenants that are due.",
        "0 */15 * * * *",
    ),
    SettingSpec(
        "SYNC_INTERVAL_MIN_HOURS",
        "Shortest interval between two scheduled syncs of a tenant, in hours (by default every "
        "tick: a delta run of an unchanged tenant costs two Graph requests).",
        "0.25",
    ),
    SettingSpec(
        "SYNC_INTERVAL_MAX_HOURS",
        "Longest interval between two scheduled syncs of a tenant, in hours.",
        "0.25",
    ),
    SettingSpec(
        "SYNC_RECONCILE_HOURS",
        "How often each tenant gets a full (reconciling) run between delta runs, in hours; "
        "each tenant at its own stable offset within the period.",
        "24",
    ),
    SettingSpec(
        "RUN_RETENTION_DAYS",
        "How long run records are kept, in days (a held or failed run stays until a later run "
        "succeeded); older ones are removed a few at each tick.",
        "90",
    ),
    SettingSpec(
        "QUEUES_ENDPOINT",
        "Queue endpoint for identity-based access in Azure (Sync Now enqueues runs there); "
        "locally the queue comes from TABLES_CONNECTION_STRING.",
    ),
    SettingSpec(
        "BLOBS_ENDPOINT",
        "Blob endpoint for identity-based access in Azure (profile photos, when a tenant turns "
        "`photos` on); locally the blobs come from TABLES_CONNECTION_STRING.",
    ),
    SettingSpec(
        "AZURE_CLIENT_ID",
        "Client id of the user-assigned managed identity that reads Key Vault and storage.",
    ),
)

_BY_NAME = {spec.name: spec for spec in SETTINGS}

_MICROSOFT_AUTHORITIES = {
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
    "login.partner.microsoftonline.cn",
}
TENANT_ID_RULE = (
    "is not a tenant GUID: give the Directory (tenant) ID from the Entra admin center "
    "(not a domain: the id keys the stored employees)"
)


class SettingsError(Exception):
    """Every problem with the settings at once, so an admin fixes them in one go."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(
            "invalid settings:\n" + "\n".join(f"  - {problem}" for problem in problems)
        )


@dataclass(frozen=True)
class Settings:
    tenant_id: str
    client_id: str | None
    key_vault_url: str | None
    client_secret_name: str
    client_secret: str | None
    authority_host: str
    graph_base_url: str
    tables_connection_string: str | None
    tables_endpoint: str | None
    sync_schedule: str
    sync_interval_min_hours: float
    sync_interval_max_hours: float
    queues_endpoint: str | None
    managed_identity_client_id: str | None
    blobs_endpoint: str | None = None
    credential: str = "secret"
    certificate_name: str = "entra-certificate"
    connect_return_urls: tuple[str, ...] = ()
    sync_reconcile_hours: float = 24.0
    run_retention_days: int = 90

    @property
    def graph_api_url(self) -> str:
        return f"{self.graph_base_url}/v1.0"

    @property
    def authority_is_microsoft(self) -> bool:
        return (urlsplit(self.authority_host).hostname or "") in _MICROSOFT_AUTHORITIES

    def __repr__(self) -> str:
        # The dataclass repr would print the secret and the connection string's account key.
        return (
            f"Settings(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, "
            f"graph_base_url={self.graph_base_url!r}, authority_host={self.authority_host!r})"
        )


def is_tenant_id(value: str) -> bool:
    """A tenant is named by its GUID. Entra also accepts a domain, but the id keys every stored
    row: one tenant named two ways would get two copies of its employees."""
    return is_guid(value)


def load_settings(environ: Mapping[str, str], *, needs_graph: bool = True) -> Settings:
    """Read and check the settings; raise SettingsError listing every problem.

    `needs_graph` is false for commands that only touch storage (config, employees, runs), so an
    engineer reading the Employees table needs no app registration.

    Long on purpose: every setting is read here, in one pass, so one SettingsError lists every
    problem at once; the checks themselves live in settings_rules.
    """
    problems: list[str] = []

    def get(name: str) -> str | None:
        value = environ.get(name, "").strip()
        return value or _BY_NAME[name].default

    tenant_id = get("ENTRA_TENANT_ID")
    if tenant_id is None:
        problems.append("ENTRA_TENANT_ID is not set: give the tenant's Directory (tenant) ID")
    elif not is_tenant_id(tenant_id):
        problems.append(f"ENTRA_TENANT_ID {TENANT_ID_RULE}")

    client_id = get("ENTRA_CLIENT_ID")
    if client_id is None and needs_graph:
        problems.append("ENTRA_CLIENT_ID is not set: give the app registration's client id")
    elif client_id is not None and not is_guid(client_id):
        problems.append("ENTRA_CLIENT_ID is not a GUID (the Application (client) ID)")

    key_vault_url = get("KEY_VAULT_URL")
    client_secret = get("ENTRA_CLIENT_SECRET")
    if key_vault_url is not None:
        problems += url_problems("KEY_VAULT_URL", key_vault_url)
    credential = (get("ENTRA_CREDENTIAL") or "").lower()
    problems += credential_problems(
        credential,
        needs_graph=needs_graph,
        vault=key_vault_url is not None,
        secret=client_secret is not None,
        identity=get("AZURE_CLIENT_ID") is not None,
    )
    return_urls = tuple(
        u.strip() for u in (get("CONNECT_RETURN_URLS") or "").split(",") if u.strip()
    )
    for url in return_urls:
        problems += url_problems("CONNECT_RETURN_URLS", url)

    authority_host = (get("ENTRA_AUTHORITY_HOST") or "").rstrip("/")
    problems += url_problems("ENTRA_AUTHORITY_HOST", authority_host)
    graph_base_url = (get("GRAPH_BASE_URL") or "").rstrip("/")
    problems += url_problems("GRAPH_BASE_URL", graph_base_url)
    if re.search(r"/(v1\.0|beta)$", graph_base_url):
        problems.append(
            "GRAPH_BASE_URL ends with a version segment: give the root "
            "(https://graph.microsoft.com); the app adds /v1.0"
        )

    connection_string = get("TABLES_CONNECTION_STRING")
    tables_endpoint = get("TABLES_ENDPOINT")
    problems += storage_problems(connection_string, tables_endpoint)
    if connection_string:
        problems += connection_string_problems(connection_string)
        connection_string = canonical_connection_string(connection_string)

    schedule = get("SYNC_SCHEDULE") or ""
    interval_min = hours(get("SYNC_INTERVAL_MIN_HOURS") or "", "SYNC_INTERVAL_MIN_HOURS", problems)
    interval_max = hours(get("SYNC_INTERVAL_MAX_HOURS") or "", "SYNC_INTERVAL_MAX_HOURS", problems)
    problems += schedule_problems(schedule, interval_min, interval_max)

    reconcile = hours(get("SYNC_RECONCILE_HOURS") or "24", "SYNC_RECONCILE_HOURS", problems)

    retention = retention_days(get("RUN_RETENTION_DAYS") or "90", problems)

    queues_endpoint = get("QUEUES_ENDPOINT")
    if queues_endpoint:
        problems += url_problems("QUEUES_ENDPOINT", queues_endpoint, https_only=True)

    blobs_endpoint = get("BLOBS_ENDPOINT")
    if blobs_endpoint:
        problems += url_problems("BLOBS_ENDPOINT", blobs_endpoint, https_only=True)

    managed_identity_client_id = get("AZURE_CLIENT_ID")
    if managed_identity_client_id is not None and not is_guid(managed_identity_client_id):
        problems.append("AZURE_CLIENT_ID is not a GUID (the managed identity's client id)")

    if problems:
        raise SettingsError(problems)
    return Settings(
        # Tenant ids are partition keys: one spelling, or one tenant would have two partitions.
        tenant_id=(tenant_id or "").lower(),
        client_id=client_id,
        key_vault_url=key_vault_url.rstrip("/") if key_vault_url else None,
        client_secret_name=get("ENTRA_CLIENT_SECRET_NAME") or "",
        client_secret=client_secret,
        authority_host=authority_host,
        graph_base_url=graph_base_url,
        tables_connection_string=connection_string,
        tables_endpoint=tables_endpoint.rstrip("/") if tables_endpoint else None,
        sync_schedule=schedule,
        sync_interval_min_hours=interval_min or 0.0,
        sync_interval_max_hours=interval_max or 0.0,
        sync_reconcile_hours=reconcile or 24.0,
        run_retention_days=retention or 90,
        queues_endpoint=queues_endpoint.rstrip("/") if queues_endpoint else None,
        blobs_endpoint=blobs_endpoint.rstrip("/") if blobs_endpoint else None,
        managed_identity_client_id=managed_identity_client_id,
        credential=credential,
        certificate_name=get("ENTRA_CERTIFICATE_NAME") or "",
        connect_return_urls=return_urls,
    )
