"""Add a public or internal comment by a user, a customer or the system."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from casedesk.activities.base import Activity
from casedesk.activities.channel_delivery import schedule_delivery
from casedesk.domain.cases.inputs import CommentInput
from casedesk.kit.errors import InvalidInput
from casedesk.kit.ids import uuid7
from casedesk.store.models import Attachment, Comment


@dataclass(frozen=True, slots=True)
class CommentParams:
    case_id: uuid.UUID
    body: CommentInput


class AddCommentActivity(Activity[CommentParams, Comment]):
    name = "comment.add"

    async def validate(self, params: CommentParams) -> None:
        author = params.body.author
        if author is None or author.type == "user":
            return
        if author.type == "customer" and author.email is None:
            raise InvalidInput("a customer author needs an email", field="author.email")
        if author.type == "customer" and not params.body.public:
            raise InvalidInput("a customer cannot write an internal comment", field="public")

    @property
    def _by_agent(self) -> bool:
        return self.params.body.author is None or self.params.body.author.type == "user"

    async def execute(self, params: CommentParams) -> Comment:
        self.params = params
        # A comment does not change the case row, so lock it: the case's events then reach
        # the outbox in the order their transactions commit.
        case = self.case = await self.load_case(params.case_id, lock=True)
        body, operator = params.body, self.ctx.operator
        author_type, author_id, author_name = operator.type, operator.user_id, operator.name
        if body.author is not None and body.author.type != "user":
            author_type, author_id = body.author.type, None
            author_name = body.author.email or body.author.name or body.author.type
        comment = Comment(
            id=uuid7(),
            tenant_id=self.ctx.tenant_id,
            case_id=case.id,
            body=body.body,
            public=body.public,
            author_type=author_type,
            author_id=author_id,
            author_name=author_name,
            channel=body.channel,
            external_id=body.external_id,
        )
        attached = await self._attachments(case.id, body.attachment_ids)
        comment.attachment_count = len(attached)
        # Decided before the insert, so the row goes out once, with its delivery status.
        delivered = await schedule_delivery(self.uow, case, comment, self.ctx.trace)
        await self.insert(comment)
        for attachment in attached:
            attachment.comment_id = comment.id
        excerpt = body.body if len(body.body) <= 200 else body.body[:197] + "..."
        self.record(
            case,
            "comment.add",
            {
                "comment_id": str(comment.id),
                "public": body.public,
                "author_type": author_type,
                "excerpt": excerpt,
                **({"channel": body.channel} if body.channel else {}),
                **({"delivery": "pending"} if delivered else {}),
                **({"attachment_ids": [str(a.id) for a in attached]} if attached else {}),
            },
        )
        self.emit(
            "comment.added",
            case,
            {"comment_id": str(comment.id), "public": body.public, "author_type": author_type},
        )
        return comment

    async def _attachments(self, case_id: uuid.UUID, ids: list[uuid.UUID]) -> list[Attachment]:
        """The attachments uploaded to the case before that the new comment takes."""
        if not ids:
            return []
        rows = {row.id: row for row in await self.uow.attachments.of_ids(ids)}
        for attachment_id in ids:
            row = rows.get(attachment_id)
            if row is None or row.case_id != case_id:
                raise InvalidInput(
                    f"attachment {attachment_id} is not one of this case's",
                    field="attachment_ids",
                )
            if row.comment_id is not None:
                raise InvalidInput(
                    f"attachment {attachment_id} is on another comment already",
                    field="attachment_ids",
                )
        return [rows[attachment_id] for attachment_id in dict.fromkeys(ids)]

    def moves_task_to_processing(self) -> bool:
        return self.params.body.public and self._by_agent
