"""Instant triggers: the source calls ``POST /hooks/{token}``.

Starting a subscription gives it its hook token once (kept hashed for the lookup and sealed
so that the admin can read the URL again) and, when the trigger has a ``lifecycle`` (the
source keeps a subscription of its own: Microsoft Graph), schedules the job that makes it.
Stopping it keeps the token (a delivery to a stopped subscription is refused) and schedules
the job that deletes the source's subscription.

The lifecycle runs as jobs (``platform.lifecycle``), each keyed by the subscription and
what it acts on, and each acting only if its premise still holds when it runs: a renewal
names the source subscription and the expiry it renews, so one that was overtaken by a
recreation, a reauthorization or a stop does nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from casedesk.activities.connections import open_client
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.integrations.hub import Hub
from casedesk.integrations.manifests import ManifestInvalid, TriggerDef
from casedesk.integrations.manifests.instant import ClientStateVerification, InstantSpec
from casedesk.integrations.runtime import ConnectorClient
from casedesk.kit.clock import utcnow
from casedesk.kit.crypto import SecretBox, SecretUnreadable
from casedesk.kit.errors import CasedeskError, Conflict, InvalidInput, NotFound
from casedesk.kit.tracing import trace_or_new
from casedesk.store.models import Subscription
from casedesk.store.unit_of_work import UnitOfWork

HOOK_PATH = "/hooks/"
PROCESS = "inbox.process"
"""Hands a stored delivery's events to the workflow (``platform.inbox``)."""
CREATE = "instant.create"
RENEW = "instant.renew"
RESYNC = "instant.resync"
DELETE = "instant.delete"


class HookUnavailable(CasedeskError):
    """The subscription's trigger cannot be used now (its connector, connection or secrets
    are missing or unreadable): 503, so that the source retries once it is fixed."""

    status = 503
    title = "Hook unavailable"
    slug = "hook-unavailable"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hook_token(subscription: Subscription, box: SecretBox) -> str | None:
    """The token of the subscription's hook URL, if it has one."""
    sealed = subscription.hook_token_sealed
    return None if sealed is None else box.open(sealed)


def hook_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{HOOK_PATH}{token}"


def is_active(subscription: Subscription) -> bool:
    return subscription.enabled and subscription.status != "disabled"


def own_secrets(subscription: Subscription, box: SecretBox) -> dict[str, str]:
    """The subscription's own secrets (a signing secret, the client state), opened."""
    if subscription.secrets_sealed is None:
        return {}
    opened: dict[str, str] = orjson.loads(box.open(subscription.secrets_sealed))
    return opened


def keep_secrets(subscription: Subscription, box: SecretBox, values: dict[str, str]) -> None:
    subscription.secrets_sealed = box.seal(orjson.dumps(values).decode()) if values else None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A subscription's trigger as it stands: the client of its connection, the trigger with
    the subscription's settings applied, and every secret it may check deliveries with."""

    client: ConnectorClient
    trigger: TriggerDef
    spec: InstantSpec
    keys: dict[str, str]
    """The connection's secrets and the subscription's own (these win)."""


async def _connector_of(uow: UnitOfWork, subscription: Subscription) -> str:
    """The connector of a subscription without a connection: its workflow's trigger names it."""
    workflow = await uow.workflows.get(subscription.workflow_id)
    version = await uow.workflows.version(workflow.id, workflow.latest_version)
    definition = workflow.draft if version is None else version.definition
    connector = definition.get("trigger", {}).get("connector")
    if not isinstance(connector, str):
        raise InvalidInput(f"workflow {workflow.code} names no connector", field="trigger")
    return connector


async def resolve(
    uow: UnitOfWork, hub: Hub, box: SecretBox, subscription: Subscription
) -> Resolved:
    """The subscription's instant trigger; raises ``HookUnavailable`` saying what is missing."""
    try:
        connector = ""
        if subscription.connection_id is None:
            connector = await _connector_of(uow, subscription)
        client = await open_client(
            uow,
            hub,
            box,
            tenant_id=subscription.tenant_id,
            connector=connector,
            connection_id=subscription.connection_id,
        )
        trigger = client.manifest.trigger(subscription.trigger)
        if trigger is None or trigger.kind != "instant":
            raise InvalidInput(
                f"connector {client.manifest.id} has no instant trigger {subscription.trigger!r}"
            )
        spec = trigger.effective(dict(subscription.settings))
        keys = {**client.account.secrets, **own_secrets(subscription, box)}
    except (InvalidInput, NotFound, ManifestInvalid, SecretUnreadable) as exc:
        raise HookUnavailable(f"the subscription's trigger cannot be used: {exc}") from None
    assert isinstance(spec, InstantSpec)
    return Resolved(client, trigger, spec, keys)


async def start(
    uow: UnitOfWork, subscription: Subscription, trigger: TriggerDef, box: SecretBox
) -> None:
    if subscription.hook_token_hash is None:
        token = secrets.token_urlsafe(32)
        subscription.hook_token_hash = token_hash(token)
        subscription.hook_token_sealed = box.seal(token)
    spec = trigger.effective(dict(subscription.settings))
    assert isinstance(spec, InstantSpec)
    if spec.lifecycle is None:
        return
    _draw_client_state(subscription, spec, box)
    await plan(uow, CREATE, subscription, utcnow(), tag="start")


