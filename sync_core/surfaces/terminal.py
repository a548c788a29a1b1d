"""Text for a terminal: values from Graph (names, addresses, Microsoft's messages) may hold
control characters that a terminal obeys: ESC starts a control sequence (colours, cursor moves,
a rewritten title), CR returns to the line's start and overwrites what was printed, BEL rings,
and Unicode's bidirectional overrides reorder what follows (Trojan Source, CVE-2021-42574).
The CLI's text output shows each as a visible escape; --json output is exact (JSON escapes the
C0 controls itself)."""

from __future__ import annotations

from sync_core.core.limits import clean_text

# Unicode's bidirectional controls (UAX #9): embeddings, overrides, isolates and the marks.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def terminal_safe(text: str) -> str:
    """`text` with every control character but newline and tab shown as an escape."""
    text = clean_text(text)  # lone surrogates cannot be written to a UTF-8 terminal at all
    if text.isascii() and text.isprintable():
        return text
    return "".join(_shown(c) for c in text)


def _shown(char: str) -> str:
    if char in "\n\t":
        return char
    code = ord(char)
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    if char in _BIDI:
        return f"\\u{code:04x}"
    return char


def json_safe(text: str) -> str:
    """JSON text with the controls json.dumps(ensure_ascii=False) leaves raw (C1, DEL, bidi
    controls) written as \\u escapes: the same document once parsed, inert on a terminal.
    They can only stand inside JSON strings, where an escape means the same character."""
    if text.isascii() and text.isprintable():
        return text
    return "".join(f"\\u{ord(c):04x}" if _shown(c) != c else c for c in text)
