"""What the convergence tests' examples are made of (test_convergence.py,
test_convergence_groups.py): the plain words profiles draw from, a small set of fields, and a
plain licensed member of the directory, numbered."""

from __future__ import annotations

import uuid
from typing import Any

ASCII_WORDS = ("Engineer", "Manager", "Berlin", "Paris", "+49 30 1234", "Intern", "Oslo")
SMALL_FIELDS = (
    {"name": "Title", "source": "jobTitle"},
    {"name": "Dept", "source": "department"},
    {"name": "Phone2", "source": "businessPhones[1]"},
    {"name": "Name", "source": "displayName"},
)


def plain_member(n: int) -> dict[str, Any]:
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "userPrincipalName": f"u{n}@contoso.onmicrosoft.com",
        "accountEnabled": True,
        "userType": "Member",
        "assignedLicenses": [{"skuId": str(uuid.UUID(int=7)), "disabledPlans": []}],
        "department": "Sales",
        "jobTitle": ASCII_WORDS[n % len(ASCII_WORDS)],
        "mail": f"u{n}@contoso.com",
        "proxyAddresses": [f"SMTP:u{n}@contoso.com", f"smtp:alias{n}@contoso.com"],
    }
