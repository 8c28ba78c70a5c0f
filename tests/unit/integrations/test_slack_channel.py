"""The Slack hooks: Events API deliveries as channel messages, and replies as chat.postMessage.

Every message the hooks make must be a ``ChannelMessage``, so each is checked through it.
"""

from __future__ import annotations

from typing import Any

import pytest

from casedesk.domain.channels import ChannelMessage
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.channels.slack import SlackHooks, readable
from casedesk.integrations.connector_hooks import hooks_of

CHANNEL = "C0SUPPORT1"
BOT = "U0CASEBOT"
ANN = "U0ANN00001"
ROOT_TS = "1700000000.000100"
SETTINGS = {"channels": [CHANNEL], "bot_id": "B0CASEBOT"}


def delivery(event: dict[str, Any], **envelope: Any) -> dict[str, Any]:
    return {
        "token": "verification",
        "team_id": "T0TEAM",
        "api_app_id": "A0CASEDESK",
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0001",
        "event_time": 1_700_000_000,
        "authorizations": [{"team_id": "T0TEAM", "user_id": BOT, "is_bot": True}],
    } | envelope


def posted(text: str = "My printer is on fire", **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "channel": CHANNEL,
        "user": ANN,
        "text": text,
        "ts": ROOT_TS,
        "event_ts": ROOT_TS,
        "channel_type": "channel",
    } | fields


def message_of(entity: dict[str, Any], settings: dict[str, Any] = SETTINGS) -> ChannelMessage:
    made = SlackHooks().message("events", entity, {"trigger_id": "Ev0001", "settings": settings})
    assert made is not None
    return ChannelMessage.model_validate(made)


def test_the_manifest_names_these_hooks() -> None:
    manifest = builtin("slack")
    assert manifest is not None
    assert isinstance(hooks_of(manifest), SlackHooks)


def test_a_root_message_is_its_own_thread_and_answers_in_it() -> None:
    message = message_of(delivery(posted()))
    assert message.kind == "message"
    assert message.id == f"{CHANNEL}:{ROOT_TS}"
    assert message.thread_id == f"{CHANNEL}:{ROOT_TS}"
    assert message.text == "My printer is on fire"
    assert message.sender.id == ANN
    assert message.subject is None  # a chat line's "[#12]" must not thread into case 12
    assert not message.own
    assert message.reply == {"channel": CHANNEL, "thread_ts": ROOT_TS}
    assert message.sent_at is not None
    assert message.sent_at.timestamp() == 1_700_000_000.0001


def test_a_reply_in_a_thread_belongs_to_the_root() -> None:
    event = posted("Still smoking", ts="1700000050.000200", thread_ts=ROOT_TS)
    message = message_of(delivery(event))
    assert message.id == f"{CHANNEL}:1700000050.000200"
    assert message.thread_id == f"{CHANNEL}:{ROOT_TS}"
    assert message.reply == {"channel": CHANNEL, "thread_ts": ROOT_TS}


def test_a_reply_also_sent_to_the_channel_is_a_person_writing() -> None:
    event = posted("Also for all", subtype="thread_broadcast", ts="1.2", thread_ts=ROOT_TS)
    assert message_of(delivery(event)).thread_id == f"{CHANNEL}:{ROOT_TS}"


@pytest.mark.parametrize(
    ("mrkdwn", "text"),
    [
        ("Hi <@U0BOB00001>, see <#C0OTHER01|ops>", "Hi @U0BOB00001, see #ops"),
        ("<@U0BOB00001|bob> said so", "@bob said so"),
        (
            "Read <https://status.example.com/x?a=1&amp;b=2|the status page>",
            "Read the status page (https://status.example.com/x?a=1&b=2)",
        ),
        ("<https://example.com>", "https://example.com"),
        ("mail <mailto:ann@example.com|ann@example.com>", "mail ann@example.com"),
        ("<!here> fish &amp; chips &lt;3 &gt; all", "@here fish & chips <3 > all"),
        ("<!subteam^S0TEAM|@support> ping", "@support ping"),
        ("<!date^1392734382^{date}|Feb 18, 2014>", "Feb 18, 2014"),
        ("&amp;lt; is how you write &lt;", "&lt; is how you write <"),
    ],
)
def test_mrkdwn_reads_as_plain_text(mrkdwn: str, text: str) -> None:
    assert readable(mrkdwn) == text


