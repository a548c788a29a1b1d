"""Graph user -> employee: email precedence, aliases, field values and the source hash."""

from __future__ import annotations

import json

import pytest

from sync_core.core.config import EmailRules
from sync_core.core.config_parse import parse_config
from sync_core.core.mapping import Mapper, resolve_addresses, to_table_value

ALL_SOURCES = EmailRules(proxy_addresses=True, other_mails=True, user_principal_name=True)
DEFAULT_RULES = EmailRules()


@pytest.mark.parametrize(
    ("user", "rules", "email", "source"),
    [
        pytest.param(
            {"proxyAddresses": ["smtp:alias@contoso.com", "SMTP:Ada.Lovelace@Contoso.com"],
             "mail": "other@contoso.com"},
            DEFAULT_RULES, "ada.lovelace@contoso.com", "proxyAddresses",
            id="upper-case SMTP entry wins over mail, stored lower-case",
        ),
        pytest.param(
            {"proxyAddresses": ["smtp:a@contoso.com"], "mail": "Mail@Contoso.com"},
            DEFAULT_RULES, "mail@contoso.com", "mail",
            id="no primary SMTP entry: mail",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP:p@contoso.com"], "mail": "m@contoso.com"},
            EmailRules(proxy_addresses=False), "m@contoso.com", "mail",
            id="proxyAddresses disabled: mail",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP: spaced@contoso.com "]},
            DEFAULT_RULES, "spaced@contoso.com", "proxyAddresses",
            id="space after the colon is trimmed",
        ),
        pytest.param(
            {"proxyAddresses": ["X500:/o=ExchangeLabs/ou=x", "SIP:ada@contoso.com"],
             "otherMails": ["Private@Example.org"]},
            DEFAULT_RULES, "private@example.org", "otherMails",
            id="X500 and SIP are not email: otherMails",
        ),
        pytest.param(
            {"otherMails": ["not an address", "second@example.org"]},
            DEFAULT_RULES, "second@example.org", "otherMails",
            id="first usable otherMails entry",
        ),
        pytest.param(
            {"otherMails": ["x@example.org"]},
            EmailRules(other_mails=False), None, None,
            id="otherMails disabled: nothing",
        ),
        pytest.param(
            {"userPrincipalName": "svc@contoso.com"},
            DEFAULT_RULES, None, None,
            id="UPN not used unless asked",
        ),
        pytest.param(
            {"userPrincipalName": "Svc@Contoso.com"},
            ALL_SOURCES, "svc@contoso.com", "userPrincipalName",
            id="UPN when asked",
        ),
        pytest.param(
            {"userPrincipalName": "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"},
            ALL_SOURCES, None, None,
            id="guest #EXT# UPN is never an address",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP:alice_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                                "smtp:alice@fabrikam.com"],
             "mail": "Alice@Fabrikam.com"},
            ALL_SOURCES, "alice@fabrikam.com", "mail",
            id="guest #EXT# primary proxy address is skipped: mail",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP:alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"],
             "mail": "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com",
             "otherMails": ["alice_fabrikam.com#ext#@contoso.onmicrosoft.com"],
             "userPrincipalName": "alice_fabrikam.com#EXT#@contoso.onmicrosoft.com"},
            ALL_SOURCES, None, None,
            id="guest with #EXT# in every source: no address",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP:"], "mail": "  "},
            ALL_SOURCES, None, None,
            id="empty entries are no address",
        ),
        pytest.param(
            {"proxyAddresses": None, "mail": None, "otherMails": None},
            DEFAULT_RULES, None, None,
            id="nulls everywhere",
        ),
        pytest.param(
            {"proxyAddresses": ["SMTP:sean.o'brien@contoso.com"]},
            DEFAULT_RULES, "sean.o'brien@contoso.com", "proxyAddresses",
            id="apostrophe in the local part",
        ),
    ],
)  # fmt: skip
def test_email_precedence(user, rules, email, source):
    addresses = resolve_addresses(user, rules)
    assert (addresses.email, addresses.source) == (email, source)


@pytest.mark.parametrize(
    ("proxy_addresses", "rules", "aliases"),
    [
        pytest.param(
            ["SMTP:ada@contoso.com", "smtp:Ada.L@contoso.com", "smtp:ada.l@CONTOSO.com",
             "X500:/o=x", "smtp:ada@contoso.com", "sip:ada@contoso.com", "smtp:lovelace@contoso.com"],
            DEFAULT_RULES, ("ada.l@contoso.com", "lovelace@contoso.com"),
            id="lower-case, de-duplicated, primary excluded, original order",
        ),
        pytest.param(
            ["smtp:b@contoso.com", "SMTP:a@contoso.com"], DEFAULT_RULES, ("b@contoso.com",),
            id="primary anywhere in the list",
        ),
        pytest.param(
            ["SMTP:a@contoso.com", "SMTP:b@contoso.com"], DEFAULT_RULES, ("b@contoso.com",),
            id="a second upper-case entry is an alias",
        ),
        pytest.param(
            ["SMTP:a@contoso.com", "smtp:a_fabrikam.com#EXT#@contoso.onmicrosoft.com"],
            DEFAULT_RULES, (), id="a guest's #EXT# form is never an alias",
        ),
        pytest.param([], DEFAULT_RULES, (), id="none"),
    ],
)  # fmt: skip
def test_aliases(proxy_addresses, rules, aliases):
    assert resolve_addresses({"proxyAddresses": proxy_addresses}, rules).aliases == aliases


