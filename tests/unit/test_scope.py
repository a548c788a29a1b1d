"""Scope filters: presets, include/exclude rule groups, operators on single and multi values."""

from __future__ import annotations

import pytest

from sync_core.core.config_parse import parse_config
from sync_core.core.scope import Scope

MEMBER = {
    "id": "u1",
    "userPrincipalName": "ada@contoso.com",
    "accountEnabled": True,
    "userType": "Member",
    "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}],
    "department": "Research & Development",
    "jobTitle": "Engineer",
    "proxyAddresses": ["SMTP:ada@contoso.com", "smtp:ada@fabrikam.com"],
    "onPremisesExtensionAttributes": {
        "extensionAttribute1": "Signature",
        "extensionAttribute2": None,
    },
    "employeeId": "",
}


def _scope(**filter_config):
    return Scope.from_config(parse_config({"filter": filter_config}).filter)


@pytest.mark.parametrize(
    ("changes", "filter_config", "reason"),
    [
        ({}, {}, None),
        ({"accountEnabled": False}, {}, "disabled"),
        ({"accountEnabled": False}, {"excludeDisabled": False}, None),
        ({"accountEnabled": None}, {}, None),  # unknown is not disabled
        ({"userType": "Guest"}, {}, "guest"),
        ({"userType": None, "userPrincipalName": "bob_fabrikam.com#EXT#@contoso.onmicrosoft.com"},
         {}, "guest"),
        ({"userType": "Guest"}, {"excludeGuests": False}, None),
        ({"assignedLicenses": []}, {}, None),
        ({"assignedLicenses": []}, {"excludeUnlicensed": True}, "unlicensed"),
        ({"assignedLicenses": None}, {"excludeUnlicensed": True}, "unlicensed"),
        ({"accountEnabled": False, "userType": "Guest"}, {}, "disabled"),  # first reason wins
    ],
)  # fmt: skip
def test_presets(changes, filter_config, reason):
    assert _scope(**filter_config).exclusion_reason({**MEMBER, **changes}) == reason


def rule(attribute, operator, value=None):
    result = {"attribute": attribute, "operator": operator}
    if value is not None:
        result["value"] = value
    return result


@pytest.mark.parametrize(
    ("single_rule", "holds"),
    [
        (rule("department", "equals", "research & development"), True),
        (rule("department", "equals", "Research"), False),
        (rule("department", "notEquals", "Sales"), True),
        (rule("department", "startsWith", "RESEARCH"), True),
        (rule("department", "endsWith", "development"), True),
        (rule("department", "contains", "& dev"), True),
        (rule("department", "in", ["Sales", "Research & Development"]), True),
        (rule("department", "notIn", ["Sales", "Research & Development"]), False),
        (rule("jobTitle", "regexMatch", "^eng"), True),
        (rule("jobTitle", "notRegexMatch", "^eng"), False),
        (rule("officeLocation", "isNull"), True),  # absent
        (rule("employeeId", "isNull"), True),  # empty string
        (rule("department", "isNotNull"), True),
        (rule("accountEnabled", "isTrue"), True),
        (rule("accountEnabled", "isFalse"), False),
        (rule("accountEnabled", "equals", True), True),
        (rule("accountEnabled", "equals", "TRUE"), True),
        (rule("officeLocation", "equals", "Berlin"), False),  # absent never equals
        (rule("officeLocation", "notEquals", "Berlin"), True),
        (rule("officeLocation", "startsWith", ""), False),
        # multi-valued: positive holds when any element matches; negated when none does
        (rule("proxyAddresses", "endsWith", "@fabrikam.com"), True),
        (rule("proxyAddresses", "equals", "smtp:ada@fabrikam.com"), True),
        (rule("proxyAddresses", "notRegexMatch", "fabrikam"), False),
        (rule("proxyAddresses", "notRegexMatch", "northwind"), True),
        (rule("proxyAddresses", "isNull"), False),
        (rule("assignedLicenses", "isNotNull"), True),
        # dotted paths
        (rule("onPremisesExtensionAttributes.extensionAttribute1", "equals", "signature"), True),
        (rule("onPremisesExtensionAttributes.extensionAttribute2", "isNull"), True),
        (rule("onPremisesExtensionAttributes.extensionAttribute9", "isNull"), True),
    ],
)
def test_operators(single_rule, holds):
    scope = _scope(include=[[single_rule]])
    assert (scope.exclusion_reason(MEMBER) is None) is holds


def test_include_groups_are_ored_and_rules_anded():
    scope = _scope(
        include=[
            [rule("department", "equals", "Sales"), rule("jobTitle", "equals", "Engineer")],
            [rule("department", "startsWith", "Research"), rule("jobTitle", "contains", "gine")],
        ]
    )
    assert scope.exclusion_reason(MEMBER) is None
    assert scope.exclusion_reason({**MEMBER, "jobTitle": "Chemist"}) == "notIncluded"


def test_exclude_group_names_its_index():
    scope = _scope(
        exclude=[
            [rule("userPrincipalName", "startsWith", "svc-")],
            [rule("jobTitle", "isNull"), rule("department", "isNull")],
        ]
    )
    assert scope.exclusion_reason({**MEMBER, "userPrincipalName": "svc-backup@contoso.com"}) == (
        "exclude[0]"
    )
    assert scope.exclusion_reason({**MEMBER, "jobTitle": None, "department": ""}) == "exclude[1]"
    assert scope.exclusion_reason({**MEMBER, "jobTitle": None}) is None


def test_graph_properties_come_from_presets_and_rules():
    scope = _scope(
        excludeUnlicensed=True,
        include=[[rule("onPremisesExtensionAttributes.extensionAttribute1", "isNotNull")]],
    )
    assert scope.graph_properties == {
        "accountEnabled", "userType", "userPrincipalName", "assignedLicenses",
        "onPremisesExtensionAttributes",
    }  # fmt: skip
    bare = _scope(excludeDisabled=False, excludeGuests=False)
    assert bare.graph_properties == frozenset()


# A pattern that backtracks catastrophically in Python's `re` (2^n steps on "aaa...a!"): under
# RE2 it is linear, so this finishes at once; without RE2 it would hang until the guard fails it.
@pytest.mark.timeout(30)
def test_a_catastrophic_backtracking_pattern_evaluates_in_linear_time():
    scope = _scope(exclude=[[rule("jobTitle", "regexMatch", "(a+)+$")]])
    assert scope.exclusion_reason({**MEMBER, "jobTitle": "a" * 200_000 + "!"}) is None
    assert scope.exclusion_reason({**MEMBER, "jobTitle": "A" * 200_000}) == "exclude[0]"
