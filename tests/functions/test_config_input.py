"""Issue 8 over HTTP: PUT /api/config/{tenantId} answers every bad configuration with a 400 that
names the problem, stores nothing, and says what `config validate` says for the same bytes.
Then a fuzz test: random JSON documents and random bytes, to both entry points."""

from __future__ import annotations

import json
import math
import os
import uuid
from typing import Any

import pytest
from functions_harness import call
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

LARGE_IN_LIST = [f"Department {i:05d} of Contoso" for i in range(3000)]


def in_rule(values: list[str]) -> dict[str, Any]:
    return {
        "filter": {"include": [[{"attribute": "department", "operator": "in", "value": values}]]}
    }


BODIES: dict[str, tuple[bytes, str, str]] = {
    "NaN": (b'{"cleanUp": {"maxDeletePercent": NaN}}', "malformed_json", "NaN is not a JSON number"),
    "-Infinity": (b'{"cleanUp": {"maxDeletes": -Infinity}}', "malformed_json", "-Infinity is not"),
    "1e999": (b'{"cleanUp": {"maxDeletePercent": 1e999}}', "malformed_json", "out of range"),
    "duplicate keys": (b'{"cleanUp": {}, "cleanUp": {}}', "malformed_json", 'duplicate key "cleanUp"'),
    "invalid UTF-8": (b'{"filter": {"odata": "\xc3\x28"}}', "malformed_json", "not UTF-8"),
    "deep nesting": (b'{"fields": ' + b"[" * 25 + b"]" * 25 + b"}", "malformed_json", "nests deeper"),
    "lone surrogate": (b'{"filter": {"odata": "\\ud83d"}}', "malformed_json", "lone surrogate"),
    "clean_up alias": (b'{"clean_up": {"enabled": true}}', "invalid_config", "did you mean 'cleanUp'?"),
    "field named id": (b'{"fields": [{"name": "Id", "source": "employeeId"}]}', "invalid_config",
                       "is reserved"),
    "field named Aliases": (b'{"fields": [{"name": "Aliases", "source": "otherMails"}]}',
                            "invalid_config", "is reserved"),
    "field named RowKey": (b'{"fields": [{"name": "RowKey", "source": "id"}]}', "invalid_config",
                           "is reserved"),
    "duplicate field with other errors": (
        json.dumps({"fields": [{"name": "A", "source": "city"}, {"name": "a", "source": "x"}],
                    "enabled": "yes"}).encode(),
        "invalid_config", "is used twice",
    ),
    "too large to store": (json.dumps(in_rule(LARGE_IN_LIST * 3)).encode(), "invalid_config",
                           "at most 262144 (256 KiB) can be stored"),
    # Issue 17: what surprised an admin.
    "no field at all": (b'{"fields": []}', "invalid_config", "holds no field: the next run would"),
    "an operator in the wrong case": (
        b'{"filter": {"include": [[{"attribute": "city", "operator": "startswith", "value": "B"}]]}}',
        "invalid_config", "did you mean 'startsWith'?",
    ),
    "maxDeletes 10**30": (
        b'{"cleanUp": {"maxDeletes": 1000000000000000000000000000000}}', "invalid_config",
        "must be at most 10000000",
    ),
}  # fmt: skip


@pytest.mark.parametrize(("body", "code", "words"), BODIES.values(), ids=BODIES.keys())
def test_put_refuses_bad_configurations_with_400_and_stores_nothing(
    app_env, tmp_path, cli, body: bytes, code: str, words: str
) -> None:
    tenant = str(uuid.uuid4())
    answer = call("tenant_config", "PUT", {"tenantId": tenant}, body=body)
    assert answer.status == 400, answer.text
    error = answer.json["error"]
    assert error["code"] == code and "Traceback" not in answer.text
    said = error["message"] + " ".join(d["message"] for d in error.get("details", []))
    assert words in said
    assert call("tenant_config", "GET", {"tenantId": tenant}).status == 404  # nothing stored
    # The CLI reads the same bytes with the same reader: the same words, exit 2.
    path = tmp_path / "config.json"
    path.write_bytes(body)
    validated = cli("config", "validate", "--file", str(path))
    assert validated.exit_code == 2 and words in validated.stderr
    for detail in error.get("details", []):
        assert f"{detail['path']}: {detail['message']}" in validated.stderr


