"""Every route that needs a tenant's stored configuration answers the same 409 when it no
longer validates (stored by an older version, or by hand): one answer, whatever the route."""

from __future__ import annotations

import json

import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from functions_harness import call

pytestmark = pytest.mark.integration


def test_a_stored_configuration_that_no_longer_validates_is_one_409(app_env, tenant) -> None:
    assert call("tenant_config", "PUT", {"tenantId": tenant.id}, body={}).status in (200, 201)
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    service.get_table_client("TenantConfigs").upsert_entity(
        {
            "PartitionKey": tenant.id,
            "RowKey": "config",
            "Config": json.dumps({"fields": [{"name": "Email", "source": "mail"}]}),
        },
        mode=UpdateMode.REPLACE,
    )
    user = tenant.users[0]["id"]
    answers = {
        "tenant_config": call("tenant_config", route_params={"tenantId": tenant.id}),
        "list_employees": call("list_employees", route_params={"tenantId": tenant.id}),
        "explain_user": call("explain_user", route_params={"tenantId": tenant.id, "user": user}),
    }
    assert {name: answer.status for name, answer in answers.items()} == dict.fromkeys(answers, 409)
    errors = [answer.json["error"] for answer in answers.values()]
    assert errors[0]["code"] == "invalid_stored_config"
    assert "$.fields[0].name" in {problem["path"] for problem in errors[0]["details"]}
    assert errors[1:] == errors[:1] * 2
