"""The Graph hooks: Outlook messages and Teams chatMessages as channel messages, and replies as
the input of ``/messages/{id}/reply`` and of the channel message replies endpoint.

Every message the hooks make must be a ``ChannelMessage``, so each is checked through it.
"""

from __future__ import annotations

from typing import Any

from casedesk.domain.channels import ChannelMessage
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.channels.graph import GraphHooks
from casedesk.integrations.connector_hooks import hooks_of
from casedesk.integrations.expressions import render, render_tree
from casedesk.integrations.manifests.auth import OAuth2Code

TEAM = "fbe2bf47-16c8-47cf-b4a5-4b9b187c508b"
CHANNEL = "19:4a95f7d8db4c4e7fae857bcebe0623e6@thread.tacv2"
ANN = "8ea0e38b-efb3-4757-924a-5f94061cf8c2"
ME = "a9b8c7d6-0000-4000-8000-000000000001"
APP = "24d3b144-21ae-4080-943f-7067b395b913"
TEAMS_SETTINGS = {"team_id": TEAM, "channel_id": CHANNEL, "user_id": ME, "app_id": APP}


def mail(**fields: Any) -> dict[str, Any]:
    return {
        "id": "AAMkAGI2TG93AAA=",
        "conversationId": "AAQkAGI2Conv=",
        "internetMessageId": "<abc123@mail.example.com>",
        "subject": "Printer on fire",
        "isDraft": False,
        "sentDateTime": "2026-12-02T15:00:00Z",
        "receivedDateTime": "2026-12-02T15:00:01Z",
        "body": {"contentType": "html", "content": "<p>It <b>smokes</b>.</p><p>Help</p>"},
        "from": {"emailAddress": {"name": "Ann Smith", "address": "ann@example.com"}},
        "toRecipients": [{"emailAddress": {"name": "Support", "address": "support@x.example"}}],
        "ccRecipients": [{"emailAddress": {"address": "bob@example.com"}}],
        "internetMessageHeaders": [
            {"name": "Message-ID", "value": "<abc123@mail.example.com>"},
            {"name": "In-Reply-To", "value": "<first@x.example>"},
            {"name": "References", "value": "<root@x.example> <first@x.example>"},
        ],
    } | fields


def message_of(trigger: str, entity: dict[str, Any], settings: dict[str, Any]) -> ChannelMessage:
    made = GraphHooks().message(trigger, entity, {"trigger_id": "x", "settings": settings})
    assert made is not None
    return ChannelMessage.model_validate(made)


def test_both_manifests_name_these_hooks() -> None:
    for code in ("outlook", "teams"):
        manifest = builtin(code)
        assert manifest is not None, code
        assert isinstance(hooks_of(manifest), GraphHooks)
        assert manifest.channel is not None


# --- Outlook ----------------------------------------------------------------------------


def test_a_mail_threads_by_its_conversation_and_its_headers() -> None:
    message = message_of("new_mail", mail(), {})
    assert message.kind == "message"
    assert message.id == "AAMkAGI2TG93AAA="
    assert message.thread_id == "AAQkAGI2Conv="
    assert message.subject == "Printer on fire"
    assert message.text == "It smokes.\n\nHelp"
    assert message.html == "<p>It <b>smokes</b>.</p><p>Help</p>"
    assert (message.sender.address, message.sender.name) == ("ann@example.com", "Ann Smith")
    assert [p.address for p in message.cc] == ["bob@example.com"]
    assert message.message_id == "abc123@mail.example.com"
    assert message.in_reply_to == ["first@x.example"]
    assert message.references == ["root@x.example", "first@x.example"]
    assert not message.automatic
    assert not message.own
    assert message.reply == {"message_id": "AAMkAGI2TG93AAA="}


def test_the_unique_body_is_the_text_when_graph_gives_it() -> None:
    unique = {"contentType": "html", "content": "<div>Only this is new</div>"}
    message = message_of("new_mail", mail(uniqueBody=unique), {})
    assert message.text == "Only this is new"
    assert message.html is not None
    assert "smokes" in message.html


