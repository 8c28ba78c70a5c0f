"""A connector manifest: everything an admin needs to connect a service, without code.

A manifest names the service (``id``, ``name``, ``version``), where it is (``base_url``, a
template over the connection's settings), how a connection authenticates (``auth``), what a
connection holds (``connection``: settings and secret fields), and what the service offers:
``actions`` (requests a workflow step can make), ``triggers`` (polling or instant) and
``enrichers`` (how to fetch an entity from the id an event carries). Python ``hooks`` are for
what a protocol needs code for; they are found through the ``casedesk.connectors`` entry
points, as editions are.

``parse_manifest`` gives the manifest, or raises ``ManifestInvalid`` listing every problem with
its path, as publishing a state machine does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
import yaml
from pydantic import Field, ValidationError, model_validator

from casedesk.integrations.manifests.auth import AuthScheme, NoAuth
from casedesk.integrations.manifests.common import (
    OBJECT_SCHEMA,
    Code,
    JsonSchema,
    Part,
    RequestTemplate,
    Selection,
    Template,
    TemplateTree,
)
from casedesk.integrations.manifests.instant import InstantSpec
from casedesk.integrations.manifests.polling import PollingSpec


class SecretField(Part):
    name: Code
    title: str = Field(default="", max_length=200)


class ConnectionSpec(Part):
    """What an admin fills in for a connection: settings (shown) and secrets (sealed)."""

    settings: JsonSchema = Field(default_factory=lambda: dict(OBJECT_SCHEMA))
    secrets: list[SecretField] = Field(default_factory=list, max_length=20)
    test: RequestTemplate | None = Field(
        default=None,
        description="a cheap request that succeeds when the connection works "
        "(`POST /connections/{id}/test` sends it)",
    )


class ActionDef(Part):
    """A request a workflow step makes; its templates see ``input``, ``connection``, ``secrets``."""

    title: str = Field(default="", max_length=200)
    input: JsonSchema = Field(default_factory=lambda: dict(OBJECT_SCHEMA))
    request: RequestTemplate
    output: Selection | None = Field(default=None, description="what of the answer it returns")
    error: Selection | None = Field(
        default=None,
        description="the error in an answer given with a success status (Slack's "
        "`ok: false`: `ok == `false` && error`); one found makes the call fail",
    )
    transient_errors: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="errors (found by `error`) worth trying again later",
    )


class BatchSpec(Part):
    """One request for several ids (Graph's ``$batch``, a ``?ids=`` endpoint)."""

    request: RequestTemplate = Field(description="its templates see `ids`")
    entities: Selection = Field(description="the list of entities in the answer")
    entity_id: Selection = Field(default="id")
    max_ids: int = Field(default=20, ge=2, le=1_000)


class EnricherDef(Part):
    """How to fetch one entity from the id an event carries; its templates see ``id``."""

    request: RequestTemplate
    entity: Selection = Field(default="@", description="the entity in the answer")
    gone: Selection | None = Field(
        default=None,
        description="true over an answer that says the entity is gone whatever its status "
        "(Slack answers 200 with `error: user_not_found`); 404 and 410 always do",
    )
    batch: BatchSpec | None = None
    concurrency: int = Field(default=4, ge=1, le=64, description="calls at once per connection")


class TriggerDef(Part):
    title: str = Field(default="", max_length=200)
    kind: Literal["polling", "instant"]
    settings: JsonSchema = Field(
        default_factory=lambda: dict(OBJECT_SCHEMA), description="what a subscription sets"
    )
    enricher: Code | None = Field(default=None, description="fetches the entity of each event")
    enrich_when: Selection | None = Field(
        default=None,
        description="which items are enriched, over each item (Slack: `event.type == "
        "'file_shared'`, the one event that carries only an id); none: every item",
    )
    enriched_as: Code | None = Field(
        default=None,
        description="the item stays what the steps see and the entity joins it under this "
        "name (Slack's file_shared keeps its channel and user); none: the entity is the item",
    )
    polling: PollingSpec | None = None
    instant: InstantSpec | None = None
    overridable: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="fields of the polling or instant section a subscription may set in its "
        "settings (the generic connectors let it choose the items path, the verification, ...)",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> TriggerDef:
        spec = self.polling if self.kind == "polling" else self.instant
        other = self.instant if self.kind == "polling" else self.polling
        if spec is None:
            raise ValueError(f"a {self.kind} trigger needs its `{self.kind}` section")
        if other is not None:
            raise ValueError(f"a {self.kind} trigger has no other section than `{self.kind}`")
        unknown = sorted(set(self.overridable) - set(type(spec).model_fields))
        if unknown:
            raise ValueError(f"overridable: {unknown} are not fields of `{self.kind}`")
        return self

    def effective(self, settings: dict[str, Any]) -> PollingSpec | InstantSpec:
        """The trigger's section with what a subscription's settings may override; raises
        ManifestInvalid naming each bad setting (under ``settings.<field>``)."""
        spec = self.polling if self.kind == "polling" else self.instant
        assert spec is not None
        overrides = {k: settings[k] for k in self.overridable if k in settings}
        if not overrides:
            return spec
        merged = spec.model_dump(by_alias=True, exclude_unset=True) | overrides
        try:
            return type(spec).model_validate(merged)
        except ValidationError as exc:
            raise ManifestInvalid(
                [
                    Problem("settings." + ".".join(str(p) for p in error["loc"]), error["msg"])
                    for error in exc.errors()
                ]
            ) from None


class SenderSpec(Part):
    """How a chat message's author (an id at the source) becomes a name and an address."""

    enricher: Code = Field(description="the enricher that fetches a user by id (Slack users.info)")
    address: Selection = Field(description="the e-mail address in the user it fetches")
    name: Selection | None = Field(default=None, description="the display name in it")


class ReplySpec(Part):
    action: Code = Field(description="the action that sends an agent's public comment back")
    output_id: Selection | None = Field(
        default=None,
        description="the sent message's id in the action's output (Slack's `ts`); none: the "
        "output itself when it is text, else its `id`",
    )


class ChannelSpec(Part):
    """What makes a connector a channel: its messages become cases and comments (the
    ``receive_message`` step), and agents' public comments go back into the same thread.

    The enriched entity becomes a ``domain.channels.ChannelMessage`` through the hooks'
    ``message`` (MIME, HTML bodies, a bot's own messages), else through ``message``, a mapping
    whose templates see ``entity`` and ``trigger_id``."""

    kind: Literal["mail", "chat"]
    message: TemplateTree = None
    sender: SenderSpec | None = None
    reply: ReplySpec | None = None


class ConnectorManifest(Part):
    id: Code
    name: str = Field(min_length=1, max_length=200)
    version: int = Field(default=1, ge=1, le=1_000_000)
    description: str = Field(default="", max_length=2_000)
    base_url: Template | None = Field(
        default=None, description="over {connection}: `https://{{ connection.subdomain }}...`"
    )
    connection: ConnectionSpec = Field(default_factory=ConnectionSpec)
    auth: AuthScheme = Field(default_factory=NoAuth)
    actions: dict[Code, ActionDef] = Field(default_factory=dict, max_length=200)
    triggers: dict[Code, TriggerDef] = Field(default_factory=dict, max_length=100)
    enrichers: dict[Code, EnricherDef] = Field(default_factory=dict, max_length=100)
    hooks: str | None = Field(
        default=None, max_length=100, description="a `casedesk.connectors` entry point"
    )
    channel: ChannelSpec | None = None
    secret_paths: list[str] = Field(
        default_factory=list,
        max_length=20,
        description="path patterns whose `{secret}` segments are redacted from traces",
    )

    @model_validator(mode="after")
    def _references(self) -> ConnectorManifest:
        problems = []
        secrets = {field.name for field in self.connection.secrets}
        for name in self.auth.secret_fields:
            if name not in secrets:
                problems.append(f"auth: the secret field {name!r} is not in connection.secrets")
        for name, trigger in self.triggers.items():
            if trigger.enricher is not None and trigger.enricher not in self.enrichers:
                problems.append(f"triggers.{name}.enricher: no enricher {trigger.enricher!r}")
            if trigger.enricher is None and (trigger.enrich_when or trigger.enriched_as):
                problems.append(f"triggers.{name}: enrich_when and enriched_as need an enricher")
        channel = self.channel
        if channel is not None:
            if channel.sender is not None and channel.sender.enricher not in self.enrichers:
                problems.append(f"channel.sender.enricher: no enricher {channel.sender.enricher!r}")
            if channel.reply is not None and channel.reply.action not in self.actions:
                problems.append(f"channel.reply.action: no action {channel.reply.action!r}")
            if channel.message is None and self.hooks is None:
                problems.append("channel: a channel needs a `message` mapping or `hooks`")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def trigger(self, name: str) -> TriggerDef | None:
        return self.triggers.get(name)


@dataclass(frozen=True, slots=True)
class Problem:
    path: str
    message: str


class ManifestInvalid(ValueError):
    """A manifest with problems; ``problems`` lists each with its path."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in problems))
        self.problems = problems


def parse_manifest(raw: Any) -> ConnectorManifest:
    """The manifest of a parsed YAML or JSON document; every problem at once if it is not one."""
    if not isinstance(raw, dict):
        raise ManifestInvalid([Problem("", "a manifest is an object (a mapping)")])
    try:
        return ConnectorManifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestInvalid(
            [
                Problem(".".join(str(part) for part in error["loc"]), error["msg"])
                for error in exc.errors()
            ]
        ) from None


class _DocumentLoader(yaml.SafeLoader):
    """YAML's safe subset without aliases: a few bytes of ``*alias`` can stand for a document
    too large to walk (the "billion laughs"), and a manifest has no need of them."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in a manifest", event.start_mark
            )
        return super().compose_node(parent, index)


def read_document(text: str) -> Any:
    """The JSON value of a YAML or JSON document; ``ManifestInvalid`` says where it is not one.

    What YAML has and JSON has not is made JSON (dates become text, number keys strings),
    or refused (sets, binary), so a document can be stored and read back as it was taken.
    """
    try:
        value = yaml.load(text, Loader=_DocumentLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f"line {where.line + 1}, column {where.column + 1}" if where else "the document"
        raise ManifestInvalid([Problem("", f"not YAML or JSON at {at}: {exc}")]) from None
    except RecursionError:
        raise ManifestInvalid([Problem("", "the document nests too deep")]) from None
    try:
        return orjson.loads(orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError as exc:
        raise ManifestInvalid([Problem("", f"the document is not JSON data: {exc}")]) from None


def load_manifest(text: str) -> ConnectorManifest:
    """A manifest written as YAML (JSON is YAML too)."""
    return parse_manifest(read_document(text))