def _draw_client_state(subscription: Subscription, spec: InstantSpec, box: SecretBox) -> None:
    """The value the source will repeat in each event, when casedesk is the one to choose it."""
    verify = spec.verify
    if not isinstance(verify, ClientStateVerification):
        return
    own = own_secrets(subscription, box)
    if own.get(verify.secret_field):
        return
    keep_secrets(subscription, box, own | {verify.secret_field: secrets.token_urlsafe(32)})


async def stop(uow: UnitOfWork, subscription: Subscription) -> None:
    """Deliveries are refused from now on; the source's own subscription is deleted."""
    external_id = subscription.external_id
    if external_id is None:
        return
    await plan(uow, DELETE, subscription, utcnow(), tag=external_id, external_id=external_id)


def _tag(text: str) -> str:
    return text if len(text) <= 64 else hashlib.sha256(text.encode()).hexdigest()[:40]


def lifecycle_key(kind: str, subscription_id: uuid.UUID, tag: str) -> str:
    return f"{kind}:{subscription_id}:{_tag(tag)}"


async def plan(
    uow: UnitOfWork,
    kind: str,
    subscription: Subscription,
    due: datetime,
    *,
    tag: str,
    **payload: Any,
) -> None:
    """Schedule a lifecycle job of the subscription; the same tag moves the same job."""
    await uow.jobs.schedule(
        kind=kind,
        key=lifecycle_key(kind, subscription.id, tag),
        due_at=due,
        payload={"subscription_id": str(subscription.id), **payload},
        traceparent=trace_or_new().traceparent,
    )


def expiry_mark(moment: datetime | None) -> int | None:
    """An expiry as the renewal that targets it names it (whole seconds)."""
    return None if moment is None else int(moment.timestamp())


async def plan_renewal(
    uow: UnitOfWork,
    subscription: Subscription,
    *,
    due: datetime | None = None,
    every: timedelta | None = None,
) -> None:
    """Renew the source subscription at about half its remaining life, or sooner when it is
    to be renewed ``every`` so often (or at ``due``)."""
    expires = subscription.external_expires_at
    if subscription.external_id is None or expires is None:
        return
    now = utcnow()
    wait = max(expires - now, timedelta(0)) / 2
    if every is not None:
        wait = min(wait, every)
    when = due if due is not None else now + wait
    await plan(
        uow,
        RENEW,
        subscription,
        when,
        tag=f"{expiry_mark(expires)}",
        external_id=subscription.external_id,
        expires=expiry_mark(expires),
    )


@dataclass(frozen=True, slots=True)
class HookView:
    """What an admin sees of a subscription's hook; never a secret's value."""

    subscription_id: uuid.UUID
    url: str | None
    verification: str
    secret_fields: list[str]
    secrets_set: list[str]


def _secret_fields(resolved: Resolved) -> list[str]:
    """The secrets a subscription may keep: those its connector declares, and the one its
    verification reads."""
    names = [field.name for field in resolved.client.manifest.connection.secrets]
    field = getattr(resolved.spec.verify, "secret_field", None)
    if isinstance(field, str):
        names.append(field)
    return sorted(set(names))


async def _hook_of(
    uow: UnitOfWork, hub: Hub, box: SecretBox, subscription: Subscription
) -> Resolved:
    try:
        return await resolve(uow, hub, box, subscription)
    except HookUnavailable as exc:
        raise Conflict(f"subscription {subscription.id} has no usable hook: {exc.detail}") from None


def _view(
    subscription: Subscription, resolved: Resolved, box: SecretBox, base_url: str
) -> HookView:
    token = hook_token(subscription, box)
    own = own_secrets(subscription, box)
    return HookView(
        subscription_id=subscription.id,
        url=None if token is None else hook_url(base_url, token),
        verification=resolved.spec.verify.type,
        secret_fields=_secret_fields(resolved),
        secrets_set=sorted({**resolved.client.account.secrets, **own}),
    )


async def describe_hook(
    uow: UnitOfWork,
    hub: Hub,
    box: SecretBox,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    base_url: str,
) -> HookView:
    principal.require(Role.ADMIN, "reading a hook")
    subscription = await uow.subscriptions.get(subscription_id)
    return _view(subscription, await _hook_of(uow, hub, box, subscription), box, base_url)


async def set_hook_secrets(
    uow: UnitOfWork,
    hub: Hub,
    box: SecretBox,
    principal: Principal,
    subscription_id: uuid.UUID,
    values: dict[str, str | None],
    *,
    base_url: str,
) -> HookView:
    """Set (or, with None, remove) secrets of the subscription's own: the signing secret of
    a hook without a connection, say. They are sealed; a connection's secret of the same
    name is overridden for this subscription."""
    principal.require(Role.ADMIN, "setting a hook's secrets")
    await uow.begin_write()
    subscription = await uow.subscriptions.locked(subscription_id)
    if subscription is None:
        raise NotFound(f"subscription {subscription_id} not found")
    resolved = await _hook_of(uow, hub, box, subscription)
    fields = _secret_fields(resolved)
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise InvalidInput(
            f"this hook keeps the secrets {', '.join(fields) or 'none'}; not {', '.join(unknown)}",
            field=f"secrets.{unknown[0]}",
        )
    own = own_secrets(subscription, box)
    for name, value in values.items():
        if value is None:
            own.pop(name, None)
        else:
            own[name] = value
    keep_secrets(subscription, box, own)
    await uow.commit()
    return _view(subscription, resolved, box, base_url)
