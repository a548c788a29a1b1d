"""What the command line writes: its exit codes, stdout (one JSON document with --json), and
its errors, in words on stderr and with --json also as a document on stdout.

Values from Graph and from stored configurations reach both (names, addresses, Microsoft's
messages, a rejected value quoted back), so everything goes through surfaces/terminal.py: text
escaped for a terminal, JSON exact once parsed but inert when shown raw.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from sync_core.errors import ErrorCode
from sync_core.surfaces.terminal import json_safe, terminal_safe

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD = 0, 1, 2, 3
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a command stopped by Ctrl-C


def write_stdout(text: str) -> None:
    """One line (or block) on stdout. A reader that stops early (`employees | head`) is not a
    failure of the command: what is left goes to devnull and the command ends with its own
    outcome (Python's signal docs, "Note on SIGPIPE")."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush goes there too
        os.close(devnull)


def emit(args: argparse.Namespace, document: Any, text: str) -> None:
    if getattr(args, "json", False):
        write_stdout(json_safe(json.dumps(document, ensure_ascii=False)))
    else:
        # Graph's values (names, titles) are printed: a control in one must not act on the
        # terminal (surfaces/terminal.py).
        write_stdout(terminal_safe(text))


def write_error(
    args: argparse.Namespace,
    code: ErrorCode,
    message: str,
    fix: str | None = None,
    *,
    listed: bool = False,
    details: Mapping[str, Any] | None = None,
    beside: Mapping[str, Any] | None = None,
) -> None:
    """An error in words on stderr; with --json also `{"error": {code, message, fix,
    **details}, **beside}` on stdout, as promised. `listed`: the message is already a list of
    problems in words (settings, configuration), shown without the code line."""
    shown = terminal_safe(message)
    print(shown if listed else f"error [{code}]: {shown}", file=sys.stderr)
    if fix:
        print(f"what to do: {terminal_safe(fix)}", file=sys.stderr)
    if getattr(args, "json", False):
        error = {"code": code, "message": message, "fix": fix, **(details or {})}
        write_stdout(json_safe(json.dumps({"error": error, **(beside or {})}, ensure_ascii=False)))
