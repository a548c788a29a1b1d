"""The world file: which apps, tenants, users, consents and vault secrets the simulator serves.

Users stay Graph's own JSON (dicts with Graph's camelCase names), exactly what ``/v1.0/users``
returns, so a world file can be written by hand, generated, or recorded from a real tenant.
See simulator/README.md for the format.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class WorldError(ValueError):
    """Every problem found in a world description, reported together."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid world:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class App:
    client_id: str
    display_name: str
    secrets: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class ManagedIdentity:
    client_id: str
    tenant_id: str


@dataclass(frozen=True)
class KeyVault:
    secrets: Mapping[str, str] = field(repr=False)
    readers: tuple[str, ...] = ()


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
            )
        raw_vault = data.get("keyVault") or {}
        secrets = raw_vault.get("secrets") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in secrets.items()):
            problems.append("keyVault.secrets must map secret names to string values")
        vault = KeyVault(dict(secrets), tuple(str(r).lower() for r in raw_vault.get("readers", [])))
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
        data: dict[str, Any] = {
            "apps": [
                {"clientId": a.client_id, "displayName": a.display_name, "secrets": list(a.secrets)}
                for a in self.apps
            ],
        }
        if self.managed_identity:
            data["managedIdentity"] = {
                "clientId": self.managed_identity.client_id,
                "tenantId": self.managed_identity.tenant_id,
            }
        data["keyVault"] = {
            "secrets": dict(self.key_vault.secrets),
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
    secrets = data.get("secrets") or []
    if not secrets or not all(isinstance(s, str) and s for s in secrets):
        problems.append(f"{where}.secrets must list at least one non-empty secret")
    return App(
        _guid(data, "clientId", where, problems),
        str(data.get("displayName") or ""),
        tuple(str(s) for s in secrets),
    )


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


def _list(data: Mapping[str, Any], key: str, problems: list[str]) -> list[Any]:
    value = data.get(key) or []
    if not isinstance(value, list):
        problems.append(f"{key} must be a list")
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
