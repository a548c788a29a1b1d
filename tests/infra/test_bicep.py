"""Offline checks of infra/: the Bicep CLI cannot be installed here, so every template is parsed
with pycep and the parsed templates are held to what the deployment promises: hardened storage,
vault and site, least-privilege roles for the app's identity, and app settings that match what
sync_core reads (taken from sync_core.settings.SETTINGS, never from a list kept here).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from sync_core.adapters.blobs import PHOTOS_CONTAINER
from sync_core.adapters.storage_names import SYNC_QUEUE, TABLE_NAMES
from sync_core.settings import SETTINGS, SettingSpec, Where, is_tenant_id

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
ROLE_DEFINITIONS = "Microsoft.Authorization/roleDefinitions"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
# learn.microsoft.com/azure/role-based-access-control/built-in-roles/storage
STORAGE_BLOB_DATA_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"

# Settings the Functions host itself reads (not sync_core): identity-based storage, which is also
# the queue trigger's connection "AzureWebJobsStorage", and Entra-authenticated telemetry.
HOST_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
# Rejected or meaningless on Flex Consumption (runtime and package live in functionAppConfig),
# or key-based.
FORBIDDEN_SETTINGS = {
    "AzureWebJobsStorage",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_TIME_ZONE",
    "WEBSITE_VNET_ROUTE_ALL",
    "WEBSITE_DNS_SERVER",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
}

DEPLOYED = [spec for spec in SETTINGS if spec.where is Where.DEPLOYED]
LOCAL_ONLY = [spec for spec in SETTINGS if spec.where is Where.LOCAL_ONLY]


# --- reading parsed templates -------------------------------------------------------------------


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()


@functools.cache
def template(relative: str) -> dict[str, Any]:
    return _parser().parse(file_path=INFRA / relative)


def main() -> dict[str, Any]:
    return template("main.bicep")


def module_file(symbol: str) -> str:
    """The file (relative to infra/) of a module that main.bicep declares."""
    return main()["modules"][symbol]["detail"]["path"]


def module_params(symbol: str) -> dict[str, Any]:
    return main()["modules"][symbol]["config"]["params"]


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's declared body, under any `if (...)` condition or `[for ...]` loop."""
    config = resource["config"]
    if "condition" in config or "loop_type" in config:
        return config["config"]
    return config


def condition(resource: dict[str, Any]) -> Any:
    return resource["config"].get("condition")


def resource(relative: str, symbol: str) -> dict[str, Any]:
    resources = template(relative)["resources"]
    assert symbol in resources, f"{relative} declares no resource `{symbol}`"
    return resources[symbol]


def resources_of_type(relative: str, type_: str) -> dict[str, dict[str, Any]]:
    return {
        symbol: res
        for symbol, res in template(relative)["resources"].items()
        if res["type"] == type_ and not res["existing"]
    }


def single(relative: str, type_: str) -> dict[str, Any]:
    found = resources_of_type(relative, type_)
    assert len(found) == 1, f"{relative}: expected one {type_}, found {sorted(found)}"
    return body(next(iter(found.values())))


def dotted(expr: Any) -> str:
    """`a.b.c` for pycep's nested property accessors; other expressions as compact JSON."""
    if isinstance(expr, str):
        return expr
    operator = expr.get("operator", {}) if isinstance(expr, dict) else {}
    if operator.get("type") == "property_accessor":
        operands = operator["operands"]
        return f"{dotted(operands['operand_1'])}.{dotted(operands['operand_2'])}"
    return json.dumps(expr, sort_keys=True)


def unquote(key: str) -> str:
    return key.strip("'")


def variable(relative: str, name: str) -> Any:
    variables = template(relative)["variables"]
    assert name in variables, f"{relative}: `{name}` is not a variable"
    return variables[name]["value"]


def strings_in(expr: Any) -> Iterator[str]:
    if isinstance(expr, str):
        yield expr
    elif isinstance(expr, dict):
        for value in expr.values():
            yield from strings_in(value)
    elif isinstance(expr, list):
        for value in expr:
            yield from strings_in(value)


def main_params_behind(expr: Any) -> set[str]:
    """main.bicep parameters an expression depends on, following main.bicep's variables."""
    params, variables = main()["parameters"], main()["variables"]
    found: set[str] = set()
    for text in strings_in(expr):
        if text in params:
            found.add(text)
        elif text in variables:
            found |= main_params_behind(variables[text]["value"])
    return found


