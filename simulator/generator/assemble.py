"""A whole world from a seed: the tenant, its domains, the app and its consent, the managed
identity, the vault, and the mix of user kinds (KIND_SHARES) handed to the user builder."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from .people import UserBuilder, ascii_fold, guid

KIND_SHARES: tuple[tuple[str, float], ...] = (
    ("member", 0.80),
    ("guest", 0.06),
    ("shared", 0.03),
    ("room", 0.02),
    ("service", 0.03),
    ("unlicensed", 0.03),
    ("no_email", 0.02),
    ("other_mail", 0.01),
)


@dataclass(frozen=True)
class GeneratorOptions:
    users: int
    seed: int = 1
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    tenant_name: str = "Contoso Ltd"
    # 0: no user has a manager. N: one user in N manages, each other user reports to one of them
    # and every manager but the first to the first (drawn by a generator of its own: the users are
    # the same whatever N is).
    managers_span: int = 0


def generate_world(options: GeneratorOptions) -> dict[str, Any]:
    """A world-file dict: one tenant with ``options.users`` users, the app, the managed
    identity and a vault holding the app's secret."""
    rng = random.Random(options.seed)
    tenant_id = (options.tenant_id or guid(rng)).lower()
    client_id = (options.client_id or guid(rng)).lower()
    identity_id = guid(rng)
    secret = options.client_secret or _secret(rng)
    extension_app = guid(rng).replace("-", "")
    slug = _slug(options.tenant_name)
    builder = UserBuilder(rng, f"{slug}.com", f"{slug}.onmicrosoft.com", extension_app)
    users = [builder.build(kind, index) for index, kind in enumerate(_kinds(rng, options.users))]
    if options.managers_span > 0:
        _assign_managers(users, options.managers_span, random.Random(f"managers:{options.seed}"))
    return {
        "apps": [
            {"clientId": client_id, "displayName": "Entra Employee Sync", "secrets": [secret]}
        ],
        "managedIdentity": {"clientId": identity_id, "tenantId": tenant_id},
        "keyVault": {"secrets": {"entra-client-secret": secret}, "readers": [identity_id]},
        "tenants": [
            {
                "id": tenant_id,
                "displayName": options.tenant_name,
                "verifiedDomains": [
                    {
                        "name": f"{slug}.com",
                        "isDefault": True,
                        "isInitial": False,
                        "type": "Managed",
                    },
                    {
                        "name": f"{slug}.onmicrosoft.com",
                        "isDefault": False,
                        "isInitial": True,
                        "type": "Managed",
                    },
                ],
                "consents": {client_id: ["User.Read.All", "Organization.Read.All"]},
                "users": users,
            }
        ],
    }


def _assign_managers(users: list[dict[str, Any]], span: int, rng: random.Random) -> None:
    """The `manager` relationship (simulator/manager.py: the manager's id in the user's dict)."""
    managers = [user["id"] for user in users[: max(1, len(users) // span)]]
    for position, user in enumerate(users[1:], start=1):
        user["manager"] = managers[0] if position < len(managers) else rng.choice(managers)


def kind_of(user: dict[str, Any]) -> str:
    """Which of KIND_SHARES a generated user is, read from its Graph properties alone."""
    purpose = (user.get("mailboxSettings") or {}).get("userPurpose")
    if user.get("userType") == "Guest":
        return "guest"
    if purpose in ("shared", "room"):
        return str(purpose)
    if str(user.get("userPrincipalName", "")).startswith("svc-"):
        return "service"
    if not user.get("assignedLicenses"):
        if user.get("mail") or user.get("proxyAddresses") or not user.get("otherMails"):
            return "unlicensed"
        return "other_mail"
    return "member" if user.get("mail") or user.get("proxyAddresses") else "no_email"


def _kinds(rng: random.Random, count: int) -> list[str]:
    # Largest-remainder allocation keeps the shares exact for any size; then one of each kind
    # (taken from members) so small worlds still show every case.
    exact = [(kind, share * count) for kind, share in KIND_SHARES]
    counts = {kind: int(value) for kind, value in exact}
    leftover = count - sum(counts.values())
    for kind, _share in sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True):
        if leftover <= 0:
            break
        counts[kind] += 1
        leftover -= 1
    if count >= len(KIND_SHARES):
        for kind in counts:
            if counts[kind] == 0:
                counts[kind] = 1
                counts["member"] -= 1
    kinds = [kind for kind, _ in KIND_SHARES for _ in range(counts[kind])]
    rng.shuffle(kinds)
    return kinds


def _secret(rng: random.Random) -> str:
    # Shaped like an Entra client secret value (3 characters, "8Q~", 34 more).
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
    return (
        "".join(rng.choice(alphabet) for _ in range(3))
        + "8Q~"
        + "".join(rng.choice(alphabet) for _ in range(34))
    )


def _slug(name: str) -> str:
    first = name.split()[0] if name.split() else "contoso"
    return ascii_fold(first).replace(".", "") or "contoso"
