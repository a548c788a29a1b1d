"""One generated user per kind: the person, the profile, the licenses and the mailbox, and each
kind's awkward case (guests' #EXT# forms, shared and room mailboxes, service accounts, no mail)."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
import uuid
from typing import Any

from .names import (
    APOSTROPHE_SURNAMES,
    DEPARTMENTS,
    EXTERNAL_DOMAINS,
    LANGUAGES,
    NON_ASCII,
    OFFICES,
    PLAIN_GIVEN,
    PLAIN_SURNAMES,
    PRIVATE_DOMAINS,
    ROOM_CITIES,
    SERVICES,
    SHARED,
    SKUS,
    STREETS,
    TITLES,
)


class UserBuilder:
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
            "id": guid(rng),
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
            given, surname, ascii_given, ascii_surname = rng.choice(NON_ASCII)
        elif roll < 0.20:
            given = rng.choice(PLAIN_GIVEN)
            surname = rng.choice(APOSTROPHE_SURNAMES)
            ascii_given, ascii_surname = ascii_fold(given), ascii_fold(surname)
            if rng.random() < 0.5:  # some tenants keep the apostrophe in the address
                ascii_surname = surname.lower()
        else:
            given, surname = rng.choice(PLAIN_GIVEN), rng.choice(PLAIN_SURNAMES)
            ascii_given, ascii_surname = ascii_fold(given), ascii_fold(surname)
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
        city, state, postal, country, country_code, prefix = rng.choice(OFFICES)
        user.update(
            {
                "jobTitle": rng.choice(TITLES),
                "department": rng.choice(DEPARTMENTS),
                "companyName": "Contoso" if rng.random() < 0.9 else "Contoso Services GmbH",
                "businessPhones": [f"{prefix} {rng.randrange(1000000, 9999999)}"],
                "mobilePhone": f"{prefix} {rng.randrange(1000000, 9999999)}"
                if rng.random() < 0.6
                else None,
                "faxNumber": f"{prefix} {rng.randrange(1000000, 9999999)}"
                if rng.random() < 0.05
                else None,
                "streetAddress": rng.choice(STREETS),
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": country,
                "officeLocation": f"{city} {rng.randrange(1, 6)}.{rng.randrange(1, 40):02d}",
                "employeeId": f"E{index + 1:06d}",
                "preferredLanguage": rng.choice(LANGUAGES),
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
            user["otherMails"] = [f"{local}@{self.rng.choice(PRIVATE_DOMAINS)}"]

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
        user["otherMails"] = [f"{local}@{self.rng.choice(PRIVATE_DOMAINS)}"]

    def _guest(self, user: dict[str, Any], _index: int) -> None:
        rng = self.rng
        external = rng.choice(EXTERNAL_DOMAINS)
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
        name = SHARED[self.shared_count % len(SHARED)]
        if self.shared_count >= len(SHARED):
            name = f"{name} {self.shared_count // len(SHARED) + 1}"
        self.shared_count += 1
        self._resource(user, name, "shared")

    def _room(self, user: dict[str, Any], _index: int) -> None:
        rng = self.rng
        name = f"Room {rng.randrange(1, 9)}.{rng.randrange(1, 30):02d} {rng.choice(ROOM_CITIES)}"
        self._resource(user, name, "room")

    def _resource(self, user: dict[str, Any], name: str, purpose: str) -> None:
        local = self._unique(ascii_fold(name).replace(" ", "").replace(".", ""))
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
        name = SERVICES[self.service_count % len(SERVICES)]
        if self.service_count >= len(SERVICES):
            name = f"{name}{self.service_count // len(SERVICES) + 1}"
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


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in " .-"))


def _slug(name: str) -> str:
    first = name.split()[0] if name.split() else "contoso"
    return ascii_fold(first).replace(".", "") or "contoso"
