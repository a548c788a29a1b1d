"""App settings, read from the environment once and validated as a whole.

A problem names the setting and the shape it expects, never the value: a connection string
carries an account key, and a client secret pasted into the wrong setting must not reach a log.

The same names are the Function App's app settings; `SETTINGS` is the single definition that the
infrastructure tests compare the Bicep template against.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit


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
    SettingSpec("KEY_VAULT_URL", "Vault holding the app registration's client secret."),
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
        "QUEUES_ENDPOINT",
        "Queue endpoint for identity-based access in Azure (Sync Now enqueues runs there); "
        "locally the queue comes from TABLES_CONNECTION_STRING.",
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
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


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
    sync_reconcile_hours: float = 24.0

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
    return _is_guid(value)


def load_settings(environ: Mapping[str, str], *, needs_graph: bool = True) -> Settings:
    """Read and check the settings; raise SettingsError listing every problem.

    `needs_graph` is false for commands that only touch storage (config, employees, runs), so an
    engineer reading the Employees table needs no app registration.
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
    elif client_id is not None and not _is_guid(client_id):
        problems.append("ENTRA_CLIENT_ID is not a GUID (the Application (client) ID)")

    key_vault_url = get("KEY_VAULT_URL")
    client_secret = get("ENTRA_CLIENT_SECRET")
    if key_vault_url is not None:
        problems += _url_problems("KEY_VAULT_URL", key_vault_url)
    if needs_graph and key_vault_url is None and client_secret is None:
        problems.append(
            "no client secret source: set KEY_VAULT_URL (deployed) or ENTRA_CLIENT_SECRET "
            "(local runs only)"
        )

    authority_host = (get("ENTRA_AUTHORITY_HOST") or "").rstrip("/")
    problems += _url_problems("ENTRA_AUTHORITY_HOST", authority_host)
    graph_base_url = (get("GRAPH_BASE_URL") or "").rstrip("/")
    problems += _url_problems("GRAPH_BASE_URL", graph_base_url)
    if re.search(r"/(v1\.0|beta)$", graph_base_url):
        problems.append(
            "GRAPH_BASE_URL ends with a version segment: give the root "
            "(https://graph.microsoft.com); the app adds /v1.0"
        )

    connection_string = get("TABLES_CONNECTION_STRING")
    tables_endpoint = get("TABLES_ENDPOINT")
    if connection_string and tables_endpoint:
        problems.append(
            "TABLES_CONNECTION_STRING and TABLES_ENDPOINT are both set: use the connection "
            "string for Azurite or the endpoint for Azure, not both"
        )
    elif not connection_string and not tables_endpoint:
        problems.append(
            "no table storage: set TABLES_ENDPOINT (Azure, managed identity) or "
            "TABLES_CONNECTION_STRING (Azurite)"
        )
    if tables_endpoint:
        # Identity-based access: azure-core sends a bearer token over https only.
        problems += _url_problems("TABLES_ENDPOINT", tables_endpoint, https_only=True)
    if connection_string:
        problems += _connection_string_problems(connection_string)
        connection_string = _canonical_connection_string(connection_string)

    schedule = get("SYNC_SCHEDULE") or ""
    if len(schedule.split()) != 6:
        problems.append(
            f"SYNC_SCHEDULE is not an NCRONTAB expression of 6 fields "
            f"(second minute hour day month weekday); it has {len(schedule.split())}"
        )

    interval_min = _hours(get("SYNC_INTERVAL_MIN_HOURS") or "", "SYNC_INTERVAL_MIN_HOURS", problems)
    interval_max = _hours(get("SYNC_INTERVAL_MAX_HOURS") or "", "SYNC_INTERVAL_MAX_HOURS", problems)
    if interval_min is not None and interval_max is not None and interval_min > interval_max:
        problems.append(
            f"SYNC_INTERVAL_MIN_HOURS ({interval_min:g}) is greater than "
            f"SYNC_INTERVAL_MAX_HOURS ({interval_max:g})"
        )

    reconcile = _hours(get("SYNC_RECONCILE_HOURS") or "24", "SYNC_RECONCILE_HOURS", problems)

    queues_endpoint = get("QUEUES_ENDPOINT")
    if queues_endpoint:
        problems += _url_problems("QUEUES_ENDPOINT", queues_endpoint, https_only=True)

    managed_identity_client_id = get("AZURE_CLIENT_ID")
    if managed_identity_client_id is not None and not _is_guid(managed_identity_client_id):
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
        queues_endpoint=queues_endpoint.rstrip("/") if queues_endpoint else None,
        managed_identity_client_id=managed_identity_client_id,
    )


