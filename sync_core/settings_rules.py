"""The shape rules of single settings: GUIDs, URLs, the storage connection string, hours.

A problem names the setting and the shape it expects, never the value (see settings.py).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from urllib.parse import urlsplit

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def is_guid(value: str) -> bool:
    # Only the canonical spelling: uuid.UUID also takes "urn:uuid:...", braces and hyphens
    # anywhere, which would name one tenant several ways.
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def url_problems(name: str, value: str, *, https_only: bool = False) -> list[str]:
    if is_url(value, allow_local_http=not https_only):
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


def connection_string_problems(value: str) -> list[str]:
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
        if not is_url(pairs[key_name].replace("http://", "https://", 1), allow_local_http=False):
            problems.append(f"{name}: {key_name} is not an http(s) URL")
    return problems


def canonical_connection_string(value: str) -> str:
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


def is_url(value: str, *, allow_local_http: bool) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
        host = parts.hostname
    except ValueError:  # "https://[::1" and other malformed authorities
        return False
    if any(char.isspace() for char in value) or not host:
        return False
    return parts.scheme == "https" or (
        allow_local_http and parts.scheme == "http" and host in LOCAL_HOSTS
    )


def hours(value: str, name: str, problems: list[str]) -> float | None:
    try:
        hours = float(value)
    except ValueError:
        problems.append(f"{name} is not a number of hours")
        return None
    if not 0.25 <= hours <= 168:
        problems.append(f"{name} is outside 0.25..168 hours")
        return None
    return hours


def retention_days(value: str, problems: list[str]) -> int | None:
    """RUN_RETENTION_DAYS: whole days, 1..3650."""
    try:
        days = int(value)
    except ValueError:
        problems.append("RUN_RETENTION_DAYS is not a whole number of days")
        return None
    if not 1 <= days <= 3650:
        problems.append("RUN_RETENTION_DAYS is outside 1..3650 days")
        return None
    return days


CREDENTIALS = ("federated", "certificate", "secret")


def credential_problems(
    credential: str, *, needs_graph: bool, vault: bool, secret: bool, identity: bool
) -> list[str]:
    """ENTRA_CREDENTIAL and what the chosen credential needs beside it."""
    if credential not in CREDENTIALS:
        return ["ENTRA_CREDENTIAL must be federated, certificate or secret"]
    if not needs_graph:
        return []
    if credential == "secret" and not vault and not secret:
        return [
            "no client secret source: set KEY_VAULT_URL (deployed) or ENTRA_CLIENT_SECRET "
            "(local runs only)"
        ]
    if credential == "certificate" and not vault:
        return ["ENTRA_CREDENTIAL=certificate needs KEY_VAULT_URL (the vault holding it)"]
    if credential == "federated" and not identity:
        return [
            "ENTRA_CREDENTIAL=federated needs AZURE_CLIENT_ID (the client id of the managed "
            "identity the app registration trusts)"
        ]
    return []


def storage_problems(connection_string: str | None, tables_endpoint: str | None) -> list[str]:
    """Exactly one way to Table Storage: a connection string (Azurite) or an endpoint (Azure)."""
    problems: list[str] = []
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
        problems += url_problems("TABLES_ENDPOINT", tables_endpoint, https_only=True)
    return problems


def schedule_problems(
    schedule: str, interval_min: float | None, interval_max: float | None
) -> list[str]:
    problems: list[str] = []
    if len(schedule.split()) != 6:
        problems.append(
            f"SYNC_SCHEDULE is not an NCRONTAB expression of 6 fields "
            f"(second minute hour day month weekday); it has {len(schedule.split())}"
        )
    if interval_min is not None and interval_max is not None and interval_min > interval_max:
        problems.append(
            f"SYNC_INTERVAL_MIN_HOURS ({interval_min:g}) is greater than "
            f"SYNC_INTERVAL_MAX_HOURS ({interval_max:g})"
        )
    return problems
