"""docs/openapi.yaml gives every `tenantId` (path parameter, body and answer property) the GUID
pattern the app enforces (sync_core.settings.is_tenant_id), and the routes refuse what the
pattern refuses."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sync_core.settings import is_tenant_id
from sync_core.surfaces.api import ApiRequest, handle
from sync_core.surfaces.routes import ROUTES

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text())
SAMPLES = [
    str(uuid.UUID(int=12345)),
    str(uuid.UUID(int=12345)).upper(),
    "contoso.com",
    "contoso.onmicrosoft.com",
    "urn:uuid:" + str(uuid.UUID(int=1)),
    "{" + str(uuid.UUID(int=1)) + "}",
    str(uuid.UUID(int=1)).replace("-", ""),
    str(uuid.UUID(int=1)) + "\n",
    "",
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = DOCUMENT
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _tenant_id_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("name") == "tenantId" and "schema" in node:
            yield where, _resolve(node["schema"])
        for key, value in node.items():
            if key == "tenantId" and isinstance(value, dict) and "name" not in value:
                yield f"{where}/{key}", _resolve(value)
            yield from _tenant_id_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _tenant_id_schemas(value, f"{where}/{index}")


FOUND = list(_tenant_id_schemas(DOCUMENT))


def test_the_document_names_tenant_ids_in_many_places():
    assert len(FOUND) >= 10


@pytest.mark.parametrize(("where", "schema"), FOUND, ids=[w for w, _ in FOUND])
def test_every_tenant_id_has_the_apps_guid_pattern(where, schema):
    assert schema.get("type") == "string", where
    pattern = re.compile(schema["pattern"])
    for sample in SAMPLES:
        # OpenAPI patterns are ECMA regular expressions, which `$` ends only at the very end.
        assert bool(pattern.fullmatch(sample)) == is_tenant_id(sample), (where, sample)


def test_a_route_refuses_what_the_pattern_refuses(monkeypatch):
    request = ApiRequest(
        "GET", "http://localhost/api/runs/contoso.com", {"tenantId": "contoso.com"}, {}, b""
    )
    answer = asyncio.run(handle(ROUTES["list_runs"], request, {}))
    assert answer.status == 400