def _is_guid(value: str) -> bool:
    # Only the canonical spelling: uuid.UUID also takes "urn:uuid:...", braces and hyphens
    # anywhere, which would name one tenant several ways.
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _url_problems(name: str, value: str, *, https_only: bool = False) -> list[str]:
    if _is_url(value, allow_local_http=not https_only):
        return []
    if https_only:
        return [f"{name} is not an https URL such as https://<account>.table.core.windows.net"]
    return [f"{name} is not an https URL (plain http is accepted for localhost only)"]


# The keys of a storage connection string (Microsoft's "Configure Azure Storage connection
# strings", storage/common/storage-configure-connection-string), compared ignoring case as the
# SDKs do.
_CONNECTION_KEYS = {
    "defaultendpointsprotocol", "accountname", "accountkey", "endpointsuffix",
    "sharedaccesssignature", "usedevelopmentstorage",
    *(f"{service}{kind}endpoint" for service in ("table", "queue", "blob", "file")
      for kind in ("", "secondary")),
}  # fmt: skip
_CONNECTION_SHAPE = (
    "the expected shape is DefaultEndpointsProtocol=https;AccountName=<account>;"
    "AccountKey=<key>;EndpointSuffix=core.windows.net, or UseDevelopmentStorage=true for Azurite"
)


def _connection_pairs(value: str) -> dict[str, str] | None:
    pairs: dict[str, str] = {}
    for segment in value.split(";"):
        if not segment.strip():
            continue
        key, equals, text = segment.partition("=")
        if not equals or not key.strip():
            return None
        pairs[key.strip().lower()] = text.strip()
    return pairs


def _connection_string_problems(value: str) -> list[str]:
    """The connection string's shape, checked before the SDK sees it (it raises a bare
    ValueError, or fails at the first request on a key that is not base64). No problem repeats
    the value: it holds the account key."""
    name = "TABLES_CONNECTION_STRING"
    pairs = _connection_pairs(value)
    if not pairs:
        return [f"{name} is not a connection string of key=value parts: {_CONNECTION_SHAPE}"]
    problems: list[str] = []
    # A key is named only when it looks like one: a pasted key or SAS may contain "=".
    unknown = sorted(key for key in pairs if key not in _CONNECTION_KEYS)
    if unknown:
        shown = [key for key in unknown if re.fullmatch(r"[a-z]{1,40}", key)]
        problems.append(
            f"{name} has {len(unknown)} unknown key(s)"
            + (f" ({', '.join(shown)})" if shown else "")
            + f": {_CONNECTION_SHAPE}"
        )
    if "usedevelopmentstorage" in pairs:
        if pairs["usedevelopmentstorage"].lower() != "true" or len(pairs) > 1:
            problems.append(f"{name}: UseDevelopmentStorage=true must stand alone")
        return problems
    if not pairs.get("accountname") and not pairs.get("tableendpoint"):
        problems.append(f"{name} has no AccountName: {_CONNECTION_SHAPE}")
    key = pairs.get("accountkey")
    if not key and not pairs.get("sharedaccesssignature"):
        problems.append(f"{name} has neither AccountKey nor SharedAccessSignature")
    elif key and not _is_base64(key):
        problems.append(
            f"{name}: AccountKey is not base64; copy key1 or key2 from the storage account's "
            "Access keys"
        )
    protocol = pairs.get("defaultendpointsprotocol")
    if protocol is not None and protocol.lower() not in ("http", "https"):
        problems.append(f"{name}: DefaultEndpointsProtocol must be https or http")
    # Azurite is reached over plain http on any host name (a container's, say).
    endpoints = (key for key in pairs if key.endswith("endpoint") and key in _CONNECTION_KEYS)
    for key_name in endpoints:
        if not _is_url(pairs[key_name].replace("http://", "https://", 1), allow_local_http=False):
            problems.append(f"{name}: {key_name} is not an http(s) URL")
    return problems


def _canonical_connection_string(value: str) -> str:
    # The SDK recognises the development shortcut only when it is the whole string.
    pairs = _connection_pairs(value) or {}
    if pairs.get("usedevelopmentstorage", "").lower() == "true" and len(pairs) == 1:
        return "UseDevelopmentStorage=true"
    return value


def _is_base64(value: str) -> bool:
    try:
        return bool(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return False


def _is_url(value: str, *, allow_local_http: bool) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        host = parts.hostname
    except ValueError:  # "https://[::1" and other malformed authorities
        return False
    if any(char.isspace() for char in value) or not host:
        return False
    return parts.scheme == "https" or (
        allow_local_http and parts.scheme == "http" and host in _LOCAL_HOSTS
    )


def _hours(value: str, name: str, problems: list[str]) -> float | None:
    try:
        hours = float(value)
    except ValueError:
        problems.append(f"{name} is not a number of hours")
        return None
    if not 0.25 <= hours <= 168:
        problems.append(f"{name} is outside 0.25..168 hours")
        return None
    return hours
