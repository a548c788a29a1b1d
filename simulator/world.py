"""The world file: which apps, tenants, users, consents and vault secrets the simulator serves.

Users stay Graph's own JSON (dicts with Graph's camelCase names), exactly what ``/v1.0/users``
returns, so a world file can be written by hand, generated, or recorded from a real tenant.
See simulator/README.md for the format.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization


class WorldError(ValueError):
    """Every problem found in a world description, reported together."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid world:\n" + "\n".join(f"  - {p}" for p in problems))


# The audience Entra expects in a token exchanged through a federated identity credential
# ("Workload identity federation"; Graph's federatedIdentityCredential resource: "should be set to
# api://AzureADTokenExchange for Microsoft Entra ID").
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"
# What admin consent grants when the world does not say: the application permissions this project
# requests on its app registration.
DEFAULT_PERMISSIONS = ("User.Read.All", "Organization.Read.All")


@dataclass(frozen=True)
class PasswordCredential:
    """A client secret on the app registration (Graph's passwordCredential: secretText,
    endDateTime). Past ``end`` Entra refuses it with AADSTS7000222."""

    value: str = field(repr=False)
    end: dt.datetime | None = None
    display_name: str = ""

    def expired(self, now: dt.datetime) -> bool:
        return self.end is not None and self.end <= now


@dataclass(frozen=True)
class KeyCredential:
    """A certificate on the app registration (Graph's keyCredential, type AsymmetricX509Cert,
    usage Verify): only its public part. ``end`` is the credential's endDateTime, by default the
    certificate's notAfter, as the portal sets it on upload."""

    certificate_pem: str = field(repr=False)
    end: dt.datetime
    start: dt.datetime
    display_name: str = ""

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_pem.encode())

    @property
    def x5t(self) -> str:
        """SHA-1 thumbprint, base64url: the ``x5t`` header of a client assertion."""
        return _b64url(hashlib.sha1(self._der()).digest())  # a thumbprint, not a MAC

    @property
    def x5t_s256(self) -> str:
        """SHA-256 thumbprint, base64url: the ``x5t#S256`` header (newer MSAL sends it)."""
        return _b64url(hashlib.sha256(self._der()).digest())

    @property
    def thumbprint_hex(self) -> str:
        return hashlib.sha1(self._der()).hexdigest().upper()

    def _der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


@dataclass(frozen=True)
class FederatedCredential:
    """Graph's federatedIdentityCredential: the external token Entra accepts as the app's client
    assertion is one whose ``iss`` equals ``issuer``, ``sub`` equals ``subject`` and ``aud`` is
    one of ``audiences`` (exact, case-sensitive matches)."""

    name: str
    issuer: str
    subject: str
    audiences: tuple[str, ...] = (TOKEN_EXCHANGE_AUDIENCE,)


@dataclass(frozen=True)
class App:
    client_id: str
    display_name: str
    secrets: tuple[str, ...] = field(repr=False)
    password_credentials: tuple[PasswordCredential, ...] = field(default=(), repr=False)
    key_credentials: tuple[KeyCredential, ...] = field(default=(), repr=False)
    federated_credentials: tuple[FederatedCredential, ...] = ()
    # Web redirect URIs: admin consent redirects only to one of these (else AADSTS50011).
    redirect_uris: tuple[str, ...] = ()
    # Application permissions (Graph app roles) the app registration requests: what an admin
    # grants by consenting.
    permissions: tuple[str, ...] = DEFAULT_PERMISSIONS


@dataclass(frozen=True)
class ManagedIdentity:
    client_id: str
    tenant_id: str
    # The identity's object (principal) id: the ``sub`` of its tokens and so the subject a
    # federated identity credential names ("Configure an app to trust a managed identity").
    principal_id: str = ""

    @property
    def subject(self) -> str:
        return self.principal_id or object_id(self.tenant_id, self.client_id)


def object_id(tenant_id: str, client_id: str) -> str:
    """The service principal's object id in a tenant, stable for a (tenant, client) pair."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tenant_id}/{client_id}"))


@dataclass(frozen=True)
class SecretAttributes:
    """Key Vault's secret attributes the app reads: ``contentType`` and the ``exp``/``nbf``
    dates (epoch seconds on the wire). A certificate stored in Key Vault is readable as a secret
    holding its PEM (``application/x-pem-file``) or PKCS#12 (``application/x-pkcs12``)."""

    content_type: str | None = None
    expires: dt.datetime | None = None
    not_before: dt.datetime | None = None


