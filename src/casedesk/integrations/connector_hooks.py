"""Python hooks of connectors: the little code a protocol needs beyond its manifest.

A manifest names its hooks (``hooks: gmail``); the name is an entry point of the group
``casedesk.connectors``, registered the way editions are::

    [project.entry-points."casedesk.connectors"]
    gmail = "casedesk_gmail.hooks:GmailHooks"

The entry point is a class (or any callable without arguments) whose instance does what
``ConnectorHooks`` describes. Every entry point is loaded once per process; a manifest that
names a hook that is not installed, or that does not load, cannot be published.

Each method answers None to leave the decision to the manifest, so a hook overrides only
what its protocol needs; subclass ``ManifestHooks`` to get that for every other method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from casedesk.integrations.channel_files import ChannelFile
from casedesk.integrations.manifests import ConnectorManifest, Problem

ENTRY_POINT_GROUP = "casedesk.connectors"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A request the source sent to an instant trigger, as it arrived."""

    body: bytes
    headers: Mapping[str, str]
    query: Mapping[str, str]


@runtime_checkable
class ConnectorHooks(Protocol):
    """What a connector's code may customise."""

    def items(self, trigger: str, answer: Any, context: Mapping[str, Any]) -> list[Any] | None:
        """The items (polling) or events (instant) in ``answer``, for a source whose answers
        a selection cannot take apart (a MIME multipart batch, a history of changes where
        only some kinds count); None: the trigger's ``items`` / ``events`` selection."""
        ...

    def verify(self, trigger: str, delivery: Delivery, secrets: Mapping[str, str]) -> bool | None:
        """Whether a delivery is authentic, for a signature the manifest's ``verify``
        cannot describe (a JWT signed with the provider's rotating keys, say); None: the
        trigger's ``verify`` decides."""
        ...

    def message(
        self, trigger: str, entity: Any, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """A channel's entity (a Gmail message, a Graph message, a Slack event) as a
        ``domain.channels.ChannelMessage`` (its fields as a dict; ``kind: ignored`` with a
        ``note`` for what is not a person writing); None: the manifest's ``channel.message``
        mapping. ``context`` holds ``trigger_id`` and the connection's ``settings``."""
        ...

    def files(self, trigger: str, entity: Any, context: Mapping[str, Any]) -> list[ChannelFile]:
        """The files a channel's entity carries (its attachments, inline images), to be
        fetched and attached to the case or comment the message makes; none: a message
        without files, or a connector that brings none. ``context`` as for ``message``."""
        ...

    def outgoing(
        self, action: str, reply: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The input of the channel's reply action for an agent's reply (a
        ``domain.channels.Reply`` as a dict), for a provider that wants what templates cannot
        make (Gmail's base64url RFC 5322 message); None: the reply itself is the input.
        ``context`` holds the connection's ``settings``."""
        ...


class ManifestHooks:
    """Hooks that leave everything to the manifest; subclass it and override what you need."""

    def items(self, trigger: str, answer: Any, context: Mapping[str, Any]) -> list[Any] | None:
        return None

    def verify(self, trigger: str, delivery: Delivery, secrets: Mapping[str, str]) -> bool | None:
        return None

    def message(
        self, trigger: str, entity: Any, context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        return None

    def files(self, trigger: str, entity: Any, context: Mapping[str, Any]) -> list[ChannelFile]:
        return []

    def outgoing(
        self, action: str, reply: Mapping[str, Any], context: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        return None


@dataclass(frozen=True, slots=True)
class Installed:
    hooks: dict[str, ConnectorHooks]
    broken: dict[str, str]
    """Entry points that did not load, with why."""


@cache
def installed_hooks() -> Installed:
    """Every ``casedesk.connectors`` entry point, loaded once per process."""
    hooks: dict[str, ConnectorHooks] = {}
    broken: dict[str, str] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            made = entry_point.load()()
        except Exception as exc:  # an installed package's bug is a problem of the manifest
            broken[entry_point.name] = f"{type(exc).__name__}: {exc}"
            continue
        if not isinstance(made, ConnectorHooks):
            broken[entry_point.name] = (
                f"{entry_point.value} does not make ConnectorHooks"
                " (items, verify, message, outgoing)"
            )
            continue
        hooks[entry_point.name] = made
    return Installed(hooks, broken)


def hooks_of(manifest: ConnectorManifest) -> ConnectorHooks:
    """The connector's hooks; a connector without any gets ones that leave all to it."""
    if manifest.hooks is None:
        return ManifestHooks()
    found = installed_hooks().hooks.get(manifest.hooks)
    if found is None:
        raise LookupError(f"connector {manifest.id} needs the hooks {manifest.hooks!r}")
    return found


def hook_problems(name: str | None) -> list[Problem]:
    """Why the hooks a manifest names (its ``hooks``) cannot be used here, if they cannot."""
    if name is None:
        return []
    installed = installed_hooks()
    if name in installed.broken:
        return [Problem("hooks", f"the hooks {name!r} do not load: {installed.broken[name]}")]
    if name not in installed.hooks:
        known = ", ".join(sorted(installed.hooks)) or "none"
        return [
            Problem(
                "hooks",
                f"no hooks {name!r} are installed (entry points of {ENTRY_POINT_GROUP}: {known})",
            )
        ]
    return []
