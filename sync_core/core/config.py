"""The per-tenant sync configuration: which fields, which email rules, which users, clean-up.

Validation reports every problem at once, each with its JSON path and the offending value, so an
admin fixes a configuration in one pass and nothing invalid is ever stored or run: per-field
problems and cross-field ones (duplicate names, the stored size) come out of the same pass.

The CLI and the HTTP API read a configuration document with the same function
(`json_document.read_json_document`) and parse it with `config_parse.parse_config`.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import re2
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from sync_core.core.manager_source import is_manager_source, parse_manager_source
from sync_core.core.paths import PathError, parse_path

# The columns store.employee_entity writes on every employee row beside the configured fields.
# A column added there must be added here (tests/unit/test_config.py compares the two), so no
# configured field can overwrite it.
EMPLOYEE_COLUMNS: tuple[str, ...] = (
    "Email", "EmailMissingSince", "Aliases", "UserPrincipalName", "SourceHash", "SyncedAt",
    "RunId",
)  # fmt: skip

# The photo properties of an employee row (written by a merge, not by employee_entity).
PHOTO_COLUMNS: tuple[str, ...] = ("PhotoBlob", "PhotoETag")

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
    # Written by the photo step (core/photo_run.py), beside the row's other columns.
    **{
        name.lower(): "the app writes the photo's location here (`photos`)"
        for name in PHOTO_COLUMNS
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
MAX_CONFIG_BYTES = 256 * 1024  # the configuration as compact JSON (UTF-8)
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


def is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


class _Model(BaseModel):
    # strict: "yes" is not a boolean and "20" is not a number; an admin's typo must fail loudly.
    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, alias_generator=to_camel, populate_by_name=True
    )


# A field whose value is the user's membership in listed groups (core/groups.py), not a Graph
# property: `{"name": "Teams", "source": "memberOf", "groups": ["<group id>", ...]}`.
MEMBER_OF_SOURCE = "memberOf"
MAX_GROUPS = 50  # per list; a group delta query filters on at most 50 ids


def _group_ids(ids: tuple[str, ...]) -> tuple[str, ...]:
    """Group object ids (GUIDs), lower-cased, each once."""
    seen: list[str] = []
    for position, value in enumerate(ids):
        if not isinstance(value, str) or not _GUID.fullmatch(value):
            raise ValueError(
                f"item {position} ({value!r}) is not a group object id: a GUID like "
                "'0f5c6c3a-1b2d-4e5f-8a9b-0c1d2e3f4a5b' (Entra admin center > Groups > Object Id)"
            )
        if value.lower() in seen:
            raise ValueError(f"item {position} ({value!r}) is listed twice")
        seen.append(value.lower())
    if len(seen) > MAX_GROUPS:
        raise ValueError(f"lists {len(seen)} groups; at most {MAX_GROUPS}")
    return tuple(seen)


# fullmatch, not `$`: `$` also matches before a trailing newline, which would be stored.
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class FieldMapping(_Model):
    name: str
    source: str
    # Only with source `memberOf`: the groups whose names the field lists.
    groups: tuple[str, ...] = Field(default=(), validate_default=True)

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
        if source.lower() == MEMBER_OF_SOURCE.lower():
            return MEMBER_OF_SOURCE
        if is_manager_source(source):  # the manager's property or address (manager_source.py)
            try:
                return parse_manager_source(source).text
            except PathError as error:
                raise ValueError(str(error)) from None
        return _graph_path(source)

    @field_validator("groups")
    @classmethod
    def _groups_only_for_member_of(cls, groups: tuple[str, ...], info: Any) -> tuple[str, ...]:
        source = info.data.get("source")
        if source is None:
            return groups  # the source's own error is reported instead
        if source != MEMBER_OF_SOURCE:
            if groups:
                raise ValueError(f"only a field with source {MEMBER_OF_SOURCE!r} lists groups")
            return groups
        if not groups:
            raise ValueError(
                f"a field with source {MEMBER_OF_SOURCE!r} must list the group ids it shows"
            )
        return _group_ids(groups)


def _graph_path(text: str) -> str:
    """A field source or rule attribute in its canonical spelling; ValueError (pydantic reports
    it at the field's path) when it is not a Graph property path."""
    try:
        return parse_path(text).text
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
        return _graph_path(attribute)

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
            if not isinstance(value, list | tuple) or not value or not all(map(is_scalar, value)):
                raise ValueError(f"operator {operator!r} needs a non-empty list of strings")
        elif operator in REGEX_OPERATORS:
            if not isinstance(value, str):
                raise ValueError(f"operator {operator!r} needs a regular expression string")
            compile_regex(value)  # raises ValueError with RE2's reason
        elif not is_scalar(value):
            raise ValueError(f"operator {operator!r} needs a string, number or boolean value")
        return value


class GroupScope(_Model):
    """Scope by group membership, transitive: a member of a group nested in a listed one
    counts (core/groups.py)."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @field_validator("include", "exclude")
    @classmethod
    def _are_group_ids(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        return _group_ids(ids)

    @field_validator("exclude")
    @classmethod
    def _not_also_included(cls, ids: tuple[str, ...], info: Any) -> tuple[str, ...]:
        # Exclusion wins, so a group in both lists leaves out every member: a contradiction
        # that would otherwise surface only as a mass removal.
        both = [g for g in ids if g in (info.data.get("include") or ())]
        if both:
            raise ValueError(f"the group {both[0]} is also in include; list it in one of them")
        return ids


class ScopeFilter(_Model):
    exclude_disabled: bool = True
    exclude_guests: bool = True
    exclude_unlicensed: bool = False
    odata: str | None = None
    include: tuple[tuple[ScopeRule, ...], ...] = ()
    exclude: tuple[tuple[ScopeRule, ...], ...] = ()
    groups: GroupScope = GroupScope()

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


# Above any directory Entra ID holds (its tenants count objects in the millions): a larger
# maxDeletes is a typo, and a number past 64 bits cannot be stored or compared by Table Storage.
MAX_DELETES_BOUND = 10_000_000


class CleanUp(_Model):
    enabled: bool = False
    max_deletes: int = Field(default=500, ge=0)
    max_delete_percent: float = Field(default=20, ge=0, le=100)
    # How long a stored employee may stay in scope without an address before Clean Up removes
    # it. At least an hour: one read in which a mailbox property was briefly empty must never
    # delete anyone.
    email_missing_grace_hours: float = Field(default=24, ge=1, le=8760)

    @field_validator("max_deletes")
    @classmethod
    def _max_deletes_bounded(cls, value: int) -> int:
        if value > MAX_DELETES_BOUND:
            raise ValueError(
                f"must be at most {MAX_DELETES_BOUND} (more than any Entra directory holds); "
                "to never hold deletions by count, use this bound"
            )
        return value


# The sizes Graph serves at /users/{id}/photos/{size}/$value: "The supported sizes of HD photos on
# Microsoft 365 are as follows: 48x48, 64x64, 96x96, 120x120, 240x240, 360x360, 432x432,
# 504x504, and 648x648" (learn.microsoft.com/graph/api/profilephoto-get).
PhotoSize = Literal[
    "48x48", "64x64", "96x96", "120x120", "240x240", "360x360", "432x432", "504x504", "648x648",
]  # fmt: skip


class Photos(_Model):
    """Profile photos into Blob Storage (core/photos.py); off by default."""

    enabled: bool = False
    # A size larger than the photo the user uploaded is not served (the profilephoto-get page):
    # such a user counts as photosMissing, so the default is a size most photos have.
    size: PhotoSize = "240x240"


class TenantConfig(_Model):
    enabled: bool = True
    fields: tuple[FieldMapping, ...] = DEFAULT_FIELDS
    email: EmailRules = EmailRules()
    filter: ScopeFilter = ScopeFilter()
    clean_up: CleanUp = CleanUp()
    photos: Photos = Photos()

    # Duplicate names and the number of fields are checked on the document in parse_config,
    # beside every other problem (a model validator would only run once the fields are valid).

    def to_json(self) -> dict[str, Any]:
        document = self.model_dump(mode="json", by_alias=True)
        # Group settings left empty are left out, so a configuration without groups reads,
        # stores and hashes (core/delta.config_hash) exactly as before they existed.
        for field in document["fields"]:
            if not field.get("groups"):
                field.pop("groups", None)
        if not any(document["filter"]["groups"].values()):
            document["filter"].pop("groups")
        return document
