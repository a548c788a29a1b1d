"""The per-tenant sync configuration: which fields, which email rules, which users, clean-up.

Validation reports every problem at once, each with its JSON path and the offending value, so an
admin fixes a configuration in one pass and nothing invalid is ever stored or run: per-field
problems and cross-field ones (duplicate names, the stored size) come out of the same pass.

The CLI and the HTTP API read a configuration document with the same function
(`read_json_document`), so both refuse the same bytes with the same words.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import typing
from collections.abc import Mapping
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from sync_core.core.paths import PathError, parse_path

# The columns store.employee_entity writes on every employee row beside the configured fields.
# A column added there must be added here (tests/unit/test_config.py compares the two), so no
# configured field can overwrite it.
EMPLOYEE_COLUMNS: tuple[str, ...] = (
    "Email", "EmailMissingSince", "Aliases", "UserPrincipalName", "SourceHash", "SyncedAt",
    "RunId",
)  # fmt: skip

# Why each name a field may not take is reserved; compared ignoring case, as Table Storage does
# not (two properties differing in case only would confuse every reader of the table).
_RESERVED_REASONS: dict[str, str] = {
    "id": "the employees API and CLI answer the Entra object id as `id`",
    "email": "the app writes the address its email rules pick (configure them under `email`)",
    "aliases": "the app writes the other addresses it found (configure them under `email`)",
    **{
        name.lower(): "the app writes this bookkeeping column itself"
        for name in EMPLOYEE_COLUMNS
        if name not in ("Email", "Aliases")
    },
    **{
        name.lower(): "Table Storage keeps this name for its own use"
        for name in ("PartitionKey", "RowKey", "Timestamp", "ETag", "odata")
    },
}
RESERVED_FIELD_NAMES = frozenset(_RESERVED_REASONS)

# Limits of a configuration document. The stored form (compact JSON) is split over properties of
# one entity (store.ConfigStore), so the limit is far below the entity's 1 MiB, stated in
# docs/configuration.md and checked here: whatever validates can be stored.
MAX_DOCUMENT_BYTES = 1024 * 1024  # the file or request body as sent, spaces included
MAX_CONFIG_BYTES = 256 * 1024  # the configuration as compact JSON (UTF-8)
MAX_DEPTH = 20  # a configuration nests 7 levels deep; more is a mistake or an attack
MAX_FIELDS = 200  # a table entity holds 252 properties, the bookkeeping included
_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,254}$")

Operator = Literal[
    "equals", "notEquals", "startsWith", "endsWith", "contains", "in", "notIn",
    "regexMatch", "notRegexMatch", "isNull", "isNotNull", "isTrue", "isFalse",
]  # fmt: skip
UNARY_OPERATORS = frozenset({"isNull", "isNotNull", "isTrue", "isFalse"})
LIST_OPERATORS = frozenset({"in", "notIn"})
REGEX_OPERATORS = frozenset({"regexMatch", "notRegexMatch"})


def compile_regex(pattern: str) -> Any:
    """A case-insensitive RE2 pattern: RE2 matches in time linear in the text, so no rule an
    admin writes can stall a run the way a backtracking pattern like `(a+)+$` stalls Python's
    `re`. RE2 has no backreferences or lookaround; such a pattern raises ValueError here, when
    the configuration is validated, never during a run."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the message is in the exception; RE2 would also print it
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(
            f"is not a regular expression RE2 accepts ({reason}); RE2 runs in linear time and "
            "has no backreferences or lookaround"
        ) from None


class _Model(BaseModel):
    # strict: "yes" is not a boolean and "20" is not a number; an admin's typo must fail loudly.
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class FieldMapping(_Model):
    name: str
    source: str

    @field_validator("name")
    @classmethod
    def _name_is_a_table_property(cls, name: str) -> str:
        folded = name.lower()
        if folded in _RESERVED_REASONS:
            raise ValueError(f"is reserved: {_RESERVED_REASONS[folded]}")
        if folded.startswith("odata."):
            raise ValueError("is reserved: Table Storage keeps odata.* names for its metadata")
        if not _FIELD_NAME.match(name):
            raise ValueError(
                "must start with a letter and hold only letters, digits and underscore "
                "(at most 255 characters)"
            )
        return name

    @field_validator("source")
    @classmethod
    def _source_is_a_graph_path(cls, source: str) -> str:
        try:
            return parse_path(source).text
        except PathError as error:
            raise ValueError(str(error)) from None


DEFAULT_FIELDS: tuple[FieldMapping, ...] = tuple(
    FieldMapping(name=name, source=source)
    for name, source in (
        ("FirstName", "givenName"), ("LastName", "surname"), ("DisplayName", "displayName"),
        ("Title", "jobTitle"), ("Department", "department"), ("Company", "companyName"),
        ("Phone", "businessPhones[0]"), ("Mobile", "mobilePhone"), ("Fax", "faxNumber"),
        ("Street", "streetAddress"), ("City", "city"), ("State", "state"),
        ("PostalCode", "postalCode"), ("Country", "country"), ("Office", "officeLocation"),
    )
)  # fmt: skip


class EmailRules(_Model):
    proxy_addresses: bool = True
    other_mails: bool = True
    user_principal_name: bool = False


