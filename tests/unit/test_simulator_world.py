"""World files: loading, validation that reports every problem, and the live directory."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from simulator import World, WorldError
from simulator.directory import Directory, Paging

FIXTURE = Path(__file__).parents[1] / "fixtures" / "simulator_world.json"


def test_fixture_world_round_trips() -> None:
    world = World.load(FIXTURE)
    assert World.from_dict(world.to_dict()) == world
    assert "secrets" not in repr(world.apps[0])  # secrets stay out of reprs and logs


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(WorldError) as raised:
        World.from_dict(
            {
                "apps": [{"clientId": "nope", "secrets": []}],
                "managedIdentity": {"clientId": "also-nope", "tenantId": None},
                "tenants": [
                    {
                        "id": "11111111-2222-4333-8444-555555555555",
                        "consents": {"x": "User.Read.All"},
                        "users": [{"id": "a", "userPrincipalName": "a@x"}, {"id": "A"}, {}],
                    },
                    {"id": "11111111-2222-4333-8444-555555555555"},
                ],
            }
        )
    text = str(raised.value)
    for fragment in (
        "apps[0].clientId must be a GUID",
        "apps[0].secrets",
        "managedIdentity.clientId",
        "managedIdentity.tenantId",
        "'x' is not a client id",
        "must be a list of role names",
        "users[1] (A) needs a 'userPrincipalName'",
        "users[2] needs a string 'id'",
        "duplicate user id",
        "duplicate tenant id",
    ):
        assert fragment in text, fragment


def test_directory_finds_tenants_by_id_or_domain_and_users_by_upn() -> None:
    world = World.load(FIXTURE)
    directory = Directory(world)
    tenant = world.tenants[0]
    assert directory.find_tenant(tenant.id.upper()).id == tenant.id
    assert directory.find_tenant("CONTOSO.onmicrosoft.com").id == tenant.id
    assert directory.find_tenant("fabrikam.com") is None
    assert directory.user(tenant.id, "Adele.Vance@contoso.com")["displayName"] == "Adele Vance"


def test_directory_pages_by_id_and_patches_copy_on_write() -> None:
    world = World.load(FIXTURE)
    directory = Directory(world)
    tenant = world.tenants[0].id
    first = directory.page(tenant, None, lambda _u: True, 4)
    assert len(first.users) == 4 and first.more
    before = first.users[0]
    directory.patch_user(tenant, before["id"], {"jobTitle": "CEO", "mobilePhone": None})
    assert before["jobTitle"] == "Retail Manager"  # a page already handed out does not change
    assert directory.user(tenant, before["id"])["jobTitle"] == "CEO"
    assert "mobilePhone" not in directory.user(tenant, before["id"])
    rest = directory.page(tenant, first.last_id, lambda _u: True, 4)
    assert len(rest.users) == 2 and not rest.more
    assert directory.count(tenant, lambda u: u.get("userType") == "Guest") == 1


def test_credentials_on_apps_and_vault_attributes_are_validated_and_round_trip() -> None:
    from simulator.certs import make_client_certificate

    certificate = make_client_certificate("unit")
    base = World.load(FIXTURE).to_dict()
    app = base["apps"][0]
    app["secrets"] = [{"value": "s1", "endDateTime": "2027-01-31T00:00:00Z"}, "s2"]
    app["keyCredentials"] = [{"key": certificate.certificate_pem}]
    app["federatedIdentityCredentials"] = [
        {"name": "mi", "issuer": "https://issuer/v2.0", "subject": "abc"}
    ]
    app["redirectUris"] = ["https://sync.example.com/cb"]
    base["keyVault"]["secrets"]["cert"] = {
        "value": certificate.pem,
        "contentType": "application/x-pem-file",
        "expires": "2027-02-01T00:00:00Z",
    }
    world = World.from_dict(base)
    loaded = world.apps[0]
    assert loaded.secrets == ("s1", "s2")
    assert loaded.password_credentials[0].end.year == 2027
    assert loaded.key_credentials[0].end == certificate.not_after.replace(microsecond=0)
    assert loaded.federated_credentials[0].audiences == ("api://AzureADTokenExchange",)
    assert world.key_vault.attributes["cert"].expires.month == 2
    assert World.from_dict(world.to_dict()) == world
    assert "s1" not in repr(world) and "PRIVATE" not in repr(world)

    app["secrets"] = [{"value": "s1", "endDateTime": "soon"}]
    app["keyCredentials"] = [{"key": "not a certificate"}]
    app["federatedIdentityCredentials"] = [{"issuer": "https://issuer/v2.0"}]
    base["keyVault"]["secrets"]["cert"] = {"value": "x", "expires": "tomorrow"}
    with pytest.raises(WorldError) as raised:
        World.from_dict(base)
    text = str(raised.value)
    for fragment in (
        "apps[0].secrets[0].endDateTime must be an ISO 8601 date-time",
        "apps[0].keyCredentials[0].key is not an X.509 certificate",
        "apps[0].federatedIdentityCredentials[0] needs 'subject'",
        "keyVault.secrets['cert'].expires must be an ISO 8601 date-time",
    ):
        assert fragment in text, fragment


def test_directory_pages_can_be_smaller_than_top_and_repeat_users() -> None:
    world = World.load(FIXTURE)
    directory = Directory(world)
    tenant = world.tenants[0].id
    everyone = directory.page(tenant, None, lambda _u: True, 999).users
    directory.set_paging(tenant, Paging(max_page_size=3, repeat_previous=1))
    pages, after, more = [], None, True
    while more:
        page = directory.page(tenant, after, lambda _u: True, 999)
        pages.append([u["id"] for u in page.users])
        after, more = page.last_id, page.more
    assert all(len(ids) <= 3 for ids in pages) and len(pages) > 1
    # Each next page starts with the last user of the page before; nobody is lost.
    assert all(later[0] == earlier[-1] for earlier, later in itertools.pairwise(pages))
    assert sorted({i for ids in pages for i in ids}) == sorted(u["id"] for u in everyone)
    directory.set_paging(tenant, Paging())
    assert len(directory.page(tenant, None, lambda _u: True, 999).users) == len(everyone)
