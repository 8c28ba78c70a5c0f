"""The screens' languages: English and Simplified Chinese.

Templates mark their text with ``_()``; the catalog of each language is the gettext ``.po``
files under ``locales/<language>/LC_MESSAGES/`` (one per area of the screens), compiled and
merged with Babel when the process first needs it. The language
is the user's setting, else the best match of the browser's ``Accept-Language``, else
English. Dates and times are shown in the user's time zone (UTC unless set).
"""

from __future__ import annotations

import functools
import io
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale
from babel.dates import format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).parent / "locales"
LANGUAGES = {"en": "English", "zh-Hans": "简体中文"}
DEFAULT = "en"
_BABEL_NAMES = {"en": "en", "zh-Hans": "zh_Hans"}


def negotiate(accept_language: str | None, chosen: str | None = None) -> str:
    """The language to show: ``chosen`` when it is one we have, else the browser's best."""
    if chosen in LANGUAGES:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if tag and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        if tag.startswith("zh"):
            return "zh-Hans"
        if tag.startswith("en") or tag == "*":
            return "en"
    return DEFAULT


@functools.cache
def translations(language: str) -> NullTranslations:
    """The compiled catalog of ``language`` (English is the templates' own text)."""
    if language == DEFAULT or language not in LANGUAGES:
        return NullTranslations()
    merged = Translations()
    for po in sorted((LOCALES_DIR / _BABEL_NAMES[language] / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as source:
            catalog = read_po(source, locale=_BABEL_NAMES[language])
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        merged.merge(Translations(compiled))
    return merged


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(moment: datetime | None, language: str, time_zone: str | None) -> str:
    """A moment as people of ``language`` write it, in ``time_zone``."""
    if moment is None:
        return ""
    locale = Locale.parse(_BABEL_NAMES.get(language, "en"))
    return format_datetime(moment, "medium", tzinfo=zone(time_zone), locale=locale)


def span(seconds: int, language: str) -> str:
    """A length of time as people of ``language`` say it, rounded: "2 hours", "3 天"."""
    locale = Locale.parse(_BABEL_NAMES.get(language, "en"))
    return format_timedelta(timedelta(seconds=abs(seconds)), threshold=1.5, locale=locale)
