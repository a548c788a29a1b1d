"""docs/api.md's examples against the real answers of the handlers (issue 17): each example has
the keys the answer has, values of the same JSON type, and, where the answer does not depend on
the moment or the tenant (the error wording, the schedule's defaults, the explanation's words),
the same values. An example that drifts from the code fails here."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from functions_harness import call

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ELLIPSIS = "..."  # a documented `"...": "..."` stands for more keys


def examples(heading: str) -> list[str]:
    """The fenced blocks under the `## heading...` section of docs/api.md."""
    text = (ROOT / "docs" / "api.md").read_text()
    section = re.split(r"^## ", text, flags=re.MULTILINE)
    body = next(part for part in section if part.startswith(heading))
    return re.findall(r"^```[a-z]*\n(.*?)^```", body, flags=re.MULTILINE | re.DOTALL)


def json_example(heading: str) -> Any:
    for block in examples(heading):
        start = block.find("{")
        if start >= 0 and not block.lstrip().startswith(("curl", "#")):
            return json.loads(block[start:])
    raise AssertionError(f"no JSON example under {heading!r}")


def assert_same_shape(documented: Any, real: Any, where: str = "$") -> None:
    """Documented keys exist in the answer and nothing else does (unless the example says
    `...`); values have the answer's JSON type (a documented null: the answer may be null)."""
    if isinstance(documented, dict):
        assert isinstance(real, dict), f"{where}: documented an object, got {real!r}"
        keys = set(documented) - {ELLIPSIS}
        missing = keys - set(real)
        assert not missing, f"{where}: documented keys the answer lacks: {sorted(missing)}"
        if ELLIPSIS not in documented:
            extra = set(real) - keys
            assert not extra, f"{where}: answer keys the example lacks: {sorted(extra)}"
        for key in keys:
            assert_same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert isinstance(real, list), f"{where}: documented a list, got {real!r}"
        for index, item in enumerate(documented):
            if not real:
                continue
            assert_same_shape(item, _counterpart(item, real), f"{where}[{index}]")
    elif documented is not None and real is not None and documented != ELLIPSIS:
        kind = (bool,) if isinstance(documented, bool) else (int, float)
        kind = (str,) if isinstance(documented, str) else kind
        assert isinstance(real, kind) and isinstance(real, bool) == isinstance(documented, bool), (
            f"{where}: documented {documented!r}, got {real!r}"
        )


def _counterpart(item: Any, real: list[Any]) -> Any:
    """The answer's element a documented one describes: same `step`, `source` or `column`."""
    if isinstance(item, dict):
        for key in ("step", "source", "column"):
            if key in item:
                match = [r for r in real if isinstance(r, dict) and r.get(key) == item[key]]
                assert match, f"the answer has no element with {key} {item[key]!r}"
                return match[0]
    return real[0]


def test_the_error_example_is_the_real_answer(app_env) -> None:
    documented = json_example("Errors")
    real = call("sync_now", "POST", body={"dryRun": "yes"})
    assert real.status == 400
    assert real.json == documented


def test_the_sync_now_example_has_the_real_answers_shape(app_env, tenant, sync_queue) -> None:
    block = next(b for b in examples("Sync Now") if b.startswith("HTTP/1.1"))
    head, _, body = block.partition("\n\n")
    real = call("sync_now", "POST", body={"tenantId": tenant.id})
    assert f"HTTP/1.1 {real.status} " in head
    assert f"Retry-After: {real.headers['Retry-After']}" in head
    assert_same_shape(json.loads(body), real.json)


def test_the_status_example_has_the_real_answers_shape_and_default_intervals(
    app_env, tenant, cli
) -> None:
    assert cli("sync").exit_code == 0  # a last run and a last success to compare with
    documented = json_example("Status")
    real = call("status").json
    # The schedule's defaults are the app's own: every tick (0.25 h).
    assert documented["schedule"] == real["schedule"]
    assert documented["intervalHours"] == real["intervalHours"]
    entry = next(t for t in real["tenants"] if t["tenantId"] == tenant.id)
    assert documented["tenants"][0]["intervalHours"] == entry["intervalHours"]
    assert_same_shape(documented["tenants"][0], entry, "$.tenants[0]")
    assert_same_shape({**documented, "tenants": []}, real)


def test_the_explain_example_has_the_real_answers_shape_and_words(
    app_env, tenant, cli, simulator
) -> None:
    user = tenant.of_kind("member")[0]
    assert cli("sync").exit_code == 0
    simulator.patch_user(tenant.id, user["id"], {"jobTitle": "Retail Manager"})
    documented = json_example("Explain one user")
    real = call("explain_user", "GET", {"tenantId": tenant.id, "user": user["id"]})
    assert real.status == 200, real.text
    answer = real.json
    assert_same_shape(documented, answer)
    # Words that do not depend on the user are the app's own.
    assert documented["scope"]["summary"] == answer["scope"]["summary"]
    assert documented["cleanUp"] == answer["cleanUp"]
    assert documented["outcome"] == answer["outcome"]
    for step in documented["scope"]["steps"]:
        assert step == _counterpart(step, answer["scope"]["steps"])
    off = documented["address"]["sources"][-1]
    assert off == _counterpart(off, answer["address"]["sources"])
    assert [c["column"] for c in documented["changes"]] == [c["column"] for c in answer["changes"]]
