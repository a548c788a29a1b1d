"""App settings: defaults, and every problem reported together."""

from __future__ import annotations

import pytest

from sync_core.settings import SETTINGS, SettingsError, Where, load_settings

TENANT = "8f6a6c3e-1d2b-4c5e-9f70-123456789abc"
CLIENT = "0b7f6a9c-2e3d-4f5a-8b9c-abcdef012345"
LOCAL = {
    "ENTRA_TENANT_ID": TENANT,
    "ENTRA_CLIENT_ID": CLIENT,
    "ENTRA_CLIENT_SECRET": "s3cr3t-value",
    "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
}


def test_defaults():
    settings = load_settings(LOCAL)
    assert settings.graph_api_url == "https://graph.microsoft.com/v1.0"
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.authority_is_microsoft
    assert settings.client_secret_name == "entra-client-secret"
    assert settings.sync_schedule == "0 */15 * * * *"
    # Every tick (15 min): delta runs make a run of an unchanged tenant cheap.
    assert (settings.sync_interval_min_hours, settings.sync_interval_max_hours) == (0.25, 0.25)


def test_deployed_shape_with_key_vault_and_identity():
    settings = load_settings(
        {
            "ENTRA_TENANT_ID": TENANT.upper(),
            "ENTRA_CLIENT_ID": CLIENT,
            "KEY_VAULT_URL": "https://kv-sync.vault.azure.net/",
            "TABLES_ENDPOINT": "https://stsync.table.core.windows.net",
            "AZURE_CLIENT_ID": CLIENT,
            "GRAPH_BASE_URL": "https://graph.microsoft.us/",
            "ENTRA_AUTHORITY_HOST": "https://login.microsoftonline.us",
        }
    )
    assert settings.tenant_id == TENANT  # one spelling: it keys the stored rows
    assert settings.key_vault_url == "https://kv-sync.vault.azure.net"
    assert settings.graph_api_url == "https://graph.microsoft.us/v1.0"
    assert settings.authority_is_microsoft


def test_a_local_authority_is_not_microsoft():
    settings = load_settings({**LOCAL, "ENTRA_AUTHORITY_HOST": "https://localhost:8443"})
    assert not settings.authority_is_microsoft


def test_every_problem_at_once():
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "ENTRA_CLIENT_ID": "not-a-guid",
                "GRAPH_BASE_URL": "https://graph.microsoft.com/v1.0",
                "ENTRA_AUTHORITY_HOST": "http://login.example.com",
                "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true",
                "TABLES_ENDPOINT": "https://x.table.core.windows.net",
                "SYNC_SCHEDULE": "*/5 * * * *",
                "SYNC_INTERVAL_MIN_HOURS": "5",
                "SYNC_INTERVAL_MAX_HOURS": "4",
            }
        )
    text = "\n".join(caught.value.problems)
    for expected in (
        "ENTRA_TENANT_ID is not set",
        "ENTRA_CLIENT_ID is not a GUID",
        "no client secret source",
        "GRAPH_BASE_URL ends with a version segment",
        "ENTRA_AUTHORITY_HOST is not an https URL",
        "TABLES_CONNECTION_STRING and TABLES_ENDPOINT are both set",
        "SYNC_SCHEDULE is not an NCRONTAB expression of 6 fields",
        "SYNC_INTERVAL_MIN_HOURS (5) is greater than SYNC_INTERVAL_MAX_HOURS (4)",
    ):
        assert expected in text
    assert len(caught.value.problems) == 8


def test_storage_only_commands_need_no_app_registration():
    settings = load_settings(
        {"ENTRA_TENANT_ID": TENANT, "TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true"},
        needs_graph=False,
    )
    assert settings.client_id is None


def test_secrets_stay_out_of_the_repr_and_errors():
    settings = load_settings(LOCAL)
    assert "s3cr3t-value" not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        load_settings({**LOCAL, "ENTRA_TENANT_ID": "??"})
    assert "s3cr3t-value" not in str(caught.value)


def test_local_only_settings_are_the_secret_and_the_connection_string():
    local_only = {spec.name for spec in SETTINGS if spec.where is Where.LOCAL_ONLY}
    assert local_only == {"ENTRA_CLIENT_SECRET", "TABLES_CONNECTION_STRING"}


def test_a_domain_is_refused_as_tenant_id():
    with pytest.raises(SettingsError) as caught:
        load_settings({**LOCAL, "ENTRA_TENANT_ID": "contoso.onmicrosoft.com"})
    assert "is not a tenant GUID" in caught.value.problems[0]


# --- issue 8: malformed settings are settings errors that never repeat a value -----------------

AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
PASTED_SECRET = "Zq8~Xv3.Qm-9Lk2_Hs7Tb5Rn1Wc4Yd6Fg0Jp8Ue"  # the shape of an Entra client secret
BAD_SETTINGS = {
    "connection string: no key=value": (
        {"TABLES_CONNECTION_STRING": "just-some-words"},
        "TABLES_CONNECTION_STRING is not a connection string",
    ),
    "connection string: a secret pasted in": (
        {"TABLES_CONNECTION_STRING": PASTED_SECRET},
        "TABLES_CONNECTION_STRING is not a connection string",
    ),
    "connection string: key not base64": (
        {"TABLES_CONNECTION_STRING": f"AccountName=acct;AccountKey={PASTED_SECRET};"
                                     "EndpointSuffix=core.windows.net"},
        "AccountKey is not base64",
    ),
    "connection string: no account name": (
        {"TABLES_CONNECTION_STRING": f"DefaultEndpointsProtocol=https;AccountKey={AZURITE_KEY}"},
        "has no AccountName",
    ),
    "connection string: no key": (
        {"TABLES_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=acct"},
        "neither AccountKey nor SharedAccessSignature",
    ),
    "connection string: unknown key": (
        {"TABLES_CONNECTION_STRING": f"AccountName=a;AccountKey={AZURITE_KEY};Acount=x"},
        "1 unknown key(s) (acount)",
    ),
    "connection string: bad endpoint": (
        {"TABLES_CONNECTION_STRING": f"AccountName=a;AccountKey={AZURITE_KEY};"
                                     "TableEndpoint=localhost:10002"},
        "tableendpoint is not an http(s) URL",
    ),
    "connection string: development storage with more": (
        {"TABLES_CONNECTION_STRING": "UseDevelopmentStorage=true;AccountName=x"},
        "UseDevelopmentStorage=true must stand alone",
    ),
    "tables endpoint: malformed authority": (
        {"TABLES_CONNECTION_STRING": "", "TABLES_ENDPOINT": "https://[stsync.table"},
        "TABLES_ENDPOINT is not an https URL",
    ),
    "tables endpoint: http with a token": (
        {"TABLES_CONNECTION_STRING": "", "TABLES_ENDPOINT": "http://127.0.0.1:10002/acct"},
        "TABLES_ENDPOINT is not an https URL",
    ),
    "tables endpoint: port not a number": (
        {"TABLES_CONNECTION_STRING": "", "TABLES_ENDPOINT": "https://st.table.core.windows.net:x"},
        "TABLES_ENDPOINT is not an https URL",
    ),
    "key vault: a secret pasted in": ({"KEY_VAULT_URL": PASTED_SECRET}, "KEY_VAULT_URL is not"),
    "key vault: malformed": ({"KEY_VAULT_URL": "https://[kv"}, "KEY_VAULT_URL is not an https"),
    "graph: spaces": ({"GRAPH_BASE_URL": "https://graph microsoft com"}, "GRAPH_BASE_URL is not"),
    "queues endpoint": ({"QUEUES_ENDPOINT": "ftp://q"}, "QUEUES_ENDPOINT is not an https URL"),
    "blobs endpoint": ({"BLOBS_ENDPOINT": "http://b"}, "BLOBS_ENDPOINT is not an https URL"),
    "tenant: a secret pasted in": ({"ENTRA_TENANT_ID": PASTED_SECRET}, "ENTRA_TENANT_ID is not"),
    "client id: a secret pasted in": ({"ENTRA_CLIENT_ID": PASTED_SECRET}, "ENTRA_CLIENT_ID is not"),
    "identity: a secret pasted in": ({"AZURE_CLIENT_ID": PASTED_SECRET}, "AZURE_CLIENT_ID is not"),
    "schedule: a secret pasted in": ({"SYNC_SCHEDULE": PASTED_SECRET}, "SYNC_SCHEDULE is not"),
    "interval: a secret pasted in": (
        {"SYNC_INTERVAL_MIN_HOURS": PASTED_SECRET}, "SYNC_INTERVAL_MIN_HOURS is not a number"
    ),
}  # fmt: skip


@pytest.mark.parametrize(("change", "words"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_malformed_settings_name_the_setting_and_never_echo_the_value(change, words):
    with pytest.raises(SettingsError) as caught:
        load_settings({**LOCAL, **change})
    text = str(caught.value)
    assert words in text
    for value in change.values():
        if value:
            assert value not in text
    assert AZURITE_KEY not in text and PASTED_SECRET not in text


@pytest.mark.parametrize(
    "connection_string",
    [
        "UseDevelopmentStorage=true",
        "UseDevelopmentStorage=true;",
        f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={AZURITE_KEY};"
        "EndpointSuffix=core.windows.net",
        f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={AZURITE_KEY};"
        "TableEndpoint=http://azurite:10002/devstoreaccount1;",
        "TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=sv=2024&sig=x",
    ],
)
def test_well_formed_connection_strings_are_accepted(connection_string):
    settings = load_settings({**LOCAL, "TABLES_CONNECTION_STRING": connection_string})
    assert settings.tables_connection_string
