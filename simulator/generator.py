"""Deterministic synthetic tenants with the awkward cases a directory sync meets in real life.

Every id and choice comes from one seeded ``random.Random``, so a seed always yields the same
world (tests and benchmarks can name users by index). The mix of kinds, in share of users:

    member        80 %  full profile, licensed, SMTP/smtp/X500/SIP proxy addresses
    guest          6 %  #EXT# UPN, userType Guest, external mail; some with no proxy address, some
                        with smtp:<external>, some with SMTP:<the #EXT# form> as primary
    shared         3 %  disabled shared mailbox ("Sales Team"), unlicensed
    room           2 %  disabled room mailbox ("Room 4.12 Berlin"), unlicensed
    service        3 %  svc-... account, no job title, no mailbox
    unlicensed     3 %  member without licenses; about half without a mailbox (no mail, no
                        proxyAddresses: Exchange Online creates the mailbox with the license)
    no_email       2 %  no mail, no proxyAddresses, no otherMails
    other_mail     1 %  the only address is in otherMails

When there are at least as many users as kinds, every kind appears at least once. Across kinds,
about 15 % of people have non-ASCII names and about 5 % have apostrophes in their surname.
"""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import uuid
from dataclasses import dataclass
from typing import Any

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

# Real Microsoft 365 SKU ids (public): Microsoft 365 E3, Office 365 E3, Exchange Online (Plan 1),
# Microsoft 365 F1.
SKUS = (
    "05e9a617-0261-4cee-bb44-138d3ef5d965",
    "6fd2c87f-b296-42f0-b197-1e91e994b900",
    "4b9405b0-7788-4568-add1-99614e613b69",
    "44575883-256e-4a79-9da4-ebe9acabe2b2",
)

_PLAIN_GIVEN = (
    "Adele",
    "Alex",
    "Ben",
    "Carla",
    "Daniel",
    "Emma",
    "Felix",
    "Grace",
    "Hannah",
    "Isaac",
    "Julia",
    "Karl",
    "Laura",
    "Megan",
    "Nina",
    "Oscar",
    "Paula",
    "Quentin",
    "Rosa",
    "Stefan",
    "Tom",
    "Uma",
    "Victor",
    "Wendy",
    "Yusuf",
    "Lee",
    "Maria",
    "Ivan",
)
_PLAIN_SURNAMES = (
    "Vance",
    "Wilber",
    "Smith",
    "Müller",
    "Schmidt",
    "Johnson",
    "Garcia",
    "Brown",
    "Meyer",
    "Wagner",
    "Taylor",
    "Martin",
    "Dubois",
    "Rossi",
    "Novak",
    "Jensen",
    "Kowalski",
    "Fischer",
    "Weber",
    "Becker",
    "Hoffmann",
    "Clark",
    "Lewis",
    "Young",
)
# (display given, display surname, ascii given, ascii surname) for names no transliteration
# table would guess: Łukasz, 李 and friends.
_NON_ASCII = (
    ("Zoë", "Björk", "zoe", "bjork"),
    ("Łukasz", "Wójcik", "lukasz", "wojcik"),
    ("Søren", "Kierkegård", "soren", "kierkegard"),
    ("José", "Núñez", "jose", "nunez"),
    ("伟", "李", "wei", "li"),
    ("Zoë", "Ångström", "zoe", "angstrom"),
    ("Chloé", "Lefèvre", "chloe", "lefevre"),
    ("Jürgen", "Groß", "jurgen", "gross"),
    ("Ólafur", "Þórsson", "olafur", "thorsson"),
    ("Dženan", "Čolić", "dzenan", "colic"),
    ("Ayşe", "Yıldız", "ayse", "yildiz"),
    ("Håkon", "Ødegaard", "hakon", "odegaard"),
)
_APOSTROPHE_SURNAMES = ("O'Brien", "D'Angelo", "O'Neill", "D'Souza", "O'Connor")
_TITLES = (
    "Software Engineer",
    "Account Manager",
    "HR Business Partner",
    "Sales Representative",
    "Controller",
    "Support Engineer",
    "Product Owner",
    "Warehouse Lead",
    "CFO",
    "Designer",
)
_DEPARTMENTS = (
    "Engineering",
    "Sales",
    "Human Resources",
    "Finance",
    "Support",
    "Marketing",
    "Operations",
    "Legal",
    "R&D",
    "Logistics",
)
_OFFICES = (
    ("Berlin", "Berlin", "10115", "Germany", "DE", "+49 30"),
    ("München", "Bayern", "80331", "Germany", "DE", "+49 89"),
    ("Redmond", "WA", "98052", "United States", "US", "+1 425"),
    ("London", "England", "EC1A 1BB", "United Kingdom", "GB", "+44 20"),
    ("Kraków", "Małopolskie", "30-001", "Poland", "PL", "+48 12"),
    ("København", "Hovedstaden", "1050", "Denmark", "DK", "+45 33"),
)
_STREETS = (
    "Hauptstraße 1",
    "Friedrichstraße 68",
    "One Microsoft Way",
    "221B Baker Street",
    "ul. Floriańska 3",
    "Strøget 12",
)
_SHARED = (
    "Sales Team",
    "Support",
    "Info",
    "Accounts Payable",
    "HR Inbox",
    "Marketing Team",
    "Reception",
    "Careers",
    "Press Office",
    "IT Helpdesk",
)
_ROOM_CITIES = ("Berlin", "London", "München", "Redmond", "Kraków")
_SERVICES = (
    "backup",
    "scanner",
    "sql-agent",
    "teams-rooms",
    "jira",
    "sap-connector",
    "intune",
    "printer",
    "monitoring",
    "ci",
)
_EXTERNAL_DOMAINS = (
    "fabrikam.com",
    "northwindtraders.com",
    "adventure-works.com",
    "wingtiptoys.com",
    "gmail.example",
)
_PRIVATE_DOMAINS = ("example.net", "example.org", "mail.example")
_LANGUAGES = ("en-US", "de-DE", "en-GB", "pl-PL", "da-DK", None)


