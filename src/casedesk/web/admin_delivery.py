"""The admins' screens of delivery: webhooks (made with their secret shown once, edited,
tested, deleted) with each one's deliveries and every attempt, redelivered on demand; and
the dead letters consumers gave up on, replayed or discarded, one or several at a time.

The forms are read into the API's ``WebhookSpec`` and run the API's activities
(``activities/webhooks.py``, ``activities/dead_letters.py``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from casedesk.activities import dead_letters, webhooks
from casedesk.domain.events import EVENTS
from casedesk.domain.webhooks.subscriptions import WebhookSpec
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.store.models import WebhookSubscription
from casedesk.web.admin import _admin, _page
from casedesk.web.admin_people import _id, _refusal
from casedesk.web.pages import Viewer, problems, render
from casedesk.web.session import (
    check_csrf,
    container_of,
    person,
    plain_text_only,
    tenant_work,
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(plain_text_only)])
PersonDep = Annotated[Viewer, Depends(person)]
LISTED = 50
"""Deliveries and dead letters on one page; older ones through the page's next link."""
STATUSES = ("pending", "succeeded", "failed")
MOST_SELECTED = dead_letters.MAX_BULK_REPLAY


def _choices() -> list[str]:
    """What a webhook may listen to: every event, each family, each declared type."""
    return ["*", *EVENTS.families(), *EVENTS.names()]


def _gone(request: Request, viewer: Viewer, gone: NotFound) -> HTMLResponse:
    return render(request, viewer, "message.html", status=404, message=gone.detail)


def _pretty(document: Any) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)


# --- webhooks ------------------------------------------------------------------------------


def _spec_form(form: Any) -> dict[str, Any]:
    """The webhook form as the API's body: events are the boxes ticked."""
    return {
        "name": str(form.get("name", "")),
        "url": str(form.get("url", "")),
        "events": [str(event) for event in form.getlist("events")][:60],
        "enabled": form.get("enabled") == "on",
        "description": str(form.get("description", "")).strip() or None,
    }


async def _webhooks_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    secret: str | None = None,
    status: int | None = None,
) -> Response:
    async with tenant_work(request, viewer) as uow:
        found = await uow.webhooks.all()
    notice = {"deleted": "deleted"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_webhooks.html",
        status=status or (422 if errors else 200),
        webhooks=found,
        choices=_choices(),
        errors=errors or [],
        form=form or {"events": [], "enabled": True},
        secret=secret,
        notice=notice,
    )


@router.get("/app/admin/webhooks", response_class=HTMLResponse)
async def webhook_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _webhooks_page(request, viewer)


@router.post("/app/admin/webhooks", response_class=HTMLResponse)
async def create_webhook(request: Request, viewer: PersonDep) -> Response:
    """Save a new webhook and show its signing secret, this once."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    typed = _spec_form(await request.form())
    container = container_of(request)
    try:
        spec = WebhookSpec.model_validate(typed)
        async with tenant_work(request, viewer) as uow:
            made, secret = await webhooks.create_webhook(
                uow, viewer.principal, container.box, container.hub, spec
            )
    except ValidationError as invalid:
        return await _webhooks_page(request, viewer, errors=problems(invalid), form=typed)
    except CasedeskError as refused:
        return await _webhooks_page(request, viewer, errors=[_refusal(refused)], form=typed)
    return await _webhook_page(request, viewer, str(made.id), secret=secret, status=201)


async def _webhook_page(
    request: Request,
    viewer: Viewer,
    webhook_id: str,
    *,
    errors: list[str] | None = None,
    form: Any = None,
    secret: str | None = None,
    status: int | None = None,
) -> Response:
    shown = request.query_params.get("status")
    shown = shown if shown in STATUSES else None
    cursor = request.query_params.get("cursor") or None
    try:
        async with tenant_work(request, viewer) as uow:
            hook = await uow.webhooks.get(_id(webhook_id))
            try:
                page = await uow.deliveries.of_subscription(
                    hook.id, status=shown, limit=LISTED, cursor=cursor
                )
            except CasedeskError:
                page = await uow.deliveries.of_subscription(
                    hook.id, status=shown, limit=LISTED, cursor=None
                )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    notice = {"saved": "saved", "tested": "tested"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_webhook.html",
        status=status or (422 if errors else 200),
        hook=hook,
        deliveries=page.items,
        next_cursor=page.next_cursor,
        shown_status=shown,
        statuses=STATUSES,
        choices=_choices(),
        errors=errors or [],
        form=form or _as_form(hook),
        secret=secret,
        notice=notice,
    )


def _as_form(hook: WebhookSubscription) -> dict[str, Any]:
    return {
        "name": hook.name,
        "url": hook.url,
        "events": list(hook.events),
        "enabled": hook.enabled,
        "description": hook.description or "",
    }


@router.get("/app/admin/webhooks/{webhook_id}", response_class=HTMLResponse)
async def webhook(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _webhook_page(request, viewer, webhook_id)


@router.post("/app/admin/webhooks/{webhook_id}", response_class=HTMLResponse)
async def change_webhook(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    typed = _spec_form(await request.form())
    try:
        changed = _id(webhook_id)
        spec = WebhookSpec.model_validate(typed)
        async with tenant_work(request, viewer) as uow:
            await webhooks.replace_webhook(
                uow, viewer.principal, container_of(request).hub, changed, spec
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except ValidationError as invalid:
        return await _webhook_page(
            request, viewer, webhook_id, errors=problems(invalid), form=typed
        )
    except CasedeskError as refused:
        return await _webhook_page(
            request, viewer, webhook_id, errors=[_refusal(refused)], form=typed
        )
    return RedirectResponse(f"/app/admin/webhooks/{changed}?done=saved", status_code=303)


@router.post("/app/admin/webhooks/{webhook_id}/test")
async def test_webhook(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    """Queue a ``webhook.test`` message; it shows among the deliveries."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        tested = _id(webhook_id)
        async with tenant_work(request, viewer) as uow:
            await webhooks.send_test(uow, viewer.principal, tested)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return RedirectResponse(f"/app/admin/webhooks/{tested}?done=tested", status_code=303)


