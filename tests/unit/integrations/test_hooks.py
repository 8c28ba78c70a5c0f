"""Reading and checking hook deliveries: the providers' own documented examples verify."""

from __future__ import annotations

import pytest

from casedesk.integrations import hooks
from casedesk.integrations.hooks import Delivery, DeliveryNotAuthentic, MalformedDelivery
from casedesk.integrations.manifests.instant import InstantSpec

# Slack's "Verifying requests from Slack" walk-through: secret, timestamp, body, signature.
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TIMESTAMP = 1531420618
SLACK_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id="
    "G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-"
    "collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700"
    "885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2"
    "c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK_VERIFY = {
    "type": "hmac",
    "header": "X-Slack-Signature",
    "prefix": "v0=",
    "base": "v0:{{ timestamp }}:{{ body }}",
    "timestamp_header": "X-Slack-Request-Timestamp",
}
# GitHub's "Validating webhook deliveries" test values.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
GITHUB_VERIFY = {"type": "hmac", "header": "X-Hub-Signature-256", "prefix": "sha256="}


def _spec(**fields: object) -> InstantSpec:
    return InstantSpec.model_validate({"event_id": "body.id", **fields})


def _slack(signature: str, timestamp: int = SLACK_TIMESTAMP) -> Delivery:
    headers = {
        "content-type": "application/x-www-form-urlencoded",
        "x-slack-signature": signature,
        "x-slack-request-timestamp": str(timestamp),
    }
    return Delivery("POST", SLACK_BODY.encode(), headers, {})


def _check(spec: InstantSpec, delivery: Delivery, secrets: dict[str, str], now: float) -> None:
    reading = hooks.read(spec, delivery)
    hooks.verify_request(spec.verify, delivery, reading, secrets, now)


def test_slacks_documented_request_verifies_within_five_minutes_of_its_timestamp() -> None:
    spec = _spec(verify=SLACK_VERIFY, body="auto")
    secrets = {"signing_secret": SLACK_SECRET}
    _check(spec, _slack(SLACK_SIGNATURE), secrets, SLACK_TIMESTAMP + 299)
    with pytest.raises(DeliveryNotAuthentic, match="more than 300 s"):
        _check(spec, _slack(SLACK_SIGNATURE), secrets, SLACK_TIMESTAMP + 301)
    with pytest.raises(DeliveryNotAuthentic, match="does not match"):
        _check(spec, _slack(SLACK_SIGNATURE.replace("a2", "b2")), secrets, SLACK_TIMESTAMP)
    with pytest.raises(DeliveryNotAuthentic, match="does not match"):
        # the same signature under another timestamp: the timestamp is signed too
        _check(spec, _slack(SLACK_SIGNATURE, SLACK_TIMESTAMP + 1), secrets, SLACK_TIMESTAMP)


def test_githubs_documented_signature_verifies_and_a_missing_secret_refuses_all() -> None:
    spec = _spec(verify=GITHUB_VERIFY, body="text")
    delivery = Delivery("POST", b"Hello, World!", {"x-hub-signature-256": GITHUB_SIGNATURE}, {})
    _check(spec, delivery, {"signing_secret": GITHUB_SECRET}, 0)
    upper = Delivery(
        "POST",
        b"Hello, World!",
        {"x-hub-signature-256": "sha256=" + GITHUB_SIGNATURE[7:].upper()},
        {},
    )
    _check(spec, upper, {"signing_secret": GITHUB_SECRET}, 0)
    with pytest.raises(DeliveryNotAuthentic, match="no signing secret is set"):
        _check(spec, delivery, {}, 0)
    with pytest.raises(DeliveryNotAuthentic, match="header with the signature is missing"):
        _check(spec, Delivery("POST", b"Hello, World!", {}, {}), {"signing_secret": "x"}, 0)


def test_the_body_is_signed_byte_for_byte_beyond_a_templates_length() -> None:
    import hashlib
    import hmac

    body = ("{{ not a template }} " * 10_000).encode()  # 210 kB, braces and all
    signature = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    spec = _spec(verify={"type": "hmac", "header": "Sig"}, body="text")
    _check(spec, Delivery("POST", body, {"sig": signature}, {}), {"signing_secret": "k"}, 0)


def test_a_slack_form_is_read_with_its_json_payload_and_event_ids_fall_back_to_the_body() -> None:
    spec = _spec(form_json=["payload"], events="[body]", event_id="payload.trigger_id")
    form = "payload=%7B%22type%22%3A%22block_actions%22%2C%22trigger_id%22%3A%2213.4%22%7D"
    delivery = Delivery(
        "POST", form.encode(), {"content-type": "application/x-www-form-urlencoded"}, {}
    )
    reading = hooks.read(spec, delivery)
    assert reading.body == {"payload": {"type": "block_actions", "trigger_id": "13.4"}}
    events = hooks.events_of(spec, reading)
    assert hooks.event_ids(spec, events, reading.text) == ["13.4"]
    untold = _spec(events="body.items", event_id="id")
    text = '{"items": [{"n": 1}, {"n": 2}]}'
    reading = hooks.read(
        untold, Delivery("POST", text.encode(), {"content-type": "application/json"}, {})
    )
    digest = hooks.body_digest(text)
    assert hooks.event_ids(untold, hooks.events_of(untold, reading), text) == [
        f"{digest}:0",
        f"{digest}:1",
    ]


def test_a_form_payload_that_is_not_json_is_a_400_naming_the_field() -> None:
    spec = _spec(form_json=["payload"])
    delivery = Delivery(
        "POST", b"payload=%7Bnope", {"content-type": "application/x-www-form-urlencoded"}, {}
    )
    with pytest.raises(MalformedDelivery, match="form field `payload` is not JSON"):
        hooks.read(spec, delivery)
