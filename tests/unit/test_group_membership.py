"""Transitive membership, the group scope and a group delta round folded: pure logic."""

from __future__ import annotations

import pytest

from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.group_sync import fold_group_round
from sync_core.core.groups import (
    MEMBERSHIP_KEY,
    GroupChange,
    GroupNode,
    GroupSettings,
    apply_round,
    changed_users,
    field_value,
    memberships,
    nested_groups,
    transitive_users,
)
from sync_core.core.scope import Scope

A, B, C = "aaaaaaaa-0000-0000-0000-000000000001", "bbbbbbbb-0000-0000-0000-000000000002", "cccccccc-0000-0000-0000-000000000003"  # fmt: skip
GRAPH = {
    A: GroupNode("Alpha", frozenset({"u1"}), frozenset({B})),
    B: GroupNode("Beta", frozenset({"u2"}), frozenset({A, C})),  # a cycle back to Alpha
    C: GroupNode("Gamma", frozenset({"u3"})),
}


def test_transitive_members_follow_nesting_and_a_cycle_ends_the_walk():
    assert transitive_users(GRAPH, A) == {"u1", "u2", "u3"}
    assert transitive_users(GRAPH, C) == {"u3"}
    assert nested_groups(GRAPH, [C]) == {C}
    assert nested_groups(GRAPH, [A]) == {A, B, C}


def test_applying_a_round_twice_is_the_same_as_once():
    round_ = [GroupChange(C, added_users=frozenset({"u4"}), removed_users=frozenset({"u3"}))]
    once = apply_round(GRAPH, round_)
    assert apply_round(once, round_) == once
    assert once[C].users == {"u4"}
    before, after = memberships(GRAPH, [A]), memberships(once, [A])
    assert changed_users(before, after) == {"u3", "u4"}


def test_a_rename_changes_the_members_of_the_renamed_group():
    renamed = apply_round(GRAPH, [GroupChange(C, display_name="Gamma 2")])
    assert changed_users(memberships(GRAPH, [C]), memberships(renamed, [C])) == {"u3"}


def test_the_scope_decides_on_groups_after_the_presets():
    config = parse_config({"filter": {"groups": {"include": [A], "exclude": [C]}}})
    scope = Scope.from_config(config.filter)
    known = memberships(GRAPH, GroupSettings.from_config(config).listed)

    def reason(user_id: str, **user: object) -> str | None:
        return scope.exclusion_reason(known.annotate({"id": user_id, **user}))

    assert reason("u1") is None
    assert reason("u3") == f"excludeGroup[{C}]"
    assert reason("nobody") == "notInGroups"
    assert reason("u1", accountEnabled=False) == "disabled"


def test_the_field_lists_names_in_the_fields_order():
    user = {"id": "u", MEMBERSHIP_KEY: {A: "Alpha", C: "Gamma"}}
    assert field_value(user, (C, B, A)) == ["Gamma", "Alpha"]
    assert field_value(user, (B,)) is None


def test_a_round_is_folded_per_group_across_pages_and_the_last_word_wins():
    user, group = "#microsoft.graph.user", "#microsoft.graph.group"
    folded = fold_group_round([
        {"id": A, "displayName": "Alpha", "members@delta": [{"@odata.type": user, "id": "u1"}]},
        {"id": A, "members@delta": [{"@odata.type": group, "id": B},
                                    {"@odata.type": user, "id": "u1", "@removed": {"reason": "deleted"}}]},
        {"id": C, "@removed": {"reason": "changed"}},
    ])  # fmt: skip
    alpha, gamma = folded
    assert (alpha.display_name, alpha.added_users, alpha.removed_users) == ("Alpha", set(), {"u1"})
    assert alpha.added_groups == {B} and gamma.deleted


@pytest.mark.parametrize(
    ("document", "path"),
    [
        ({"filter": {"groups": {"include": ["sales"]}}}, "$.filter.groups.include"),
        ({"filter": {"groups": {"exclude": [A, A.upper()]}}}, "$.filter.groups.exclude"),
        ({"filter": {"groups": {"members": [A]}}}, "$.filter.groups.members"),
        ({"fields": [{"name": "Teams", "source": "memberOf"}]}, "$.fields[0].groups"),
        ({"fields": [{"name": "T", "source": "city", "groups": [A]}]}, "$.fields[0].groups"),
    ],
)
def test_group_settings_are_validated_with_the_path(document, path):
    with pytest.raises(ConfigError) as raised:
        parse_config(document)
    assert [p for p, _, _ in raised.value.problems] == [path]


def test_a_configuration_without_groups_serialises_as_before():
    document = parse_config({}).to_json()
    assert "groups" not in document["filter"]
    assert all("groups" not in field for field in document["fields"])
    with_field = parse_config(
        {"fields": [{"name": "T", "source": "MEMBEROF", "groups": [A.upper()]}]}
    )
    assert with_field.to_json()["fields"][0] == {"name": "T", "source": "memberOf", "groups": [A]}