def test_a_mention_of_the_bot_is_what_follows_it() -> None:
    event = posted(f"<@{BOT}> my invoice is wrong", type="app_mention")
    message = message_of(delivery(event))
    assert message.kind == "message"
    assert message.text == "my invoice is wrong"


def test_a_mention_is_taken_in_any_channel_the_bot_is_in() -> None:
    event = posted(f"<@{BOT}> help", type="app_mention", channel="C0ELSEWHERE")
    assert message_of(delivery(event)).kind == "message"


def test_messages_in_channels_not_connected_are_ignored() -> None:
    message = message_of(delivery(posted(channel="C0ELSEWHERE")))
    assert message.kind == "ignored"
    assert message.note == "channel C0ELSEWHERE is not connected"


def test_without_connected_channels_every_channel_counts() -> None:
    assert message_of(delivery(posted(channel="C0ANY")), settings={}).kind == "message"


@pytest.mark.parametrize(
    "own",
    [
        {"user": BOT, "bot_id": "B0CASEBOT"},  # its user, named in the authorizations
        {"user": "U0OLDBOT", "bot_id": "B0CASEBOT"},  # the connection's bot id
        {"bot_id": "B0NEWBOT", "app_id": "A0CASEDESK", "subtype": "bot_message"},  # the app
    ],
)
def test_the_bots_own_messages_are_own(own: dict[str, Any]) -> None:
    event = posted("Thanks, we are on it", thread_ts=ROOT_TS, ts="2.0") | own
    message = message_of(delivery(event))
    assert message.kind == "message"
    assert message.own


def test_the_connections_bot_user_setting_makes_its_messages_own() -> None:
    envelope = delivery(posted(user="U0SETBOT"), authorizations=[])
    assert message_of(envelope, settings=SETTINGS | {"bot_user_id": "U0SETBOT"}).own


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"subtype": "channel_join", "text": "<@U0ANN00001> has joined"}, "channel_join"),
        ({"subtype": "channel_topic", "topic": "Printers"}, "channel_topic"),
        ({"subtype": "channel_purpose"}, "channel_purpose"),
        ({"subtype": "pinned_item"}, "pinned_item"),
        ({"subtype": "message_replied", "hidden": True}, "message_replied"),
        ({"subtype": "bot_message", "bot_id": "B0OTHER", "app_id": "A0OTHER"}, "another bot"),
        ({"bot_id": "B0OTHER", "app_id": "A0OTHER"}, "another bot"),
    ],
)
def test_what_is_not_a_person_writing_is_ignored_with_a_note(
    fields: dict[str, Any], note: str
) -> None:
    message = message_of(delivery(posted() | fields))
    assert message.kind == "ignored"
    assert message.note is not None
    assert note in message.note
    assert not message.own


def test_other_events_and_envelopes_are_ignored() -> None:
    reaction = {"type": "reaction_added", "user": ANN, "reaction": "fire", "event_ts": "3.0"}
    assert message_of(delivery(reaction)).kind == "ignored"
    limited = {"type": "app_rate_limited", "team_id": "T0TEAM", "minute_rate_limited": 1}
    assert message_of(limited).kind == "ignored"


