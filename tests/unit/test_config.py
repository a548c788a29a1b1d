"""Tenant configuration: defaults, canonical forms, and every error with its path and value."""

from __future__ import annotations

import json

import pytest

from sync_core.config import ConfigError, TenantConfig, parse_config, parse_config_text

DEFAULT_JSON = {
    "enabled": True,
    "fields": [
        {"name": "FirstName", "source": "givenName"}, {"name": "LastName", "source": "surname"},
        {"name": "DisplayName", "source": "displayName"}, {"name": "Title", "source": "jobTitle"},
        {"name": "Department", "source": "department"}, {"name": "Company", "source": "companyName"},
        {"name": "Phone", "source": "businessPhones[0]"}, {"name": "Mobile", "source": "mobilePhone"},
        {"name": "Fax", "source": "faxNumber"}, {"name": "Street", "source": "streetAddress"},
        {"name": "City", "source": "city"}, {"name": "State", "source": "state"},
        {"name": "PostalCode", "source": "postalCode"}, {"name": "Country", "source": "country"},
        {"name": "Office", "source": "officeLocation"},
    ],
    "email": {"proxyAddresses": True, "otherMails": True, "userPrincipalName": False},
    "filter": {"excludeDisabled": True, "excludeGuests": True, "excludeUnlicensed": False,
               "odata": None, "include": [], "exclude": []},
    "cleanUp": {"enabled": False, "maxDeletes": 500, "maxDeletePercent": 20.0,
                "emailMissingGraceHours": 24.0},
}  # fmt: skip


def test_defaults_are_the_documented_ones():
    assert parse_config({}).to_json() == DEFAULT_JSON
    assert TenantConfig().to_json() == DEFAULT_JSON


def test_round_trip_of_a_full_configuration():
    document = {
        **DEFAULT_JSON,
        "fields": [{"name": "Cost_Center2", "source": "onPremisesExtensionAttributes.extensionAttribute3"}],
        "filter": {**DEFAULT_JSON["filter"], "odata": "userType eq 'Member'",
                   "include": [[{"attribute": "department", "operator": "in", "value": ["A", "B"]}]],
                   "exclude": [[{"attribute": "jobTitle", "operator": "isNull", "value": None}]]},
    }  # fmt: skip
    assert parse_config(json.loads(json.dumps(document))).to_json() == document


def test_sources_are_canonicalised_to_graph_casing():
    config = parse_config({"fields": [{"name": "T", "source": "JOBTITLE"},
                                      {"name": "P", "source": "BusinessPhones[1]"}]})  # fmt: skip
    assert [f.source for f in config.fields] == ["jobTitle", "businessPhones[1]"]


def errors_of(document):
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return {(path, json.dumps(value)) for path, _, value in caught.value.problems}


