"""What Table Storage accepts, counted the way Table Storage counts it.

Pure functions: they clean and cut values so one user's data never fails a batch, and say why an
entity cannot be stored at all. Every cut is deterministic (same input, same output), so the
source hash computed from the cut values is stable and an unchanged user stays `unchanged`.

Sources: "Understanding the Table service data model" (learn.microsoft.com,
rest/api/storageservices): an entity at most 1 MiB and 252 properties, a String up to 64 KiB of
UTF-16, keys up to 1 KiB without `/ \\ # ?` or control characters; "Performing entity group
transactions": at most 100 operations and 4 MiB of payload. The entity size formula is the one
the Azure Storage team published ("How the size of an entity is calculated"): 4 bytes + 2 per key
character, and per property 8 bytes + 2 per name character + the value (String: 2 per UTF-16
unit + 4).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

MAX_STRING_UNITS = 32_767  # 64 KiB of UTF-16, counted in code units (an emoji is two)
MAX_ENTITY_BYTES = 1024 * 1024
MAX_KEY_UNITS = 512  # PartitionKey / RowKey: 1 KiB of UTF-16
MAX_PROPERTIES = 255  # 252 custom + PartitionKey, RowKey, Timestamp
_FORBIDDEN_IN_KEYS = re.compile(r"[/\\#?\x00-\x1f\x7f-\x9f]")
_REPLACEMENT = "\ufffd"


def utf16_units(text: str) -> int:
    """Length as Table Storage counts it: UTF-16 code units, not Python characters."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def clean_text(text: str) -> str:
    """`text` without NUL, with every lone surrogate replaced by U+FFFD.

    Python reads `"\\ud800"` in Graph JSON as a lone surrogate, which no UTF encoding (and no
    service) accepts; NUL is refused by the service. Both are data errors upstream: the rest of
    the value is kept. A surrogate pair that happens to be split in two Python characters is
    joined back into the character it encodes.
    """
    if text.isascii():
        return text.replace("\x00", "") if "\x00" in text else text
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text.replace("\x00", "")


def cut_text(text: str, max_units: int = MAX_STRING_UNITS) -> str:
    """The longest prefix of `text` within `max_units` UTF-16 units, never half a pair."""
    if utf16_units(text) <= max_units:
        return text
    encoded = text.encode("utf-16-le", "surrogatepass")[: max_units * 2]
    last = int.from_bytes(encoded[-2:], "little") if encoded else 0
    if 0xD800 <= last <= 0xDBFF:  # a high surrogate whose partner was cut off
        encoded = encoded[:-2]
    return encoded.decode("utf-16-le", "surrogatepass")


def fitted_text(text: str, max_units: int = MAX_STRING_UNITS) -> str:
    """A text property as stored: cleaned, then cut to fit."""
    return cut_text(clean_text(text), max_units)


def fitted_json(value: list[Any] | dict[str, Any], max_units: int = MAX_STRING_UNITS) -> str:
    """JSON text of a list or object within `max_units`, and still valid JSON: whole trailing
    elements (or keys, in sorted order) are dropped, the text itself is never cut.

    The layout is `json.dumps(value, ensure_ascii=False, sort_keys=True)`, element by element,
    so a value that fits is exactly what it always was (stored hashes stay valid).
    """
    if isinstance(value, dict):
        parts = [
            clean_text(json.dumps(key, ensure_ascii=False)) + ": " + _element(item)
            for key, item in sorted(value.items())
        ]
        opening, closing = "{", "}"
    else:
        parts = [_element(item) for item in value]
        opening, closing = "[", "]"
    budget = max_units - 2
    kept: list[str] = []
    used = 0
    for part in parts:
        cost = utf16_units(part) + (2 if kept else 0)  # ", " between elements
        if used + cost > budget:
            break
        kept.append(part)
        used += cost
    return opening + ", ".join(kept) + closing


def _element(item: Any) -> str:
    # ensure_ascii=False keeps text readable; NUL is escaped by json itself, lone surrogates
    # come out raw and are replaced like in any other value.
    return clean_text(json.dumps(item, ensure_ascii=False, sort_keys=True))


def key_problem(name: str, key: str) -> str | None:
    """Why `key` cannot be a PartitionKey / RowKey, or None."""
    if not key:
        return f"{name} is empty"
    units, clean = _measure(key)
    if units > MAX_KEY_UNITS:
        return f"{name} is longer than 1 KiB"
    if _FORBIDDEN_IN_KEYS.search(key):
        return f"{name} holds a character Table Storage refuses in keys (/ \\ # ? or control)"
    if not clean:
        return f"{name} holds a lone surrogate"
    return None


def entity_bytes(entity: Mapping[str, Any]) -> int:
    """The entity's size by Table Storage's formula (its 1 MiB limit counts this)."""
    size = 4
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            size += 2 * utf16_units(str(value))
            continue
        size += 8 + 2 * utf16_units(name) + _value_bytes(value)
    return size


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return 2 * utf16_units(value) + 4
    if isinstance(value, bool):
        return 1
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float | datetime):
        return 8
    if isinstance(value, bytes):
        return len(value) + 4
    return 2 * utf16_units(str(value)) + 4


def _measure(text: str) -> tuple[int, bool]:
    """UTF-16 units, and whether the text is free of NUL and lone surrogates: one pass each."""
    if text.isascii():
        return len(text), "\x00" not in text
    try:
        units = len(text.encode("utf-16-le")) // 2  # strict: any surrogate code point fails
    except UnicodeEncodeError:
        return utf16_units(text), False
    return units, "\x00" not in text


def entity_problem(entity: Mapping[str, Any]) -> str | None:
    """Why Table Storage would refuse `entity`, in words for the report, or None."""
    for name in ("PartitionKey", "RowKey"):
        problem = key_problem(name, str(entity.get(name, "")))
        if problem:
            return problem
    if len(entity) > MAX_PROPERTIES - 1:  # Timestamp is added by the service
        return f"{len(entity)} properties, more than Table Storage allows"
    size = 4 + 2 * (len(str(entity["PartitionKey"])) + len(str(entity["RowKey"])))
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            continue
        if isinstance(value, str):
            units, clean = _measure(value)
            if units > MAX_STRING_UNITS:
                return f"{name} is longer than 32,767 UTF-16 units"
            if not clean:
                return f"{name} holds NUL or a lone surrogate"
            size += 8 + 2 * utf16_units(name) + 2 * units + 4
        else:
            size += 8 + 2 * utf16_units(name) + _value_bytes(value)
    if size > MAX_ENTITY_BYTES:
        return f"the entity needs {size:,} bytes, more than Table Storage's 1 MiB"
    return None
