"""Field sources that read the user's manager: `manager.<path>` (any path a field can read of
the user, read of the manager instead) and `manager.email` (the manager's address by the same
email rules as an employee's). Pure; config.py validates sources with it."""

from __future__ import annotations

from dataclasses import dataclass

from sync_core.core.paths import AttributePath, PathError, parse_path

MANAGER = "manager"
_PREFIX = f"{MANAGER}."
EMAIL = "email"  # manager.email: the address, not a Graph property


@dataclass(frozen=True)
class ManagerSource:
    """A parsed manager source; `path` None means the manager's address (`manager.email`)."""

    path: AttributePath | None

    @property
    def text(self) -> str:
        return _PREFIX + (EMAIL if self.path is None else self.path.text)


def is_manager_source(text: str) -> bool:
    return isinstance(text, str) and text.strip().lower().startswith(_PREFIX)


def parse_manager_source(text: str) -> ManagerSource:
    """`manager.<path>` or `manager.email`; PathError saying what is wrong otherwise."""
    rest = text.strip()[len(_PREFIX) :]
    if rest.lower() == EMAIL:
        return ManagerSource(None)
    try:
        return ManagerSource(parse_path(rest))
    except PathError as error:
        raise PathError(
            f"after 'manager.' expects 'email' or a user property path: {error}"
        ) from None