def app_settings() -> list[dict[str, Any]]:
    site = single(module_file("app"), "Microsoft.Web/sites")
    return site["properties"]["siteConfig"]["appSettings"]


def app_setting(name: str) -> Any:
    values = [item["value"] for item in app_settings() if item["name"] == name]
    assert values, f"function-app.bicep has no app setting {name}"
    return values[0]


def parameters_json() -> dict[str, Any]:
    return json.loads((INFRA / "main.parameters.json").read_text())["parameters"]


# --- every file parses, the pieces fit together -------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_bicep_file_parses(path: Path) -> None:
    parsed = template(str(path.relative_to(INFRA)))
    assert parsed["resources"] or parsed["modules"], f"{path} declares nothing"


def test_main_targets_the_subscription_and_creates_one_resource_group() -> None:
    assert main()["globals"]["scope"]["value"] == "subscription"
    groups = resources_of_type("main.bicep", "Microsoft.Resources/resourceGroups")
    assert len(groups) == 1, f"expected one resource group, found {sorted(groups)}"
    assert all(module["config"]["scope"] in groups for module in main()["modules"].values()), (
        "every module must deploy into the one resource group"
    )


def test_every_module_file_is_used_and_exists() -> None:
    used = {(INFRA / module_file(symbol)).resolve() for symbol in main()["modules"]}
    on_disk = {path.resolve() for path in BICEP_FILES if path.name != "main.bicep"}
    assert used == on_disk, f"unused: {on_disk - used}; missing: {used - on_disk}"


@pytest.mark.parametrize("symbol", sorted(template("main.bicep")["modules"]))
def test_module_gets_the_params_it_declares(symbol: str) -> None:
    declared = template(module_file(symbol))["parameters"]
    passed = set(module_params(symbol))
    required = {name for name, param in declared.items() if param["default"] is None}
    assert passed <= set(declared), f"{symbol}: passes unknown params {passed - set(declared)}"
    assert required <= passed, f"{symbol}: required params not passed {required - passed}"