def test_a_plain_text_mail_keeps_its_text_and_has_no_html() -> None:
    body = {"contentType": "text", "content": "Line one\r\nLine two\r\n"}
    message = message_of("new_mail", mail(body=body), {})
    assert (message.text, message.html) == ("Line one\nLine two", None)


def test_an_auto_reply_is_automatic_and_casedesks_own_reply_is_own() -> None:
    auto = mail(internetMessageHeaders=[{"name": "Auto-Submitted", "value": "auto-replied"}])
    assert message_of("new_mail", auto, {}).automatic
    bounce = mail(**{"from": {"emailAddress": {"address": "MAILER-DAEMON@x.example"}}})
    assert message_of("new_mail", bounce, {}).automatic
    own = mail(internetMessageHeaders=[{"name": "X-Casedesk-Message-Id", "value": "<c.1@d>"}])
    assert message_of("new_mail", own, {}).own


def test_a_draft_is_ignored() -> None:
    message = message_of("new_mail", mail(isDraft=True), {})
    assert message.kind == "ignored"
    assert message.note == "a draft is not sent mail"


def test_a_mail_without_headers_still_has_its_message_id() -> None:
    message = message_of("new_mail", mail(internetMessageHeaders=None), {})
    assert message.message_id == "abc123@mail.example.com"
    assert message.in_reply_to == []
    assert message.references == []


def test_a_reply_goes_to_the_message_answered_with_casedesks_headers() -> None:
    reply = {
        "html": "<p>Hi</p>",
        "to": [{"address": "ann@example.com", "name": "Ann"}, {"address": None}],
        "message_id": "casedesk.1f@support.example.com",
        "reply": {"message_id": "AAMkAGI2TG93AAA="},
        "case": {"number": 42},
    }
    made = GraphHooks().outgoing("reply", reply, {"settings": {}})
    assert made == {
        "message_id": "AAMkAGI2TG93AAA=",
        "html": "<p>Hi</p>",
        "to": [{"emailAddress": {"address": "ann@example.com", "name": "Ann"}}],
        "headers": [
            {"name": "X-Casedesk-Message-Id", "value": "<casedesk.1f@support.example.com>"},
            {"name": "X-Casedesk-Case", "value": "42"},
        ],
    }


def test_other_triggers_and_actions_are_left_to_the_manifest() -> None:
    assert GraphHooks().message("something_else", {}, {}) is None
    assert GraphHooks().outgoing("something_else", {}, {}) is None


# --- Teams ------------------------------------------------------------------------------


def chat(**fields: Any) -> dict[str, Any]:
    return {
        "id": "1700000001013",
        "replyToId": None,
        "messageType": "message",
        "createdDateTime": "2026-12-02T15:00:00.123Z",
        "deletedDateTime": None,
        "subject": None,
        "from": {
            "application": None,
            "device": None,
            "user": {"id": ANN, "displayName": "Ann Smith", "userIdentityType": "aadUser"},
        },
        "body": {"contentType": "html", "content": "<p>Printer <b>on fire</b></p><p>Help</p>"},
        "channelIdentity": {"teamId": TEAM, "channelId": CHANNEL},
    } | fields


def test_a_root_message_is_its_own_thread_with_its_html_made_text() -> None:
    message = message_of("channel_messages", chat(), TEAMS_SETTINGS)
    assert message.kind == "message"
    assert (message.id, message.thread_id) == ("1700000001013", "1700000001013")
    assert message.text == "Printer on fire\n\nHelp"
    assert message.html == "<p>Printer <b>on fire</b></p><p>Help</p>"
    assert (message.sender.id, message.sender.name, message.sender.address) == (
        ANN,
        "Ann Smith",
        None,
    )
    assert message.subject is None
    assert not message.own
    assert message.reply == {"team_id": TEAM, "channel_id": CHANNEL, "root_id": "1700000001013"}


def test_a_reply_is_in_its_roots_thread_and_keeps_a_subject() -> None:
    message = message_of(
        "channel_messages", chat(id="1700000002026", replyToId="1700000001013"), TEAMS_SETTINGS
    )
    assert message.thread_id == "1700000001013"
    assert message.reply["root_id"] == "1700000001013"
    titled = message_of("channel_messages", chat(subject="Printer"), TEAMS_SETTINGS)
    assert titled.subject == "Printer"


