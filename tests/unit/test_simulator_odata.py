"""The simulator's $filter parser and evaluator, and Graph's advanced-query detection."""

from __future__ import annotations

import time

import pytest

from simulator.graph_query import GraphError, make_skiptoken, parse_users_query, read_skiptoken
from simulator.odata import FilterError, advanced_operators, matches, parse_filter, tokenize

E3 = "05e9a617-0261-4cee-bb44-138d3ef5d965"

ADELE = {
    "id": "0a000000-0000-4000-8000-000000000001",
    "displayName": "Adele Vance",
    "userPrincipalName": "adele.vance@contoso.com",
    "mail": "Adele.Vance@contoso.com",
    "accountEnabled": True,
    "userType": "Member",
    "jobTitle": None,
    "proxyAddresses": ["SMTP:adele.vance@contoso.com", "smtp:av@contoso.com", "X500:/o=x"],
    "otherMails": [],
    "assignedLicenses": [{"skuId": E3, "disabledPlans": []}],
    "onPremisesExtensionAttributes": {"extensionAttribute1": "CC-1001"},
    "extension_0123456789abcdef0123456789abcdef_costCenter": "1001",
    "createdDateTime": "2021-03-04T09:10:11Z",
}
SEAN = {
    "id": "0a000000-0000-4000-8000-000000000002",
    "displayName": "Seán O'Brien",
    "userPrincipalName": "sean.o'brien@contoso.com",
    "accountEnabled": False,
    "userType": "Guest",
    "assignedLicenses": [],
    "createdDateTime": "2024-01-01T00:00:00Z",
}


@pytest.mark.parametrize(
    ("text", "adele", "sean"),
    [
        ("displayName eq 'Adele Vance'", True, False),
        ("displayName eq 'ADELE VANCE'", True, False),  # Graph compares strings case-insensitively
        ("displayName eq 'Seán O''Brien'", False, True),  # '' escapes a quote
        ("displayName ne 'Adele Vance'", False, True),
        ("startswith(displayName,'ade')", True, False),
        ("startsWith(mail, 'adele.')", True, False),  # function names case-insensitive
        ("endswith(userPrincipalName,'@CONTOSO.com')", True, True),
        ("accountEnabled eq true", True, False),
        ("accountEnabled eq false and userType eq 'Guest'", False, True),
        ("userType eq 'Guest' or accountEnabled eq true", True, True),
        ("not (userType eq 'Guest')", True, False),
        ("not userType eq 'Guest'", True, False),  # not binds to the whole comparison
        ("NOT startswith(displayName,'S')", True, False),
        ("jobTitle eq null", True, True),  # missing and null are the same
        ("mail ne null", True, False),
        ("(userType eq 'Member' or userType eq 'Guest') and accountEnabled eq true", True, False),
        ("userType in ('member', 'Guest')", True, True),
        ("onPremisesExtensionAttributes/extensionAttribute1 eq 'cc-1001'", True, False),
        ("onPremisesExtensionAttributes/extensionAttribute1 eq null", False, True),
        ("extension_0123456789abcdef0123456789abcdef_costCenter eq '1001'", True, False),
        ("assignedLicenses/$count eq 0", False, True),
        ("assignedLicenses/$count ne 0", True, False),
        ("assignedLicenses/$count ge 1", True, False),
        (f"assignedLicenses/any(x:x/skuId eq {E3})", True, False),
        (f"assignedLicenses/any(x:x/skuId eq {E3.upper()})", True, False),
        ("assignedLicenses/any()", True, False),
        ("proxyAddresses/any(x:startswith(x,'smtp:'))", True, False),
        ("proxyAddresses/any(p:p eq 'SMTP:AV@contoso.com')", True, False),
        ("proxyAddresses/all(x:startswith(x,'zz'))", False, True),  # vacuously true when empty
        ("otherMails/any()", False, False),
        ("createdDateTime ge 2022-01-01T00:00:00Z", False, True),
        ("createdDateTime le 2022-01-01T00:00:00+02:00", True, False),
        ("id eq '0A000000-0000-4000-8000-000000000002'", False, True),
    ],
)
def test_filter_evaluates_like_graph(text: str, adele: bool, sean: bool) -> None:
    node = parse_filter(text)
    assert (matches(node, ADELE), matches(node, SEAN)) == (adele, sean)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("displayName eq", "expected an operand, found end of filter at position 14"),
        ("displayName eq 'x", "unterminated string literal at position 15"),
        ("(displayName eq 'a'", "expected ')'"),
        ("displayName eq 'a' xor true", "found 'xor' at position 19"),
        ("displayName = 'a'", "unexpected character '='"),
        ("startswith(displayName)", "expected ','"),
        ("startswith(displayName, 3)", "second argument of startswith must be a string"),
        ("startswith('a', 'b')", "first argument of startswith must be a string property"),
        ("foo eq 'x'", "Could not find a property named 'foo' on type 'microsoft.graph.user'."),
        (
            "onPremisesExtensionAttributes/extensionAttribute16 eq 'x'",
            "property named 'extensionAttribute16' on type "
            "'microsoft.graph.onPremisesExtensionAttributes'",
        ),
        (
            "assignedLicenses/any(x:x/sku eq 1)",
            "property named 'sku' on type 'microsoft.graph.assignedLicense'",
        ),
        ("displayName/foo eq 'x'", "on type 'Edm.String'"),
        ("proxyAddresses eq 'x'", "is a collection and cannot be compared directly"),
        ("proxyAddresses/foo eq 'x'", "is a collection: use any(), all() or $count"),
        ("onPremisesExtensionAttributes eq 'x'", "is a complex property"),
        ("accountEnabled eq 'true'", "operand types 'Edm.Boolean' and 'Edm.String'"),
        (f"assignedLicenses/any(x:x/skuId eq '{E3}')", "'Edm.Guid' and 'Edm.String'"),
        ("createdDateTime ge '2020-01-01'", "'Edm.DateTimeOffset' and 'Edm.String'"),
        ("assignedLicenses/$count eq 'none'", "'Edm.Int32' and 'Edm.String'"),
        ("displayName", "the filter must be a condition, found property 'displayName'"),
        ("not displayName", "the operand of 'not' must be a condition"),
        ("displayName eq 'a' and 'b'", "the right side of 'and' must be a condition"),
        ("proxyAddresses/any(x:x)", "the body of any() must be a condition"),
        ("proxyAddresses/any(x x eq 'a')", "expected ':' after the lambda variable"),
        ("userType in 'Member'", "expected '(' after 'in'"),
    ],
)
def test_filter_errors_name_the_problem(text: str, fragment: str) -> None:
    with pytest.raises(FilterError) as raised:
        parse_filter(text)
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("displayName eq 'a'", []),
        ("startswith(displayName,'a') and accountEnabled eq true", []),
        ("userType in ('Member')", []),
        ("assignedLicenses/any(x:x/skuId eq 05e9a617-0261-4cee-bb44-138d3ef5d965)", []),
        ("displayName ne 'a'", ["ne"]),
        ("not startswith(displayName,'a')", ["not"]),
        ("endswith(mail,'@contoso.com')", ["endsWith"]),
        ("assignedLicenses/$count eq 0", ["$count"]),
        ("proxyAddresses/any(x:endswith(x,'.de'))", ["endsWith"]),
        (
            "mail ne null and not (endswith(mail,'x') or userType ne 'Guest')",
            ["ne", "not", "endsWith"],
        ),
    ],
)
def test_advanced_query_operators_are_detected(text: str, expected: list[str]) -> None:
    assert advanced_operators(parse_filter(text)) == expected


