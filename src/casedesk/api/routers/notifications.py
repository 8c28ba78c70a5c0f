"""The mail casedesk writes itself: its kinds, languages, previews and the tenant's own
templates (admins only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from casedesk.activities import notification_templates
from casedesk.activities.notification_templates import EffectiveTemplate
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute
from casedesk.domain import notifications
from casedesk.domain.identity.principal import Principal
from casedesk.domain.identity.roles import Role
from casedesk.domain.notifications import KINDS, LANGUAGES, Kind, MailTemplate, RenderedMail

router = APIRouter(prefix=API_V1, tags=["notifications"], route_class=ApiRoute)


class LanguageState(BaseModel):
    language: str
    custom: bool = Field(description="the tenant has its own template in this language")


class NotificationKindBody(BaseModel):
    kind: Kind
    about_case: bool
    auto_submitted: str | None
    languages: list[str]
    templates: list[LanguageState]
    variables: dict[str, Any] = Field(description="the variables a template may use, as samples")


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=200_000)


class NotificationTemplateBody(BaseModel):
    kind: Kind
    language: str
    custom: bool = Field(description="the tenant's own template; false: the built-in one")
    subject: str
    text: str
    html: str | None
    updated_at: datetime | None
    updated_by: uuid.UUID | None


def _template_body(found: EffectiveTemplate) -> NotificationTemplateBody:
    return NotificationTemplateBody(
        kind=found.kind,
        language=found.language,
        custom=found.custom,
        subject=found.template.subject,
        text=found.template.text,
        html=found.template.html,
        updated_at=found.saved.updated_at if found.saved else None,
        updated_by=found.saved.updated_by if found.saved else None,
    )


LanguagePath = Annotated[str, Path(max_length=16, description="en or zh-Hans")]


def _admin(principal: Principal) -> None:
    principal.require(Role.ADMIN, "reading notification templates")


class PreviewBody(BaseModel):
    kind: Kind
    language: str
    subject: str
    text: str
    html: str
    auto_submitted: str | None


def _preview(kind: Kind, language: str, mail: RenderedMail) -> PreviewBody:
    return PreviewBody(
        kind=kind,
        language=language,
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        auto_submitted=mail.auto_submitted,
    )


@router.get("/notifications", response_model=list[NotificationKindBody])
async def list_kinds(principal: PrincipalDep, uow: UnitOfWorkDep) -> list[NotificationKindBody]:
    _admin(principal)
    custom = await notification_templates.customised(uow)
    return [
        NotificationKindBody(
            kind=kind,
            about_case=notifications.SPECS[kind].about_case,
            auto_submitted=notifications.SPECS[kind].auto_submitted,
            languages=list(LANGUAGES),
            templates=[
                LanguageState(language=language, custom=(kind, language) in custom)
                for language in LANGUAGES
            ],
            variables=dict(notifications.SPECS[kind].sample),
        )
        for kind in KINDS
    ]


@router.get(
    "/notifications/{kind}/preview",
    response_model=PreviewBody,
    summary="A notification rendered with sample values: the tenant's template, else the "
    "built-in one",
)
async def preview_saved(
    kind: Kind,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
    language: str = Query("en", max_length=16),
) -> PreviewBody:
    _admin(principal)
    chosen = notifications.language_of(language)
    return _preview(kind, chosen, await notification_templates.preview_for(uow, kind, chosen))


@router.post(
    "/notifications/{kind}/preview",
    response_model=PreviewBody,
    summary="A draft template rendered with sample values; a 422 names what is wrong in it",
)
async def preview_draft(
    kind: Kind,
    body: TemplateBody,
    principal: PrincipalDep,
    language: str = Query("en", max_length=16),
) -> PreviewBody:
    _admin(principal)
    chosen = notifications.language_of(language)
    draft = MailTemplate(body.subject, body.text, body.html)
    return _preview(kind, chosen, notifications.preview(kind, chosen, draft))


@router.get(
    "/notifications/{kind}/{language}",
    response_model=NotificationTemplateBody,
    summary="The template a kind is written with in a language: the tenant's, else built-in",
)
async def read_template(
    kind: Kind, language: LanguagePath, principal: PrincipalDep, uow: UnitOfWorkDep
) -> NotificationTemplateBody:
    _admin(principal)
    return _template_body(await notification_templates.effective(uow, kind, language))


@router.put(
    "/notifications/{kind}/{language}",
    response_model=NotificationTemplateBody,
    summary="Save the tenant's own template; a draft that does not render is a 422 naming "
    "its field and line",
)
async def save_template(
    kind: Kind,
    language: LanguagePath,
    body: TemplateBody,
    principal: PrincipalDep,
    uow: UnitOfWorkDep,
) -> NotificationTemplateBody:
    draft = MailTemplate(body.subject, body.text, body.html)
    await notification_templates.save_template(uow, principal, kind, language, draft)
    return _template_body(await notification_templates.effective(uow, kind, language))


@router.delete(
    "/notifications/{kind}/{language}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Back to the built-in template",
)
async def reset_template(
    kind: Kind, language: LanguagePath, principal: PrincipalDep, uow: UnitOfWorkDep
) -> Response:
    await notification_templates.reset_template(uow, principal, kind, language)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