class ScopeRule(_Model):
    attribute: str
    operator: Operator
    value: Any = Field(default=None, validate_default=True)

    @field_validator("attribute")
    @classmethod
    def _attribute_is_a_graph_path(cls, attribute: str) -> str:
        try:
            return parse_path(attribute).text
        except PathError as error:
            raise ValueError(str(error)) from None

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: Any) -> Any:
        operator = info.data.get("operator")
        if operator is None:
            return value  # the operator's own error is reported instead
        if operator in UNARY_OPERATORS:
            if value is not None:
                raise ValueError(f"operator {operator!r} takes no value")
        elif operator in LIST_OPERATORS:
            if not isinstance(value, list | tuple) or not value or not all(map(_is_scalar, value)):
                raise ValueError(f"operator {operator!r} needs a non-empty list of strings")
        elif operator in REGEX_OPERATORS:
            if not isinstance(value, str):
                raise ValueError(f"operator {operator!r} needs a regular expression string")
            compile_regex(value)  # raises ValueError with RE2's reason
        elif not _is_scalar(value):
            raise ValueError(f"operator {operator!r} needs a string, number or boolean value")
        return value


class ScopeFilter(_Model):
    exclude_disabled: bool = True
    exclude_guests: bool = True
    exclude_unlicensed: bool = False
    odata: str | None = None
    include: tuple[tuple[ScopeRule, ...], ...] = ()
    exclude: tuple[tuple[ScopeRule, ...], ...] = ()

    @field_validator("odata")
    @classmethod
    def _odata_not_blank(cls, odata: str | None) -> str | None:
        if odata is not None and not odata.strip():
            raise ValueError("must be null or a non-empty OData $filter expression")
        if odata is not None and odata.count("'") % 2:
            raise ValueError("has an unbalanced quote")
        return odata

    @field_validator("include", "exclude")
    @classmethod
    def _groups_not_empty(cls, groups: tuple[tuple[ScopeRule, ...], ...]) -> Any:
        for group in groups:
            if not group:
                raise ValueError(
                    "a rule group must hold at least one rule (an empty group would match everyone)"
                )
        return groups


class CleanUp(_Model):
    enabled: bool = False
    max_deletes: int = Field(default=500, ge=0)
    max_delete_percent: float = Field(default=20, ge=0, le=100)
    # How long a stored employee may stay in scope without an address before Clean Up removes
    # it. At least an hour: one read in which a mailbox property was briefly empty must never
    # delete anyone.
    email_missing_grace_hours: float = Field(default=24, ge=1, le=8760)


class TenantConfig(_Model):
    enabled: bool = True
    fields: tuple[FieldMapping, ...] = DEFAULT_FIELDS
    email: EmailRules = EmailRules()
    filter: ScopeFilter = ScopeFilter()
    clean_up: CleanUp = CleanUp()

    # Duplicate names and the number of fields are checked on the document in parse_config,
    # beside every other problem (a model validator would only run once the fields are valid).

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


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


def compact_json(document: Any) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


# --- reading JSON: one reader for the CLI and the HTTP API ---------------------------------------


class DocumentError(ValueError):
    """Bytes that are not one JSON document this app accepts; `too_large` maps to HTTP 413."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.message = message
        self.too_large = too_large


def read_json_document(raw: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> Any:
    """Parse strict JSON: UTF-8 (a leading BOM allowed), no NaN or Infinity (not JSON, and a
    stored NaN would break every later run), no number beyond a float's range, no duplicate key
    (which one would win is a guess), no lone surrogate (Table Storage cannot store it), at most
    MAX_DEPTH levels of nesting."""
    if len(raw) > max_bytes:
        raise DocumentError(
            f"the document is {len(raw)} bytes; at most {max_bytes} are accepted", too_large=True
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text (invalid byte at offset {error.start})") from None
    _check_nesting(text)
    try:
        document = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:  # our hooks, or an integer of more than 4300 digits
        message = str(error)
        if "digits" in message:
            message = "a number has too many digits"
        raise DocumentError(message) from None
    _check_strings(document)
    return document


def _check_nesting(text: str) -> None:
    # Counted before parsing: json's C scanner recurses once per level, and the interpreter's
    # recursion limit is the only other bound. Brackets inside strings are skipped.
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise DocumentError(f"the document nests deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is out of range")
    return number


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {json.dumps(key, ensure_ascii=False)[:80]}")
        document[key] = value
    return document


def _check_strings(document: Any) -> None:
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise DocumentError(
                    "a string holds a lone surrogate (\\ud800-\\udfff without its pair), which "
                    "cannot be stored"
                ) from None


# --- cross-field problems ------------------------------------------------------------------------


def _cross_field_problems(document: dict[str, Any]) -> list[tuple[str, str, Any]]:
    problems: list[tuple[str, str, Any]] = []
    fields = document.get("fields")
    if isinstance(fields, list):
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
        if len(fields) > MAX_FIELDS:
            problems.append(
                (
                    "$.fields",
                    f"holds {len(fields)} fields; at most {MAX_FIELDS} fit in a table entity "
                    "beside the bookkeeping",
                    None,
                )
            )
    size = len(compact_json(document).encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        problems.append(
            (
                "$",
                f"the configuration is {size} bytes as compact JSON; at most {MAX_CONFIG_BYTES} "
                "(256 KiB) can be stored: shorten long `in` lists (startsWith or regexMatch "
                "rules match many values at once)",
                None,
            )
        )
    return problems


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


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


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