def test_tokenizer_reads_guid_datetime_and_escaped_strings() -> None:
    kinds = [
        (t.kind, t.value or t.text)
        for t in tokenize(
            "x eq 05e9a617-0261-4cee-bb44-138d3ef5d965 or d ge 2024-01-01T00:00:00Z or s eq 'it''s'"
        )
    ]
    assert ("guid", "05e9a617-0261-4cee-bb44-138d3ef5d965") in kinds
    assert ("datetime", "2024-01-01T00:00:00Z") in kinds
    assert ("string", "it's") in kinds
    assert kinds[-1] == ("end", "")


# ------------------------------------------------------------------ query options of /users

KEY = b"k" * 32
TENANT = "11111111-2222-4333-8444-555555555555"


def _query(options: dict[str, str], consistency: str | None = None):
    return parse_users_query(options, consistency, KEY, TENANT)


@pytest.mark.parametrize(
    ("options", "consistency", "status", "code", "fragment"),
    [
        (
            {"$filter": "userType ne 'Guest'"},
            None,
            400,
            "Request_UnsupportedQuery",
            "Operator 'ne' is not supported because the required parameters might be missing. "
            "Try adding $count=true query parameter and ConsistencyLevel:eventual header.",
        ),
        (
            {"$filter": "userType ne 'Guest'"},
            "eventual",
            400,
            "Request_UnsupportedQuery",
            "Operator 'ne'",
        ),  # the header alone is not enough
        (
            {"$filter": "endswith(mail,'x')", "$count": "true"},
            None,
            400,
            "Request_BadRequest",
            "$count is not currently supported",
        ),
        (
            {"$select": "displayName,nope"},
            None,
            400,
            "Request_BadRequest",
            "Could not find a property named 'nope' on type 'microsoft.graph.user'.",
        ),
        ({"$select": "id,mailboxSettings"}, None, 501, "NotImplemented", "mailboxSettings"),
        ({"$select": "skills"}, None, 501, "NotImplemented", "skills"),
        ({"$top": "0"}, None, 400, "Request_BadRequest", "Invalid page size specified: '0'"),
        ({"$top": "1000"}, None, 400, "Request_BadRequest", "between 1 and 999"),
        ({"$top": "ten"}, None, 400, "Request_BadRequest", "Invalid page size"),
        ({"$skip": "10"}, None, 400, "Request_BadRequest", "'$skip' is not supported"),
        ({"$orderby": "displayName"}, None, 501, "NotImplemented", "$orderby"),
        ({"$filter": "displayName eq"}, None, 400, "Request_BadRequest", "Invalid filter clause"),
        ({"$skiptoken": "garbage"}, None, 400, "Directory_ExpiredPageToken", "page token"),
    ],
)
def test_users_query_rejections(
    options: dict[str, str], consistency: str | None, status: int, code: str, fragment: str
) -> None:
    with pytest.raises(GraphError) as raised:
        _query(options, consistency)
    assert (raised.value.status, raised.value.code) == (status, code)
    assert fragment in raised.value.message


