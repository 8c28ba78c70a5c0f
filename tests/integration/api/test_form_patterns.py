"""A template's form patterns over HTTP: refused when RE2 cannot run them, never slow."""

from __future__ import annotations

import time

from tests.integration.api.test_templates import URL, template_body
from tests.support.cases import Desk

CATASTROPHIC = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}},
    "patternProperties": {"^(b+)+$": {"type": "integer"}},
    "additionalProperties": False,
}


async def test_a_catastrophic_pattern_refuses_a_near_miss_at_once(desk: Desk) -> None:
    saved = await desk.http.post(
        URL, json=template_body(code="codes", form_schema=CATASTROPHIC), headers=desk.headers
    )
    assert saved.status_code == 201, saved.text
    near_miss = "a" * 28 + "!"  # seconds with a backtracking engine, exponentially more after
    began = time.perf_counter()
    response = await desk.create_case(
        template="codes", form={"code": near_miss, "b" * 28 + "!": 1, "bbb": "x"}
    )
    assert time.perf_counter() - began < 2.0
    assert response.status_code == 422, response.text
    errors = {(e["field"], e["type"]) for e in response.json()["errors"]}
    assert errors == {
        ("form", "json_schema.additionalProperties"),
        ("form.bbb", "json_schema.type"),
        ("form.code", "json_schema.pattern"),
    }
    accepted = await desk.create_case(template="codes", form={"code": "aaaa", "bb": 2})
    assert accepted.status_code == 201, accepted.text


async def test_a_pattern_re2_cannot_run_is_422_naming_the_field(desk: Desk) -> None:
    schema = {"type": "object", "properties": {"pin": {"type": "string", "pattern": "^(?=.*7)"}}}
    response = await desk.http.post(
        URL, json=template_body(code="pins", form_schema=schema), headers=desk.headers
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    [error] = response.json()["errors"]
    assert error["field"] == "form_schema.properties.pin.pattern"
    assert "RE2" in error["message"]
    assert "lookaround" in error["message"]
    missing = await desk.http.get(f"{URL}/pins", headers=desk.headers)
    assert missing.status_code == 404
