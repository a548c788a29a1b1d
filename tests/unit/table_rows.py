"""Employee rows for the Table Storage tests: an employee, and the $batch body the SDK builds
for a transaction of rows (the wire size Table Storage's 4 MiB bound counts)."""

from __future__ import annotations

from datetime import UTC, datetime

from azure.core import MatchConditions
from azure.core.rest import HttpRequest
from azure.data.tables import TableClient
from azure.data.tables._policies import StorageHeadersPolicy
from azure.data.tables._table_batch import TableBatchOperations

from devtools.azurite import ACCOUNT, ACCOUNT_KEY
from sync_core.core.mapping import Employee, source_hash

TENANT = "8f6a6c3e-1d2b-4c5e-9f70-123456789abc"
USER_ID = "1f0d3f7e-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def employee(**changes) -> Employee:
    values = dict(
        id=USER_ID,
        user_principal_name="zoe@contoso.com",
        email="zoe@contoso.com",
        aliases=(),
        fields=(("Title", "Engineer"),),
    )
    values.update(changes)
    fields, aliases = values["fields"], values["aliases"]
    return Employee(
        **values,
        source_hash=source_hash(values["user_principal_name"], values["email"], aliases, fields),
    )


FENCE_ETAG = "W/\"datetime'2026-11-30T13%3A48%3A59.1961818Z'\""


def wire_body(entities: list[dict], fence: dict | None = None) -> int:
    """The $batch body exactly as the SDK builds it (aio TableClient.submit_transaction's code
    path: TableBatchOperations, then _batch_send's two multipart layers)."""
    client = TableClient.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"TableEndpoint=http://127.0.0.1:10002/{ACCOUNT};",
        "Employees",
    )
    batch = TableBatchOperations(
        config=client._client._config, endpoint="http://127.0.0.1:10002", table_name="Employees"
    )
    for entity in entities:
        batch.add_operation(("upsert", entity, {"mode": "replace"}))
    if fence is not None:
        options = {"mode": "replace", "etag": FENCE_ETAG,
                   "match_condition": MatchConditions.IfNotModified}  # fmt: skip
        batch.add_operation(("update", fence, options))
    changeset = HttpRequest("POST", "")
    changeset.set_multipart_mixed(
        *batch.requests, policies=[StorageHeadersPolicy()], boundary="changeset_" + "0" * 36
    )
    request = HttpRequest("POST", "http://127.0.0.1:10002/devstoreaccount1/$batch")
    request.set_multipart_mixed(
        changeset,
        policies=[StorageHeadersPolicy()],
        enforce_https=False,
        boundary="batch_" + "0" * 36,
    )
    request._prepare_multipart_body()
    return len(request.content)
