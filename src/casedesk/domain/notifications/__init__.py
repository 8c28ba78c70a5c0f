"""The mail casedesk writes itself: an acknowledgement when a case is received, an agent's
reply, "solved" with a rating link, a portal sign-in link, an invitation, a password reset.

Each kind has built-in templates in English and Chinese (``en.yaml``, ``zh-Hans.yaml`` beside
this file): a subject and a plain text, both Jinja2 in a sandbox (a template an admin edits
cannot reach Python), with an undefined variable an error rather than an empty string. The
HTML part is the text as HTML (escaped, paragraphs kept) unless a template brings its own, which
is rendered with autoescaping. Mail about a case always carries the case's ``[#N]`` token in its
subject, so that a reply finds the case even when a mail client drops the threading headers;
mail no agent wrote is marked ``Auto-Submitted`` (RFC 3834), so that auto-responders do not
answer it. ``preview`` renders a kind with sample values, for the settings screen; ``check``
says which field and line of a draft template is wrong. A tenant may keep its own template of
a kind in a language; one render of any template has a budget of work (``limits.py``), so a
draft with nested loops is refused rather than keeping a preview or a send busy.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, get_args

import jinja2
import yaml

from casedesk.domain.channels import TOKEN, html_of
from casedesk.domain.notifications.limits import BudgetedEnvironment, TooMuchWork, budgeted
from casedesk.kit.errors import InvalidInput

Kind = Literal[
    "case_received", "agent_reply", "case_solved", "portal_sign_in", "invitation", "password_reset"
]
KINDS: tuple[Kind, ...] = get_args(Kind)
LANGUAGES = ("en", "zh-Hans")
DEFAULT_LANGUAGE = "en"
SUBJECT_LIMIT = 300


@dataclass(frozen=True, slots=True)
class KindSpec:
    about_case: bool
    """Mail about one case: its subject carries the case's ``[#N]`` token."""
    auto_submitted: str | None
    """RFC 3834's ``Auto-Submitted`` value; none for mail a person wrote."""
    sample: Mapping[str, Any]
    """Values of every variable the templates may use, for previews and checks."""


_DESK = {"name": "Acme Support"}
_CASE = {"number": 1042, "title": "The printer is on fire"}
_CUSTOMER = {"name": "Ann Lee", "email": "ann@example.com"}
SPECS: Mapping[Kind, KindSpec] = {
    "case_received": KindSpec(
        True,
        "auto-replied",
        {
            "desk": _DESK,
            "case": _CASE,
            "customer": _CUSTOMER,
            "portal_url": "https://desk.example.com/portal/acme/cases/1042",
        },
    ),
    "agent_reply": KindSpec(
        True,
        None,
        {
            "desk": _DESK,
            "case": _CASE,
            "customer": _CUSTOMER,
            "agent": {"name": "Bo Chen"},
            "comment": {"text": "We have sent a technician; he will be there at 3 pm."},
            "portal_url": "https://desk.example.com/portal/acme/cases/1042",
        },
    ),
    "case_solved": KindSpec(
        True,
        "auto-generated",
        {
            "desk": _DESK,
            "case": _CASE,
            "customer": _CUSTOMER,
            "rating_url": "https://desk.example.com/portal/acme/cases/1042#rate",
        },
    ),
    "portal_sign_in": KindSpec(
        False,
        "auto-generated",
        {"desk": _DESK, "link": "https://desk.example.com/portal/acme/link/abc", "minutes": 15},
    ),
    "invitation": KindSpec(
        False,
        "auto-generated",
        {
            "desk": _DESK,
            "user": {"name": "Dee Park", "email": "dee@acme.example"},
            "inviter": {"name": "Bo Chen"},
            "link": "https://desk.example.com/sign-in/link/abc",
            "hours": 72,
        },
    ),
    "password_reset": KindSpec(
        False,
        "auto-generated",
        {
            "desk": _DESK,
            "user": {"name": "Dee Park", "email": "dee@acme.example"},
            "link": "https://desk.example.com/sign-in/link/abc",
            "minutes": 30,
        },
    ),
}


