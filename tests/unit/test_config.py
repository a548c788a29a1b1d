"""Tenant configuration: defaults, canonical forms, and every error with its path and value."""

from __future__ import annotations

import json

import pytest

from sync_core.core.config import RESERVED_FIELD_NAMES, TenantConfig
from sync_core.core.config_parse import (
    ConfigError,
    parse_config,
    parse_config_bytes,
    parse_config_text,
)

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
    "photos": {"enabled": False, "size": "240x240"},
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
         "$.fields[1].name", "a"),
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


# --- issue 8: every bad configuration gets a clear answer ----------------------------------------


def problems_of(document):
    with pytest.raises(ConfigError) as caught:
        parse_config(document)
    return caught.value.problems


def field(name, source="city"):
    return {"name": name, "source": source}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("id", "Entra object id"),
        ("ID", "Entra object id"),
        ("Email", "email rules"),
        ("Aliases", "other addresses"),
        ("UserPrincipalName", "bookkeeping"),
        ("SourceHash", "bookkeeping"),
        ("SyncedAt", "bookkeeping"),
        ("RunId", "bookkeeping"),
        ("PartitionKey", "Table Storage"),
        ("RowKey", "Table Storage"),
        ("Timestamp", "Table Storage"),
        ("ETag", "Table Storage"),
        ("odata", "Table Storage"),
        ("odata.etag", "odata.*"),
        ("odata.type", "odata.*"),
    ],
)
def test_field_names_the_app_writes_or_answers_are_reserved(name, reason):
    ((path, message, value),) = problems_of({"fields": [field(name)]})
    assert (path, value) == ("$.fields[0].name", name)
    assert message.startswith("is reserved") and reason in message


def test_every_column_the_store_writes_is_reserved():
    """EMPLOYEE_COLUMNS is the one list of the store's own columns: a column added to
    store.employee_entity without it would let a configured field overwrite it."""
    from datetime import UTC, datetime

    from sync_core.adapters.tables.employee_rows import employee_entity
    from sync_core.core.config import EMPLOYEE_COLUMNS
    from sync_core.core.mapping import Employee

    employee = Employee(
        id="00000000-0000-0000-0000-000000000001",
        email="a@contoso.com",
        aliases=(),
        user_principal_name="a@contoso.com",
        fields={},
        source_hash="h",
    )
    written = set(employee_entity("t", employee, "run", datetime.now(UTC))) - {
        "PartitionKey",
        "RowKey",
    }
    assert written <= set(EMPLOYEE_COLUMNS)
    assert {name.lower() for name in EMPLOYEE_COLUMNS} <= RESERVED_FIELD_NAMES


@pytest.mark.parametrize(
    ("document", "path", "suggestion"),
    [
        ({"clean_up": {"enabled": True}}, "$.clean_up", "cleanUp"),
        ({"Cleanup": {}}, "$.Cleanup", "cleanUp"),
        ({"feilds": []}, "$.feilds", "fields"),
        ({"email": {"proxy_addresses": False}}, "$.email.proxy_addresses", "proxyAddresses"),
        ({"filter": {"excludeGuest": True}}, "$.filter.excludeGuest", "excludeGuests"),
        ({"filter": {"include": [[{"attribute": "city", "operator": "isNull", "val": 1}]]}},
         "$.filter.include[0][0].val", "value"),
        ({"cleanUp": {"max_deletes": 5}}, "$.cleanUp.max_deletes", "maxDeletes"),
    ],
)  # fmt: skip
def test_unknown_keys_are_refused_with_the_closest_valid_name(document, path, suggestion):
    ((found_path, message, _),) = problems_of(document)
    assert found_path == path
    assert f"did you mean {suggestion!r}?" in message and "allowed here:" in message


def test_snake_case_is_not_an_alias():
    """One spelling per key: `clean_up` used to work silently beside `cleanUp`."""
    with pytest.raises(ConfigError, match=r"\$\.clean_up: unknown key"):
        parse_config({"clean_up": {"enabled": True}})
    assert parse_config({"cleanUp": {"enabled": True}}).clean_up.enabled


def test_per_field_and_cross_field_errors_come_in_one_pass():
    problems = problems_of(
        {
            "fields": [field("Dept", "department"), field("dept", "nope"), field("id")],
            "cleanUp": {"maxDeletes": -1},
            "clean_up": {},
        }
    )
    paths = [path for path, _, _ in problems]
    assert sorted(paths) == sorted(
        ["$.fields[1].source", "$.fields[2].name", "$.cleanUp.maxDeletes", "$.clean_up",
         "$.fields[1].name"]
    )  # fmt: skip
    duplicate = next(m for p, m, _ in problems if p == "$.fields[1].name")
    assert "used twice" in duplicate and "$.fields[0].name" in duplicate


def test_too_many_fields_is_reported_beside_other_errors():
    problems = problems_of({"fields": [field(f"F{i}") for i in range(201)], "enabled": "yes"})
    assert {path for path, _, _ in problems} == {"$.fields", "$.enabled"}