@dataclass(frozen=True)
class KeyVault:
    secrets: Mapping[str, str] = field(repr=False)
    readers: tuple[str, ...] = ()
    attributes: Mapping[str, SecretAttributes] = field(default_factory=dict)


@dataclass(frozen=True)
class Tenant:
    id: str
    display_name: str
    verified_domains: tuple[dict[str, Any], ...]
    consents: Mapping[str, tuple[str, ...]]
    users: tuple[dict[str, Any], ...]
    # "AAD" (a workforce tenant) or "AADB2C" (Azure AD B2C: no advanced queries), the values of
    # organization.tenantType.
    tenant_type: str = "AAD"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tenant:
        problems: list[str] = []
        tenant = _tenant(data, "tenant", problems)
        if problems:
            raise WorldError(problems)
        return tenant

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "displayName": self.display_name,
            "verifiedDomains": list(self.verified_domains),
            "consents": {client: list(roles) for client, roles in self.consents.items()},
            "users": list(self.users),
            "tenantType": self.tenant_type,
        }


TENANT_TYPES = ("AAD", "AADB2C")


@dataclass(frozen=True)
class World:
    apps: tuple[App, ...]
    managed_identity: ManagedIdentity | None
    key_vault: KeyVault
    tenants: tuple[Tenant, ...]

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> World:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> World:
        problems: list[str] = []
        if not isinstance(data, Mapping):
            raise WorldError(["the world must be a JSON object"])
        apps = tuple(
            _app(item, f"apps[{i}]", problems)
            for i, item in enumerate(_list(data, "apps", problems))
        )
        identity = None
        if data.get("managedIdentity") is not None:
            raw = data["managedIdentity"]
            identity = ManagedIdentity(
                _guid(raw, "clientId", "managedIdentity", problems),
                _guid(raw, "tenantId", "managedIdentity", problems),
                _guid(raw, "principalId", "managedIdentity", problems)
                if raw.get("principalId") is not None
                else "",
            )
        vault = _vault(data.get("keyVault") or {}, problems)
        tenants = tuple(
            _tenant(item, f"tenants[{i}]", problems)
            for i, item in enumerate(_list(data, "tenants", problems))
        )
        _unique([t.id for t in tenants], "tenant id", problems)
        _unique([a.client_id for a in apps], "app clientId", problems)
        if problems:
            raise WorldError(problems)
        return cls(apps, identity, vault, tenants)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"apps": [_app_dict(a) for a in self.apps]}
        if self.managed_identity:
            data["managedIdentity"] = {
                "clientId": self.managed_identity.client_id,
                "tenantId": self.managed_identity.tenant_id,
            }
            if self.managed_identity.principal_id:
                data["managedIdentity"]["principalId"] = self.managed_identity.principal_id
        data["keyVault"] = {
            "secrets": {
                name: _secret_dict(value, self.key_vault.attributes.get(name))
                for name, value in self.key_vault.secrets.items()
            },
            "readers": list(self.key_vault.readers),
        }
        data["tenants"] = [t.to_dict() for t in self.tenants]
        return data

    def dump(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(
            json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )

    def app(self, client_id: str) -> App | None:
        wanted = client_id.lower()
        return next((a for a in self.apps if a.client_id == wanted), None)


def _app(data: Any, where: str, problems: list[str]) -> App:
    if not isinstance(data, Mapping):
        problems.append(f"{where} must be an object")
        return App("", "", ())
    passwords = tuple(
        p
        for i, item in enumerate(_list(data, "secrets", problems, where))
        if (p := _password(item, f"{where}.secrets[{i}]", problems)) is not None
    )
    keys = tuple(
        k
        for i, item in enumerate(_list(data, "keyCredentials", problems, where))
        if (k := _key_credential(item, f"{where}.keyCredentials[{i}]", problems)) is not None
    )
    federated = tuple(
        f
        for i, item in enumerate(_list(data, "federatedIdentityCredentials", problems, where))
        if (f := _federated(item, f"{where}.federatedIdentityCredentials[{i}]", problems))
        is not None
    )
    if not passwords and not keys and not federated:
        problems.append(
            f"{where}.secrets, keyCredentials or federatedIdentityCredentials: an app needs at "
            "least one credential (a non-empty secret, a certificate or a federated credential)"
        )
    redirect_uris = _strings(data, "redirectUris", where, problems)
    permissions = (
        _strings(data, "permissions", where, problems)
        if "permissions" in data
        else DEFAULT_PERMISSIONS
    )
    return App(
        _guid(data, "clientId", where, problems),
        str(data.get("displayName") or ""),
        tuple(p.value for p in passwords),
        passwords,
        keys,
        federated,
        redirect_uris,
        permissions,
    )


def _password(item: Any, where: str, problems: list[str]) -> PasswordCredential | None:
    # A bare string is a secret that never expires (the original world format).
    if isinstance(item, str):
        if not item:
            problems.append(f"{where} must be a non-empty secret")
            return None
        return PasswordCredential(item)
    if not isinstance(item, Mapping) or not isinstance(item.get("value"), str) or not item["value"]:
        problems.append(f"{where} must be a secret string or {{'value', 'endDateTime'}}")
        return None
    return PasswordCredential(
        item["value"],
        _date(item.get("endDateTime"), f"{where}.endDateTime", problems),
        str(item.get("displayName") or ""),
    )


def _key_credential(item: Any, where: str, problems: list[str]) -> KeyCredential | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("key"), str):
        problems.append(f"{where} needs 'key': the certificate, PEM or base64 DER")
        return None
    try:
        certificate = _certificate(item["key"])
    except ValueError as error:
        problems.append(f"{where}.key is not an X.509 certificate: {error}")
        return None
    end = _date(item.get("endDateTime"), f"{where}.endDateTime", problems)
    start = _date(item.get("startDateTime"), f"{where}.startDateTime", problems)
    return KeyCredential(
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        end or certificate.not_valid_after_utc,
        start or certificate.not_valid_before_utc,
        str(item.get("displayName") or ""),
    )


