"""Text longer than one string property holds (64 KiB, 32,767 UTF-16 code units), kept over
several: a configuration, a run report, a connect request's configuration."""

from __future__ import annotations

CHUNK_UNITS = 32_000  # UTF-16 code units, under a string property's 32,767


def utf16_chunks(text: str, units: int) -> list[str]:
    """`text` in pieces of at most `units` UTF-16 code units each (a character outside the
    Basic Multilingual Plane counts two), never splitting a character."""
    chunks: list[str] = []
    start = size = 0
    for index, char in enumerate(text):
        width = 2 if ord(char) > 0xFFFF else 1
        if size + width > units:
            chunks.append(text[start:index])
            start, size = index, 0
        size += width
    chunks.append(text[start:])
    return chunks
