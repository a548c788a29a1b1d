"""The simulator's photos and JSON batching, straight over HTTP with a real token: what
simulator/photos.py and simulator/batch.py promise (from profilephoto-get and json-batching)."""

from __future__ import annotations

import base64
import ssl
from typing import Any

import httpx
import pytest
from azure.identity import ClientSecretCredential

pytestmark = pytest.mark.integration


def token(simulator, tenant) -> str:
    app = simulator.world.apps[0]
    credential = ClientSecretCredential(
        tenant.id,
        app.client_id,
        app.secrets[0],
        authority=simulator.base_url,
        disable_instance_discovery=True,  # the simulator is not a Microsoft authority
    )
    return credential.get_token(f"{simulator.base_url}/.default").token


@pytest.fixture
def graph(simulator, tenant):
    bearer = token(simulator, tenant)
    trust = ssl.create_default_context(cafile=str(simulator.ca.ca_path))
    with httpx.Client(
        base_url=f"{simulator.base_url}/v1.0",
        headers={"Authorization": f"Bearer {bearer}"},
        verify=trust,
    ) as client:
        yield client
    simulator.photos.clear_faults()


def batch(graph: httpx.Client, urls: list[str]) -> dict[str, Any]:
    requests = [{"id": str(n), "method": "GET", "url": url} for n, url in enumerate(urls)]
    answer = graph.post("/$batch", json={"requests": requests})
    assert answer.status_code == 200, answer.text
    return {r["id"]: r for r in answer.json()["responses"]}


def test_metadata_value_sizes_and_a_new_etag(simulator, tenant, graph):
    user = tenant.users[0]["id"]
    etag = simulator.photos.set_photo(tenant.id, user, b"jpeg-bytes", pixels=240)
    meta = graph.get(f"/users/{user}/photos/240x240").json()
    assert (meta["@odata.mediaEtag"], meta["id"], meta["width"]) == (etag, "240X240", 240)
    assert meta["@odata.mediaContentType"] == "image/jpeg"
    assert graph.get(f"/users/{user}/photo").json()["id"] == "240X240"  # the largest there is
    value = graph.get(f"/users/{user}/photos/240x240/$value")
    assert value.content == b"jpeg-bytes" and value.headers["content-type"] == "image/jpeg"
    larger = graph.get(f"/users/{user}/photos/648x648")
    assert (larger.status_code, larger.json()["error"]["code"]) == (404, "ImageNotFound")
    assert graph.get(f"/users/{user}/photos/100x100").status_code == 400
    assert simulator.photos.set_photo(tenant.id, user, b"jpeg-bytes", pixels=240) != etag


def test_batch_answers_each_request_with_its_own_status(simulator, tenant, graph):
    with_photo, without, no_mailbox = (u["id"] for u in tenant.users[:3])
    simulator.photos.set_photo(tenant.id, with_photo, b"x")
    simulator.photos.set_mailbox(tenant.id, no_mailbox, exists=False)
    answers = batch(
        graph,
        [
            f"/users/{with_photo}/photos/96x96",
            f"/users/{without}/photos/96x96",
            f"/users/{no_mailbox}/photos/96x96",
            f"/users/{with_photo}/photos/96x96/$value",
            f"/users/{with_photo}",
        ],
    )
    assert answers["0"]["status"] == 200 and answers["0"]["body"]["@odata.mediaEtag"]
    assert answers["1"]["body"]["error"]["code"] == "ImageNotFound"
    assert answers["2"]["body"]["error"]["code"] == "ErrorNonExistentMailbox"
    assert base64.b64decode(answers["3"]["body"]) == b"x"
    assert answers["4"]["status"] == 501  # not modelled inside a batch: said, not guessed
    inner = [r for r in simulator.requests if r.surface == "batch" and r.tenant == tenant.id]
    assert len(inner) == 5


def test_batch_throttles_inner_requests_with_retry_after_and_refuses_21(simulator, tenant, graph):
    user = tenant.users[0]["id"]
    simulator.photos.fail_batched(1, status=429, retry_after=7)
    answers = batch(graph, [f"/users/{user}/photos/48x48", f"/users/{user}/photos/48x48"])
    assert (answers["0"]["status"], answers["0"]["headers"]["Retry-After"]) == (429, "7")
    assert answers["1"]["status"] == 404  # only the one fault: the next request is answered
    many = [{"id": str(n), "method": "GET", "url": f"/users/{user}/photo"} for n in range(21)]
    refused = graph.post("/$batch", json={"requests": many})
    assert refused.status_code == 400 and "20" in refused.json()["error"]["message"]


def test_batched_photo_reads_need_a_photo_permission(simulator, tenant, graph):
    user = tenant.users[0]["id"]
    simulator.set_consent(tenant.id, simulator.world.apps[0].client_id, ["Directory.Read.All"])
    # The token is the one issued before: roles are read from it, so ask for a new one.
    graph.headers["Authorization"] = f"Bearer {token(simulator, tenant)}"
    answers = batch(graph, [f"/users/{user}/photo"])
    assert answers["0"]["status"] == 403
    assert graph.get(f"/users/{user}/photo").status_code == 403
