"""The parts of the simulator's ``/users/delta`` that need no server: the directory's change log,
delta tokens, the id filter, and the on-demand knobs."""

from __future__ import annotations

import pytest

from simulator import World
from simulator.delta import DeltaState, decode_token, encode_token, parse_id_filter
from simulator.delta_plan import DeltaPlan
from simulator.directory import Directory, UserState
from simulator.generator import GeneratorOptions, generate_world
from simulator.graph_query import GraphError

KEY = b"k" * 32


def directory() -> tuple[Directory, str, list[dict]]:
    world = generate_world(GeneratorOptions(5, seed=3))
    tenant = world["tenants"][0]
    return Directory(World.from_dict(world)), tenant["id"], tenant["users"]


def test_the_change_log_records_which_properties_changed_deletes_and_restores() -> None:
    found, tenant, users = directory()
    first, second = users[0]["id"].lower(), users[1]["id"].lower()
    assert found.change_position(tenant) == 0

    found.patch_user(tenant, first, {"department": "New", "jobTitle": users[0].get("jobTitle")})
    found.patch_user(tenant, first, {"department": "New"})  # no change, no entry
    found.upsert_user(tenant, {**users[1], "displayName": "Renamed"})
    found.upsert_user(tenant, {"id": "ADDED", "displayName": "Added"})
    found.remove_user(tenant, first)
    found.restore_user(tenant, first)
    found.remove_user(tenant, second, permanent=True)

    log = found.changes(tenant, 0, found.change_position(tenant))
    assert [(c.seq, c.user_id, c.kind, c.properties) for c in log] == [
        (1, first, "updated", frozenset({"department"})),
        (2, second, "updated", frozenset({"displayname"})),
        (3, "added", "created", frozenset()),
        (4, first, "soft_deleted", frozenset()),
        (5, first, "restored", frozenset()),
        (6, second, "hard_deleted", frozenset()),
    ]
    assert [c.seq for c in found.changes(tenant, 4, 6)] == [5, 6]


def test_soft_deleted_users_leave_listings_and_can_be_restored_or_purged() -> None:
    found, tenant, users = directory()
    user_id = users[2]["id"]
    found.remove_user(tenant, user_id)
    assert found.user(tenant, user_id) is None
    assert user_id.lower() not in found.active_ids(tenant)
    state = found.user_state(tenant, user_id)
    assert state.deleted and state.user is not None

    found.restore_user(tenant, user_id)
    assert found.user(tenant, user_id) == users[2]
    with pytest.raises(KeyError):
        found.restore_user(tenant, user_id)  # not deleted any more

    found.remove_user(tenant, user_id)
    found.remove_user(tenant, user_id, permanent=True)
    assert found.user_state(tenant, user_id.upper()) == UserState(None, False, user_id)
    with pytest.raises(KeyError):
        found.restore_user(tenant, user_id)
    with pytest.raises(KeyError):
        found.remove_user(tenant, user_id)


def test_tokens_round_trip_and_reject_tampering_or_another_key() -> None:
    state = DeltaState("t1", ("id", "mail"), ("a",), 3, 9, "x", 1000.0, 2)
    token = encode_token(state, KEY)
    assert decode_token(token, KEY) == state
    assert "t1" not in token and "mail" not in token  # opaque, not readable as is
    assert decode_token(token, b"o" * 32) is None
    assert decode_token(token[:-2] + ("AA" if token[-2:] != "AA" else "BB"), KEY) is None
    assert decode_token("not base64 !", KEY) is None
    assert decode_token("", KEY) is None


def test_id_filter_accepts_id_eq_terms_joined_by_or_up_to_fifty() -> None:
    assert parse_id_filter("id eq 'A' or ID EQ 'b' or id eq 'a'") == ("a", "b")
    assert len(parse_id_filter(" or ".join(f"id eq '{i}'" for i in range(50)))) == 50
    for refused in (
        "displayName eq 'x'",
        "id eq 'a' and id eq 'b'",
        "id ne 'a'",
        "startswith(id,'a')",
        " or ".join(f"id eq '{i}'" for i in range(51)),
    ):
        with pytest.raises(GraphError) as raised:
            parse_id_filter(refused)
        assert raised.value.status == 400 and raised.value.code == "Request_UnsupportedQuery"


def test_plan_knobs_count_down_and_validate() -> None:
    plan = DeltaPlan()
    plan.expire_tokens(2, status=400)
    plan.expire_tokens(1)
    assert [plan.take_expiry() for _ in range(4)] == [400, 400, 410, None]
    plan.empty_pages(1)
    assert [plan.take_empty_page(), plan.take_empty_page()] == [True, False]
    plan.repeat("ABC", times=2)
    assert plan.take_repeats() == ["abc", "abc"] and plan.take_repeats() == []
    before = plan.now()
    plan.advance_clock(3600)
    assert plan.now() - before >= 3600
    for bad in (
        lambda: plan.expire_tokens(1, status=404),
        lambda: plan.expire_tokens(0),
        lambda: plan.empty_pages(0),
        lambda: plan.repeat("", 1),
        lambda: plan.page_size(0),
        lambda: plan.advance_clock(-1),
    ):
        with pytest.raises(ValueError):
            bad()
    plan.page_size(7)
    plan.clear()
    assert plan.page_size() == 100 and plan.now() - before >= 3600  # the clock stays
