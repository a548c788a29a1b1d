"""A listing page is used only when it proves itself: the shape of every page, and next links
that stay on the listing and move forward."""

from __future__ import annotations

import json

import pytest

from sync_core.adapters.errors import GraphRequestError
from sync_core.adapters.graph_pages import (
    MAX_LISTING_RESTARTS,
    PageTrail,
    is_expired_page_token,
    parse_users_page,
    refuses_advanced_query,
)
from sync_core.errors import SyncError

FIRST = "https://graph.microsoft.com/v1.0/users?$select=id,mail&$top=999"


def page(body: object) -> bytes:
    return json.dumps(body).encode()


def test_a_well_formed_page_gives_its_users_and_next_link():
    link = FIRST + "&$skiptoken=abc"
    parsed = parse_users_page(page({"value": [{"id": "u1"}], "@odata.nextLink": link}), 1)
    assert parsed.users == [{"id": "u1"}] and parsed.next_link == link
    last = parse_users_page(page({"@odata.context": "x", "value": []}), 3)
    assert last.users == [] and last.next_link is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(None, "no body", id="204 or empty body"),
        pytest.param(b"", "no body", id="empty bytes"),
        pytest.param(b"<html>proxy login</html>", "not JSON", id="html"),
        pytest.param(page([{"id": "u1"}]), "not a JSON object", id="list body"),
        pytest.param(page({"@odata.context": "x"}), "no 'value'", id="missing value"),
        pytest.param(page({"value": None}), "'value' is not a list", id="null value"),
        pytest.param(page({"value": {"id": "u1"}}), "'value' is not a list", id="object value"),
        pytest.param(page({"value": ["u1"]}), "item 1 is not an object", id="string item"),
        pytest.param(
            page({"value": [{"id": "a"}, {"mail": "x"}]}), "item 2 has no 'id'", id="no id"
        ),
        pytest.param(page({"value": [{"id": ""}]}), "item 1 has no 'id'", id="empty id"),
        pytest.param(page({"value": [{"id": 7}]}), "item 1 has no 'id'", id="numeric id"),
    ],
)
def test_a_page_that_is_not_a_users_collection_fails_the_read(content, problem):
    with pytest.raises(SyncError) as raised:
        parse_users_page(content, 2)
    assert raised.value.code == "graph_malformed_page"
    assert problem in raised.value.message and "page 2" in raised.value.message
    assert "deleted nothing" in raised.value.message and raised.value.fix


def test_a_next_link_that_is_not_a_string_is_refused():
    with pytest.raises(SyncError) as raised:
        parse_users_page(page({"value": [], "@odata.nextLink": {"href": FIRST}}), 1)
    assert raised.value.code == "graph_unexpected_next_link"


@pytest.mark.parametrize(
    "link",
    [
        pytest.param("https://graph.example.net/v1.0/users?$skiptoken=a", id="other host"),
        pytest.param("http://graph.microsoft.com/v1.0/users?$skiptoken=a", id="other scheme"),
        pytest.param("https://graph.microsoft.com:8443/v1.0/users?$skiptoken=a", id="other port"),
        pytest.param("https://graph.microsoft.com/v1.0/groups?$skiptoken=a", id="other path"),
        pytest.param("/v1.0/users?$skiptoken=a", id="relative"),
    ],
)
def test_a_next_link_away_from_the_listing_is_refused(link):
    with pytest.raises(SyncError) as raised:
        PageTrail(FIRST).follow(link)
    assert raised.value.code == "graph_unexpected_next_link"


def test_next_links_that_move_forward_are_followed_and_the_host_compares_without_case():
    trail = PageTrail(FIRST)
    trail.follow(FIRST + "&$skiptoken=a")
    trail.follow("https://GRAPH.microsoft.com/v1.0/users?$select=id,mail&$top=999&$skiptoken=b")
    trail.follow(None)
    assert trail.page_number == 3


@pytest.mark.parametrize(
    "links",
    [
        pytest.param([FIRST], id="the first page links to itself"),
        pytest.param([FIRST + "&$skiptoken=a", FIRST + "&$skiptoken=a"], id="same link twice"),
        pytest.param([FIRST + "&$top=5"], id="no page token, as the first page"),
        pytest.param(
            [FIRST + "&$skiptoken=a", FIRST + "&$skiptoken=b", FIRST + "&%24skiptoken=a"],
            id="an earlier token again",
        ),
    ],
)
def test_a_next_link_without_a_new_page_token_is_a_loop(links):
    trail = PageTrail(FIRST)
    with pytest.raises(SyncError) as raised:
        for link in links:
            trail.follow(link)
    assert raised.value.code == "graph_pagination_loop"


def test_which_graph_errors_restart_or_downgrade_the_listing():
    expired = GraphRequestError(400, "Directory_ExpiredPageToken", "expired")
    assert is_expired_page_token(expired)
    assert not is_expired_page_token(GraphRequestError(400, "Request_BadRequest", "x"))
    b2c = GraphRequestError(
        400, "Request_BadRequest", "This request is not supported by the service"
    )
    assert refuses_advanced_query(b2c)
    assert not refuses_advanced_query(GraphRequestError(400, "Request_UnsupportedQuery", "x"))
    assert not refuses_advanced_query(GraphRequestError(403, "Request_BadRequest", "x"))
    assert MAX_LISTING_RESTARTS == 2
