"""A local server that speaks Slack's Web API and sends Events API deliveries as Slack does.

The Web API (``/api/{method}``):

- a call is a GET with query arguments, or a POST of a form or of JSON; the token is
  ``Authorization: Bearer xoxb-…`` (or a form's ``token``). JSON needs the header.
- every answer is HTTP 200 with ``{"ok": true, …}`` or ``{"ok": false, "error": …}``
  (``not_authed``, ``invalid_auth``, ``channel_not_found``, ``user_not_found``,
  ``file_not_found``, ``thread_not_found``, ``no_text``), except a rate limit: 429 with
  ``Retry-After`` and ``{"ok": false, "error": "ratelimited"}`` (``rate_limit`` scripts them).
- ``auth.test``, ``users.info`` (``profile.email``, ``real_name``, ``display_name``),
  ``files.info`` (with ``shares``), ``chat.postMessage`` (records the message with its ``ts``
  and ``thread_ts``, and queues its event, as Slack echoes a bot's posts to the app), and
  ``conversations.replies``.

The Events API: ``post``, ``reply``, ``edit``, ``delete``, ``share_file``, ``bot_post``
make what a person (or another app) does in the workspace and deliver its ``event_callback``
to ``request_url`` through ``caller``, signed as Slack signs (``v0=`` HMAC-SHA256 hex of
``v0:{timestamp}:{body}`` with the signing secret) with Slack's headers. ``retry`` sends a
delivery again with ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason`` (signed anew, as Slack
does); ``replay`` sends it again exactly as it was (a replayed signature); ``late`` signs it
as of minutes ago; ``verify_url`` is the ``url_verification`` handshake.

Files: ``add_file`` keeps a file's bytes and ``post_files`` posts a message with files (the
whole file objects, or only ``{id, file_access: check_file_info}`` as Slack sends when the
message leaves them out); ``share_file`` keeps bytes too. A file's ``url_private_download``
(and ``url_private``) is ``/files-pri/{team}-{id}/download/{name}`` on this server: with the
bot token it redirects (302) to a one-time ``/files-cdn/…`` address that serves the bytes;
without the token, or with another, it redirects to ``/signin``, an HTML page, as Slack does.
A deleted file (``delete_file``) is 404 there and ``file_not_found`` in ``files.info``;
``fail_downloads`` scripts the statuses of the next downloads (a 503, say).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.http_server import serving

PNG_HEAD = bytes.fromhex("89504e470d0a1a0a0000000d49484452")
TEAM = "T0CASEDESK"
APP = "A0CASEDESK"
BOT_USER = "U0CASEBOT"
BOT_ID = "B0CASEBOT"
BOT_TOKEN = "xoxb-1111-2222-" + "c" * 24
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
OTHER_APP = "A0OTHERAPP"
OTHER_BOT = "B0OTHERBOT"


@dataclass
class Call:
    """One Web API call as it arrived."""

    method: str
    http_method: str
    args: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Sent:
    """One Events API delivery as sent, and how casedesk answered it."""

    body: bytes
    headers: dict[str, str]
    status: int
    answer: bytes
    seconds: float
    """How long casedesk took to answer (Slack wants it within 3 s)."""

    @property
    def event_id(self) -> str:
        return str(orjson.loads(self.body)["event_id"])


@dataclass
class Channel:
    id: str
    name: str
    messages: list[dict[str, Any]] = field(default_factory=list)

    def find(self, ts: str) -> dict[str, Any]:
        for message in self.messages:
            if message["ts"] == ts:
                return message
        raise KeyError(ts)


@dataclass
class SlackWorkspace:
    caller: httpx.AsyncClient
    """How Slack reaches casedesk."""
    request_url: str = ""
    """The app's Request URL: the subscription's hook."""
    signing_secret: str = SIGNING_SECRET
    token: str = BOT_TOKEN
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    echoes: list[dict[str, Any]] = field(default_factory=list)
    """Events of the bot's own posts, waiting for ``deliver_echoes``."""
    limits: dict[str, list[int]] = field(default_factory=dict)
    """Per Web API method: the Retry-After seconds of the next calls answered 429."""
    port: int = 0
    contents: dict[str, bytes] = field(default_factory=dict)
    """Each file's bytes, by file id."""
    download_failures: list[int] = field(default_factory=list)
    """The statuses the next downloads answer, before they serve the file again."""
    files_read: bool = True
    """Whether the bot token may read files (``files:read``); if not, a private URL answers
    the sign-in page as it does without a token."""
    downloads: list[Call] = field(default_factory=list)
    """Every request for a file's private URL or its one-time address, as it arrived."""
    _links: dict[str, str] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    # --- the workspace ----------------------------------------------------------------

    def add_user(self, name: str, email: str, *, real_name: str | None = None) -> str:
        user_id = f"U{next(self._ids):08d}"
        self.users[user_id] = {
            "id": user_id,
            "team_id": TEAM,
            "name": name,
            "deleted": False,
            "real_name": real_name or name.title(),
            "tz": "Europe/Berlin",
            "is_bot": False,
            "profile": {
                "real_name": real_name or name.title(),
                "display_name": name,
                "email": email,
                "image_48": f"https://avatars.example/{user_id}_48.png",
                "team": TEAM,
            },
        }
        return user_id

    def add_channel(self, name: str, *, private: bool = False) -> str:
        channel_id = f"{'G' if private else 'C'}{next(self._ids):08d}"
        self.channels[channel_id] = Channel(channel_id, name)
        return channel_id

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def rate_limit(self, method: str, *retry_after: int) -> None:
        """Answer the next calls of ``method`` 429 with these Retry-After seconds."""
        self.limits[method] = list(retry_after)

    def _ts(self) -> str:
        return f"{int(time.time())}.{next(self._clock):06d}"

    # --- the Events API: what people do -------------------------------------------------

    async def post(
        self, channel: str, user: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person writes in a channel (in a thread when ``thread_ts``); the message event."""
        message = {
            "client_msg_id": secrets.token_hex(16),
            "type": "message",
            "text": text,
            "user": user,
            "ts": self._ts(),
            "team": TEAM,
            "blocks": [{"type": "rich_text", "block_id": secrets.token_hex(3), "elements": []}],
        }
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
            message["parent_user_id"] = self.channels[channel].find(thread_ts)["user"]
        self.channels[channel].messages.append(message)
        event = message | {"channel": channel, "event_ts": message["ts"], "channel_type": "channel"}
        await self.send(event)
        return message

    async def reply(self, channel: str, parent: dict[str, Any], user: str, text: str) -> Any:
        return await self.post(channel, user, text, thread_ts=parent["ts"])

    async def edit(self, channel: str, message: dict[str, Any], text: str) -> Sent:
        before = dict(message)
        message["text"] = text
        message["edited"] = {"user": message["user"], "ts": self._ts()}
        ts = self._ts()
        return await self.send(
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "message": message | {"type": "message"},
                "channel": channel,
                "previous_message": before,
                "event_ts": ts,
                "ts": ts,
                "channel_type": "channel",
            }
        )

    async def delete(self, channel: str, message: dict[str, Any]) -> Sent:
        self.channels[channel].messages.remove(message)
        ts = self._ts()
        return await self.send(
            {
                "type": "message",
                "subtype": "message_deleted",
                "hidden": True,
                "deleted_ts": message["ts"],
                "channel": channel,
                "previous_message": message,
                "event_ts": ts,
                "ts": ts,
                "channel_type": "channel",
            }
        )

    async def share_file(
        self, channel: str, user: str, title: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person uploads a file: the ``file_share`` message is kept (not delivered) and
        the ``file_shared`` event, which names only the file, is delivered."""
        ts = self._ts()
        share: dict[str, Any] = {"ts": ts, "channel_name": self.channels[channel].name}
        if thread_ts is not None:
            share["thread_ts"] = thread_ts
        name = title.lower().replace(" ", "_") + ".png"
        file = self.add_file(user, name, PNG_HEAD + b"\0" * (5120 - len(PNG_HEAD)), "image/png")
        file_id = file["id"]
        file |= {
            "title": title,
            "permalink": f"https://casedesk-test.slack.com/files/{user}/{file_id}/shot.png",
            "channels": [channel],
            "shares": {"public": {channel: [share]}},
        }
        message = {
            "type": "message",
            "subtype": "file_share",
            "text": "",
            "user": user,
            "ts": ts,
            "files": [file],
        }
        self.channels[channel].messages.append(message)
        await self.send(
            {
                "type": "file_shared",
                "channel_id": channel,
                "file_id": file_id,
                "user_id": user,
                "file": {"id": file_id},
                "event_ts": self._ts(),
            }
        )
        return file

    def add_file(self, user: str, name: str, content: bytes, mimetype: str) -> dict[str, Any]:
        """A file uploaded to the workspace, with its bytes; its file object."""
        file_id = f"F{next(self._ids):08d}"
        url = f"http://127.0.0.1:{self.port}/files-pri/{TEAM}-{file_id}"
        file: dict[str, Any] = {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1],
            "user": user,
            "size": len(content),
            "mode": "hosted",
            "is_external": False,
            "url_private": f"{url}/{name}",
            "url_private_download": f"{url}/download/{name}",
            "permalink": f"https://casedesk-test.slack.com/files/{user}/{file_id}/{name}",
        }
        self.files[file_id] = file
        self.contents[file_id] = content
        return file

    def delete_file(self, file_id: str) -> None:
        del self.files[file_id]
        del self.contents[file_id]

    def fail_downloads(self, *statuses: int) -> None:
        self.download_failures.extend(statuses)

    async def post_files(
        self,
        channel: str,
        user: str,
        text: str,
        files: list[dict[str, Any]],
        *,
        thread_ts: str | None = None,
        check_file_info: bool = False,
    ) -> dict[str, Any]:
        """A person posts a message with files (``add_file``'s objects): the ``file_share``
        message event, with the whole files or, with ``check_file_info``, only their ids."""
        shown = (
            [{"id": f["id"], "file_access": "check_file_info", "mode": "hosted"} for f in files]
            if check_file_info
            else files
        )
        message: dict[str, Any] = {
            "type": "message",
            "subtype": "file_share",
            "text": text,
            "user": user,
            "ts": self._ts(),
            "team": TEAM,
            "files": shown,
            "upload": True,
        }
        if thread_ts is not None:
            message["thread_ts"] = thread_ts
        self.channels[channel].messages.append(message)
        event = message | {"channel": channel, "event_ts": message["ts"], "channel_type": "channel"}
        await self.send(event)
        return message

    async def bot_post(self, channel: str, text: str) -> Sent:
        """Another app's bot writes in the channel."""
        ts = self._ts()
        return await self.send(
            {
                "type": "message",
                "subtype": "bot_message",
                "text": text,
                "ts": ts,
                "bot_id": OTHER_BOT,
                "app_id": OTHER_APP,
                "username": "Deploy bot",
                "channel": channel,
                "event_ts": ts,
                "channel_type": "channel",
            }
        )

    async def deliver_echoes(self) -> list[Sent]:
        """Deliver the events of the bot's own posts, as Slack sends them to the app."""
        pending, self.echoes = self.echoes, []
        return [await self.send(event) for event in pending]

    # --- the Events API: deliveries ---------------------------------------------------

    def envelope(self, event: dict[str, Any]) -> bytes:
        return orjson.dumps(
            {
                "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                "team_id": TEAM,
                "context_team_id": TEAM,
                "api_app_id": APP,
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{next(self._ids):010d}",
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": None,
                        "team_id": TEAM,
                        "user_id": BOT_USER,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
                "event_context": "4-" + secrets.token_urlsafe(24),
            }
        )

    def headers(self, body: bytes, *, at: int | None = None) -> dict[str, str]:
        timestamp = str(int(time.time()) if at is None else at)
        base = f"v0:{timestamp}:".encode() + body
        digest = hmac.new(self.signing_secret.encode(), base, hashlib.sha256).hexdigest()
        return {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": f"v0={digest}",
        }

    async def send(self, event: dict[str, Any]) -> Sent:
        body = self.envelope(event)
        return await self._deliver(body, self.headers(body))

    async def retry(self, sent: Sent, number: int = 1, reason: str = "http_timeout") -> Sent:
        headers = self.headers(sent.body) | {
            "X-Slack-Retry-Num": str(number),
            "X-Slack-Retry-Reason": reason,
        }
        return await self._deliver(sent.body, headers)

    async def replay(self, sent: Sent) -> Sent:
        return await self._deliver(sent.body, sent.headers)

    async def late(self, event: dict[str, Any], minutes: int = 6) -> Sent:
        body = self.envelope(event)
        return await self._deliver(body, self.headers(body, at=int(time.time()) - minutes * 60))

    async def verify_url(self) -> Sent:
        body = orjson.dumps(
            {
                "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                "challenge": secrets.token_urlsafe(36),
                "type": "url_verification",
            }
        )
        return await self._deliver(body, self.headers(body))

    async def _deliver(self, body: bytes, headers: dict[str, str]) -> Sent:
        started = time.perf_counter()
        answer = await self.caller.post(self.request_url, content=body, headers=headers)
        sent = Sent(
            body, headers, answer.status_code, answer.content, time.perf_counter() - started
        )
        self.sent.append(sent)
        return sent

    # --- the Web API ------------------------------------------------------------------

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/{method}", self._call, methods=["GET", "POST"]),
                Route("/files-pri/{key}/download/{name}", self._private_file),
                Route("/files-pri/{key}/{name}", self._private_file),
                Route("/files-cdn/{link}", self._cdn_file),
                Route("/signin", self._signin),
            ]
        )

    def _seen(self, request: Request) -> None:
        query = dict(request.query_params)
        self.downloads.append(Call(request.url.path, request.method, query, dict(request.headers)))

    async def _private_file(self, request: Request) -> Response:
        """The file's private URL: the bot token gets a redirect to the bytes, anyone else
        the sign-in page."""
        self._seen(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token != self.token or not self.files_read:
            return Response(status_code=302, headers={"Location": "/signin?redir=files"})
        if self.download_failures:
            return Response(b"<html>Slack is having trouble</html>", self.download_failures.pop(0))
        file_id = request.path_params["key"].removeprefix(f"{TEAM}-")
        if file_id not in self.contents:
            return Response(b"<html>File not found</html>", 404, media_type="text/html")
        link = secrets.token_urlsafe(12)
        self._links[link] = file_id
        return Response(status_code=302, headers={"Location": f"/files-cdn/{link}"})

    async def _cdn_file(self, request: Request) -> Response:
        self._seen(request)
        file_id = self._links.pop(request.path_params["link"], None)
        if file_id is None or file_id not in self.contents:
            return Response(b"<html>Gone</html>", 404, media_type="text/html")
        mimetype = str(self.files[file_id].get("mimetype") or "application/octet-stream")
        return Response(self.contents[file_id], 200, media_type=mimetype)

    async def _signin(self, request: Request) -> Response:
        return Response(
            b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
            200,
            media_type="text/html; charset=utf-8",
        )

    async def _call(self, request: Request) -> Response:
        method = request.path_params["method"]
        args: dict[str, Any] = dict(request.query_params)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if request.method == "POST":
            raw = await request.body()
            media = request.headers.get("content-type", "").split(";")[0].strip()
            if media == "application/json":
                args |= orjson.loads(raw) if raw else {}
            else:
                args |= dict(parse_qsl(raw.decode()))
                token = token or str(args.pop("token", ""))
        self.calls.append(Call(method, request.method, args, dict(request.headers)))
        waits = self.limits.get(method)
        if waits:
            return _answer({"ok": False, "error": "ratelimited"}, 429, str(waits.pop(0)))
        if not token:
            return _answer({"ok": False, "error": "not_authed"})
        if token != self.token:
            return _answer({"ok": False, "error": "invalid_auth"})
        handler = _METHODS.get(method)
        if handler is None:
            return _answer({"ok": False, "error": "unknown_method"})
        return _answer(handler(self, {k: v for k, v in args.items() if v is not None}))

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://casedesk-test.slack.com/",
            "team": "casedesk test",
            "user": "casedesk",
            "team_id": TEAM,
            "user_id": BOT_USER,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(args.get("file", "")))
        if file is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": file, "comments": [], "response_metadata": {"next_cursor": ""}}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        thread_ts = args.get("thread_ts")
        if thread_ts is not None:
            try:
                channel.find(str(thread_ts))
            except KeyError:
                return {"ok": False, "error": "thread_not_found"}
        message = {
            "type": "message",
            "text": args.get("text", ""),
            "user": BOT_USER,
            "bot_id": BOT_ID,
            "app_id": APP,
            "ts": self._ts(),
            "team": TEAM,
            "unfurl_links": args.get("unfurl_links"),
            "unfurl_media": args.get("unfurl_media"),
        }
        if thread_ts is not None:
            message["thread_ts"] = str(thread_ts)
        channel.messages.append(message)
        self.echoes.append(
            message | {"channel": channel.id, "event_ts": message["ts"], "channel_type": "channel"}
        )
        shown = {k: v for k, v in message.items() if not k.startswith("unfurl")}
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": shown}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = str(args.get("ts", ""))
        thread = [m for m in channel.messages if m["ts"] == ts or m.get("thread_ts") == ts]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        return {"ok": True, "messages": thread, "has_more": False}

    def replies_in(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The messages of a thread after its root, as the workspace holds them."""
        return [
            m
            for m in self.channels[channel].messages
            if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
        ]


_METHODS = {
    "auth.test": SlackWorkspace._auth_test,
    "users.info": SlackWorkspace._users_info,
    "files.info": SlackWorkspace._files_info,
    "chat.postMessage": SlackWorkspace._post_message,
    "conversations.replies": SlackWorkspace._replies,
}


def _answer(
    document: dict[str, Any], status: int = 200, retry_after: str | None = None
) -> Response:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    return Response(
        orjson.dumps(document), status, headers, media_type="application/json; charset=utf-8"
    )


@contextlib.asynccontextmanager
async def slack_server(caller: httpx.AsyncClient) -> AsyncIterator[SlackWorkspace]:
    slack = SlackWorkspace(caller)
    async with serving(slack.app()) as port:
        slack.port = port
        yield slack
