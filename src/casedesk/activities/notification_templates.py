"""A tenant's own templates of the mail casedesk writes.

An admin may keep a template of each kind in each language; where the tenant has none, the
built-in one applies. A template is saved only if it renders with the kind's sample values
(``notifications.check``: a 422 naming the field and line, or saying it does too much work).
Whoever sends a notification asks ``template_for`` which template to render.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from casedesk.domain import notifications
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.notifications import LANGUAGES, Kind, MailTemplate, RenderedMail
from casedesk.kit.errors import Conflict, InvalidInput
from casedesk.store.models import NotificationTemplate
from casedesk.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class EffectiveTemplate:
    """The template a kind in a language is rendered with, and the tenant's row if it is the
    tenant's own."""

    kind: Kind
    language: str
    template: MailTemplate
    saved: NotificationTemplate | None

    @property
    def custom(self) -> bool:
        return self.saved is not None


def chosen_language(language: str) -> str:
    """``language`` if casedesk has templates in it; else a 422 naming the ones it has."""
    if language not in LANGUAGES:
        raise InvalidInput(
            f"no notification language {language[:40]!r}; choose one of {', '.join(LANGUAGES)}",
            field="language",
        )
    return language


def _template(row: NotificationTemplate) -> MailTemplate:
    return MailTemplate(row.subject, row.text, row.html)


async def template_for(uow: UnitOfWork, kind: Kind, language: str) -> MailTemplate | None:
    """The tenant's own template for kind+language, else None (the built-in one applies).

    ``language`` is a person's choice as stored (``zh-CN`` finds the Chinese template)."""
    row = await uow.notification_templates.of(kind, notifications.language_of(language))
    return None if row is None else _template(row)


async def effective(uow: UnitOfWork, kind: Kind, language: str) -> EffectiveTemplate:
    chosen = chosen_language(language)
    row = await uow.notification_templates.of(kind, chosen)
    template = notifications.builtin(kind, chosen) if row is None else _template(row)
    return EffectiveTemplate(kind, chosen, template, row)


async def customised(uow: UnitOfWork) -> set[tuple[str, str]]:
    """The kinds and languages the tenant has a template of its own for."""
    return {(row.kind, row.language) for row in await uow.notification_templates.all()}


async def preview_for(
    uow: UnitOfWork, kind: Kind, language: str, draft: MailTemplate | None = None
) -> RenderedMail:
    """``draft``, else the tenant's template, else the built-in one, with sample values."""
    chosen = notifications.language_of(language)
    template = draft or await template_for(uow, kind, chosen)
    return notifications.preview(kind, chosen, template)


async def save_template(
    uow: UnitOfWork, actor: Principal, kind: Kind, language: str, template: MailTemplate
) -> NotificationTemplate:
    actor.require(Role.ADMIN, "changing notification templates")
    chosen = chosen_language(language)
    notifications.check(kind, template)
    await uow.begin_write()
    row = await uow.notification_templates.of(kind, chosen)
    if row is None:
        row = uow.notification_templates.add(NotificationTemplate(kind=kind, language=chosen))
    row.subject, row.text, row.html = template.subject, template.text, template.html
    row.updated_by = actor.user_id
    try:
        await uow.commit()
    except IntegrityError:
        raise Conflict(
            f"the {kind} template in {chosen} was saved meanwhile; try again", field="kind"
        ) from None
    return row


async def reset_template(uow: UnitOfWork, actor: Principal, kind: Kind, language: str) -> None:
    """Back to the built-in template (nothing to do when the tenant has none of its own)."""
    actor.require(Role.ADMIN, "changing notification templates")
    chosen = chosen_language(language)
    await uow.begin_write()
    row = await uow.notification_templates.of(kind, chosen)
    if row is not None:
        await uow.notification_templates.delete(row)
    await uow.commit()