def test_all_problems_of_a_body_come_together(app_env) -> None:
    body = {
        "fields": [{"name": "Dept", "source": "department"}, {"name": "DEPT", "source": "x"}],
        "email": {"other_mails": False},
        "cleanUp": {"maxDeletePercent": 120},
    }
    answer = call("tenant_config", "PUT", {"tenantId": str(uuid.uuid4())}, body=body)
    assert answer.status == 400
    assert {d["path"] for d in answer.json["error"]["details"]} == {
        "$.fields[1].source",
        "$.fields[1].name",
        "$.email.other_mails",
        "$.cleanUp.maxDeletePercent",
    }


@pytest.mark.parametrize("where", ["top", "nested"])
def test_an_unknown_key_of_a_megabyte_is_not_echoed_back(app_env, where: str) -> None:
    # The path names the caller's key: a 1 MB one comes back shortened, as a value does.
    key = "k" * (1024 * 1024 - 100)
    body: dict[str, Any] = (
        {key: 1} if where == "top" else {"fields": [{"name": "A", "source": "city", key: 1}]}
    )
    answer = call("tenant_config", "PUT", {"tenantId": str(uuid.uuid4())}, body=body)
    assert answer.status == 400 and answer.json["error"]["code"] == "invalid_config"
    assert len(answer.text) < 4096
    assert any(d["path"].endswith("...") for d in answer.json["error"]["details"])


def test_a_large_configuration_is_stored_and_read_back(app_env, cli) -> None:
    """Up to the documented limit whatever validates is stored: 3000 names in an `in` list
    (about 90 KB) used to answer 500 with Table Storage's "64KB"."""
    tenant = app_env["ENTRA_TENANT_ID"]
    answer = call("tenant_config", "PUT", {"tenantId": tenant}, body=in_rule(LARGE_IN_LIST))
    assert answer.status in (200, 201), answer.text[:500]
    read = call("tenant_config", "GET", {"tenantId": tenant})
    assert read.json["config"] == answer.json["config"]
    shown = cli("config", "show")
    assert json.loads(shown.stdout) == answer.json["config"]


# --- fuzz: random documents and bytes to both entry points ---------------------------------------

FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=os.environ.get("CI", "").lower() == "true",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
# Documents near the schema, so that many are accepted and the round trip is exercised too.
names = st.sampled_from(
    ["City", "Dept", "dept", "id", "Email", "RowKey", "odata.type", "X_1", "1a"]
)
sources = st.sampled_from(["city", "department", "businessPhones[0]", "nope", "JOBTITLE", ""])
operators = st.sampled_from(["equals", "in", "isNull", "regexMatch", "startsWith", "like"])
rules = st.fixed_dictionaries(
    {"attribute": sources, "operator": operators},
    optional={"value": scalars | st.lists(st.text(max_size=8), max_size=3) | st.just("(")},
)
near_schema = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans() | scalars,
        "fields": st.lists(st.fixed_dictionaries({"name": names, "source": sources}), max_size=4),
        "email": st.dictionaries(
            st.sampled_from(["proxyAddresses", "otherMails", "userPrincipalName", "other_mails"]),
            st.booleans() | scalars,
        ),
        "filter": st.fixed_dictionaries(
            {},
            optional={
                "excludeGuests": st.booleans(),
                "odata": st.none() | st.text(max_size=20),
                "include": st.lists(st.lists(rules, max_size=2), max_size=2),
                "exclude": st.lists(st.lists(rules, max_size=2), max_size=2),
            },
        ),
        "cleanUp": st.dictionaries(
            st.sampled_from(["enabled", "maxDeletes", "maxDeletePercent", "max_deletes"]),
            st.booleans() | st.integers(-5, 10**6) | st.floats(),
        ),
        "clean_up": st.just({}),
        "unknown": json_values,
    },
)
# Documents that mostly validate, so the round trip through storage is exercised often.
plausible = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "fields": st.lists(
            st.fixed_dictionaries(
                {
                    "name": st.from_regex(r"[A-Z][a-z0-9_]{0,8}", fullmatch=True),
                    "source": st.sampled_from(["city", "department", "businessPhones[1]"]),
                }
            ),
            max_size=4,
            unique_by=lambda field: field["name"].lower(),
        ),
        "filter": st.fixed_dictionaries(
            {},
            optional={
                "odata": st.none() | st.from_regex(r"city eq '[a-z]{1,5}'", fullmatch=True),
                "include": st.lists(
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "attribute": st.just("department"),
                                "operator": st.just("in"),
                                "value": st.lists(st.text(min_size=1, max_size=10), min_size=1),
                            }
                        ),
                        min_size=1,
                        max_size=2,
                    ),
                    max_size=2,
                ),
                # Any float, NaN and infinities included (json.dumps writes them bare): valid
                # in this place, so only the JSON reader can refuse them.
                "exclude": st.lists(
                    st.lists(
                        st.fixed_dictionaries(
                            {
                                "attribute": st.just("city"),
                                "operator": st.just("equals"),
                                "value": st.floats() | st.integers() | st.text(max_size=8),
                            }
                        ),
                        min_size=1,
                        max_size=2,
                    ),
                    max_size=2,
                ),
            },
        ),
        "cleanUp": st.fixed_dictionaries(
            {},
            optional={
                "maxDeletes": st.integers(0, 10**9),
                "maxDeletePercent": st.floats(0, 100) | st.integers(0, 100),
            },
        ),
    },
)
# A float where any number is valid: NaN and the infinities (json.dumps writes them bare) can only
# be refused by the JSON reader, and once were stored by the CLI.
any_float_value = (st.sampled_from([math.nan, math.inf, -math.inf]) | st.floats()).map(
    lambda number: {
        "filter": {"exclude": [[{"attribute": "city", "operator": "equals", "value": number}]]}
    }
)
documents = (plausible | any_float_value | near_schema | json_values).map(
    lambda document: json.dumps(document).encode()
)


def both_entry_points(body: bytes, tenant: str, tmp_path: Any, cli: Any) -> None:
    answer = call("tenant_config", "PUT", {"tenantId": tenant}, body=body)
    assert answer.status in (200, 201, 400, 413), answer.text[:500]
    assert "Traceback" not in answer.text
    path = tmp_path / "fuzz.json"
    path.write_bytes(body)
    validated = cli("config", "validate", "--file", str(path))
    assert validated.exit_code in (0, 2), validated.stderr
    assert "Traceback" not in validated.stderr and "internal_error" not in validated.stderr
    # One reader, one validator: the CLI accepts exactly what HTTP accepts.
    accepted = answer.status in (200, 201)
    event("accepted" if accepted else f"refused {answer.status}")
    assert (validated.exit_code == 0) == accepted, (validated.stderr, answer.text[:500])
    if accepted:
        shown = cli("config", "show", "--tenant", tenant)
        assert shown.exit_code == 0, shown.stderr
        assert json.loads(shown.stdout) == answer.json["config"]
        read = call("tenant_config", "GET", {"tenantId": tenant})
        assert read.json["config"] == answer.json["config"]


@FUZZ
@given(body=documents)
def test_fuzz_random_json_documents(app_env, tmp_path, cli, body: bytes) -> None:
    both_entry_points(body, app_env["ENTRA_TENANT_ID"], tmp_path, cli)


@FUZZ
@given(
    body=st.binary(max_size=200)
    | documents.map(lambda raw: raw[: len(raw) // 2])
    | plausible.map(lambda document: b"\xef\xbb\xbf" + json.dumps(document, indent=1).encode())
)
def test_fuzz_random_bytes(app_env, tmp_path, cli, body: bytes) -> None:
    both_entry_points(body, app_env["ENTRA_TENANT_ID"], tmp_path, cli)
