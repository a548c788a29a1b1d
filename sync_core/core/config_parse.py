"""Reading a tenant configuration: every problem at once, each with its JSON path, the
offending value and what is allowed (the schema's problems and the cross-field ones together)."""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from sync_core.core.config import MAX_CONFIG_BYTES, MAX_FIELDS, MAX_GROUPS, TenantConfig
from sync_core.core.json_document import DocumentError, compact_json, read_json_document


class ConfigError(Exception):
    """Every problem of a configuration, each as (JSON path, message, offending value)."""

    def __init__(self, problems: list[tuple[str, str, Any]]):
        self.problems = problems
        super().__init__(
            "invalid configuration:\n"
            + "\n".join(
                f"  - {path}: {message}"
                + ("" if value is None else f" (got {json.dumps(value, ensure_ascii=False)})")
                for path, message, value in problems
            )
        )

    def to_json(self) -> list[dict[str, Any]]:
        return [{"path": p, "message": m, "value": v} for p, m, v in self.problems]


def parse_config(document: Any) -> TenantConfig:
    """Validate a configuration document (already parsed JSON); raise ConfigError with every
    problem: the schema's and the cross-field ones together."""
    if not isinstance(document, dict):
        raise ConfigError([("$", "the configuration must be a JSON object", _jsonable(document))])
    problems = _cross_field_problems(document)
    config: TenantConfig | None = None
    try:
        # by_name=False: one spelling per key, the documented camelCase (`clean_up` is unknown).
        config = TenantConfig.model_validate(_listify(document), by_name=False)
    except ValidationError as error:
        problems = [
            (_json_path(e["loc"]), _message(e), _jsonable(e.get("input"))) for e in error.errors()
        ] + problems
    if problems or config is None:
        raise ConfigError(problems)
    return config


def parse_config_text(text: str) -> TenantConfig:
    return parse_config_bytes(text.encode("utf-8", "surrogatepass"))


def parse_config_bytes(raw: bytes) -> TenantConfig:
    """A configuration file or request body, read as both the CLI and HTTP read it."""
    try:
        document = read_json_document(raw)
    except DocumentError as error:
        raise ConfigError([("$", error.message, None)]) from None
    return parse_config(document)


def stored_form(config: TenantConfig) -> str:
    """The text stored for a configuration, the text the size limit is measured on."""
    return compact_json(config.to_json())


# --- cross-field problems ------------------------------------------------------------------------


