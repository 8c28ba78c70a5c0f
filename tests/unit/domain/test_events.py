"""Event types are declared by their producers; envelopes are CloudEvents 1.0, as the
reference SDK reads and writes them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.formats.json import JSONFormat

from casedesk.domain.events import CASE, EVENTS, EventTypes, Subject, new_event, subject_type_of
from casedesk.kit.tracing import new_trace
from casedesk.worker.relay import to_message


def test_types_are_declared_once_with_their_subject_and_fields() -> None:
    types = EventTypes()
    declared = types.declare("connection.needs_reauth", "connection", "token revoked", ("why",))
    assert types.declare("connection.needs_reauth", "connection", "token revoked", ("why",)) == (
        declared
    )
    with pytest.raises(ValueError, match="already declared differently"):
        types.declare("connection.needs_reauth", "execution", "token revoked")
    for bad in ("connection", "connection.*", ".x"):
        with pytest.raises(ValueError, match=r"<family>\.<what happened>"):
            types.declare(bad, "connection", "")
    types.declare("execution.failed", "execution", "a run failed")
    assert types.names() == ["connection.needs_reauth", "execution.failed"]
    assert types.names(subject="execution") == ["execution.failed"]
    assert types.families() == ["connection.*", "execution.*"]
    assert "execution.failed" in types
    assert types.get("execution.nope") is None


def test_the_product_declares_every_case_event_and_rules_can_see_sla_ones() -> None:
    assert {"case.created", "comment.added", "sla.warning", "sla.breached"} <= set(
        EVENTS.names(subject=CASE)
    )
    assert "sla.*" in EVENTS.families(subject=CASE)
    sla = EVENTS.get("sla.breached")
    assert sla is not None
    assert sla.fields == ("metric", "target_at")


def test_an_event_about_an_undeclared_type_or_another_subject_cannot_be_made() -> None:
    subject = Subject("connection", uuid.uuid4(), {"name": "gmail"})
    with pytest.raises(ValueError, match="not a declared event type about a connection"):
        new_event(uuid.uuid4(), "case.created", subject, {}, new_trace())


def _event_about(subject: Subject) -> bytes:
    tenant = uuid.uuid4()
    row = new_event(tenant, "case.updated", subject, {"changes": {"title": {}}}, new_trace())
    row.id, row.time = 42, datetime(2026, 12, 2, 10, 30, 5, 123456, tzinfo=UTC)
    return to_message(row).body


def test_envelopes_are_cloudevents_the_reference_sdk_reads_and_writes_alike() -> None:
    case_id = uuid.uuid4()
    ours = _event_about(Subject(CASE, case_id, {"id": str(case_id), "number": 7}))
    event = JSONFormat().read(None, ours)
    attributes = event.get_attributes()
    assert attributes["specversion"] == "1.0"
    assert attributes["type"] == "case.updated"
    assert attributes["subject"] == str(case_id)
    assert attributes["source"].endswith("/cases")
    assert attributes["time"] == datetime(2026, 12, 2, 10, 30, 5, 123456, tzinfo=UTC)
    assert event.get_extension("sequence") == "42"
    assert event.get_extension("traceparent").startswith("00-")
    assert event.get_data() == orjson.loads(ours)["data"]
    theirs = orjson.loads(JSONFormat().write(event))
    mine = orjson.loads(ours)
    assert theirs.pop("time").replace("+00:00", "Z") == mine.pop("time")
    assert theirs == mine


def test_a_kept_envelope_says_what_its_subject_is() -> None:
    assert subject_type_of({"source": "/tenants/x/cases"}) == CASE
    assert subject_type_of({"source": "/tenants/x/connections"}) == "connection"
    assert subject_type_of({}) == CASE