def test_advanced_query_accepted_with_header_and_count() -> None:
    query = _query({"$filter": "assignedLicenses/$count eq 0", "$count": "true"}, "Eventual")
    assert query.count and query.filter is not None


def test_select_is_canonicalised_and_always_has_id() -> None:
    query = _query({"$select": "DisplayName, mail,extension_0123456789abcdef0123456789abcdef_x"})
    assert query.select == (
        "id",
        "displayName",
        "mail",
        "extension_0123456789abcdef0123456789abcdef_x",
    )
    assert query.selected
    assert not _query({}).selected and "businessPhones" in _query({}).select


def test_skiptoken_is_bound_to_query_and_tenant() -> None:
    options = (("$select", "id"), ("$top", "5"))
    token = make_skiptoken("0a000000-0000-4000-8000-000000000002", KEY, TENANT, options)
    assert read_skiptoken(token, KEY, TENANT, options) == "0a000000-0000-4000-8000-000000000002"
    assert _query({"$select": "id", "$top": "5", "$skiptoken": token}).after is not None
    for tampered_options, tenant in [
        ((("$select", "id"), ("$top", "6")), TENANT),
        (options, "99999999-2222-4333-8444-555555555555"),
    ]:
        with pytest.raises(GraphError):
            read_skiptoken(token, KEY, tenant, tampered_options)
    with pytest.raises(GraphError):
        read_skiptoken(
            token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], KEY, TENANT, options
        )


# Graph's filter table (concepts/aad-advanced-queries.md, includes/filter-directory-objects.md):
# eq/startsWith/in on these properties, and any comparison with null, are advanced queries.
ADVANCED_ONLY_FILTERS = [
    ("companyName eq 'Contoso'", "companyName"),
    ("startswith(officeLocation,'B')", "officeLocation"),
    ("mobilePhone eq '+1 555'", "mobilePhone"),
    ("postalCode eq '98052'", "postalCode"),
    ("startswith(streetAddress,'1 ')", "streetAddress"),
    ("faxNumber eq '1'", "faxNumber"),
    ("employeeType eq 'Contractor'", "employeeType"),
    ("preferredLanguage eq 'en-US'", "preferredLanguage"),
    ("onPremisesExtensionAttributes/extensionAttribute1 eq 'x'", "onPremisesExtensionAttributes"),
    ("employeeOrgData/division eq 'Sales'", "employeeOrgData"),
    ("createdDateTime ge 2024-01-01T00:00:00Z", "createdDateTime"),
    ("employeeHireDate le 2024-01-01T00:00:00Z", "employeeHireDate"),
    ("showInAddressList eq true", "showInAddressList"),
    ("companyName in ('A','B')", "companyName"),
    ("city eq null", "city"),
    ("accountEnabled eq true and department eq null", "department"),
]


@pytest.mark.parametrize(("text", "prop"), ADVANCED_ONLY_FILTERS)
def test_properties_graph_filters_only_in_advanced_queries_are_refused_without_them(text, prop):
    for consistency, options in ((None, {}), ("eventual", {}), (None, {"$count": "false"})):
        with pytest.raises(GraphError) as raised:
            _query({"$filter": text, **options}, consistency)
        assert (raised.value.status, raised.value.code) == (400, "Request_UnsupportedQuery")
        assert f"property '{prop}' of resource 'User'" in raised.value.message
    accepted = _query({"$filter": text, "$count": "true"}, "eventual")
    assert accepted.filter is not None and accepted.count


@pytest.mark.parametrize(
    "text",
    [
        "department eq 'Sales'",
        "startswith(displayName,'A')",
        "city in ('Oslo','Bergen')",
        "userType eq 'Member' and accountEnabled eq true",
        "proxyAddresses/any(p:startswith(p,'smtp:'))",
        "assignedLicenses/any(x:x/skuId eq 05e9a617-0261-4cee-bb44-138d3ef5d965)",
    ],
)
def test_default_filters_work_with_and_without_the_advanced_parameters(text):
    assert _query({"$filter": text}).filter is not None
    assert _query({"$filter": text, "$count": "true"}, "eventual").filter is not None


def test_page_tokens_expire_after_the_configured_lifetime() -> None:
    options = (("$select", "id"), ("$top", "5"))
    token = make_skiptoken("u1", KEY, TENANT, options, issued=time.time() - 60)
    assert read_skiptoken(token, KEY, TENANT, options) == "u1"
    assert read_skiptoken(token, KEY, TENANT, options, max_age=120) == "u1"
    with pytest.raises(GraphError) as raised:
        read_skiptoken(token, KEY, TENANT, options, max_age=30)
    assert (raised.value.status, raised.value.code) == (400, "Directory_ExpiredPageToken")
