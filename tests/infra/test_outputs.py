"""What azd and docs/deploy.md read from the deployment: the outputs, and the wiring behind them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAIN = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
SITE = (ROOT / "infra" / "modules" / "function-app.bicep").read_text(encoding="utf-8")
DEPLOY_DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")

OUTPUTS = set(re.findall(r"^output\s+(\w+)\s", MAIN, re.MULTILINE))


def test_every_value_the_deploy_guide_reads_is_an_output():
    read = set(re.findall(r"azd env get-value (\w+)", DEPLOY_DOC))
    assert read, "the guide reads deployment outputs with `azd env get-value`"
    assert read <= OUTPUTS, f"the guide reads outputs that do not exist: {read - OUTPUTS}"


def test_azd_finds_the_resource_group_and_the_app():
    assert {"AZURE_RESOURCE_GROUP", "AZURE_FUNCTION_APP_NAME", "AZURE_KEY_VAULT_NAME"} <= OUTPUTS


def test_the_package_goes_to_the_deployment_container_with_the_identity():
    assert re.search(r"deploymentContainerUrl:\s*storage\.outputs\.deploymentContainerUrl", MAIN)
    storage = re.search(r"deployment:\s*\{\s*storage:\s*\{(?P<body>.*?)\n\s{6}\}", SITE, re.S)
    assert storage, "functionAppConfig.deployment.storage is declared"
    body = storage.group("body")
    assert re.search(r"type:\s*'blobContainer'", body)
    assert re.search(r"value:\s*deploymentContainerUrl", body)
    assert re.search(r"type:\s*'UserAssignedIdentity'", body)


def test_the_synced_tenant_defaults_to_the_deployment_tenant():
    assert re.search(r"tenant\(\)\.tenantId", MAIN)