def test_aliases_exclude_the_chosen_mail_address_when_proxy_addresses_is_off():
    user = {"proxyAddresses": ["SMTP:a@contoso.com", "smtp:m@contoso.com", "smtp:c@contoso.com"],
            "mail": "M@contoso.com"}  # fmt: skip
    addresses = resolve_addresses(user, EmailRules(proxy_addresses=False))
    assert addresses.email == "m@contoso.com"
    assert addresses.aliases == ("c@contoso.com",)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("  Engineer ", "Engineer"),
        ("", None),
        ("   ", None),
        (None, None),
        ([], None),
        (["+1 555 0100", "+1 555 0101"], '["+1 555 0100", "+1 555 0101"]'),
        ({"a": 1}, '{"a": 1}'),
        (True, True),
        (42, 42),
        (2**31 - 1, 2**31 - 1),
        (4_100_000_000, "4100000000"),  # beyond Int32: text, or the whole batch would fail
        (-(2**31) - 1, "-2147483649"),
        ("Zoë Núñez-O'Brien 李", "Zoë Núñez-O'Brien 李"),
        ("x" * 40_000, "x" * 32_767),  # Table Storage's limit, in UTF-16 units
        ("😀" * 20_000, "😀" * 16_383),  # an emoji is two units: never half of one
        ("a\x00b", "ab"),
        ("a\ud800b", "a\ufffdb"),
        (["x" * 20_000, "y" * 20_000], json.dumps(["x" * 20_000])),  # whole elements dropped
    ],
)
def test_table_values(value, stored):
    assert to_table_value(value) == stored


MEMBER = {
    "id": "1f0d3f7e-0000-4000-8000-000000000001",
    "userPrincipalName": "zoe@contoso.com",
    "givenName": "Zoë",
    "surname": "O'Brien",
    "displayName": "Zoë O'Brien",
    "jobTitle": "Engineer",
    "businessPhones": ["+1 555 0100", "+1 555 0101"],
    "mobilePhone": None,
    "proxyAddresses": ["SMTP:zoe@contoso.com", "smtp:zob@contoso.com"],
    "onPremisesExtensionAttributes": {"extensionAttribute3": "CC-42", "extensionAttribute4": None},
    "extension_0123456789abcdef0123456789abcdef_costCenter": "4711",
}


def _mapper(fields):
    return Mapper.from_config(parse_config({"fields": fields}))


def test_configured_fields_in_order_and_empty_sources_left_out():
    mapper = _mapper(
        [
            {"name": "Title", "source": "jobTitle"},
            {"name": "Second", "source": "businessPhones[1]"},
            {"name": "Third", "source": "businessPhones[2]"},
            {"name": "Mobile", "source": "mobilePhone"},
            {"name": "Cost", "source": "onPremisesExtensionAttributes.extensionAttribute3"},
            {"name": "Ext", "source": "extension_0123456789abcdef0123456789abcdef_costCenter"},
            {"name": "First", "source": "givenName"},
        ]
    )
    employee = mapper.map(MEMBER)
    assert employee is not None
    assert employee.fields == (
        ("Title", "Engineer"),
        ("Second", "+1 555 0101"),
        ("Cost", "CC-42"),
        ("Ext", "4711"),
        ("First", "Zoë"),
    )
    assert employee.email == "zoe@contoso.com"
    assert employee.aliases == ("zob@contoso.com",)
    assert employee.user_principal_name == "zoe@contoso.com"


def test_no_address_means_no_employee():
    # One field: a configuration without any is refused (issue 17); the address decides alone.
    mapper = _mapper([{"name": "Title", "source": "jobTitle"}])
    assert mapper.map({"id": "x", "userPrincipalName": "nobody@contoso.com"}) is None


def test_hash_is_stable_and_moves_with_every_stored_value():
    mapper = _mapper([{"name": "Title", "source": "jobTitle"}])
    first = mapper.map(MEMBER)
    assert first is not None
    assert mapper.map(dict(MEMBER)).source_hash == first.source_hash
    changed_title = mapper.map({**MEMBER, "jobTitle": "Lead"})
    changed_alias = mapper.map({**MEMBER, "proxyAddresses": ["SMTP:zoe@contoso.com"]})
    changed_upn = mapper.map({**MEMBER, "userPrincipalName": "zoe2@contoso.com"})
    unrelated = mapper.map({**MEMBER, "department": "R&D"})  # not a configured field
    assert len({first.source_hash, changed_title.source_hash, changed_alias.source_hash,
                changed_upn.source_hash}) == 4  # fmt: skip
    assert unrelated.source_hash == first.source_hash
    renamed = _mapper([{"name": "JobTitle", "source": "jobTitle"}]).map(MEMBER)
    assert renamed.source_hash != first.source_hash


def test_graph_properties_cover_fields_and_email_sources_only():
    mapper = _mapper(
        [{"name": "Cost", "source": "onPremisesExtensionAttributes.extensionAttribute3"}]
    )
    assert mapper.graph_properties == {
        "id", "userPrincipalName", "mail", "proxyAddresses", "otherMails",
        "onPremisesExtensionAttributes",
    }  # fmt: skip


@pytest.mark.parametrize(
    "value",
    ["  Engineer  ", "", "   ", "a\x00b", "x" * 40_000, "Zoë", "研究開発 ", "\ud800x", "plain"],
)
def test_a_text_value_is_stored_as_the_cleaned_and_cut_text_whatever_the_path(value):
    """The ASCII fast path of to_table_value gives exactly what cleaning and cutting give."""
    from sync_core.core.limits import clean_text, fitted_text
    from sync_core.core.mapping import to_table_value

    cleaned = clean_text(value).strip()
    assert to_table_value(value) == (fitted_text(cleaned) if cleaned else None)
