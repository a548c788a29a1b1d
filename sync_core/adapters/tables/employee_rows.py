"""An employee's row: built from an `Employee` (the engine never sees a Table entity), sized as
the SDK sends it, and refused when Table Storage could never hold it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from azure.core.serialization import AzureJSONEncoder
from azure.data.tables._serialize import _add_entity_properties  # see operation_bytes

from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from sync_core.core.config import PHOTO_COLUMNS
from sync_core.core.limits import MAX_STRING_UNITS, entity_problem, fitted_json, fitted_text
from sync_core.core.mapping import Employee
from sync_core.core.ports import RowStamp, UnstorableEmployee

MAX_BATCH_OPERATIONS = 100  # the fence update is one of them
# The 4 MiB limit counts the request as sent; what is left for operations once the batch's own
# envelope (two boundaries, a few headers) is paid, with room to spare.
MAX_BATCH_BYTES = 4 * 1024 * 1024 - 16 * 1024
# Per operation beyond its JSON body: the changeset part headers, the request line and the
# operation's headers (If-Match included), not counting the URL's keys (added per operation).
OPERATION_ENVELOPE_BYTES = 400
BOOKKEEPING = ("SourceHash", "SyncedAt", "RunId")
EMAIL_MISSING_SINCE = "EmailMissingSince"
# A fence update on the wire: envelope, keys, holder, token and batch id (measured: ~300 bytes).
FENCE_OPERATION_BYTES = 1024


def employee_entity(
    tenant_id: str,
    employee: Employee,
    run_id: str,
    now: datetime,
    email_missing_since: datetime | None = None,
) -> dict[str, Any]:
    """The row of an employee. Values are cleaned and cut to Table Storage's limits the same
    way every run; whether the whole row fits is `storable_size`'s question."""
    entity: dict[str, Any] = {
        "PartitionKey": tenant_id,
        "RowKey": employee.id,
        # Bounded: whole trailing aliases are dropped past the limit, the list stays JSON.
        "Aliases": fitted_json(list(employee.aliases), MAX_STRING_UNITS),
        "UserPrincipalName": fitted_text(employee.user_principal_name),
    }
    if employee.email is not None:
        # An address is never cut (a cut address reaches nobody): one too long is refused.
        entity["Email"] = employee.email
    else:
        # No current address: `Email` is left out (a reader never mails a removed mailbox) and
        # the row says since when; the engine passes the first time, kept across runs.
        entity[EMAIL_MISSING_SINCE] = email_missing_since or now
    entity.update(employee.fields)
    entity.update({"SourceHash": employee.source_hash, "SyncedAt": now, "RunId": run_id})
    return entity


def stamped_entity(tenant_id: str, employee: Employee, stamp: RowStamp) -> dict[str, Any]:
    return employee_entity(
        tenant_id, employee, stamp.run_id, stamp.synced_at, stamp.email_missing_since
    )


def operation_bytes(entity: dict[str, Any]) -> int:
    """What one upsert of `entity` adds to a transaction on the wire: its body exactly as the
    SDK serialises it (JSON with non-ASCII escaped: 6 bytes a CJK character, 12 an emoji), plus
    the part's envelope and URL (keys percent-encoded: at most 3 bytes a UTF-8 byte).

    The body comes from the SDK's own (private) serialiser of the pinned version: measured, not
    guessed; tests/unit/test_limits.py checks the sum against the whole body the SDK sends."""
    body = json.dumps(_add_entity_properties(entity), cls=AzureJSONEncoder)
    keys = len(str(entity["PartitionKey"]).encode()) + len(str(entity["RowKey"]).encode())
    return len(body) + OPERATION_ENVELOPE_BYTES + len(EMPLOYEES_TABLE) + 3 * keys


# What a property can add to the body beyond its name and value: quotes, ": ", ", ", and an
# `@odata.type` annotation (its name again, counted apart, and "Edm.DateTime" or the like).
_PROPERTY_OVERHEAD = 64


def operation_bound(entity: dict[str, Any]) -> int:
    """At least `operation_bytes(entity)`, without serialising: JSON escapes a Python character
    to at most 12 bytes (a character outside the BMP as two `\\uXXXX`), and a property's name
    appears at most twice (its value's key and its annotation's). Exact sizes are measured only
    when this bound could close a transaction (TableEmployeeWriter), which ordinary rows never do:
    the SDK then serialises each row once, not twice."""
    body = 2
    for name, value in entity.items():
        body += 24 * len(name) + _PROPERTY_OVERHEAD
        if isinstance(value, str):
            body += 12 * len(value)
        elif isinstance(value, bytes):
            body += 2 * len(value) + 8  # base64
        else:
            body += 12 * len(str(value)) + 16
    keys = len(str(entity["PartitionKey"]).encode()) + len(str(entity["RowKey"]).encode())
    return body + OPERATION_ENVELOPE_BYTES + len(EMPLOYEES_TABLE) + 3 * keys


def storable_bound(entity: dict[str, Any]) -> tuple[int, bool]:
    """What an upsert of `entity` adds to a transaction, and whether that is the exact size
    (True) or a bound (False); UnstorableEmployee as `storable_size`."""
    problem = entity_problem(entity)
    if problem is not None:
        raise UnstorableEmployee(problem)
    bound = operation_bound(entity)
    if bound <= MAX_BATCH_BYTES - FENCE_OPERATION_BYTES:
        return bound, False
    return storable_size(entity), True


def storable_size(entity: dict[str, Any]) -> int:
    """The wire size of an upsert of `entity`; UnstorableEmployee when Table Storage would
    refuse the row whatever else the batch holds."""
    problem = entity_problem(entity)
    if problem is None:
        size = operation_bytes(entity)
        if size > MAX_BATCH_BYTES - FENCE_OPERATION_BYTES:
            problem = f"the row needs {size:,} bytes on the wire, more than a transaction holds"
        else:
            return size
    raise UnstorableEmployee(problem)


def employee_view(entity: dict[str, Any], field_names: Sequence[str]) -> dict[str, Any]:
    """A stored employee in the configured order: id, Email, the fields, Aliases."""
    view: dict[str, Any] = {"id": entity["RowKey"], "Email": entity.get("Email")}
    for name in field_names:
        view[name] = entity.get(name)
    view["Aliases"] = json.loads(entity.get("Aliases") or "[]")
    for name in PHOTO_COLUMNS:  # with `photos`: where the photo is, and which version
        if entity.get(name):
            view[name] = entity[name]
    return view