@dataclass(frozen=True, slots=True)
class MailTemplate:
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedMail:
    subject: str
    text: str
    html: str
    auto_submitted: str | None


_TEXT = BudgetedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
_HTML = BudgetedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True)
_LAYOUT = (
    '<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">'
    "{body}</body></html>"
)


def language_of(requested: str | None) -> str:
    """The template language for a person's choice: ``zh``, ``zh-CN``, ``zh-Hans`` → Chinese."""
    if requested and requested.lower().replace("_", "-").startswith("zh"):
        return "zh-Hans"
    return DEFAULT_LANGUAGE


@functools.cache
def _builtins(language: str) -> Mapping[str, Mapping[str, str]]:
    text = resources.files(__package__).joinpath(f"{language}.yaml").read_text("utf-8")
    loaded: Mapping[str, Mapping[str, str]] = yaml.safe_load(text)
    return loaded


def builtin(kind: Kind, language: str) -> MailTemplate:
    """The template casedesk ships for ``kind`` in ``language`` (English when it has none)."""
    found = _builtins(language if language in LANGUAGES else DEFAULT_LANGUAGE)[kind]
    return MailTemplate(found["subject"], found["text"], found.get("html"))


def render(
    kind: Kind, values: Mapping[str, Any], template: MailTemplate | None = None, *, language: str
) -> RenderedMail:
    """The mail for ``values``; a template that fails is an ``InvalidInput`` naming its field."""
    with budgeted():
        return _render_mail(kind, values, template or builtin(kind, language))


def _render_mail(kind: Kind, values: Mapping[str, Any], template: MailTemplate) -> RenderedMail:
    spec = SPECS[kind]
    subject = " ".join(_render(_TEXT, "subject", template.subject, values).split())
    case = values.get("case") or {}
    if spec.about_case and not TOKEN.search(subject):
        subject = f"{subject} [#{case['number']}]"
    text = _render(_TEXT, "text", template.text, values).strip() + "\n"
    body = (
        _render(_HTML, "html", template.html, values)
        if template.html is not None
        else _LAYOUT.format(body=html_of(text))
    )
    return RenderedMail(subject[:SUBJECT_LIMIT], text, body, spec.auto_submitted)


def preview(kind: Kind, language: str, template: MailTemplate | None = None) -> RenderedMail:
    """``kind`` rendered with the sample values every template of it may use."""
    return render(kind, SPECS[kind].sample, template, language=language)


def check(kind: Kind, template: MailTemplate) -> None:
    """Refuse a draft that does not render with the kind's variables (a 422 naming the
    field and line)."""
    preview(kind, DEFAULT_LANGUAGE, template)


def _render(env: BudgetedEnvironment, field: str, source: str, values: Mapping[str, Any]) -> str:
    try:
        with budgeted() as budget:
            return "".join(
                budget.written(chunk) for chunk in env.from_string(source).generate(values)
            )
    except (TooMuchWork, RecursionError, MemoryError) as exc:
        reason = str(exc) if isinstance(exc, TooMuchWork) else type(exc).__name__
        raise InvalidInput(
            f"{field}: the template does too much work: {reason}", field=field
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(f"{field}, line {exc.lineno}: {exc.message}", field=field) from None
    except jinja2.UndefinedError as exc:
        names = ", ".join(sorted(_known(values)))
        raise InvalidInput(f"{field}: {exc.message} (known: {names})", field=field) from None
    except jinja2.TemplateError as exc:  # a sandbox refusal among them
        raise InvalidInput(f"{field}: {exc}", field=field) from None
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        # What the template's own expressions do wrong ({{ n / 0 }}, "a" + 1, x[9]).
        raise InvalidInput(
            f"{field}: the template fails when rendered: {type(exc).__name__}: {exc}", field=field
        ) from None


def variables(kind: Kind) -> list[str]:
    """The names a template of ``kind`` may use (``case.number``, ``link``)."""
    return sorted(_known(SPECS[kind].sample))


def _known(values: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            names.extend(f"{key}.{inner}" for inner in value)
        else:
            names.append(key)
    return names