@router.post("/app/admin/webhooks/{webhook_id}/rotate-secret", response_class=HTMLResponse)
async def rotate_secret(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    """A new signing secret, shown this once; messages are signed with it from now on."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            _, secret = await webhooks.rotate_secret(
                uow, viewer.principal, container_of(request).box, _id(webhook_id)
            )
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _webhook_page(request, viewer, webhook_id, secret=secret)


@router.get("/app/admin/webhooks/{webhook_id}/delete", response_class=HTMLResponse)
async def confirm_delete(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    try:
        async with tenant_work(request, viewer) as uow:
            hook = await uow.webhooks.get(_id(webhook_id))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return await _page(request, viewer, "admin_webhook_delete.html", hook=hook, errors=[])


@router.post("/app/admin/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await webhooks.delete_webhook(uow, viewer.principal, _id(webhook_id))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return RedirectResponse("/app/admin/webhooks?done=deleted", status_code=303)


# --- a webhook's deliveries ----------------------------------------------------------------


async def _delivery_page(
    request: Request,
    viewer: Viewer,
    webhook_id: str,
    delivery_id: str,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    try:
        async with tenant_work(request, viewer) as uow:
            hook = await uow.webhooks.get(_id(webhook_id))
            found = await uow.deliveries.get(_id(delivery_id))
            if found.subscription_id != hook.id:
                raise NotFound(f"webhook delivery {delivery_id} not found")
            attempts = await uow.deliveries.attempts(found.id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    notice = {"redelivered": "redelivered"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_webhook_delivery.html",
        status=status,
        hook=hook,
        delivery=found,
        attempts=attempts,
        payload=_pretty(found.payload),
        errors=errors or [],
        notice=notice,
    )


@router.get(
    "/app/admin/webhooks/{webhook_id}/deliveries/{delivery_id}", response_class=HTMLResponse
)
async def delivery(
    request: Request, webhook_id: str, delivery_id: str, viewer: PersonDep
) -> Response:
    _admin(viewer)
    return await _delivery_page(request, viewer, webhook_id, delivery_id)


@router.post(
    "/app/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    response_class=HTMLResponse,
)
async def redeliver(
    request: Request, webhook_id: str, delivery_id: str, viewer: PersonDep
) -> Response:
    """One more attempt now, with the same message id (a delivery still tried is refused)."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            hook = await uow.webhooks.get(_id(webhook_id))
            found = await uow.deliveries.get(_id(delivery_id))
        if found.subscription_id != hook.id:
            raise NotFound(f"webhook delivery {delivery_id} not found")
        async with tenant_work(request, viewer) as uow:
            await webhooks.redeliver(uow, viewer.principal, found.id)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _delivery_page(
            request, viewer, webhook_id, delivery_id, errors=[_refusal(refused)], status=409
        )
    target = f"/app/admin/webhooks/{hook.id}/deliveries/{found.id}?done=redelivered"
    return RedirectResponse(target, status_code=303)


# --- dead letters --------------------------------------------------------------------------


async def _dead_letters_page(
    request: Request,
    viewer: Viewer,
    *,
    errors: list[str] | None = None,
    replayed: int | None = None,
    refusals: list[str] | None = None,
) -> Response:
    group = (request.query_params.get("group") or "").strip()[:63] or None
    replay = request.query_params.get("replay_status")
    replay = replay if replay in ("never", *STATUSES) else None
    cursor = request.query_params.get("cursor") or None
    async with tenant_work(request, viewer) as uow:
        try:
            page = await uow.dead_letters.list_page(
                group=group, replay_status=replay, limit=LISTED, cursor=cursor
            )
        except CasedeskError:
            page = await uow.dead_letters.list_page(
                group=group, replay_status=replay, limit=LISTED, cursor=None
            )
    notice = {"discarded": "discarded"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_dead_letters.html",
        status=422 if errors else 200,
        dead_letters=page.items,
        next_cursor=page.next_cursor,
        group=group or "",
        replay_status=replay or "",
        errors=errors or [],
        replayed=replayed,
        refusals=refusals or [],
        notice=notice,
    )


@router.get("/app/admin/dead-letters", response_class=HTMLResponse)
async def dead_letter_list(request: Request, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _dead_letters_page(request, viewer)


@router.post("/app/admin/dead-letters/replay", response_class=HTMLResponse)
async def replay_selected(request: Request, viewer: PersonDep) -> Response:
    """Replay each dead letter ticked, each in its own transaction: one refused (already
    replayed, gone meanwhile) is listed and the others still go."""
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    chosen = [str(value) for value in (await request.form()).getlist("id")]
    if not chosen:
        return await _dead_letters_page(request, viewer, errors=["id: select dead letters first"])
    if len(chosen) > MOST_SELECTED:
        return await _dead_letters_page(
            request, viewer, errors=[f"id: at most {MOST_SELECTED} at a time"]
        )
    refusals: list[str] = []
    replayed = 0
    for text in dict.fromkeys(chosen):
        try:
            async with tenant_work(request, viewer) as uow:
                await dead_letters.request_replay(uow, viewer.principal, _id(text))
            replayed += 1
        except CasedeskError as refused:
            refusals.append(f"{text[:40]}: {refused.detail}")
    return await _dead_letters_page(request, viewer, replayed=replayed, refusals=refusals)


async def _dead_letter_page(
    request: Request,
    viewer: Viewer,
    dead_letter_id: str,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    try:
        async with tenant_work(request, viewer) as uow:
            dead = await uow.dead_letters.get(_id(dead_letter_id))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    notice = {"replaying": "replaying"}.get(request.query_params.get("done", ""))
    return await _page(
        request,
        viewer,
        "admin_dead_letter.html",
        status=status,
        dead=dead,
        envelope=_pretty(dead.envelope),
        errors=errors or [],
        notice=notice,
    )


@router.get("/app/admin/dead-letters/{dead_letter_id}", response_class=HTMLResponse)
async def dead_letter(request: Request, dead_letter_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    return await _dead_letter_page(request, viewer, dead_letter_id)


@router.post("/app/admin/dead-letters/{dead_letter_id}/replay", response_class=HTMLResponse)
async def replay(request: Request, dead_letter_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        replayed = _id(dead_letter_id)
        async with tenant_work(request, viewer) as uow:
            await dead_letters.request_replay(uow, viewer.principal, replayed)
    except NotFound as gone:
        return _gone(request, viewer, gone)
    except CasedeskError as refused:
        return await _dead_letter_page(
            request, viewer, dead_letter_id, errors=[refused.detail], status=409
        )
    target = f"/app/admin/dead-letters/{replayed}?done=replaying"
    return RedirectResponse(target, status_code=303)


@router.post("/app/admin/dead-letters/{dead_letter_id}/discard")
async def discard(request: Request, dead_letter_id: str, viewer: PersonDep) -> Response:
    _admin(viewer)
    await check_csrf(request, viewer)
    assert viewer.principal is not None
    try:
        async with tenant_work(request, viewer) as uow:
            await dead_letters.discard(uow, viewer.principal, _id(dead_letter_id))
    except NotFound as gone:
        return _gone(request, viewer, gone)
    return RedirectResponse("/app/admin/dead-letters?done=discarded", status_code=303)
