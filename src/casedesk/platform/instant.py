"""Instant triggers: the source calls ``POST /hooks/{token}``.

Starting a subscription gives it its hook token once (kept hashed for the lookup and sealed
so that the admin can read the URL again); stopping it keeps the token, and a delivery to a
stopped subscription is refused.
"""

from __future__ import annotations

import hashlib
import secrets

from casedesk.integrations.manifests import TriggerDef
from casedesk.kit.crypto import SecretBox
from casedesk.store.models import Subscription
from casedesk.store.unit_of_work import UnitOfWork

HOOK_PATH = "/hooks/"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hook_token(subscription: Subscription, box: SecretBox) -> str | None:
    """The token of the subscription's hook URL, if it has one."""
    sealed = subscription.hook_token_sealed
    return None if sealed is None else box.open(sealed)


async def start(
    uow: UnitOfWork, subscription: Subscription, trigger: TriggerDef, box: SecretBox
) -> None:
    if subscription.hook_token_hash is not None:
        return
    token = secrets.token_urlsafe(32)
    subscription.hook_token_hash = token_hash(token)
    subscription.hook_token_sealed = box.seal(token)


async def stop(uow: UnitOfWork, subscription: Subscription) -> None:
    """Nothing to undo here: the hook refuses deliveries to a disabled subscription."""