def test_the_connected_account_and_app_are_own_and_other_apps_and_events_ignored() -> None:
    mine = chat(**{"from": {"user": {"id": ME, "displayName": "Support"}, "application": None}})
    assert message_of("channel_messages", mine, TEAMS_SETTINGS).own
    app = {"user": None, "application": {"id": APP, "displayName": "casedesk"}}
    assert message_of("channel_messages", chat(**{"from": app}), TEAMS_SETTINGS).own
    other = {"user": None, "application": {"id": "0ther", "displayName": "Build bot"}}
    ignored = message_of("channel_messages", chat(**{"from": other}), TEAMS_SETTINGS)
    assert (ignored.kind, ignored.note) == ("ignored", "a message of an app or a bot")
    event = message_of("channel_messages", chat(messageType="systemEventMessage"), {})
    assert event.kind == "ignored"
    gone = message_of("channel_messages", chat(deletedDateTime="2026-12-02T15:01:00Z"), {})
    assert gone.kind == "ignored"


def test_a_plain_text_chat_message_stays_text() -> None:
    body = {"contentType": "text", "content": "just text"}
    message = message_of("channel_messages", chat(body=body), TEAMS_SETTINGS)
    assert (message.text, message.html) == ("just text", None)


def test_a_reply_goes_under_the_root_as_html() -> None:
    reply = {
        "html": "<p>On our way</p>",
        "thread_id": "1700000001013",
        "reply": {"team_id": TEAM, "channel_id": CHANNEL, "root_id": "1700000001013"},
    }
    made = GraphHooks().outgoing("reply_in_channel", reply, {"settings": TEAMS_SETTINGS})
    assert made == {
        "team_id": TEAM,
        "channel_id": CHANNEL,
        "root_id": "1700000001013",
        "html": "<p>On our way</p>",
    }
    # Without what the message answered said: the connection's channel and the thread.
    bare = GraphHooks().outgoing(
        "reply_in_channel", {"html": "<p>x</p>", "thread_id": "17"}, {"settings": TEAMS_SETTINGS}
    )
    assert bare is not None
    assert (bare["team_id"], bare["channel_id"], bare["root_id"]) == (TEAM, CHANNEL, "17")


def test_both_sign_in_with_microsofts_endpoints_of_the_connections_tenant() -> None:
    for code, scope in (("outlook", "Mail.Send"), ("teams", "ChannelMessage.Send")):
        manifest = builtin(code)
        assert manifest is not None
        scheme = manifest.auth
        assert isinstance(scheme, OAuth2Code)
        assert {"offline_access", scope} <= set(scheme.scopes)
        context = {"connection": {"tenant": "contoso.example"}}
        assert render(scheme.token_url, context) == (
            "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
        )
        assert render(scheme.authorize_url, {"connection": {}}) == (
            "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize"
        )
        assert manifest.base_url is not None
        assert render(manifest.base_url, {"connection": {}}) == "https://graph.microsoft.com/v1.0"


def test_the_outlook_batch_asks_for_each_message_with_its_headers() -> None:
    manifest = builtin("outlook")
    assert manifest is not None
    batch = manifest.enrichers["message"].batch
    assert batch is not None
    assert batch.max_ids == 20
    made = render_tree(batch.request.json_body, {"ids": ["m1", "m2"]})
    assert [r["id"] for r in made["requests"]] == ["m1", "m2"]
    assert made["requests"][0]["method"] == "GET"
    assert made["requests"][0]["url"].startswith("/me/messages/m1?$select=")
    assert "internetMessageHeaders" in made["requests"][0]["url"]


def test_a_teams_notification_resource_is_fetched_at_its_path() -> None:
    manifest = builtin("teams")
    assert manifest is not None
    path = manifest.enrichers["chat_message"].request.path
    reply = f"teams('{TEAM}')/channels('{CHANNEL}')/messages('17')/replies('18')"
    assert render(path, {"id": reply}).strip() == (
        f"/teams/{TEAM}/channels/{CHANNEL}/messages/17/replies/18"
    )
