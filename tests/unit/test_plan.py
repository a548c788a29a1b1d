"""The diff against stored hashes and the deletion guard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sync_core.core.config import CleanUp
from sync_core.core.mapping import Employee
from sync_core.core.plan import expired_without_address, guard_deletions, plan_writes, stale_ids


def employee(employee_id: str, digest: str) -> Employee:
    return Employee(
        employee_id, f"{employee_id}@contoso.com", f"{employee_id}@contoso.com", (), (), digest
    )


@pytest.mark.parametrize(
    ("incoming", "stored", "creates", "updates", "unchanged"),
    [
        ([], {}, [], [], []),
        ([("a", "h1")], {}, ["a"], [], []),
        ([("a", "h1")], {"a": "h1"}, [], [], ["a"]),
        ([("a", "h2")], {"a": "h1"}, [], ["a"], []),
        ([("a", "h1")], {"a": ""}, [], ["a"], []),  # a row without a hash is rewritten once
        ([("a", "h1"), ("b", "h2"), ("c", "h3")], {"a": "h1", "b": "x", "z": "h9"},
         ["c"], ["b"], ["a"]),
    ],
)  # fmt: skip
def test_plan_writes(incoming, stored, creates, updates, unchanged):
    plan = plan_writes([employee(i, h) for i, h in incoming], stored)
    assert [e.id for e in plan.creates] == creates
    assert [e.id for e in plan.updates] == updates
    assert list(plan.unchanged) == unchanged


def test_stale_ids_are_the_stored_ones_not_seen_sorted():
    assert stale_ids(["c", "a", "b", "d"], {"b"}) == ("a", "c", "d")
    assert stale_ids([], {"x"}) == ()


ON = CleanUp(enabled=True, max_deletes=5, max_delete_percent=20)


@pytest.mark.parametrize(
    ("stale", "stored", "clean_up", "allow", "deleted", "held"),
    [
        (0, 100, ON, False, 0, 0),
        (3, 100, CleanUp(enabled=False), False, 0, 0),  # off: keep, never "held"
        (5, 100, ON, False, 5, 0),  # at the count limit
        (6, 100, ON, False, 0, 6),  # over the count limit: none deleted
        (6, 100, ON, True, 6, 0),  # --allow-deletes
        (3, 10, ON, False, 0, 3),  # 30% > 20%
        (2, 10, ON, False, 2, 0),  # exactly 20%
        (1, 0, ON, False, 0, 1),  # nothing stored counted: 100%
        (1, 5, CleanUp(enabled=True, max_deletes=0, max_delete_percent=100), False, 0, 1),
        (400, 1000, CleanUp(enabled=True), False, 0, 400),  # 40% with defaults
        (150, 1000, CleanUp(enabled=True), False, 150, 0),
    ],
)  # fmt: skip
def test_guard(stale, stored, clean_up, allow, deleted, held):
    ids = tuple(f"id{i:04d}" for i in range(stale))
    decision = guard_deletions(ids, stored, clean_up, allow_deletes=allow)
    assert len(decision.delete) == deleted
    assert decision.held == held
    if held:
        assert "held" in decision.reason and "--allow-deletes" in decision.reason


def test_guard_explains_both_limits():
    decision = guard_deletions(tuple("abcdefg"), 10, ON, allow_deletes=False)
    assert "maxDeletes (5)" in decision.reason
    assert "70.0%" in decision.reason and "maxDeletePercent (20%)" in decision.reason


NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("missing_since", "grace_hours", "expired"),
    [
        pytest.param({}, 24, (), id="none missing"),
        pytest.param({"a": NOW - timedelta(hours=23, minutes=59)}, 24, (), id="within grace"),
        pytest.param({"a": NOW - timedelta(hours=24)}, 24, ("a",), id="exactly the grace"),
        pytest.param(
            {"b": NOW - timedelta(days=3), "a": NOW - timedelta(hours=2), "c": NOW},
            1, ("a", "b"), id="several, sorted, one just marked",
        ),
    ],
)  # fmt: skip
def test_expired_without_address(missing_since, grace_hours, expired):
    assert expired_without_address(missing_since, NOW, timedelta(hours=grace_hours)) == expired
