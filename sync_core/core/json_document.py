"""The one strict JSON reader the CLI and the HTTP API share: a configuration file and a request
body are refused for the same reasons, in the same words."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DOCUMENT_BYTES = 1024 * 1024  # the file or request body as sent, spaces included
MAX_DEPTH = 20  # a configuration nests 7 levels deep; more is a mistake or an attack


def compact_json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


class DocumentError(ValueError):
    """Bytes that are not one JSON document this app accepts; `too_large` maps to HTTP 413."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def read_json_document(raw: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse strict JSON: UTF-8 (a leading BOM allowed), no NaN or Infinity (not JSON, and a
    stored NaN would break every later run), no number beyond a float's range, no duplicate key
    (which one would win is a guess), no lone surrogate (Table Storage cannot store it), at most
    MAX_DEPTH levels of nesting."""
    if len(raw) > max_bytes:
        raise DocumentError(
            f"the document is {len(raw)} bytes; at most {max_bytes} are accepted", too_large=True
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text (invalid byte at offset {error.start})") from None
    _check_nesting(text)
    try:
        document = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # our hooks, or an integer of more than 4300 digits
        message = str(error)
        if "digits" in message:
            message = "a number has too many digits"
        raise DocumentError(message) from None
    _check_strings(document)
    return document


def _check_nesting(text: str) -> None:
    # Counted before parsing: json's C scanner recurses once per level, and the interpreter's
    # recursion limit is the only other bound. Brackets inside strings are skipped.
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {json.dumps(key, ensure_ascii=False)[:80]}")
        document[key] = value
    return document


def _check_strings(document: Any) -> None:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise DocumentError(
                    "a string holds a lone surrogate (\\ud800-\\udfff without its pair), which "
                    "cannot be stored"
                ) from None
