"""Connector manifests: the built-ins parse, and a bad one lists every problem with its path."""

from __future__ import annotations

from typing import Any

import pytest

from casedesk.integrations.catalogue import builtin_manifests
from casedesk.integrations.manifests import ManifestInvalid, load_manifest, parse_manifest
from casedesk.integrations.manifests.polling import PollingSpec


def test_the_built_in_connectors_parse() -> None:
    manifests = builtin_manifests()
    assert {"webhook", "rest"} <= set(manifests)
    assert manifests["webhook"].triggers["delivery"].kind == "instant"
    assert manifests["rest"].triggers["new_item"].kind == "polling"


def test_a_bad_manifest_lists_every_problem_with_its_path() -> None:
    raw: dict[str, Any] = {
        "id": "Bad Id",
        "name": "",
        "auth": {"type": "oauth2_code", "token_url": "{{ unclosed"},
        "actions": {
            "make": {"request": {"method": "BREW", "path": "/x"}, "input": {"type": 7}},
        },
        "triggers": {"poll": {"kind": "polling", "polling": {"items": "a[", "request": {}}}},
    }
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(raw)
    paths = {problem.path for problem in caught.value.problems}
    assert {
        "id",
        "name",
        "auth.oauth2_code.authorize_url",
        "auth.oauth2_code.token_url",
        "actions.make.request.method",
        "actions.make.input",
        "triggers.poll.polling.request.path",
        "triggers.poll.polling.items",
    } <= paths


def test_references_inside_a_manifest_must_resolve() -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(
            {
                "id": "svc",
                "name": "Service",
                "auth": {"type": "bearer"},
                "triggers": {
                    "new": {
                        "kind": "polling",
                        "enricher": "fetch",
                        "polling": {"request": {"path": "/items"}},
                    }
                },
            }
        )
    message = str(caught.value)
    assert "secret field 'token' is not in connection.secrets" in message
    assert "triggers.new.enricher: no enricher 'fetch'" in message


def test_choosing_or_joining_the_enriched_items_needs_an_enricher() -> None:
    trigger = {"kind": "instant", "enriched_as": "file", "instant": {"event_id": "id"}}
    with pytest.raises(ManifestInvalid, match="enrich_when and enriched_as need an enricher"):
        parse_manifest({"id": "s", "name": "S", "triggers": {"t": trigger}})


def test_a_trigger_has_exactly_its_own_section() -> None:
    with pytest.raises(ManifestInvalid, match="needs its `instant` section"):
        parse_manifest({"id": "s", "name": "S", "triggers": {"t": {"kind": "instant"}}})


def test_a_subscription_may_override_only_what_the_trigger_allows() -> None:
    trigger = builtin_manifests()["rest"].triggers["new_item"]
    spec = trigger.effective({"path": "/tickets", "items": "data.items", "item_id": "key"})
    assert isinstance(spec, PollingSpec)
    assert (spec.items, spec.item_id) == ("data.items", "key")
    with pytest.raises(ManifestInvalid) as caught:
        trigger.effective({"items": "data[", "interval_seconds": 1})
    assert {p.path for p in caught.value.problems} == {
        "settings.items",
        "settings.interval_seconds",
    }


def test_yaml_that_is_not_yaml_says_where() -> None:
    with pytest.raises(ManifestInvalid, match="line 2"):
        load_manifest("id: x\n  name: [unclosed\n")


@pytest.mark.parametrize(
    ("connector", "default"),
    [
        ("gmail", "https://gmail.googleapis.com/gmail/v1"),
        ("outlook", "https://graph.microsoft.com/v1.0"),
        ("teams", "https://graph.microsoft.com/v1.0"),
        ("slack", "https://slack.com/api"),
    ],
)
def test_a_channel_connection_without_a_base_url_calls_the_provider_itself(
    connector: str, default: str
) -> None:
    """Real connections leave ``base_url`` out; only tests point it at a local server."""
    from casedesk.integrations.catalogue import builtin
    from casedesk.integrations.expressions import render

    manifest = builtin(connector)
    assert manifest is not None
    assert manifest.base_url is not None
    assert render(manifest.base_url, {"connection": {}}) == default
    local = {"connection": {"base_url": "http://127.0.0.1:9/api"}}
    assert render(manifest.base_url, local) == "http://127.0.0.1:9/api"
