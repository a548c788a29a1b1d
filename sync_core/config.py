"""The per-tenant sync configuration: which fields, which email rules, which users, clean-up.

Validation reports every problem at once, each with its JSON path and the offending value, so an
admin fixes a configuration in one pass and nothing invalid is ever stored or run.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from .paths import PathError, parse_path

# Properties the store writes itself, and the names Table Storage keeps for its own use.
RESERVED_FIELD_NAMES = frozenset(
    name.lower()
    for name in (
        "Email", "EmailMissingSince", "Aliases", "UserPrincipalName", "SourceHash", "SyncedAt",
        "RunId",
        "PartitionKey", "RowKey", "Timestamp", "ETag", "odata",
    )
)  # fmt: skip
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
        if not _FIELD_NAME.match(name):
            raise ValueError(
                "must start with a letter and hold only letters, digits and underscore "
                "(at most 255 characters)"
            )
        if name.lower() in RESERVED_FIELD_NAMES:
            raise ValueError("is reserved: the store writes this property itself")
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

    @field_validator("fields")
    @classmethod
    def _names_unique(cls, fields: tuple[FieldMapping, ...]) -> tuple[FieldMapping, ...]:
        seen: dict[str, str] = {}
        for field in fields:
            key = field.name.lower()
            if key in seen:
                raise ValueError(f"field name {field.name!r} is used twice (names ignore case)")
            seen[key] = field.name
        if len(fields) > 200:
            raise ValueError("at most 200 fields fit in a table entity beside the bookkeeping")
        return fields

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ConfigError(Exception):
    """Every problem of a configuration, each as (JSON path, message, offending value)."""

    def __init__(self, problems: list[tuple[str, str, Any]]):
        self.problems = problems
        super().__init__(
            "invalid configuration:\n"
            + "\n".join(
                f"  - {path}: {message} (got {json.dumps(value, ensure_ascii=False)})"
                for path, message, value in problems
            )
        )

    def to_json(self) -> list[dict[str, Any]]:
        return [{"path": p, "message": m, "value": v} for p, m, v in self.problems]


def parse_config(document: Any) -> TenantConfig:
    """Validate a configuration document (already parsed JSON); raise ConfigError."""
    if not isinstance(document, dict):
        raise ConfigError([("$", "the configuration must be a JSON object", _jsonable(document))])
    try:
        return TenantConfig.model_validate(_listify(document))
    except ValidationError as error:
        raise ConfigError(
            [(_json_path(e["loc"]), _message(e), _jsonable(e.get("input"))) for e in error.errors()]
        ) from None


def parse_config_text(text: str) -> TenantConfig:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(
            [
                (
                    "$",
                    f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}",
                    None,
                )
            ]
        ) from None
    return parse_config(document)


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


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key"
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