def _cross_field_problems(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    fields = document.get("fields")
    problems = _field_list_problems(fields) if isinstance(fields, list) else []
    return problems + _group_count_problems(document) + _size_problems(document)


def _field_list_problems(fields: list[Any]) -> list[tuple[str, str, Any]]:
    """Names used twice (ignoring case), and a list empty or too long for a table entity."""
    problems = _duplicate_names(fields)
    if not fields:
        # An empty list would make the next run rewrite every row down to its address.
        problems.append(
            (
                "$.fields",
                "holds no field: the next run would rewrite every employee's row down to its "
                "address; list at least one field, or leave `fields` out for the 15 defaults",
                None,
            )
        )
    if len(fields) > MAX_FIELDS:
        problems.append(
            (
                "$.fields",
                f"holds {len(fields)} fields; at most {MAX_FIELDS} fit in a table entity "
                "beside the bookkeeping",
                None,
            )
        )
    return problems


def _duplicate_names(fields: list[Any]) -> list[tuple[str, str, Any]]:
    problems: list[tuple[str, str, Any]] = []
    first: dict[str, int] = {}
    for index, field in enumerate(fields):
        name = field.get("name") if isinstance(field, dict) else None
        if not isinstance(name, str):
            continue
        if name.lower() in first:
            problems.append(
                (
                    f"$.fields[{index}].name",
                    f"is used twice: $.fields[{first[name.lower()]}].name has the same name "
                    "(names ignore case)",
                    name,
                )
            )
        else:
            first[name.lower()] = index
    return problems


def _size_problems(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    size = len(compact_json(document).encode("utf-8", "surrogatepass"))
    if size <= MAX_CONFIG_BYTES:
        return []
    return [
        (
            "$",
            f"the configuration is {size} bytes as compact JSON; at most {MAX_CONFIG_BYTES} "
            "(256 KiB) can be stored: shorten long `in` lists (startsWith or regexMatch "
            "rules match many values at once)",
            None,
        )
    ]


def _group_count_problems(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """At most MAX_GROUPS groups in all (filter.groups and memberOf fields, each counted once):
    a delta tick follows them with one group delta request per 50 ids (core/group_sync.py)."""
    scope_filter = document.get("filter")
    scope = scope_filter.get("groups") if isinstance(scope_filter, dict) else None
    lists = [scope.get(k) for k in ("include", "exclude")] if isinstance(scope, dict) else []
    fields = document.get("fields")
    in_fields = (
        [f.get("groups") for f in fields if isinstance(f, dict)] if isinstance(fields, list) else []
    )
    every = [ids for ids in (*lists, *in_fields) if isinstance(ids, list)]
    named = {g.lower() for ids in every for g in ids if isinstance(g, str)}
    if len(named) <= MAX_GROUPS or any(len(ids) > MAX_GROUPS for ids in every):
        return []  # (a list too long on its own says so itself)
    path = (
        "$.fields" if any(isinstance(ids, list) and ids for ids in in_fields) else "$.filter.groups"
    )
    return [
        (
            path,
            f"the configuration names {len(named)} groups in all (filter.groups and memberOf "
            f"fields together); at most {MAX_GROUPS}: a delta run follows them, nested ones "
            "included, with one request per 50",
            None,
        )
    ]


def _listify(document: Any) -> Any:
    # Strict mode takes tuples from Python lists only when asked to; JSON arrays are lists.
    if isinstance(document, list):
        return tuple(_listify(item) for item in document)
    if isinstance(document, dict):
        return {key: _listify(value) for key, value in document.items()}
    return document


def _json_path(location: tuple[Any, ...]) -> str:
    path = "$"
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in ("function-after[_value_fits_operator(), any]",):
            continue
        else:
            path += f".{part}"
    return path


def _message(error: Mapping[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"])
    if error["type"] == "missing":
        return "is required"
    if error["type"] == "literal_error":
        return _unknown_name(error)
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _unknown_name(error: Mapping[str, Any]) -> str:
    """A value outside a fixed list (an operator): the closest allowed one, as unknown keys get."""
    allowed = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
    given = error.get("input")
    folded = {name.lower(): name for name in allowed}
    guess = (
        difflib.get_close_matches(given.lower(), list(folded), n=1, cutoff=0.6)
        if isinstance(given, str)
        else []
    )
    hint = f"did you mean {folded[guess[0]]!r}? " if guess else ""
    return f"is not one of the allowed values; {hint}allowed: {', '.join(allowed)}"


def _unknown_key(location: tuple[Any, ...]) -> str:
    """'unknown key', with the closest valid name and the keys allowed at that place."""
    key = str(location[-1])
    allowed = _allowed_keys(location[:-1])
    if not allowed:
        return "unknown key"
    # Compared without case and underscores: `clean_up`, `Cleanup` and `cleanUP` mean cleanUp.
    folded = {name.lower(): name for name in allowed}
    guess = difflib.get_close_matches(key.replace("_", "").lower(), list(folded), n=1, cutoff=0.6)
    hint = f"did you mean {folded[guess[0]]!r}? " if guess else ""
    return f"unknown key; {hint}allowed here: {', '.join(allowed)}"


def _allowed_keys(location: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] | None = TenantConfig
    for part in location:
        if isinstance(part, int) or model is None:
            continue
        field = next((f for name, f in model.model_fields.items() if part in (f.alias, name)), None)
        if field is None:
            return []
        model = _model_in(field.annotation)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        model = _model_in(argument)
        if model is not None:
            return model
    return None
