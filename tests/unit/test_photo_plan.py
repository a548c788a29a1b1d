"""The pure part of photos (core/photos.py): what Graph's answers mean, and what a run does."""

from __future__ import annotations

import pytest

from sync_core.core.config_parse import ConfigError, parse_config
from sync_core.core.photos import (
    MAX_RETRY_SECONDS,
    Outcome,
    PhotoMeta,
    StoredPhoto,
    batch_body,
    batches,
    classify,
    plan_photos,
    removed_with_employees,
    retry_delay,
)

META = {"@odata.mediaEtag": '"A1"', "@odata.mediaContentType": "image/png", "id": "240X240"}


def test_found_missing_no_mailbox_throttled_and_failed_answers():
    assert classify("u", 200, {}, META) == PhotoMeta("u", Outcome.FOUND, '"A1"', "image/png")
    assert classify("u", 404, {}, {"error": {"code": "ImageNotFound"}}).outcome is Outcome.MISSING
    no_mailbox = classify("u", 404, {}, {"error": {"code": "ErrorNonExistentMailbox"}})
    assert (no_mailbox.outcome, no_mailbox.reason) == (Outcome.MISSING, "ErrorNonExistentMailbox")
    throttled = classify("u", 429, {"retry-after": "7"}, {"error": {"code": "TooManyRequests"}})
    assert (throttled.outcome, throttled.retry_after) == (Outcome.RETRY, 7.0)
    assert classify("u", 503, {}, None).outcome is Outcome.RETRY
    assert (
        classify("u", 403, {}, {"error": {"code": "ErrorAccessDenied"}}).outcome is Outcome.FAILED
    )
    assert classify("u", 200, {}, {"id": "240X240"}).outcome is Outcome.FAILED  # no ETag


def test_retry_waits_the_longest_retry_after_else_backs_off_bounded():
    assert retry_delay([1.0, None, 4.0], attempt=0) == 4.0
    assert retry_delay([None], attempt=0) == 0.5
    assert retry_delay([None], attempt=3) == 4.0
    assert retry_delay([3600.0], attempt=0) == MAX_RETRY_SECONDS


def test_batches_hold_twenty_metadata_gets():
    ids = [f"u{n}" for n in range(45)]
    assert [len(b) for b in batches(ids)] == [20, 20, 5]
    body = batch_body(["a", "b"], "96x96")
    assert body["requests"][1] == {"id": "1", "method": "GET", "url": "/users/b/photos/96x96"}


def test_only_new_or_changed_photos_are_downloaded():
    stored = {
        "same": StoredPhoto("t/same", '"1"', "image/jpeg"),
        "changed": StoredPhoto("t/changed", '"1"', "image/jpeg"),
        "gone": StoredPhoto("t/gone", '"1"', "image/jpeg"),
        "failing": StoredPhoto("t/failing", '"1"', "image/jpeg"),
    }
    metas = [
        PhotoMeta("same", Outcome.FOUND, '"1"'),
        PhotoMeta("changed", Outcome.FOUND, '"2"'),
        PhotoMeta("new", Outcome.FOUND, '"1"'),
        PhotoMeta("gone", Outcome.MISSING),
        PhotoMeta("never", Outcome.MISSING),
        PhotoMeta("failing", Outcome.FAILED, reason="HTTP 500"),
    ]
    plan = plan_photos(metas, stored, rewritten=set())
    assert [m.user_id for m in plan.downloads] == ["changed", "new"]
    assert plan.unlink == ("gone",)
    assert (plan.unchanged, plan.missing, len(plan.failed)) == (1, 2, 1)
    assert plan.relink == ()


def test_a_replaced_row_gets_its_unchanged_or_failing_photo_back_without_a_download():
    stored = {
        "same": StoredPhoto("t/same", '"1"', "image/jpeg"),
        "failing": StoredPhoto("t/failing", '"1"', "image/jpeg"),
    }
    metas = [PhotoMeta("same", Outcome.FOUND, '"1"'), PhotoMeta("failing", Outcome.FAILED)]
    plan = plan_photos(metas, stored, rewritten={"same", "failing"})
    assert plan.downloads == ()
    assert plan.relink == (("same", stored["same"]), ("failing", stored["failing"]))


def test_clean_up_takes_the_photos_of_removed_employees():
    stored = {"a": StoredPhoto("t/a", '"1"', "image/jpeg")}
    assert removed_with_employees(["a", "b"], stored) == ["a"]
    # A full run also finds photos whose employee is gone without the photo step seeing it.
    stored["orphan"] = StoredPhoto("t/orphan", '"1"', "image/jpeg")
    stored["kept"] = StoredPhoto("t/kept", '"1"', "image/jpeg")
    assert removed_with_employees(["a"], stored, {"a", "kept"}) == ["a", "orphan"]


def test_photos_configuration_is_off_by_default_and_sizes_are_graphs():
    assert parse_config({}).photos.enabled is False
    assert parse_config({"photos": {"enabled": True, "size": "648x648"}}).photos.size == "648x648"
    with pytest.raises(ConfigError) as refused:
        parse_config({"photos": {"enabled": True, "size": "1024x1024"}})
    assert "$.photos.size" in str(refused.value) and "648x648" in str(refused.value)
    with pytest.raises(ConfigError) as refused:
        parse_config({"fields": [{"name": "PhotoBlob", "source": "displayName"}]})
    assert "reserved" in str(refused.value)


def test_a_connection_string_gives_blobs_only_where_it_names_or_implies_them():
    from sync_core.adapters.blobs import has_blob_endpoint

    key = "AccountKey=a2V5"
    assert has_blob_endpoint("UseDevelopmentStorage=true")
    assert has_blob_endpoint(f"AccountName=dev;{key};BlobEndpoint=http://127.0.0.1:1/dev;")
    assert has_blob_endpoint(f"DefaultEndpointsProtocol=https;AccountName=st;{key}")
    assert not has_blob_endpoint(f"AccountName=dev;{key};TableEndpoint=http://127.0.0.1:1/dev")


def test_the_text_report_shows_photos_only_when_they_were_kept():
    from datetime import UTC, datetime

    from sync_core.core.report import Counts, RunReport, RunStatus, Trigger
    from sync_core.core.report_text import render_text

    at = datetime(2026, 12, 2, tzinfo=UTC)
    report = RunReport.begun(
        "r", "t", RunStatus.SUCCEEDED, dry_run=False, trigger=Trigger.CLI, at=at
    )
    assert "Photos" not in render_text(report)
    counts = Counts(photosChecked=10, photosDownloaded=2, photosMissing=3, photosFailed=1)
    shown = render_text(RunReport(**{**report.__dict__, "counts": counts}))
    assert "Photos checked" in shown and "downloaded 2, missing 3, failed 1" in shown
    assert (
        RunReport.from_json(report.to_json() | {"counts": {"photosFailed": 4}}).counts.photosFailed
        == 4
    )
