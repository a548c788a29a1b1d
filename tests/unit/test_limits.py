"""Table Storage's limits, counted as it counts them: cleaning and cutting values, and whether a
row fits at all. Property tests for the pure cutting functions; the wire size checked against the
body the SDK itself builds for a transaction."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync_core.adapters.tables.employee_rows import (
    FENCE_OPERATION_BYTES,
    MAX_BATCH_BYTES,
    employee_entity,
    operation_bytes,
    storable_size,
)
from sync_core.adapters.tables.write_fence import fence_row
from sync_core.core.limits import (
    MAX_ENTITY_BYTES,
    MAX_STRING_UNITS,
    clean_text,
    cut_text,
    entity_bytes,
    entity_problem,
    fitted_json,
    fitted_text,
    utf16_units,
)
from sync_core.core.ports import Lease, UnstorableEmployee
from tests.unit.table_rows import FENCE_ETAG, NOW, TENANT, employee, wire_body

# Any code point, lone surrogates and NUL included: what json.loads can hand us from Graph.
ANY_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(),  # hypothesis leaves surrogates out of characters(): added below
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, categories=["Cs"]),
        st.sampled_from(["\x00", "😀", "李"]),
    ),
    max_size=200,
)
JSON_ITEMS = st.lists(
    st.one_of(ANY_TEXT, st.integers(), st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3)),
    max_size=12,
)


def test_units_are_utf16_code_units():
    assert utf16_units("abc") == 3
    assert utf16_units("李") == 1
    assert utf16_units("😀") == 2  # non-BMP: a surrogate pair


@settings(derandomize=True, database=None)
@given(ANY_TEXT)
def test_clean_text_leaves_something_every_encoder_accepts(text):
    cleaned = clean_text(text)
    cleaned.encode("utf-8")  # no lone surrogate left
    assert "\x00" not in cleaned
    assert clean_text(cleaned) == cleaned


@settings(max_examples=200, derandomize=True, database=None)
@given(ANY_TEXT, st.integers(min_value=0, max_value=250))
def test_cut_text_is_the_longest_fitting_prefix_and_never_splits_a_pair(text, limit):
    text = clean_text(text)
    cut = cut_text(text, limit)
    assert text.startswith(cut) and utf16_units(cut) <= limit
    if cut != text:
        # One more character would not fit (a pair counts two).
        assert utf16_units(text[: len(cut) + 1]) > limit
    assert cut_text(text, limit) == cut  # the same cut every run


def test_an_emoji_at_the_boundary_is_dropped_whole():
    text = "a" * (MAX_STRING_UNITS - 1) + "😀"
    assert fitted_text(text) == "a" * (MAX_STRING_UNITS - 1)
    assert fitted_text("😀" * 16_383 + "b") == "😀" * 16_383 + "b"  # exactly 32,767 units


@settings(max_examples=200, derandomize=True, database=None)
@given(st.one_of(JSON_ITEMS, st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=8)),
       st.integers(min_value=2, max_value=400))  # fmt: skip
def test_fitted_json_stays_valid_json_of_leading_elements(value, limit):
    text = fitted_json(value, limit)
    assert utf16_units(text) <= limit
    assert clean_text(text) == text
    parsed = json.loads(text)
    assert type(parsed) is type(value)
    assert len(parsed) <= len(value)
    assert fitted_json(value, limit) == text


def test_fitted_json_is_the_usual_layout_when_it_fits():
    # Rows stored before the limits existed keep their hash: same text as json.dumps.
    value = {"b": ["李", 1], "a": "x"}
    assert fitted_json(value) == json.dumps(value, ensure_ascii=False, sort_keys=True)


def test_aliases_are_bounded_and_stay_a_json_list():
    aliases = tuple(f"alias{i:05d}@{'x' * 40}.contoso.com" for i in range(2000))
    entity = employee_entity(TENANT, employee(aliases=aliases), "run", NOW)
    stored = json.loads(entity["Aliases"])
    assert 0 < len(stored) < len(aliases) and stored == list(aliases[: len(stored)])
    assert utf16_units(entity["Aliases"]) <= MAX_STRING_UNITS
    assert entity_problem(entity) is None


def test_a_row_past_one_mib_is_refused_with_its_reason():
    fields = tuple((f"Field{i}", "李" * MAX_STRING_UNITS) for i in range(17))
    entity = employee_entity(TENANT, employee(fields=fields), "run", NOW)
    assert entity_bytes(entity) > MAX_ENTITY_BYTES
    with pytest.raises(UnstorableEmployee, match="1 MiB"):
        storable_size(entity)
    fits = employee_entity(TENANT, employee(fields=fields[:15]), "run", NOW)
    assert storable_size(fits) > 2_000_000  # a third of it in escapes, still one row


@pytest.mark.parametrize(
    ("user_id", "reason"),
    [("a/b", "RowKey holds a character"), ("x" * 600, "RowKey is longer"), ("", "empty")],
)
def test_a_row_key_table_storage_refuses_is_reported(user_id, reason):
    entity = employee_entity(TENANT, employee(id=user_id), "run", NOW)
    with pytest.raises(UnstorableEmployee, match=reason):
        storable_size(entity)


def test_an_address_too_long_is_refused_not_cut():
    address = "a" * 33_000 + "@contoso.com"
    entity = employee_entity(TENANT, employee(email=address), "run", NOW)
    with pytest.raises(UnstorableEmployee, match="Email is longer"):
        storable_size(entity)


@pytest.mark.parametrize("text", ["李" * 5_000, "😀" * 2_500, "plain ascii " * 800, 'é\x7f"'])
def test_measured_sizes_cover_the_body_the_sdk_sends(text):
    entities = [
        employee_entity(TENANT, employee(id=f"{i:08d}-0000-4000-8000-000000000000",
                                         fields=(("Title", text), ("City", text))), "run", NOW)
        for i in range(20)
    ]  # fmt: skip
    measured = sum(operation_bytes(e) for e in entities)
    real = wire_body(entities)
    # Never under (a batch we think fits must fit), and close (batches stay full). The batch's
    # own envelope (two boundaries, a few headers) is well under 1 KB.
    assert real <= measured + 1_000
    lease = Lease(TENANT, "20261130T135324804Z-b490e8", NOW, FENCE_ETAG, "f" * 32)
    fence = fence_row(TENANT, 3, lease)
    assert wire_body(entities, fence) - real <= FENCE_OPERATION_BYTES
    assert measured - real < 400 * len(entities)
    per_char = {"李": 6, "😀": 12}.get(text[0])
    if per_char:  # the escapes the issue names: \\uXXXX per UTF-16 unit
        assert real > 2 * len(text) * per_char * len(entities)


def test_a_full_batch_of_cjk_rows_stays_under_four_mib_on_the_wire():
    text = "李" * 30_000
    entities, used = [], 0
    for i in range(100):
        entity = employee_entity(TENANT, employee(id=f"{i:08d}-0000-4000-8000-000000000000",
                                                  fields=(("Title", text),)), "run", NOW)  # fmt: skip
        size = storable_size(entity)
        if used + size > MAX_BATCH_BYTES - FENCE_OPERATION_BYTES:
            break
        entities.append(entity)
        used += size
    assert 15 < len(entities) < 100  # the byte budget, not the count, closed the batch
    assert wire_body(entities) + FENCE_OPERATION_BYTES < 4 * 1024 * 1024
