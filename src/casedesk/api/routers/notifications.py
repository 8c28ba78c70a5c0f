"""The mail casedesk writes itself: its kinds, languages and previews."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep
from casedesk.api.routing import ApiRoute
from casedesk.domain import notifications
from casedesk.domain.notifications import KINDS, LANGUAGES, Kind, MailTemplate, RenderedMail

router = APIRouter(prefix=API_V1, tags=["notifications"], route_class=ApiRoute)


class NotificationKindBody(BaseModel):
    kind: Kind
    about_case: bool
    auto_submitted: str | None
    languages: list[str]
    variables: dict[str, Any] = Field(description="the variables a template may use, as samples")


class TemplateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=100_000)
    html: str | None = Field(default=None, max_length=200_000)


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
async def list_kinds(_: PrincipalDep) -> list[NotificationKindBody]:
    return [
        NotificationKindBody(
            kind=kind,
            about_case=notifications.SPECS[kind].about_case,
            auto_submitted=notifications.SPECS[kind].auto_submitted,
            languages=list(LANGUAGES),
            variables=dict(notifications.SPECS[kind].sample),
        )
        for kind in KINDS
    ]


@router.get(
    "/notifications/{kind}/preview",
    response_model=PreviewBody,
    summary="A built-in notification rendered with sample values",
)
async def preview_builtin(
    kind: Kind, _: PrincipalDep, language: str = Query("en", max_length=16)
) -> PreviewBody:
    chosen = notifications.language_of(language)
    return _preview(kind, chosen, notifications.preview(kind, chosen))


@router.post(
    "/notifications/{kind}/preview",
    response_model=PreviewBody,
    summary="A draft template rendered with sample values; a 422 names what is wrong in it",
)
async def preview_draft(
    kind: Kind, body: TemplateBody, _: PrincipalDep, language: str = Query("en", max_length=16)
) -> PreviewBody:
    chosen = notifications.language_of(language)
    draft = MailTemplate(body.subject, body.text, body.html)
    return _preview(kind, chosen, notifications.preview(kind, chosen, draft))
