"""The writer's cheap size bound (employee_rows.operation_bound): never under the exact size
on the wire, whatever the text, so a transaction sized on bounds always fits; and tight enough
that ordinary rows never need the exact measure (the SDK serialises each row once)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sync_core.adapters.tables.employee_rows import (
    MAX_BATCH_BYTES,
    MAX_BATCH_OPERATIONS,
    employee_entity,
    operation_bound,
    operation_bytes,
    storable_bound,
)
from tests.unit.table_rows import NOW, TENANT, employee, wire_body

TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=300)  # fmt: skip
VALUES = st.one_of(TEXT, st.integers(-(2**31), 2**31 - 1), st.booleans(), st.floats(),
                   st.datetimes(timezones=st.just(UTC)))  # fmt: skip


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,40}", fullmatch=True), VALUES,
                       max_size=12), TEXT)  # fmt: skip
def test_the_bound_is_never_under_the_exact_size(properties, row_key):
    entity = {"PartitionKey": TENANT, "RowKey": row_key or "r", **properties}
    assert operation_bound(entity) >= operation_bytes(entity)


@given(st.lists(TEXT, min_size=1, max_size=5))
def test_a_transaction_sized_on_bounds_fits_the_body_the_sdk_sends(texts):
    entities = [
        employee_entity(TENANT, employee(id=f"{i:08d}-0000-4000-8000-000000000000",
                                         fields=tuple((f"F{n}", t) for n, t in enumerate(texts))),
                        "run", NOW)
        for i in range(5)
    ]  # fmt: skip
    assert wire_body(entities) <= sum(operation_bound(e) for e in entities) + 1_000


def test_an_ordinary_row_is_sized_on_its_bound_and_a_full_batch_of_them_fits():
    entity = employee_entity(TENANT, employee(fields=(("Title", "Engineer"),
                                                      ("Department", "Research & Development"))),
                             "20261130T120000000Z-abcdef", datetime(2026, 11, 30, tzinfo=UTC))  # fmt: skip
    size, exact = storable_bound(entity)
    assert not exact and size >= operation_bytes(entity)
    assert size * MAX_BATCH_OPERATIONS < MAX_BATCH_BYTES  # never measured exactly


def test_a_row_whose_bound_is_over_a_transaction_is_measured_exactly_and_stays_storable():
    fields = tuple((f"F{n}", "a" * 32_000) for n in range(12))  # 384 KB, bound over 4 MiB
    entity = employee_entity(TENANT, employee(fields=fields), "run", NOW)
    size, exact = storable_bound(entity)
    assert exact and size == operation_bytes(entity)
