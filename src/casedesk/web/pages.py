"""Rendering a page: the template environment of each language, and what every page knows
(the person, the language, the CSRF token)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse

from casedesk import __version__
from casedesk.domain.attachments import INLINE_SAFE_TYPES
from casedesk.domain.identity.principal import Principal
from casedesk.kit.errors import CasedeskError
from casedesk.web import i18n

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who sees the page and how: signed in or not, in which language and time zone."""

    language: str
    principal: Principal | None = None
    csrf_token: str = ""
    time_zone: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def problems(invalid: ValidationError) -> list[str]:
    """What a form got wrong, a line per field: ``field: message``."""
    return [
        f"{'.'.join(str(part) for part in error['loc']) or 'the form'}: {error['msg']}"
        for error in invalid.errors()
    ]


def refusal(request: Request, viewer: Viewer, refused: CasedeskError) -> HTMLResponse:
    """A page saying why a change was refused, with the error's status."""
    return render(request, viewer, "message.html", status=refused.status, message=refused.detail)


@functools.cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        version=__version__, languages=i18n.LANGUAGES, shown_inline=INLINE_SAFE_TYPES
    )
    return env


def render(
    request: Request, viewer: Viewer, template: str, *, status: int = 200, **context: Any
) -> HTMLResponse:
    env = environment(viewer.language)
    page = env.get_template(template).render(
        request=request,
        viewer=viewer,
        me=viewer.principal,
        csrf_token=viewer.csrf_token,
        lang=viewer.language,
        when=lambda moment: i18n.when(moment, viewer.language, viewer.time_zone),
        span=lambda seconds: i18n.span(seconds, viewer.language),
        **context,
    )
    response = HTMLResponse(page, status_code=status)
    response.headers["Content-Language"] = viewer.language
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    )
    return response