def test_an_edit_names_the_original_message_with_its_new_text() -> None:
    original = posted("Printer on fier", ts="5.000001", thread_ts=ROOT_TS)
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "hidden": True,
        "channel": CHANNEL,
        "message": original | {"text": "Printer on *fire*", "edited": {"user": ANN, "ts": "6.0"}},
        "previous_message": original,
        "event_ts": "6.000002",
        "ts": "6.000002",
    }
    message = message_of(delivery(changed))
    assert message.kind == "edit"
    assert message.id == f"{CHANNEL}:5.000001"
    assert message.thread_id == f"{CHANNEL}:{ROOT_TS}"
    assert message.text == "Printer on *fire*"
    assert message.sender.id == ANN


def test_a_change_that_leaves_the_text_is_no_edit() -> None:
    root = posted()
    changed = {
        "type": "message",
        "subtype": "message_changed",
        "channel": CHANNEL,
        "message": root | {"reply_count": 1, "latest_reply": "7.0"},
        "previous_message": root,
        "ts": "7.1",
    }
    message = message_of(delivery(changed))
    assert message.kind == "ignored"
    assert message.note is not None
    assert "did not change" in message.note


def test_a_deletion_names_the_deleted_message() -> None:
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": CHANNEL,
        "deleted_ts": "5.000001",
        "previous_message": posted("oops", ts="5.000001", thread_ts=ROOT_TS),
        "event_ts": "8.0",
        "ts": "8.0",
    }
    message = message_of(delivery(deleted))
    assert message.kind == "delete"
    assert message.id == f"{CHANNEL}:5.000001"
    assert message.thread_id == f"{CHANNEL}:{ROOT_TS}"


def test_a_message_with_files_lists_them() -> None:
    files = [{"id": "F1", "title": "Smoke", "permalink": "https://x.slack.com/files/F1"}]
    message = message_of(delivery(posted("Look", subtype="file_share", files=files)))
    assert message.text == "Look\n[file: Smoke] https://x.slack.com/files/F1"


def file_shared(file: dict[str, Any] | None) -> dict[str, Any]:
    event = {
        "type": "file_shared",
        "channel_id": CHANNEL,
        "file_id": "F0SHOT",
        "user_id": ANN,
        "file": {"id": "F0SHOT"},
        "event_ts": "9.000001",
    }
    return delivery(event) | ({} if file is None else {"file": file})


def test_a_shared_file_is_the_message_that_shared_it() -> None:
    file = {
        "id": "F0SHOT",
        "title": "Smoke",
        "user": ANN,
        "permalink": "https://x.slack.com/files/F0SHOT",
        "shares": {"public": {CHANNEL: [{"ts": "8.5", "thread_ts": ROOT_TS}]}},
    }
    message = message_of(file_shared(file))
    assert message.kind == "message"
    assert message.id == f"{CHANNEL}:8.5"  # the file_share message's own id: recorded once
    assert message.thread_id == f"{CHANNEL}:{ROOT_TS}"
    assert message.text == "[file: Smoke] https://x.slack.com/files/F0SHOT"
    assert message.sender.id == ANN


def test_a_shared_file_not_fetched_is_ignored() -> None:
    assert message_of(file_shared(None)).kind == "ignored"


def test_a_reply_goes_into_the_thread_escaped_as_mrkdwn() -> None:
    reply = {
        "text": "Use <Ctrl> & restart",
        "thread_id": f"{CHANNEL}:{ROOT_TS}",
        "reply": {"channel": CHANNEL, "thread_ts": ROOT_TS},
    }
    made = SlackHooks().outgoing("post_message", reply, {"settings": SETTINGS})
    assert made == {
        "channel": CHANNEL,
        "thread_ts": ROOT_TS,
        "text": "Use &lt;Ctrl&gt; &amp; restart",
    }


def test_a_reply_without_the_answered_message_goes_to_the_cases_thread() -> None:
    made = SlackHooks().outgoing(
        "post_message", {"text": "Hi", "thread_id": f"{CHANNEL}:{ROOT_TS}", "reply": {}}, {}
    )
    assert made == {"channel": CHANNEL, "thread_ts": ROOT_TS, "text": "Hi"}
