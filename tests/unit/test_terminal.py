"""The CLI's text output shows terminal control characters as escapes (surfaces/terminal.py)."""

from __future__ import annotations

import pytest

from sync_core.surfaces.terminal import terminal_safe


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Contoso Ltd", "Contoso Ltd"),
        ("Zoë Björk", "Zoë Björk"),
        ("a\x1b[2Jb", "a\\x1b[2Jb"),  # ESC: clear the screen
        ("a\x1b]0;title\x07b", "a\\x1b]0;title\\x07b"),  # window title, BEL
        ("real\rfake", "real\\x0dfake"),  # CR: overwrite the line
        ("x\x9by", "x\\x9by"),  # C1 CSI
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("\u2066iso\u2069", "\\u2066iso\\u2069"),  # isolates
        ("two\nlines\ttab", "two\nlines\ttab"),  # layout stays
        ("bad\ud800 nul\x00", "bad\ufffd nul"),  # cleaned like user values
    ],
)
def test_control_characters_are_shown_not_obeyed(raw, shown):
    assert terminal_safe(raw) == shown