def _certificate(text: str) -> x509.Certificate:
    if "-----BEGIN" in text:
        return x509.load_pem_x509_certificate(text.encode())
    try:
        der = base64.b64decode(text, validate=True)
    except ValueError as error:
        raise ValueError("neither PEM nor base64") from error
    return x509.load_der_x509_certificate(der)


def _federated(item: Any, where: str, problems: list[str]) -> FederatedCredential | None:
    if not isinstance(item, Mapping):
        problems.append(f"{where} must be an object")
        return None
    missing = [k for k in ("issuer", "subject") if not isinstance(item.get(k), str) or not item[k]]
    if missing:
        problems.append(f"{where} needs {' and '.join(repr(k) for k in missing)}")
        return None
    audiences = (
        _strings(item, "audiences", where, problems)
        if "audiences" in item
        else (TOKEN_EXCHANGE_AUDIENCE,)
    )
    if not audiences:
        problems.append(f"{where}.audiences must list one audience")
    return FederatedCredential(
        str(item.get("name") or ""), item["issuer"], item["subject"], audiences
    )


def _vault(raw: Any, problems: list[str]) -> KeyVault:
    if not isinstance(raw, Mapping):
        problems.append("keyVault must be an object")
        return KeyVault({})
    values: dict[str, str] = {}
    attributes: dict[str, SecretAttributes] = {}
    for name, item in (raw.get("secrets") or {}).items():
        where = f"keyVault.secrets[{name!r}]"
        if isinstance(item, str):
            values[name] = item
        elif isinstance(item, Mapping) and isinstance(item.get("value"), str):
            values[name] = item["value"]
            content_type = item.get("contentType")
            if content_type is not None and not isinstance(content_type, str):
                problems.append(f"{where}.contentType must be a string")
                content_type = None
            attributes[name] = SecretAttributes(
                content_type,
                _date(item.get("expires"), f"{where}.expires", problems),
                _date(item.get("notBefore"), f"{where}.notBefore", problems),
            )
        else:
            problems.append(
                "keyVault.secrets must map secret names to string values or to "
                "{'value', 'contentType', 'expires', 'notBefore'}"
            )
    readers = tuple(str(r).lower() for r in raw.get("readers", []))
    return KeyVault(values, readers, attributes)


