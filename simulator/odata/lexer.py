"""The ``$filter`` tokenizer: GUIDs, date-times, numbers, quoted strings, names, punctuation."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .nodes import FilterError


@dataclass(frozen=True)
class Token:
    kind: str  # "string" "guid" "datetime" "number" "name" "(" ")" "," ":" "/" "end"
    text: str
    position: int
    value: object = None


_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "guid",
        re.compile(
            r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
            r"(?![\w-])"
        ),
    ),
    (
        "datetime",
        re.compile(
            r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
            r"(?:Z|[+-]\d{2}:\d{2})(?![\w:])"
        ),
    ),
    ("number", re.compile(r"-?\d+(?:\.\d+)?(?![\w.])")),
    ("name", re.compile(r"\$?[A-Za-z_][A-Za-z0-9_]*")),
)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        if char in "(),:/":
            tokens.append(Token(char, char, position))
            position += 1
            continue
        if char == "'":
            tokens.append(_string_token(text, position))
            position += len(tokens[-1].text)
            continue
        for kind, pattern in _PATTERNS:
            match = pattern.match(text, position)
            if match:
                tokens.append(Token(kind, match.group(), position))
                position = match.end()
                break
        else:
            raise syntax_error(text, position, f"unexpected character '{char}'")
    tokens.append(Token("end", "", len(text)))
    return tokens


def _string_token(text: str, start: int) -> Token:
    # OData escapes a quote inside a string literal by doubling it: 'O''Brien'.
    chars: list[str] = []
    position = start + 1
    while position < len(text):
        if text[position] == "'":
            if text.startswith("''", position):
                chars.append("'")
                position += 2
                continue
            return Token("string", text[start : position + 1], start, "".join(chars))
        chars.append(text[position])
        position += 1
    raise syntax_error(text, start, "unterminated string literal")


def syntax_error(text: str, position: int, problem: str) -> FilterError:
    return FilterError(f"Invalid filter clause: {problem} at position {position} in '{text}'.")