def test_the_size_limit_is_validated_and_stated():
    """What validates can be stored: a configuration over the stored limit is refused by
    validation with the limit in words, not by Table Storage later."""
    names = [f"Department number {i:06d} of the company" for i in range(7000)]
    document = {"filter": {"include": [[{"attribute": "department", "operator": "in",
                                         "value": names}]]}}  # fmt: skip
    ((path, message, _),) = problems_of(document)
    assert path == "$" and "262144" in message and "256 KiB" in message
    fits = {"filter": {"include": [[{"attribute": "department", "operator": "in",
                                     "value": names[:3000]}]]}}  # fmt: skip
    assert len(parse_config(fits).filter.include[0][0].value) == 3000


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b'{"cleanUp": {"maxDeletePercent": NaN}}', "NaN is not a JSON number"),
        (b'{"cleanUp": {"maxDeletePercent": Infinity}}', "Infinity is not a JSON number"),
        (b'{"cleanUp": {"maxDeletePercent": -Infinity}}', "-Infinity is not a JSON number"),
        (b'{"cleanUp": {"maxDeletePercent": 1e400}}', "out of range"),
        (b'{"enabled": true, "enabled": false}', 'duplicate key "enabled"'),
        (b'{"fields": [{"name": "A", "source": "city", "name": "B"}]}', 'duplicate key "name"'),
        (b'{"enabled": true, "x": "\xff"}', "not UTF-8"),
        (b'{"a": ' + b"[" * 50 + b"]" * 50 + b"}", "nests deeper than 20 levels"),
        (b"[" * 100_000, "nests deeper than 20 levels"),
        (b'{"fields": [{"name": "A", "source": "\\ud800"}]}', "lone surrogate"),
        (b'{"cleanUp": {"maxDeletes": ' + b"9" * 5000 + b"}}", "too many digits"),
        (b'{"fields": [}', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"x" * (1024 * 1024 + 1), "at most 1048576"),
    ],
)
def test_documents_that_are_not_strict_json_are_refused(raw, words):
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes(raw)
    ((path, message, _),) = caught.value.problems
    assert path == "$" and words in message


def test_a_byte_order_mark_is_accepted():
    assert parse_config_bytes(b"\xef\xbb\xbf{}").to_json() == DEFAULT_JSON


def test_strings_stay_strings_and_brackets_inside_them_do_not_count_as_nesting():
    odata = "startswith(displayName,'" + "[{" * 30 + "')"
    assert (
        parse_config_bytes(json.dumps({"filter": {"odata": odata}}).encode()).filter.odata == odata
    )


GROUP = "0f5c6c3a-1b2d-4e5f-8a9b-0c1d2e3f4a5b"


@pytest.mark.parametrize(
    "value",
    [f"{GROUP}\n", f"{{{GROUP}}}", f" {GROUP}", GROUP.replace("-", ""), f"{GROUP}\r\n"],
)
def test_a_group_id_that_is_not_exactly_a_guid_is_refused(value):
    # A trailing newline (what `$` in a regular expression lets through) would be stored and
    # sent to Graph as %0A, a group that never exists.
    problems = errors_of({"filter": {"groups": {"include": [value]}}})
    assert "$.filter.groups.include" in {path for path, _ in problems}
    field = {"name": "Teams", "source": "memberOf", "groups": [value]}
    assert "$.fields[0].groups" in {path for path, _ in errors_of({"fields": [field]})}


def test_a_group_both_included_and_excluded_is_refused():
    # Exclusion wins, so every member would be left out: the contradiction would read as a mass
    # removal in the next run, not as the typo it is.
    with pytest.raises(ConfigError) as raised:
        parse_config({"filter": {"groups": {"include": [GROUP], "exclude": [GROUP.upper()]}}})
    (problem,) = raised.value.problems
    assert problem[0] == "$.filter.groups.exclude"
    assert GROUP in problem[1] and "include" in problem[1]


def test_more_than_50_groups_in_all_are_refused():
    # 50 per list, but fields and lists add up: every group a configuration names (and each
    # nested in one) is followed by a group delta query of at most 50 ids, so past 50 an idle
    # tick costs more than its three requests and the stored links grow with every field.
    ids = [f"{n:08x}-1b2d-4e5f-8a9b-0c1d2e3f4a5b" for n in range(60)]
    fields = [
        {"name": "Office", "source": "memberOf", "groups": ids[:30]},
        {"name": "Team", "source": "memberOf", "groups": ids[30:]},
    ]
    with pytest.raises(ConfigError) as raised:
        parse_config({"fields": fields})
    (problem,) = raised.value.problems
    assert problem[0] == "$.fields" and "60 groups" in problem[1]
    # The same group in a list and a field counts once.
    parse_config({"filter": {"groups": {"include": ids[:25]}}, "fields": [
        {"name": "Team", "source": "memberOf", "groups": [i.upper() for i in ids[:50]]}]})  # fmt: skip
