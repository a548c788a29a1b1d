"""Text for a terminal: values from the directory, shown and never acted on."""

from __future__ import annotations

import unicodedata

# Bidirectional overrides and isolates reorder what follows them on screen (Trojan Source,
# CVE-2021-42574); with the C0/C1 controls (ESC sequences clear or retitle a terminal) they
# come from directory values an admin does not control, so the text shows them escaped.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def terminal_safe(line: str) -> str:
    """`line` with every control character shown as its escape (`\\x1b`), nothing acted on."""
    if line.isprintable():
        return line
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch) == "Cc" or ch in _BIDI
        else ch
        for ch in line
    )


def json_safe(text: str) -> str:
    """JSON text with the controls json.dumps(ensure_ascii=False) leaves raw (C1, DEL, bidi
    overrides) written as \\u escapes: the same document once parsed, inert on a terminal.
    They can only stand inside JSON strings, where an escape means the same character."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) == "Cc" or ch in _BIDI else ch
        for ch in text
    )