def test_parameters_file_matches_main() -> None:
    declared = main()["parameters"]
    given = parameters_json()
    required = {name for name, param in declared.items() if param["default"] is None}
    assert set(given) <= set(declared), f"unknown parameters: {set(given) - set(declared)}"
    assert required <= set(given), f"required parameters azd cannot fill: {required - set(given)}"
    for name, entry in given.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), (
            f"{name} should come from an azd environment variable, not {entry['value']!r}"
        )
    assert given["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert given["location"]["value"] == "${AZURE_LOCATION}"
    assert given["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_principal_type_is_a_parameter_for_users_and_service_principals() -> None:
    param = main()["parameters"]["principalType"]
    allowed = [d["argument"] for d in param["decorators"] if d["type"] == "allowed"]
    assert allowed == [["User", "ServicePrincipal"]]
    assert parameters_json()["principalType"]["value"].startswith("${AZURE_PRINCIPAL_TYPE")


def test_azure_yaml_has_one_python_function_service_at_the_root() -> None:
    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert config.get("name"), "azure.yaml needs a project name"
    services = config["services"]
    assert len(services) == 1, f"expected one service, found {sorted(services)}"
    ((name, service),) = services.items()
    assert service["language"] == "python"
    assert service["host"] == "function"
    assert (ROOT / service["project"]).resolve() == ROOT
    infra = config.get("infra", {})
    assert (ROOT / infra.get("path", "infra") / f"{infra.get('module', 'main')}.bicep").is_file()
    site = single(module_file("app"), "Microsoft.Web/sites")
    tags = site["tags"]["function"]["parameters"]
    assert tags["arg_1"] == "tags", "the site must keep the shared tags (azd-env-name)"
    assert {unquote(k): v for k, v in tags["arg_2"].items()} == {"azd-service-name": name}


def test_resources_carry_the_azd_environment_tag() -> None:
    assert {unquote(k): v for k, v in variable("main.bicep", "tags").items()} == {
        "azd-env-name": "environmentName"
    }
    assert body(resource("main.bicep", "rg"))["tags"] == "tags"
    for symbol in main()["modules"]:
        assert module_params(symbol)["tags"] == "tags", f"module {symbol} gets other tags"
        for name, res in template(module_file(symbol))["resources"].items():
            top_level = res["type"].count("/") == 1 and res["type"] != ROLE_ASSIGNMENT
            if top_level:
                assert "tags" in body(res), f"{module_file(symbol)}: {name} has no tags"


# --- storage, vault, monitoring, site ------------------------------------------------------------


def test_storage_account_is_hardened() -> None:
    props = single("modules/storage.bicep", "Microsoft.Storage/storageAccounts")["properties"]
    assert props["supportsHttpsTrafficOnly"] is True
    assert props["minimumTlsVersion"] == "TLS1_2"
    assert props["allowSharedKeyAccess"] is False, "shared key access must be off"
    assert props["allowBlobPublicAccess"] is False


def test_deployment_and_photos_containers_are_private() -> None:
    containers = resources_of_type(
        "modules/storage.bicep", "Microsoft.Storage/storageAccounts/blobServices/containers"
    )
    assert sorted(containers) == ["deploymentContainer", "photosContainer"]
    for container in containers.values():
        assert body(container)["properties"]["publicAccess"] == "None"


def test_photos_container_has_the_apps_name() -> None:
    container = body(resource("modules/storage.bicep", "photosContainer"))
    assert variable("modules/storage.bicep", container["name"]) == PHOTOS_CONTAINER


def loop_names(relative: str, type_: str) -> list[str]:
    found = resources_of_type(relative, type_)
    assert len(found) == 1, f"{relative}: expected one looped {type_}"
    loop = next(iter(found.values()))["config"]["loop_type"]["detail"]
    return variable(relative, loop["array_name"])


def test_tables_are_the_ones_the_store_uses() -> None:
    names = loop_names(
        "modules/storage.bicep", "Microsoft.Storage/storageAccounts/tableServices/tables"
    )
    assert sorted(names) == sorted(TABLE_NAMES)


def test_queues_are_the_sync_queue_and_its_poison_queue() -> None:
    names = loop_names(
        "modules/storage.bicep", "Microsoft.Storage/storageAccounts/queueServices/queues"
    )
    assert sorted(names) == sorted([SYNC_QUEUE, f"{SYNC_QUEUE}-poison"])


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    props = single("modules/keyvault.bicep", "Microsoft.KeyVault/vaults")["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enableSoftDelete"] is True
    assert props["enablePurgeProtection"] is True
    assert "accessPolicies" not in props, "access policies bypass RBAC"


def test_monitoring_accepts_only_entra_authenticated_telemetry() -> None:
    relative = module_file("monitoring")
    insights = single(relative, "Microsoft.Insights/components")["properties"]
    assert insights["DisableLocalAuth"] is True
    (workspace,) = resources_of_type(relative, "Microsoft.OperationalInsights/workspaces")
    assert dotted(insights["WorkspaceResourceId"]) == f"{workspace}.id"


def test_plan_is_flex_consumption() -> None:
    plan = single(module_file("app"), "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True, "Flex Consumption runs on Linux"


def test_site_is_a_hardened_python_flex_app_with_the_identity() -> None:
    site = single(module_file("app"), "Microsoft.Web/sites")
    props = site["properties"]
    assert site["kind"] == "functionapp,linux"
    assert props["httpsOnly"] is True
    assert props["siteConfig"]["ftpsState"] == "Disabled"
    assert props["siteConfig"]["minTlsVersion"] == "1.2"
    assert props["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    assert site["identity"]["type"] == "UserAssigned"
    assert [unquote(k) for k in site["identity"]["userAssignedIdentities"]] == ["${identityId}"]
    assert props["keyVaultReferenceIdentity"] == "identityId"
    storage = props["functionAppConfig"]["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert dotted(module_params("app")["identityId"]) == "identity.outputs.id"
    assert dotted(template("modules/identity.bicep")["outputs"]["id"]["value"]) == "identity.id"


def test_basic_auth_publishing_is_off() -> None:
    policies = resources_of_type(
        module_file("app"), "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert {body(p)["name"]: body(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


# --- role assignments ----------------------------------------------------------------------------

IDENTITY_ROLES = [
    # (module symbol in main.bicep, resource, role id, scope resource type)
    (
        "storage",
        "identityBlobDataOwner",
        STORAGE_BLOB_DATA_OWNER,
        "Microsoft.Storage/storageAccounts",
    ),
    (
        "storage",
        "identityPhotosBlobDataContributor",
        STORAGE_BLOB_DATA_CONTRIBUTOR,
        "Microsoft.Storage/storageAccounts/blobServices/containers",
    ),
    (
        "storage",
        "identityQueueDataContributor",
        STORAGE_QUEUE_DATA_CONTRIBUTOR,
        "Microsoft.Storage/storageAccounts",
    ),
    (
        "storage",
        "identityTableDataContributor",
        STORAGE_TABLE_DATA_CONTRIBUTOR,
        "Microsoft.Storage/storageAccounts",
    ),
    ("vault", "identitySecretsUser", KEY_VAULT_SECRETS_USER, "Microsoft.KeyVault/vaults"),
    (
        "monitoring",
        "identityMetricsPublisher",
        MONITORING_METRICS_PUBLISHER,
        "Microsoft.Insights/components",
    ),
]
DEPLOYER_ROLES = [
    (
        "storage",
        "deployerTableDataContributor",
        STORAGE_TABLE_DATA_CONTRIBUTOR,
        "Microsoft.Storage/storageAccounts",
    ),
    ("vault", "deployerSecretsOfficer", KEY_VAULT_SECRETS_OFFICER, "Microsoft.KeyVault/vaults"),
]


def role_id(relative: str, assignment: dict[str, Any]) -> str:
    function = assignment["properties"]["roleDefinitionId"]["function"]
    assert function["type"] == "subscription_resource_id", "role ids must be built-in role ids"
    assert function["parameters"]["resource_type"] == ROLE_DEFINITIONS
    return variable(relative, function["parameters"]["resource_name_1"])


def check_assignment(symbol: str, name: str, role: str, scope_type: str, principal: str) -> None:
    relative = module_file(symbol)
    assignment = body(resource(relative, name))
    assert role_id(relative, assignment) == role, f"{name}: wrong role"
    assert assignment["properties"]["principalId"] == principal, f"{name}: wrong principal"
    scope = assignment["scope"]
    assert resource(relative, scope)["type"] == scope_type, (
        f"{name} must be scoped to its {scope_type}, not {scope}"
    )
    name_parts = assignment["name"]["function"]
    assert name_parts["type"] == "guid", f"{name}: name must be a deterministic guid()"
    assert principal in strings_in(name_parts), f"{name}: guid() must include the principal"


@pytest.mark.parametrize(("symbol", "name", "role", "scope_type"), IDENTITY_ROLES)
def test_identity_role_assignment(symbol: str, name: str, role: str, scope_type: str) -> None:
    check_assignment(symbol, name, role, scope_type, "identityPrincipalId")
    assignment = body(resource(module_file(symbol), name))
    assert assignment["properties"]["principalType"] == "ServicePrincipal"
    assert condition(resource(module_file(symbol), name)) is None, f"{name} must be unconditional"
    assert dotted(module_params(symbol)["identityPrincipalId"]) == "identity.outputs.principalId"


@pytest.mark.parametrize(("symbol", "name", "role", "scope_type"), DEPLOYER_ROLES)
def test_deployer_role_assignment(symbol: str, name: str, role: str, scope_type: str) -> None:
    check_assignment(symbol, name, role, scope_type, "deployerPrincipalId")
    relative = module_file(symbol)
    assignment = body(resource(relative, name))
    assert assignment["properties"]["principalType"] == "deployerPrincipalType"
    assert "deployerPrincipalId" in strings_in(condition(resource(relative, name))), (
        f"{name} must be skipped when no deploying principal is given"
    )
    assert module_params(symbol)["deployerPrincipalId"] == "principalId"
    assert module_params(symbol)["deployerPrincipalType"] == "principalType"


def test_no_other_role_assignments() -> None:
    expected = {(module_file(s), name) for s, name, *_ in IDENTITY_ROLES + DEPLOYER_ROLES}
    found = {
        (str(path.relative_to(INFRA)), name)
        for path in BICEP_FILES
        for name in resources_of_type(str(path.relative_to(INFRA)), ROLE_ASSIGNMENT)
    }
    assert found == expected, f"unexpected: {found - expected}; missing: {expected - found}"


# --- no secrets ---------------------------------------------------------------------------------

KNOWN_GUIDS = {
    STORAGE_BLOB_DATA_OWNER,
    STORAGE_BLOB_DATA_CONTRIBUTOR,
    STORAGE_QUEUE_DATA_CONTRIBUTOR,
    STORAGE_TABLE_DATA_CONTRIBUTOR,
    KEY_VAULT_SECRETS_USER,
    KEY_VAULT_SECRETS_OFFICER,
    MONITORING_METRICS_PUBLISHER,
}
SECRET_MARKERS = [
    "accountkey=",
    "sharedaccesskey",
    "sharedaccesssignature",
    "instrumentationkey=",
    "defaultendpointsprotocol",
    "listkeys(",
    "listsecrets(",
    "listconnectionstrings(",
    "password",
    "-----begin",
    "microsoft.keyvault/vaults/secrets",
]
INFRA_FILES = sorted(p for p in INFRA.rglob("*") if p.is_file())


@pytest.mark.parametrize("path", INFRA_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_no_secret_or_key_literal(path: Path) -> None:
    text = path.read_text()
    lowered = text.lower()
    assert not [m for m in SECRET_MARKERS if m in lowered], f"{path}: looks like a secret"
    guids = set(
        re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", lowered)
    )
    assert guids <= KNOWN_GUIDS, f"{path}: unexpected GUID literal(s) {guids - KNOWN_GUIDS}"
    keys = [token for token in re.findall(r"[A-Za-z0-9+/]{32,}={0,2}", text) if _key_like(token)]
    assert not keys, f"{path}: key-like literal(s) {keys}"


def _key_like(token: str) -> bool:
    """Base64 keys mix digits with both cases; resource type paths and prose do not."""
    return all(re.search(chars, token) for chars in ("[0-9]", "[a-z]", "[A-Z]"))


def test_no_secure_parameter_has_a_default() -> None:
    for path in BICEP_FILES:
        for name, param in template(str(path.relative_to(INFRA)))["parameters"].items():
            secure = any(d["type"] == "secure" for d in param["decorators"])
            assert not (secure and param["default"] is not None), f"{path}: {name} default"


# --- app settings against sync_core.settings.SETTINGS --------------------------------------------


def test_app_settings_are_what_sync_core_and_the_host_read() -> None:
    names = [item["name"] for item in app_settings()]
    duplicates = {name for name in names if names.count(name) > 1}
    assert not duplicates, f"app settings set twice: {duplicates}"
    deployed = {spec.name for spec in DEPLOYED}
    missing = deployed - set(names)
    assert not missing, (
        f"sync_core/settings.py reads {sorted(missing)} but function-app.bicep does not set them"
    )
    local_only = {spec.name for spec in LOCAL_ONLY} & set(names)
    assert not local_only, f"local-only settings must not be deployed: {sorted(local_only)}"
    unknown = set(names) - deployed - HOST_SETTINGS
    assert not unknown, f"app settings nobody reads: {sorted(unknown)}"
    rejected = FORBIDDEN_SETTINGS & set(names)
    assert not rejected, f"settings Flex Consumption rejects or that use keys: {sorted(rejected)}"


def test_host_storage_is_identity_based() -> None:
    assert app_setting("AzureWebJobsStorage__accountName") == "storageAccountName"
    assert app_setting("AzureWebJobsStorage__credential") == "managedidentity"
    assert app_setting("AzureWebJobsStorage__clientId") == "identityClientId"
    assert dotted(module_params("app")["storageAccountName"]) == "storage.outputs.name"


def test_identity_client_id_settings() -> None:
    assert app_setting("AZURE_CLIENT_ID") == "identityClientId"
    assert dotted(module_params("app")["identityClientId"]) == "identity.outputs.clientId"
    output = template("modules/identity.bicep")["outputs"]["clientId"]["value"]
    assert dotted(output) == "identity.properties.clientId"


def test_application_insights_uses_entra_authentication() -> None:
    assert (
        app_setting("APPLICATIONINSIGHTS_AUTHENTICATION_STRING")
        == "ClientId=${identityClientId};Authorization=AAD"
    )
    assert app_setting("APPLICATIONINSIGHTS_CONNECTION_STRING") == "appInsightsConnectionString"
    assert (
        dotted(module_params("app")["appInsightsConnectionString"])
        == "monitoring.outputs.connectionString"
    )


@pytest.mark.parametrize(
    ("name", "service"),
    [("TABLES_ENDPOINT", "table"), ("QUEUES_ENDPOINT", "queue"), ("BLOBS_ENDPOINT", "blob")],
)
def test_storage_endpoints(name: str, service: str) -> None:
    value = variable(module_file("app"), app_setting(name))
    assert value == f"https://${{storageAccountName}}.{service}.${{environment().suffixes.storage}}"


def test_key_vault_url_is_the_deployed_vault() -> None:
    assert app_setting("KEY_VAULT_URL") == "keyVaultUrl"
    assert dotted(module_params("app")["keyVaultUrl"]) == "vault.outputs.uri"
    output = template(module_file("vault"))["outputs"]["uri"]["value"]
    assert dotted(output) == "vault.properties.vaultUri"


def test_tenant_defaults_to_the_deployment_tenant() -> None:
    assert main_params_behind(module_params("app")["entraTenantId"]) == {"entraTenantId"}
    assert "tenant" in strings_in(variable("main.bicep", "syncedTenantId"))


@pytest.mark.parametrize("spec", DEPLOYED, ids=lambda spec: spec.name)
def test_setting_is_a_deployment_parameter_with_the_code_default(spec: SettingSpec) -> None:
    """A setting the admin chooses is a main.bicep parameter fed by the azd environment variable
    of the same name; where the code has a default, Bicep and main.parameters.json repeat it."""
    value = app_setting(spec.name)
    app_params = template(module_file("app"))["parameters"]
    if not (isinstance(value, str) and value in app_params):
        assert spec.default is None, f"{spec.name} has a default, so it must be a parameter"
        return  # computed from deployed resources (endpoints, vault URL, identity)
    behind = main_params_behind(module_params("app")[value])
    if not behind:
        assert spec.default is None, f"{spec.name} has a default, so it must be a parameter"
        return
    assert len(behind) == 1, f"{spec.name} depends on several parameters: {behind}"
    (param,) = behind
    given = parameters_json().get(param, {}).get("value")
    if spec.default is None:
        assert given == f"${{{spec.name}}}", (
            f"main.parameters.json: {param} should read {spec.name}"
        )
    else:
        default = INFRA_DEFAULTS.get(spec.name, spec.default)
        assert main()["parameters"][param]["default"] == default, (
            f"main.bicep {param} default differs from {default!r}"
        )
        assert given == f"${{{spec.name}={default}}}", (
            f"main.parameters.json: {param} should be ${{{spec.name}={default}}}"
        )


# Where Azure's default differs from the code's on purpose: deployed, the managed identity is the
# app registration's federated credential (no secret); locally the code keeps the client secret.
INFRA_DEFAULTS = {"ENTRA_CREDENTIAL": "federated"}


def test_infra_outputs_what_the_federated_credential_needs() -> None:
    outputs = main()["outputs"]
    assert outputs["FEDERATED_CREDENTIAL_AUDIENCE"]["value"] == "api://AzureADTokenExchange"
    assert "principalId" in json.dumps(outputs["FEDERATED_CREDENTIAL_SUBJECT"])
    assert "/v2.0" in json.dumps(outputs["FEDERATED_CREDENTIAL_ISSUER"])


def test_flex_consumption_maximum_instance_count_is_at_least_40() -> None:
    """Flex Consumption's lowest allowed maximum is 40 (Microsoft's flex-consumption-plan
    documentation): a smaller value must fail validation, not the deployment."""
    param = template(module_file("app"))["parameters"]["maximumInstanceCount"]
    floors = [d["argument"] for d in param["decorators"] if d["type"] == "min_value"]
    assert floors == [40]


def test_tenant_parameter_and_sample_settings_ask_for_a_guid() -> None:
    """The app refuses a domain as tenant (settings.is_tenant_id): what guides an admin says so."""
    description = next(
        d["argument"]
        for d in main()["parameters"]["entraTenantId"]["decorators"]
        if d["type"] == "description"
    )
    assert "GUID" in description and "or domain" not in description
    sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    assert is_tenant_id(sample["ENTRA_TENANT_ID"]) and is_tenant_id(sample["ENTRA_CLIENT_ID"])
