"""The app's one error taxonomy: a root, then a fatal and a retriable branch.

Every failure an admin may see is a `SyncError` with a stable code, a plain message and what to
do about it. Adapters translate their SDK's errors into these once, at their boundary
(sync_core/adapters/errors.py); callers only ask which branch an error is on. Fatal: repeating
cannot help until someone fixes the cause. Retriable: the next attempt may well succeed (an
HTTP surface answers 503, the queue retries).
"""

from __future__ import annotations

from typing import ClassVar


class SyncError(Exception):
    """A failure with a stable code, a plain message and what to do about it."""

    retriable: ClassVar[bool] = False

    def __init__(self, code: str, message: str, fix: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fix = fix


class FatalError(SyncError):
    """Trying again cannot help until an admin fixes the cause (the fix says how)."""


class RetriableError(SyncError):
    """Transient: the next attempt may succeed."""

    retriable = True


def internal_error(error: BaseException) -> FatalError:
    """A bug, not a failure of the outside world: the type only (messages may hold data); the
    trace belongs in the log."""
    return FatalError("internal_error", f"Unexpected {type(error).__name__}.")
