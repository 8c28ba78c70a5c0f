"""Standard Webhooks signing: the specification's example, our secrets, and the reference
verifier accepting what we send."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from casedesk.domain.webhooks.signing import new_secret, signature, signed_headers

# The example of the Standard Webhooks specification (and of Svix's documentation).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_specifications_example_signs_as_published() -> None:
    assert signature(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    first, second = new_secret(), new_secret()

    assert first.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


def test_the_reference_verifier_accepts_our_headers_and_refuses_a_changed_body() -> None:
    secret = new_secret()
    body = '{"type":"case.created","data":{"title":"Grüße"}}'.encode()
    headers = signed_headers(secret, "msg_1", int(time.time()), body)

    assert Webhook(secret).verify(body, headers) == {
        "type": "case.created",
        "data": {"title": "Grüße"},
    }
    assert headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"created", b"updated"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