@pytest.mark.parametrize(
    ("document", "path", "value"),
    [
        ({"fields": [{"name": "Email", "source": "mail"}]}, "$.fields[0].name", "Email"),
        ({"fields": [{"name": "aliases", "source": "mail"}]}, "$.fields[0].name", "aliases"),
        ({"fields": [{"name": "RowKey", "source": "mail"}]}, "$.fields[0].name", "RowKey"),
        ({"fields": [{"name": "1st", "source": "mail"}]}, "$.fields[0].name", "1st"),
        ({"fields": [{"name": "Job-Title", "source": "jobTitle"}]}, "$.fields[0].name", "Job-Title"),
        ({"fields": [{"name": "T", "source": "title"}]}, "$.fields[0].source", "title"),
        ({"fields": [{"name": "T", "source": "mailboxSettings"}]}, "$.fields[0].source",
         "mailboxSettings"),
        ({"fields": [{"name": "T", "source": "businessPhones[x]"}]}, "$.fields[0].source",
         "businessPhones[x]"),
        ({"fields": [{"name": "T", "source": "extension_123_cost"}]}, "$.fields[0].source",
         "extension_123_cost"),
        ({"fields": [{"name": "T"}]}, "$.fields[0].source", {"name": "T"}),
        ({"fields": [{"name": "A", "source": "city"}, {"name": "a", "source": "state"}]},
         "$.fields", None),
        ({"fields": "givenName"}, "$.fields", "givenName"),
        ({"email": {"proxyAddresses": "yes"}}, "$.email.proxyAddresses", "yes"),
        ({"email": {"mailNickname": True}}, "$.email.mailNickname", True),
        ({"filter": {"excludeGuests": 1}}, "$.filter.excludeGuests", 1),
        ({"filter": {"odata": "  "}}, "$.filter.odata", "  "),
        ({"filter": {"odata": "userType eq 'Guest"}}, "$.filter.odata", "userType eq 'Guest"),
        ({"filter": {"include": [[]]}}, "$.filter.include", None),
        ({"filter": {"include": [[{"attribute": "city", "operator": "like", "value": "x"}]]}},
         "$.filter.include[0][0].operator", "like"),
        ({"filter": {"include": [[{"attribute": "city", "operator": "in", "value": "x"}]]}},
         "$.filter.include[0][0].value", "x"),
        ({"filter": {"exclude": [[{"attribute": "city", "operator": "isNull", "value": "x"}]]}},
         "$.filter.exclude[0][0].value", "x"),
        ({"filter": {"exclude": [[{"attribute": "city", "operator": "regexMatch", "value": "(("}]]}},
         "$.filter.exclude[0][0].value", "(("),
        # A backreference: RE2 (linear time) has none, so the rule is refused when stored.
        ({"filter": {"include": [[{"attribute": "city", "operator": "notRegexMatch",
                                   "value": "(a)\\1"}]]}},
         "$.filter.include[0][0].value", "(a)\\1"),
        ({"filter": {"exclude": [[{"attribute": "city", "operator": "regexMatch",
                                   "value": "^(?=x)"}]]}},
         "$.filter.exclude[0][0].value", "^(?=x)"),
        ({"filter": {"exclude": [[{"attribute": "city", "operator": "equals"}]]}},
         "$.filter.exclude[0][0].value", None),
        ({"filter": {"exclude": [[{"attribute": "town", "operator": "isNull"}]]}},
         "$.filter.exclude[0][0].attribute", "town"),
        ({"cleanUp": {"maxDeletes": -1}}, "$.cleanUp.maxDeletes", -1),
        ({"cleanUp": {"maxDeletePercent": 101}}, "$.cleanUp.maxDeletePercent", 101),
        ({"cleanUp": {"maxDeletes": "500"}}, "$.cleanUp.maxDeletes", "500"),
        ({"cleanUp": {"emailMissingGraceHours": 0}}, "$.cleanUp.emailMissingGraceHours", 0),
        ({"cleanUp": {"emailMissingGraceHours": 9000}}, "$.cleanUp.emailMissingGraceHours",
         9000),
        ({"cleanUp": {"emailMissingGraceHours": "24"}}, "$.cleanUp.emailMissingGraceHours",
         "24"),
        ({"fields": [{"name": "EmailMissingSince", "source": "mail"}]}, "$.fields[0].name",
         "EmailMissingSince"),
        ({"cleanup": {}}, "$.cleanup", {}),
        ([], "$", []),
    ],
)  # fmt: skip
def test_each_error_names_its_path_and_value(document, path, value):
    found = errors_of(document)
    if value is None and path in {"$.fields", "$.filter.include"}:
        assert path in {p for p, _ in found}
    else:
        assert (path, json.dumps(value)) in found


def test_all_errors_are_reported_at_once():
    problems = errors_of(
        {
            "fields": [{"name": "Email", "source": "nope"}],
            "email": {"otherMails": "no"},
            "cleanUp": {"maxDeletes": -5},
            "extra": 1,
        }
    )
    assert {p for p, _ in problems} == {
        "$.fields[0].name", "$.fields[0].source", "$.email.otherMails", "$.cleanUp.maxDeletes",
        "$.extra",
    }  # fmt: skip


def test_invalid_json_text_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid JSON"):
        parse_config_text('{"fields": [}')


def test_a_regex_rule_re2_cannot_compile_is_refused_with_the_reason():
    with pytest.raises(ConfigError) as raised:
        parse_config(
            {"filter": {"exclude": [[{"attribute": "city", "operator": "regexMatch",
                                      "value": "(x+)\\1"}]]}}
        )  # fmt: skip
    (problem,) = raised.value.problems
    assert problem[0] == "$.filter.exclude[0][0].value"
    assert "RE2" in problem[1] and "backreference" in problem[1]