def _app_dict(app: App) -> dict[str, Any]:
    data: dict[str, Any] = {
        "clientId": app.client_id,
        "displayName": app.display_name,
        "secrets": [
            p.value
            if p.end is None and not p.display_name
            else {"value": p.value, "endDateTime": _iso(p.end), "displayName": p.display_name}
            for p in app.password_credentials
        ],
    }
    if app.key_credentials:
        data["keyCredentials"] = [
            {
                "key": k.certificate_pem,
                "startDateTime": _iso(k.start),
                "endDateTime": _iso(k.end),
                "displayName": k.display_name,
            }
            for k in app.key_credentials
        ]
    if app.federated_credentials:
        data["federatedIdentityCredentials"] = [
            {
                "name": f.name,
                "issuer": f.issuer,
                "subject": f.subject,
                "audiences": list(f.audiences),
            }
            for f in app.federated_credentials
        ]
    if app.redirect_uris:
        data["redirectUris"] = list(app.redirect_uris)
    if app.permissions != DEFAULT_PERMISSIONS:
        data["permissions"] = list(app.permissions)
    return data


def _secret_dict(value: str, attributes: SecretAttributes | None) -> Any:
    if attributes is None:
        return value
    return {
        "value": value,
        "contentType": attributes.content_type,
        "expires": _iso(attributes.expires),
        "notBefore": _iso(attributes.not_before),
    }


def _strings(data: Mapping[str, Any], key: str, where: str, problems: list[str]) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.append(f"{where}.{key} must be a list of non-empty strings")
        return ()
    return tuple(value)


def _date(value: Any, where: str, problems: list[str]) -> dt.datetime | None:
    """ISO 8601 as Graph writes endDateTime ("2027-01-31T00:00:00Z"); naive means UTC."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        problems.append(f"{where} must be an ISO 8601 date-time, got {value!r}")
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _tenant(data: Any, where: str, problems: list[str]) -> Tenant:
    if not isinstance(data, Mapping):
        problems.append(f"{where} must be an object")
        return Tenant("", "", (), {}, ())
    tenant_id = _guid(data, "id", where, problems)
    domains = tuple(dict(d) for d in data.get("verifiedDomains") or [])
    for i, domain in enumerate(domains):
        if not isinstance(domain.get("name"), str) or not domain["name"]:
            problems.append(f"{where}.verifiedDomains[{i}] needs a name")
    consents: dict[str, tuple[str, ...]] = {}
    for client, roles in (data.get("consents") or {}).items():
        if not _is_guid(client):
            problems.append(f"{where}.consents: {client!r} is not a client id (GUID)")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            problems.append(f"{where}.consents[{client!r}] must be a list of role names")
            continue
        consents[client.lower()] = tuple(roles)
    users = []
    for i, user in enumerate(data.get("users") or []):
        if not isinstance(user, Mapping) or not isinstance(user.get("id"), str) or not user["id"]:
            problems.append(f"{where}.users[{i}] needs a string 'id'")
            continue
        if not isinstance(user.get("userPrincipalName"), str):
            problems.append(f"{where}.users[{i}] ({user['id']}) needs a 'userPrincipalName'")
        users.append(dict(user))
    _unique([u["id"].lower() for u in users], f"user id in {where}", problems)
    tenant_type = data.get("tenantType", "AAD")
    if tenant_type not in TENANT_TYPES:
        problems.append(f"{where}.tenantType must be one of {', '.join(TENANT_TYPES)}")
    return Tenant(
        tenant_id,
        str(data.get("displayName") or ""),
        domains,
        consents,
        tuple(users),
        tenant_type if tenant_type in TENANT_TYPES else "AAD",
    )


def _list(data: Mapping[str, Any], key: str, problems: list[str], where: str = "") -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        problems.append(f"{where}.{key} must be a list" if where else f"{key} must be a list")
        return []
    return value


def _guid(data: Mapping[str, Any], key: str, where: str, problems: list[str]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not _is_guid(value):
        problems.append(f"{where}.{key} must be a GUID, got {value!r}")
        return ""
    # Entra ids are case-insensitive; lower case keeps every lookup a plain dict access.
    return value.lower()


def _is_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return len(value) == 36


def _unique(values: list[str], what: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value and value in seen:
            problems.append(f"duplicate {what} {value!r}")
        seen.add(value)
