"""Standard Webhooks signatures (https://www.standardwebhooks.com/), made by the reference
library, ``standardwebhooks``, so what we send is what receivers' verifiers check.

``webhook-signature`` is ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}`` keyed
with the secret's bytes; the secret is shown to the receiver as ``whsec_`` + base64. The
library verifies and signs but does not make secrets, so ``new_secret`` is ours.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    # The library signs text; our bodies are JSON, always UTF-8, so the bytes signed are
    # exactly the bytes sent.
    when = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(secret).sign(message_id, when, body.decode())


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
        "content-type": "application/json",
    }
