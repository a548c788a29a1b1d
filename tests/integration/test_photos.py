"""Profile photos end to end: the CLI, msgraph-sdk's adapter (JSON $batch for the metadata, GETs
for the bytes) against the simulator's photos, azure-storage-blob against Azurite's blobs."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.blob import BlobServiceClient

from sync_core.adapters import photos_graph
from sync_core.adapters.blobs import PHOTOS_CONTAINER
from sync_core.adapters.storage_names import EMPLOYEES_TABLE
from tests.integration.helpers import stored_rows, write_config

pytestmark = pytest.mark.integration

PHOTOS = {"photos": {"enabled": True, "size": "240x240"}}
CLEAN_UP = {"cleanUp": {"enabled": True, "maxDeletes": 100000, "maxDeletePercent": 100}}


@pytest.fixture(autouse=True)
def _reset_simulator(simulator):
    yield
    simulator.faults.clear()
    simulator.photos.clear_faults()


def sync(cli, *args: str) -> dict[str, Any]:
    result = cli("sync", "--json", *args)
    assert result.exit_code == 0, result.stderr + result.stdout
    return result.json


def configure(cli, tmp_path, document: dict[str, Any]) -> None:
    assert cli("config", "set", "--file", write_config(tmp_path, document)).exit_code == 0


def employees(tenant) -> list[dict[str, Any]]:
    """Users a default configuration imports (enabled members with an address; a few more are
    imported by their other addresses, so counts come from the table)."""
    return [u for u in tenant.of_kind("member") if u.get("mail")]


def stored_ids(app_env: dict[str, str], tenant_id: str) -> set[str]:
    return set(stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant_id))


def downloads(simulator, tenant_id: str) -> list[str]:
    return [
        r.path.split("/")[3]
        for r in simulator.requests
        if r.surface == "graph" and r.tenant == tenant_id and r.path.endswith("/$value")
    ]


def batched(simulator, tenant_id: str) -> list[str]:
    """The user ids whose photo metadata was read inside a $batch."""
    return [r.path.split("/")[3] for r in simulator.requests if r.surface == "batch"
            and r.tenant == tenant_id]  # fmt: skip


def blob(app_env: dict[str, str], name: str) -> tuple[bytes, str] | None:
    service = BlobServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    client = service.get_blob_client(PHOTOS_CONTAINER, name)
    if not client.exists():
        return None
    content = client.download_blob().readall()
    return content, client.get_blob_properties().content_settings.content_type


def photo_rows(app_env: dict[str, str], tenant_id: str) -> dict[str, dict[str, Any]]:
    service = TableServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    rows = service.get_table_client(EMPLOYEES_TABLE).query_entities(
        "PartitionKey eq @t and RowKey ge '~photo-' and RowKey lt '~photo.'",
        parameters={"t": tenant_id},
    )
    return {row["RowKey"].removeprefix("~photo-"): dict(row) for row in rows}


def test_photos_are_off_by_default(cli, tenant, simulator, app_env):
    simulator.photos.seed(tenant.id, [u["id"] for u in employees(tenant)])
    simulator.clear_requests()
    report = sync(cli)
    assert report["counts"]["photosChecked"] == 0
    assert not batched(simulator, tenant.id) and not downloads(simulator, tenant.id)
    assert all("PhotoBlob" not in row for row in stored_rows(app_env["TABLES_CONNECTION_STRING"],
                                                             tenant.id).values())  # fmt: skip


def test_added_changed_unchanged_and_missing_photos(cli, tenant, simulator, app_env, tmp_path):
    people = employees(tenant)
    no_photo, no_mailbox = people[0], people[1]
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    simulator.photos.remove_photo(tenant.id, no_photo["id"])
    simulator.photos.set_mailbox(tenant.id, no_mailbox["id"], exists=False)
    # Photos read in batches while Graph throttles some of them: asked again, not lost.
    simulator.photos.fail_batched(3, status=429, retry_after=0)
    configure(cli, tmp_path, PHOTOS)
    simulator.clear_requests()

    first = sync(cli)
    counts = first["counts"]
    ids = stored_ids(app_env, tenant.id)
    with_photo = [u for u in tenant.users if u["id"] in ids - {no_photo["id"], no_mailbox["id"]}]
    assert first["status"] == "succeeded"
    assert counts["photosChecked"] == len(ids)
    assert counts["photosDownloaded"] == len(with_photo)
    assert (counts["photosMissing"], counts["photosFailed"]) == (2, 0)
    # Metadata only through $batch (20 a batch, the throttled ones again), bytes one GET each.
    batch_posts = [r for r in simulator.requests if r.path == "/v1.0/$batch"]
    assert all(r.method == "POST" for r in batch_posts)
    assert len(batch_posts) >= -(-len(ids) // 20) + 1
    assert sorted(downloads(simulator, tenant.id)) == sorted(u["id"] for u in with_photo)
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    for user in with_photo:
        row = rows[user["id"]]
        assert row["PhotoBlob"] == f"{tenant.id}/{user['id']}"
        photo, _ = simulator.photos.lookup(tenant.id, user["id"])
        assert photo is not None and row["PhotoETag"] == photo.etag
        assert blob(app_env, row["PhotoBlob"]) == (photo.content, "image/jpeg")
    for user in (no_photo, no_mailbox):  # kept, without photo properties
        assert user["id"] in rows and "PhotoBlob" not in rows[user["id"]]

    # One new photo: only it is downloaded, and the row changes by its photo properties only.
    changed = with_photo[0]
    new_etag = simulator.photos.set_photo(tenant.id, changed["id"], b"\xff\xd8 new \xff\xd9")
    simulator.clear_requests()
    second = sync(cli, "--full")
    assert second["counts"]["photosDownloaded"] == 1
    assert (second["counts"]["updated"], second["counts"]["created"]) == (0, 0)
    assert downloads(simulator, tenant.id) == [changed["id"]]
    after = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert after[changed["id"]]["PhotoETag"] == new_etag
    assert after[changed["id"]]["SourceHash"] == rows[changed["id"]]["SourceHash"]
    assert after[changed["id"]]["RunId"] == rows[changed["id"]]["RunId"]  # no employee rewrite
    assert blob(app_env, f"{tenant.id}/{changed['id']}") == (b"\xff\xd8 new \xff\xd9", "image/jpeg")

    # Nothing changed: metadata read, nothing downloaded (the simulator saw no $value request).
    simulator.clear_requests()
    third = sync(cli, "--full")
    assert third["counts"]["photosDownloaded"] == 0
    assert downloads(simulator, tenant.id) == []
    assert sorted(batched(simulator, tenant.id)) == sorted(ids)


def test_delta_runs_refresh_the_photos_of_the_users_they_write(
    cli, tenant, simulator, app_env, tmp_path
):
    people = employees(tenant)
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    assert sync(cli)["counts"]["photosDownloaded"] == len(stored_ids(app_env, tenant.id))

    # An idle tick reads no photo at all.
    simulator.clear_requests()
    idle = sync(cli)
    assert idle["mode"] == "delta" and idle["counts"]["photosChecked"] == 0
    assert not batched(simulator, tenant.id) and not downloads(simulator, tenant.id)

    edited, untouched = people[0], people[1]
    simulator.patch_user(tenant.id, edited["id"], {"jobTitle": "Chief Photo Officer"})
    simulator.photos.set_photo(tenant.id, edited["id"])
    simulator.photos.set_photo(tenant.id, untouched["id"])  # not in the round: left for full
    simulator.clear_requests()
    report = sync(cli)
    assert report["mode"] == "delta" and report["counts"]["updated"] == 1
    assert batched(simulator, tenant.id) == [edited["id"]]
    assert downloads(simulator, tenant.id) == [edited["id"]]
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    photo, _ = simulator.photos.lookup(tenant.id, edited["id"])
    assert photo is not None and rows[edited["id"]]["PhotoETag"] == photo.etag
    assert rows[edited["id"]]["Title"] == "Chief Photo Officer"

    # A replaced row whose photo did not change gets its photo properties back, no download.
    simulator.patch_user(tenant.id, edited["id"], {"jobTitle": "Photo Officer"})
    simulator.clear_requests()
    assert sync(cli)["counts"]["photosDownloaded"] == 0
    assert downloads(simulator, tenant.id) == []
    row = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[edited["id"]]
    assert (row["Title"], row["PhotoETag"]) == ("Photo Officer", photo.etag)


def test_a_failed_photo_keeps_the_employee_and_the_run(cli, tenant, simulator, app_env, tmp_path):
    people = employees(tenant)
    too_big, throttled = people[0], people[1]
    simulator.photos.set_photo(tenant.id, too_big["id"], b"\xff" * (4 * 1024 * 1024 + 1))
    simulator.photos.set_photo(tenant.id, throttled["id"])
    # Throttled past every retry (1 + 5 asks): failed, not missing.
    simulator.photos.fail_batched(6, status=503, retry_after=0)
    configure(cli, tmp_path, PHOTOS)
    report = sync(cli)
    assert report["status"] == "succeeded"
    assert report["counts"]["photosFailed"] >= 1
    assert report["counts"]["created"] == len(stored_ids(app_env, tenant.id))
    assert any("photo(s) could not be read or stored" in w for w in report["warnings"])
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert "PhotoBlob" not in rows[too_big["id"]]
    assert blob(app_env, f"{tenant.id}/{too_big['id']}") is None
    # The next run tries again; the throttled one comes through.
    again = sync(cli, "--full")
    assert again["counts"]["photosFailed"] == 1  # the oversized photo, refused every time
    assert (
        "PhotoBlob" in stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[throttled["id"]]
    )


def test_clean_up_and_a_removed_photo_delete_the_blob(cli, tenant, simulator, app_env, tmp_path):
    people = employees(tenant)
    leaver, camera_shy = people[0], people[1]
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, {**PHOTOS, **CLEAN_UP})
    sync(cli)
    ids = stored_ids(app_env, tenant.id)
    assert blob(app_env, f"{tenant.id}/{leaver['id']}") is not None

    simulator.remove_user(tenant.id, leaver["id"])
    simulator.photos.remove_photo(tenant.id, camera_shy["id"])
    report = sync(cli, "--full")
    assert report["counts"]["deleted"] == 1
    assert report["counts"]["photosRemoved"] == 2
    assert blob(app_env, f"{tenant.id}/{leaver['id']}") is None
    assert blob(app_env, f"{tenant.id}/{camera_shy['id']}") is None
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert leaver["id"] not in rows
    assert "PhotoBlob" not in rows[camera_shy["id"]] and camera_shy["id"] in rows
    assert set(photo_rows(app_env, tenant.id)) == ids - {leaver["id"], camera_shy["id"]}


def test_the_transport_lets_only_a_read_only_batch_post_through():
    import httpx

    from sync_core.adapters.photos_graph import is_read_only_batch

    url = "https://graph.example/v1.0/$batch"

    def body(*methods: str) -> bytes:
        reqs = [{"id": str(i), "method": m, "url": "/users/a/photo"} for i, m in enumerate(methods)]
        return json.dumps({"requests": reqs}).encode()

    assert is_read_only_batch("POST", httpx.URL(url), body("GET", "GET"), url)
    # Only what the app builds passes: a lower-case method (another parser may not fold it), a
    # host-relative URL, a body (even null), an extra key, a method override, a duplicate key.
    assert not is_read_only_batch("POST", httpx.URL(url), body("GET", "get"), url)

    def inner(**fields: object) -> bytes:
        item = {"id": "1", "method": "GET", "url": "/users/a/photo", **fields}
        return json.dumps({"requests": [item]}).encode()

    assert is_read_only_batch("POST", httpx.URL(url), inner(headers={"Accept": "x"}), url)
    for refused in (
        inner(url="//evil.example/x"),
        inner(url="users/a/photo"),
        inner(body=None),
        inner(dependsOn=["0"], extra=1),
        inner(headers={"X-HTTP-Method-Override": "PATCH"}),
    ):
        assert not is_read_only_batch("POST", httpx.URL(url), refused, url), refused
    twice = b'{"requests": [{"id": "1", "method": "PATCH", "method": "GET", "url": "/users/a"}]}'
    assert not is_read_only_batch("POST", httpx.URL(url), twice, url)
    assert not is_read_only_batch("POST", httpx.URL(url), body("GET", "PATCH"), url)
    assert not is_read_only_batch("POST", httpx.URL(url + "?x=1"), body("GET"), url)
    assert not is_read_only_batch("POST", httpx.URL(url[:-6] + "users"), body("GET"), url)
    assert not is_read_only_batch("POST", httpx.URL(url), body(*["GET"] * 21), url)
    assert not is_read_only_batch("POST", httpx.URL(url), b"not json", url)
    absolute = json.dumps(
        {"requests": [{"id": "1", "method": "GET", "url": "https://evil.example/x"}]}
    ).encode()
    assert not is_read_only_batch("POST", httpx.URL(url), absolute, url)

    # The transport itself: a batch holding a write never leaves (nothing listens there).
    import asyncio

    from sync_core.adapters.graph_transport import GuardedTransport, ReadOnlyViolation
    from sync_core.core.ports import GraphStats

    transport = GuardedTransport(httpx.AsyncHTTPTransport(), GraphStats(), batch_url=url)
    for content in (body("GET", "get"), body("PATCH"), inner(url="//evil.example/x")):
        request = httpx.Request("POST", url, content=content)
        with pytest.raises(ReadOnlyViolation):
            asyncio.run(transport.handle_async_request(request))


def test_check_connectivity_tells_when_photos_cannot_be_read(
    cli, tenant, simulator, app_env, tmp_path
):
    configure(cli, tmp_path, PHOTOS)
    client = simulator.world.apps[0].client_id
    ok = cli("check", "--json")
    assert ok.exit_code == 0, ok.stdout
    assert "the app may read profile photos" in ok.json["passed"]
    # Directory.Read.All lists users but is not among the photo permissions of profilephoto-get.
    simulator.set_consent(tenant.id, client, ["Directory.Read.All"])
    refused = cli("check", "--json")
    assert refused.exit_code == 1
    (problem,) = refused.json["problems"]
    assert problem["code"] == "photos_forbidden" and "ProfilePhoto.Read.All" in problem["fix"]
    # A run is not failed by it: the employees are written, the photos counted as failed.
    report = sync(cli)
    assert report["counts"]["photosFailed"] == report["counts"]["photosChecked"] > 0
    assert any("ProfilePhoto.Read.All" in w for w in report["warnings"])


def test_unlinking_with_remove_employees_deletes_the_tenants_blobs(
    cli, tenant, simulator, app_env, tmp_path
):
    import asyncio

    from sync_core.app.service import SyncService
    from sync_core.app.unlink import unlink_tenant
    from sync_core.settings import load_settings

    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)  # a stored configuration: the tenant is registered
    sync(cli)
    ids = stored_ids(app_env, tenant.id)
    assert all(blob(app_env, f"{tenant.id}/{user_id}") for user_id in ids)

    # Served as a linked tenant, not the home one (the home tenant is never unlinked).
    elsewhere = {**app_env, "ENTRA_TENANT_ID": "00000000-0000-4000-8000-00000000a11c"}

    async def unlink() -> int:
        async with SyncService(load_settings(elsewhere, needs_graph=False)) as service:
            return await unlink_tenant(service, tenant.id, remove_employees=True)

    assert asyncio.run(unlink()) == len(ids)
    assert not any(blob(app_env, f"{tenant.id}/{user_id}") for user_id in ids)
    assert photo_rows(app_env, tenant.id) == {}


def test_the_employees_listing_says_where_the_photo_is(cli, tenant, simulator, app_env, tmp_path):
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    sync(cli)
    listed = cli("employees", "--json")
    assert listed.exit_code == 0, listed.stderr
    employees_ = listed.json["employees"]
    assert employees_ and all(e["PhotoBlob"] == f"{tenant.id}/{e['id']}" for e in employees_)
    assert all(e["PhotoETag"].startswith('"') for e in employees_)


def test_without_blob_storage_the_run_syncs_employees_and_says_so(
    cli, tenant, simulator, app_env, tmp_path, monkeypatch
):
    parts = app_env["TABLES_CONNECTION_STRING"].split(";")
    tables_only = ";".join(p for p in parts if not p.startswith("BlobEndpoint="))
    monkeypatch.setenv("TABLES_CONNECTION_STRING", tables_only)
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    simulator.clear_requests()
    report = sync(cli)
    assert report["counts"]["created"] > 0 and report["counts"]["photosChecked"] == 0
    assert any("no Blob Storage is configured" in w for w in report["warnings"])
    assert not batched(simulator, tenant.id)


def test_a_full_run_removes_the_photo_of_an_employee_removed_while_photos_were_off(
    cli, tenant, simulator, app_env, tmp_path
):
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, {**PHOTOS, **CLEAN_UP})
    sync(cli)
    leaver = employees(tenant)[0]
    assert blob(app_env, f"{tenant.id}/{leaver['id']}") is not None
    configure(cli, tmp_path, CLEAN_UP)  # photos off: Clean Up removes the row, not the blob
    simulator.remove_user(tenant.id, leaver["id"])
    assert sync(cli, "--full")["counts"]["deleted"] == 1
    assert blob(app_env, f"{tenant.id}/{leaver['id']}") is not None
    configure(cli, tmp_path, {**PHOTOS, **CLEAN_UP})
    report = sync(cli)  # photos on again: a full run
    assert report["mode"] == "full" and report["counts"]["photosRemoved"] == 1
    assert blob(app_env, f"{tenant.id}/{leaver['id']}") is None
    assert leaver["id"] not in photo_rows(app_env, tenant.id)


def test_a_photo_whose_blob_is_gone_is_downloaded_again(cli, tenant, simulator, app_env, tmp_path):
    # The ETag in the table is unchanged, but the blob it points at was deleted (by hand, a
    # lifecycle rule, a restored account): the signature service would follow PhotoBlob to
    # nothing, for ever, since an equal ETag alone skips the download.
    people = employees(tenant)
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    sync(cli)
    lost, edited = people[0], people[1]
    service = BlobServiceClient.from_connection_string(app_env["TABLES_CONNECTION_STRING"])
    for user in (lost, edited):
        service.get_blob_client(PHOTOS_CONTAINER, f"{tenant.id}/{user['id']}").delete_blob()

    # A delta run that writes the user checks their blob too.
    simulator.patch_user(tenant.id, edited["id"], {"jobTitle": "Blob Finder"})
    simulator.clear_requests()
    delta = sync(cli)
    assert delta["mode"] == "delta" and downloads(simulator, tenant.id) == [edited["id"]]
    assert blob(app_env, f"{tenant.id}/{edited['id']}") is not None

    simulator.clear_requests()
    full = sync(cli, "--full")
    assert full["counts"]["photosDownloaded"] == 1
    assert downloads(simulator, tenant.id) == [lost["id"]]
    photo, _ = simulator.photos.lookup(tenant.id, lost["id"])
    assert photo is not None
    assert blob(app_env, f"{tenant.id}/{lost['id']}") == (photo.content, "image/jpeg")
    row = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)[lost["id"]]
    assert row["PhotoETag"] == photo.etag


def test_a_photo_that_is_not_an_image_is_refused(cli, tenant, simulator, app_env, tmp_path):
    # The signature service serves the blob into email: a non-image (HTML, script) must never be
    # stored, let alone relabelled image/jpeg.
    people = employees(tenant)
    html, jpeg = people[0], people[1]
    simulator.photos.set_photo(
        tenant.id, html["id"], b"<script>x</script>", content_type="text/html"
    )
    simulator.photos.set_photo(tenant.id, jpeg["id"])
    configure(cli, tmp_path, PHOTOS)
    report = sync(cli)
    assert report["status"] == "succeeded"
    assert (report["counts"]["photosDownloaded"], report["counts"]["photosFailed"]) == (1, 1)
    assert any("not an image" in w for w in report["warnings"])
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    assert html["id"] in rows and "PhotoBlob" not in rows[html["id"]]
    assert blob(app_env, f"{tenant.id}/{html['id']}") is None
    assert downloads(simulator, tenant.id).count(html["id"]) == 0


def test_removing_a_photo_is_not_counted_as_a_removed_employee(cli, tenant, simulator, app_env,
                                                                tmp_path):  # fmt: skip
    # What the writer counts as "deleted" is what a run that lost its lease reports as
    # employees removed (core/run_notes.lease_lost_problem): a photo's own row is no employee.
    import asyncio

    from azure.data.tables.aio import TableServiceClient as AsyncTables
    from azure.storage.blob.aio import BlobServiceClient as AsyncBlobs

    from sync_core.adapters.blobs import PhotoBlobs
    from sync_core.adapters.photo_store import BlobPhotoStore
    from sync_core.adapters.tables.employees import TableEmployeeStore
    from sync_core.core.ports import Unfenced

    someone = employees(tenant)[0]
    simulator.photos.set_photo(tenant.id, someone["id"])
    configure(cli, tmp_path, PHOTOS)
    sync(cli)
    assert someone["id"] in photo_rows(app_env, tenant.id)
    connection = app_env["TABLES_CONNECTION_STRING"]

    async def unlink() -> int:
        async with AsyncTables.from_connection_string(connection) as tables, \
                AsyncBlobs.from_connection_string(connection) as blobs:  # fmt: skip
            writer = await TableEmployeeStore(tables).writer(tenant.id, Unfenced("no run here"))
            store = BlobPhotoStore(tables, PhotoBlobs(blobs))
            await store.unlink(writer, tenant.id, someone["id"], row_exists=True)
            await writer.flush()
            return writer.committed["deleted"]

    assert asyncio.run(unlink()) == 0
    assert someone["id"] not in photo_rows(app_env, tenant.id)
    assert someone["id"] in stored_ids(app_env, tenant.id)


def test_a_gateway_error_on_the_photo_batch_is_not_called_a_permission_problem(
    cli, tenant, simulator, app_env, tmp_path
):
    # A 502 from a gateway in front of Graph is no refusal: advising to grant ProfilePhoto.Read.All
    # sends the admin to the wrong place. The employees are synced; the photos wait.
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    simulator.faults.bad_gateway(10, path_prefix="/v1.0/$batch")
    report = sync(cli)
    assert report["status"] == "succeeded" and report["counts"]["created"] > 0
    (warning,) = [w for w in report["warnings"] if w.startswith("Photos were not refreshed")]
    assert "502" in warning
    assert "ProfilePhoto.Read.All" not in warning and "refused" not in warning


def test_a_batch_answer_without_a_list_of_responses_is_asked_again(
    cli, tenant, simulator, app_env, tmp_path
):
    # A front end that mangles the batch's body ("responses" a number, not a list) is no
    # reason to fail the run or give up on the photos: each of them is asked again.
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    first_batches = -(-len(employees(tenant)) // 20)
    simulator.faults.malformed_page("responses_not_list", first_batches, path_prefix="/v1.0/$batch")
    report = sync(cli)
    assert report["status"] == "succeeded", report["errors"]
    assert report["counts"]["photosFailed"] == 0
    counts = report["counts"]
    rows = stored_rows(app_env["TABLES_CONNECTION_STRING"], tenant.id)
    with_photo = [row for row in rows.values() if "PhotoBlob" in row]
    assert counts["photosChecked"] == len(rows)
    assert counts["photosDownloaded"] == len(with_photo) > 0
    assert counts["photosDownloaded"] + counts["photosMissing"] == len(rows)


def test_a_batch_answer_whose_json_body_comes_base64_encoded_is_read(
    cli, tenant, simulator, app_env, tmp_path
):
    # Graph inlines an inner body as JSON, or base64-encodes it; some workloads do the latter
    # for JSON too, by design (json-batching "Response format"). The metadata is the same.
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    simulator.photos.encode_batched_bodies(5)
    report = sync(cli)
    counts = report["counts"]
    assert report["status"] == "succeeded", report["errors"]
    assert counts["photosFailed"] == 0, report["warnings"]
    assert counts["photosDownloaded"] + counts["photosMissing"] == counts["photosChecked"] > 0


def test_a_photo_is_linked_in_one_transaction_or_not_at_all(tenant, app_env) -> None:
    # The photo's own row (what later runs compare Graph's ETag with) and the employee row's
    # photo properties land together: had the photo row landed alone (its transaction full,
    # the employee's merge in the next, which failed or never went as the run was killed),
    # every later run would find the ETag unchanged and the row would stay without its photo.
    from sync_core.app.service import SyncService
    from sync_core.core.lease import Unfenced
    from sync_core.core.photos import StoredPhoto
    from sync_core.settings import load_settings

    gone = "00000000-0000-4000-8000-00000000dead"  # no employee row: the merge fails

    async def scenario() -> None:
        async with SyncService(load_settings(app_env)) as service:
            store = service.photo_store()
            assert store is not None
            writer = await service.employees.writer(tenant.id, Unfenced("test"))
            for n in range(99):  # the transaction has room for one more operation
                await writer.put_entity({"PartitionKey": tenant.id, "RowKey": f"~filler-{n}"})
            photo = StoredPhoto(f"{tenant.id}/{gone}", '"etag-1"', "image/jpeg")
            await store.link(writer, tenant.id, gone, photo)
            with pytest.raises(Exception):  # noqa: B017 - the merge's failure, as classified
                await writer.flush()
            cleaner = await service.employees.writer(tenant.id, Unfenced("test"))
            for n in range(99):
                await cleaner.delete(f"~filler-{n}")
            await cleaner.flush()

    asyncio.run(scenario())
    assert gone not in photo_rows(app_env, tenant.id)


def test_a_failed_photo_batch_stops_the_batches_still_to_send(
    cli, tenant, simulator, app_env, tmp_path, monkeypatch
):
    # One batch in flight at a time, so the order is known: the first fails (a gateway's 502,
    # not retried), and the batches behind it are not sent after the photo step gave up.
    monkeypatch.setattr(photos_graph, "BATCHES_IN_FLIGHT", 1)
    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    configure(cli, tmp_path, PHOTOS)
    assert -(-len(employees(tenant)) // 20) >= 3  # batches behind the first
    simulator.faults.bad_gateway(1, path_prefix="/v1.0/$batch")
    simulator.clear_requests()
    report = sync(cli)
    assert report["status"] == "succeeded"
    assert any(w.startswith("Photos were not refreshed") for w in report["warnings"])
    assert len([r for r in simulator.requests if r.path == "/v1.0/$batch"]) == 1


def test_a_run_cancelled_while_a_failed_batch_stops_the_others_stays_cancelled(
    tenant, simulator, app_env, monkeypatch
):
    # The lease keeper cancels a run whose lease passed on (app/exclusive.py). When that comes
    # while the photo step is stopping the batches behind a failed one, the run must stop
    # cancelled, not go on as if only the photos had failed.
    from sync_core.app.service import SyncService
    from sync_core.settings import load_settings

    simulator.photos.seed(tenant.id, [u["id"] for u in tenant.users])
    simulator.faults.bad_gateway(1, path_prefix="/v1.0/$batch")
    post = photos_graph.PhotoReader._post
    outer: list[asyncio.Task[Any]] = []

    async def held_back(self: Any, user_ids: list[str], size: str) -> Any:
        if user_ids[0] == ids[0]:
            return await post(self, user_ids, size)  # the real batch: the simulator's 502
        try:
            await asyncio.Event().wait()  # a batch still in flight when the first fails
        except asyncio.CancelledError:
            outer[0].cancel()  # the lease keeper's cancel, at that very moment
            raise

    monkeypatch.setattr(photos_graph.PhotoReader, "_post", held_back)
    ids = sorted(u["id"] for u in tenant.users)

    async def scenario() -> None:
        async with SyncService(load_settings(app_env)) as service:
            directory = await service.open_directory(tenant.id)
            try:
                outer.append(asyncio.current_task())  # type: ignore[arg-type]
                await directory.photo_metadata(ids, "240x240")
            finally:
                await directory.close()

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(scenario())