@dataclass(frozen=True)
class GeneratorOptions:
    users: int
    seed: int = 1
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    tenant_name: str = "Contoso Ltd"


def generate_world(options: GeneratorOptions) -> dict[str, Any]:
    """A world-file dict: one tenant with ``options.users`` users, the app, the managed
    identity and a vault holding the app's secret."""
    rng = random.Random(options.seed)
    tenant_id = (options.tenant_id or _guid(rng)).lower()
    client_id = (options.client_id or _guid(rng)).lower()
    identity_id = _guid(rng)
    secret = options.client_secret or _secret(rng)
    extension_app = _guid(rng).replace("-", "")
    slug = _slug(options.tenant_name)
    builder = _UserBuilder(rng, f"{slug}.com", f"{slug}.onmicrosoft.com", extension_app)
    users = [builder.build(kind, index) for index, kind in enumerate(_kinds(rng, options.users))]
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


class _UserBuilder:
    def __init__(self, rng: random.Random, domain: str, initial_domain: str, extension_app: str):
        self.rng = rng
        self.domain = domain
        self.initial_domain = initial_domain
        self.extension = f"extension_{extension_app}_costCenter"
        self.used: set[str] = set()
        self.shared_count = 0
        self.service_count = 0
        self.start = dt.datetime(2018, 1, 1, tzinfo=dt.UTC)

    def build(self, kind: str, index: int) -> dict[str, Any]:
        rng = self.rng
        user: dict[str, Any] = {
            "id": _guid(rng),
            "createdDateTime": (
                self.start + dt.timedelta(minutes=rng.randrange(3_500_000))
            ).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "accountEnabled": True,
            "userType": "Member",
            "assignedLicenses": [],
            "proxyAddresses": [],
            "otherMails": [],
            "businessPhones": [],
            "mail": None,
            "onPremisesExtensionAttributes": {f"extensionAttribute{i}": None for i in range(1, 16)},
        }
        getattr(self, f"_{kind}")(user, index)
        return user

    # ----------------------------------------------------------------------------- people

    def _person(self, user: dict[str, Any], local_domain: str | None = None) -> tuple[str, str]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            given, surname, ascii_given, ascii_surname = rng.choice(_NON_ASCII)
        elif roll < 0.20:
            given = rng.choice(_PLAIN_GIVEN)
            surname = rng.choice(_APOSTROPHE_SURNAMES)
            ascii_given, ascii_surname = _ascii(given), _ascii(surname)
            if rng.random() < 0.5:  # some tenants keep the apostrophe in the address
                ascii_surname = surname.lower()
        else:
            given, surname = rng.choice(_PLAIN_GIVEN), rng.choice(_PLAIN_SURNAMES)
            ascii_given, ascii_surname = _ascii(given), _ascii(surname)
        local = self._unique(f"{ascii_given}.{ascii_surname}")
        # Chinese names are written family name first, without a space.
        is_cjk = "CJK" in unicodedata.name(surname[0], "")
        display = f"{surname}{given}" if is_cjk else f"{given} {surname}"
        user.update(
            {
                "displayName": display,
                "givenName": given,
                "surname": surname,
                "userPrincipalName": f"{local}@{local_domain or self.domain}",
            }
        )
        return local, ascii_given[0] + ascii_surname

    def _profile(self, user: dict[str, Any], index: int) -> None:
        rng = self.rng
        city, state, postal, country, country_code, prefix = rng.choice(_OFFICES)
        user.update(
            {
                "jobTitle": rng.choice(_TITLES),
                "department": rng.choice(_DEPARTMENTS),
                "companyName": "Contoso" if rng.random() < 0.9 else "Contoso Services GmbH",
                "businessPhones": [f"{prefix} {rng.randrange(1000000, 9999999)}"],
                "mobilePhone": f"{prefix} {rng.randrange(1000000, 9999999)}"
                if rng.random() < 0.6
                else None,
                "faxNumber": f"{prefix} {rng.randrange(1000000, 9999999)}"
                if rng.random() < 0.05
                else None,
                "streetAddress": rng.choice(_STREETS),
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": country,
                "officeLocation": f"{city} {rng.randrange(1, 6)}.{rng.randrange(1, 40):02d}",
                "employeeId": f"E{index + 1:06d}",
                "preferredLanguage": rng.choice(_LANGUAGES),
                "usageLocation": country_code,
            }
        )
        attributes = user["onPremisesExtensionAttributes"]
        attributes["extensionAttribute1"] = f"CC-{rng.randrange(1000, 1100)}"
        if rng.random() < 0.3:
            attributes["extensionAttribute2"] = rng.choice(("Employee", "Contractor", "Intern"))
        if rng.random() < 0.2:
            attributes["extensionAttribute7"] = rng.choice(("Hamburg", "Site-B", "Remote"))
        if rng.random() < 0.5:
            user[self.extension] = str(rng.randrange(1000, 1100))

    def _license(self, user: dict[str, Any]) -> None:
        skus = [self.rng.choice(SKUS[:3])]
        if self.rng.random() < 0.2:
            skus.append(SKUS[3])
        user["assignedLicenses"] = [{"skuId": s, "disabledPlans": []} for s in dict.fromkeys(skus)]

    def _mailbox(self, user: dict[str, Any], local: str, short: str) -> None:
        rng = self.rng
        primary = f"{local}@{self.domain}"
        addresses = [f"SMTP:{primary}", f"smtp:{local}@{self.initial_domain}"]
        if rng.random() < 0.5:
            addresses.append(f"smtp:{self._unique(short)}@{self.domain}")
        if rng.random() < 0.1:  # the same alias again, differing only in case
            addresses.append(f"smtp:{primary.title()}")
        if rng.random() < 0.1:  # seen in the wild and in Microsoft's own samples
            addresses.append(f"smtp: {local}@{self.domain.replace('.com', '.de')}")
        if rng.random() < 0.4:
            addresses.append(
                "X500:/o=ExchangeLabs/ou=Exchange Administrative Group "
                f"(FYDIBOHF23SPDLT)/cn=Recipients/cn={rng.getrandbits(64):016x}-{local}"
            )
        if rng.random() < 0.3:
            addresses.append(f"SIP:{primary}")
        rng.shuffle(addresses)
        user["mail"] = primary
        user["proxyAddresses"] = addresses

    # ------------------------------------------------------------------------------ kinds

    def _member(self, user: dict[str, Any], index: int) -> None:
        local, short = self._person(user)
        self._profile(user, index)
        self._license(user)
        self._mailbox(user, local, short)
        if self.rng.random() < 0.15:
            user["otherMails"] = [f"{local}@{self.rng.choice(_PRIVATE_DOMAINS)}"]

    def _unlicensed(self, user: dict[str, Any], index: int) -> None:
        local, short = self._person(user)
        self._profile(user, index)
        # Exchange Online creates a mailbox only for an account given a license with Exchange
        # ("To add a mailbox for an existing Microsoft Entra account, you need to add a license
        # to the account": learn.microsoft.com/powershell/module/exchangepowershell/enable-mailbox);
        # a user never licensed has no `mail` and no proxyAddresses. Others kept the mailbox of
        # a license removed later.
        if self.rng.random() < 0.5:
            self._mailbox(user, local, short)

    def _no_email(self, user: dict[str, Any], index: int) -> None:
        self._person(user)
        self._profile(user, index)
        user["assignedLicenses"] = [{"skuId": SKUS[3], "disabledPlans": []}]

    def _other_mail(self, user: dict[str, Any], index: int) -> None:
        local, _ = self._person(user)
        self._profile(user, index)
        user["otherMails"] = [f"{local}@{self.rng.choice(_PRIVATE_DOMAINS)}"]

    def _guest(self, user: dict[str, Any], _index: int) -> None:
        rng = self.rng
        external = rng.choice(_EXTERNAL_DOMAINS)
        local, _ = self._person(user)
        address = f"{local}@{external}"
        user.update(
            {
                "userPrincipalName": f"{local}_{external}#EXT#@{self.initial_domain}",
                "displayName": f"{user['displayName']} ({external.split('.')[0].title()})",
                "userType": "Guest",
                "mail": address,
                "otherMails": [address],
                "externalUserState": "Accepted" if rng.random() < 0.8 else "PendingAcceptance",
                "companyName": external.split(".")[0].title() if rng.random() < 0.3 else None,
            }
        )
        roll = rng.random()
        if roll < 0.5:
            user["proxyAddresses"] = [f"smtp:{address}"]
        elif roll < 0.8:
            # Seen in real tenants (issue 7): the guest's internal form, its UPN under the
            # tenant's initial domain, as the primary SMTP address; it reaches no mailbox
            # (PLATFORM-NOTES: "A #EXT# UPN is never a usable email").
            user["proxyAddresses"] = [f"SMTP:{user['userPrincipalName']}", f"smtp:{address}"]

    def _shared(self, user: dict[str, Any], _index: int) -> None:
        name = _SHARED[self.shared_count % len(_SHARED)]
        if self.shared_count >= len(_SHARED):
            name = f"{name} {self.shared_count // len(_SHARED) + 1}"
        self.shared_count += 1
        self._resource(user, name, "shared")

    def _room(self, user: dict[str, Any], _index: int) -> None:
        rng = self.rng
        name = f"Room {rng.randrange(1, 9)}.{rng.randrange(1, 30):02d} {rng.choice(_ROOM_CITIES)}"
        self._resource(user, name, "room")

    def _resource(self, user: dict[str, Any], name: str, purpose: str) -> None:
        local = self._unique(_ascii(name).replace(" ", "").replace(".", ""))
        address = f"{local}@{self.domain}"
        user.update(
            {
                "displayName": name,
                "userPrincipalName": address,
                "mail": address,
                "accountEnabled": False,
                "proxyAddresses": [f"SMTP:{address}", f"smtp:{local}@{self.initial_domain}"],
                "mailboxSettings": {"userPurpose": purpose},
            }
        )

    def _service(self, user: dict[str, Any], _index: int) -> None:
        name = _SERVICES[self.service_count % len(_SERVICES)]
        if self.service_count >= len(_SERVICES):
            name = f"{name}{self.service_count // len(_SERVICES) + 1}"
        self.service_count += 1
        local = self._unique(f"svc-{name}")
        user.update(
            {
                "displayName": local,
                "userPrincipalName": f"{local}@{self.domain}",
                "jobTitle": None,
                "department": "IT" if self.rng.random() < 0.5 else None,
            }
        )

    def _unique(self, local: str) -> str:
        candidate, number = local, 1
        while candidate in self.used:
            number += 1
            candidate = f"{local}{number}"
        self.used.add(candidate)
        return candidate


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _secret(rng: random.Random) -> str:
    # Shaped like an Entra client secret value (3 characters, "8Q~", 34 more).
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-."
    return (
        "".join(rng.choice(alphabet) for _ in range(3))
        + "8Q~"
        + "".join(rng.choice(alphabet) for _ in range(34))
    )


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in " .-"))


def _slug(name: str) -> str:
    first = name.split()[0] if name.split() else "contoso"
    return _ascii(first).replace(".", "") or "contoso"
