"""The convergence test's reference model, checked against the documented rules it encodes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.convergence_reference import (
    CleanedFrom,
    CutFrom,
    expected_employees,
    matches,
)

ID = "00000000-0000-4000-8000-000000000001"


def member(**changes: Any) -> dict[str, Any]:
    user = {
        "id": ID,
        "userPrincipalName": "ann@contoso.com",
        "accountEnabled": True,
        "userType": "Member",
        "assignedLicenses": [{"skuId": "x"}],
        "proxyAddresses": ["smtp: Ann.B@Contoso.com", "SMTP:Ann@Contoso.com", "smtp:ANN@contoso.com",
                           "X500:/o=x", "smtp:ann.b@contoso.com", "SIP:ann@contoso.com"],
        "mail": "Mail@Contoso.com",
        "otherMails": ["nope", "Other@Example.org"],
        "jobTitle": "  Engineer ",
    }  # fmt: skip
    return {**user, **changes}


def row(user: dict[str, Any], config: dict[str, Any] | None = None):
    return expected_employees([user], config or {}).rows.get(user["id"])


def test_smtp_primary_wins_and_aliases_are_the_other_smtp_addresses_once_in_order():
    expected = row(member())
    assert expected.email == "ann@contoso.com"
    assert expected.aliases == ("ann.b@contoso.com",)
    assert dict(expected.fields)["Title"] == "Engineer"
    assert dict(expected.fields)["Department"] is None


@pytest.mark.parametrize(
    ("changes", "email_rules", "email"),
    [
        ({}, {"proxyAddresses": False}, "mail@contoso.com"),
        ({"mail": None, "proxyAddresses": []}, {}, "other@example.org"),
        ({"mail": None, "proxyAddresses": []}, {"otherMails": False}, None),
        ({"mail": None, "proxyAddresses": [], "otherMails": []}, {"userPrincipalName": True},
         "ann@contoso.com"),
        # Rule 8: the #EXT# form reaches no mailbox, whichever property holds it.
        ({"userType": "Guest", "userPrincipalName": "a_x.com#EXT#@contoso.onmicrosoft.com",
          "proxyAddresses": ["SMTP:a_x.com#EXT#@contoso.onmicrosoft.com"],
          "mail": "a_x.com#EXT#@contoso.onmicrosoft.com", "otherMails": []},
         {"userPrincipalName": True}, None),
    ],
)  # fmt: skip
def test_email_precedence(changes, email_rules, email):
    config = {"email": email_rules, "filter": {"excludeGuests": False}}
    expectation = expected_employees([member(**changes)], config)
    got = expectation.rows[ID].email if ID in expectation.rows else None
    assert got == email
    assert (ID in expectation.addressless) is (email is None)


def test_an_employee_whose_address_disappeared_is_kept_marked_without_email_and_current():
    """docs/configuration.md "Employees whose address disappears": no Email, the aliases left,
    the fields and the UPN current."""
    user = member(mail=None, otherMails=[], jobTitle="Lead",
                  proxyAddresses=["smtp:left@contoso.com", "X500:/o=x"])  # fmt: skip
    expectation = expected_employees([user], {})
    assert ID not in expectation.rows
    marked = expectation.marked[ID]
    assert marked.email is None
    assert marked.aliases == ("left@contoso.com",)
    assert marked.user_principal_name == "ann@contoso.com"
    assert dict(marked.fields)["Title"] == "Lead"


@pytest.mark.parametrize(
    ("changes", "scope", "in_scope"),
    [
        ({"accountEnabled": False}, {}, False),
        ({"accountEnabled": False}, {"excludeDisabled": False}, True),
        ({"userType": "Guest"}, {}, False),
        ({"userPrincipalName": "a_x.com#EXT#@contoso.onmicrosoft.com"}, {}, False),
        ({"assignedLicenses": []}, {}, True),
        ({"assignedLicenses": []}, {"excludeUnlicensed": True}, False),
        ({"jobTitle": "Engineer"},
         {"include": [[{"attribute": "jobTitle", "operator": "startsWith", "value": "ENG"}]]}, True),
        ({}, {"include": [[{"attribute": "city", "operator": "equals", "value": "Oslo"}]]}, False),
        ({}, {"exclude": [[{"attribute": "city", "operator": "isNull"}]]}, False),
        ({}, {"exclude": [[{"attribute": "city", "operator": "notEquals", "value": "x"}]]}, False),
    ],
)  # fmt: skip
def test_scope(changes, scope, in_scope):
    assert (row(member(**changes), {"filter": scope}) is not None) is in_scope


def test_values_too_long_or_unstorable_accept_any_faithful_result():
    huge = "研" * 40_000
    value = dict(row(member(jobTitle=huge)).fields)["Title"]
    assert isinstance(value, CutFrom)
    assert matches(value, huge[:32_000]) and matches(value, huge[:32_767])
    assert not matches(value, huge[:1_000]) and not matches(value, huge[:32_768])
    emoji = "😀" * 20_000  # 20,000 characters, 40,000 UTF-16 units
    assert not matches(dict(row(member(jobTitle=emoji)).fields)["Title"], emoji[:20_000])
    dirty = dict(row(member(jobTitle="a\x00b")).fields)["Title"]
    assert isinstance(dirty, CleanedFrom)
    assert matches(dirty, "ab") and matches(dirty, "a\ufffdb") and matches(dirty, None)
    assert not matches(dirty, "a\x00b")
