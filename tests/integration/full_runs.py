"""For test modules whose rules are those of a full run (the /users listing, its page rules, the
grace period counted over whole reads): their `sync` commands run with `--full`, as they did
before delta runs existed. Delta runs have their own tests (test_delta.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def full_runs(cli: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: str) -> Any:
        if args and args[0] == "sync" and "--full" not in args:
            args = (*args, "--full")
        return cli(*args)

    return run
