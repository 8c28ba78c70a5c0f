"""Attach files to a case or one of its comments: the one entry point of every channel.

``store_attachments`` takes the files as a sender handed them (a name, a declared type, the
bytes, a ``cid:`` id): it names and sniffs each, refuses those over the size limit or the
tenant's quota without storing them, puts the others' bytes in the blob store, then
``AddAttachmentsActivity`` writes their rows, an action record and an ``attachment.added``
event per file in one transaction. A refused file leaves the others and the message's text
as they are: it is returned to the caller and named in the action record.

The bytes are written before the transaction, outside the writer's turn; a transaction that
then fails leaves a blob no row refers to (kept, like every blob; see docs/architecture.md).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import anyio.to_thread

from casedesk.activities.base import Activity, ActivityContext
from casedesk.domain.attachments import (
    SNIFF_BYTES,
    AttachmentLimits,
    Refusal,
    sanitise_filename,
    sniff_content_type,
)
from casedesk.integrations.mail import AttachedPart
from casedesk.kit.errors import NotFound, PayloadTooLarge
from casedesk.kit.ids import uuid7
from casedesk.store.blobs import BlobStore, BlobTooLarge
from casedesk.store.models import Attachment
from casedesk.store.unit_of_work import UnitOfWork


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """A file as a channel or an upload hands it over. ``content`` is the bytes or a
    seekable binary file (an upload's spooled file)."""

    filename: str | None
    declared_type: str | None
    content: bytes | BinaryIO
    content_id: str | None = None
    inline: bool = False
    stated_size: int | None = None
    """The size of a file whose bytes were not fetched because it is over the limit (a
    channel's file the service says is larger, or that proved larger as it arrived): it is
    refused by that size, and ``content`` is empty."""

    def reader(self) -> BinaryIO:
        return io.BytesIO(self.content) if isinstance(self.content, bytes) else self.content

    def size(self) -> int:
        if self.stated_size is not None:
            return self.stated_size
        if isinstance(self.content, bytes):
            return len(self.content)
        source = self.content
        position = source.tell()
        end = source.seek(0, io.SEEK_END)
        source.seek(position)
        return end - position


@dataclass(frozen=True, slots=True)
class RefusedFile:
    filename: str
    size: int
    reason: Refusal
    limit: int
    detail: str

    @classmethod
    def of(
        cls, limits: AttachmentLimits, refusal: Refusal, filename: str, size: int, used: int
    ) -> RefusedFile:
        detail = limits.describe(refusal, filename, size, used)
        return cls(filename, size, refusal, limits.limit_of(refusal), detail)

    def error(self) -> PayloadTooLarge:
        """The problem an uploader gets: it names the file, its size and the limit."""
        return PayloadTooLarge(
            self.detail,
            field="files",
            reason=self.reason.value,
            filename=self.filename,
            size=self.size,
            limit=self.limit,
        )


@dataclass(frozen=True, slots=True)
class MissingFile:
    """A file a channel's message named but whose bytes could not be had, and why: it is
    named in the case's history with the files kept."""

    filename: str
    note: str


@dataclass(frozen=True, slots=True)
class PlannedFile:
    file: IncomingFile
    filename: str
    size: int


@dataclass(frozen=True, slots=True)
class Plan:
    """The files that may be stored and those refused, before any byte is written."""

    case_id: uuid.UUID
    comment_id: uuid.UUID | None
    accepted: list[PlannedFile]
    refused: list[RefusedFile]
    limits: AttachmentLimits
    """The tenant's limits the files were weighed against (and are written within)."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A file whose bytes are in the blob store, waiting for its row."""

    filename: str
    declared_type: str | None
    content_type: str
    sha256: str
    size: int
    content_id: str | None
    inline: bool


@dataclass(frozen=True, slots=True)
class AttachParams:
    case_id: uuid.UUID
    comment_id: uuid.UUID | None
    files: list[StoredFile]
    refused: list[RefusedFile] = field(default_factory=list)
    missing: Sequence[MissingFile] = ()


@dataclass(frozen=True, slots=True)
class AttachOutcome:
    added: list[Attachment]
    refused: list[RefusedFile]


async def plan_attachments(
    ctx: ActivityContext,
    limits: AttachmentLimits,
    case_id: uuid.UUID,
    comment_id: uuid.UUID | None,
    files: list[IncomingFile],
    *,
    in_transaction: bool = False,
) -> Plan:
    """Name each file and weigh it against the limit and the tenant's quota as it stands.
    (The quota is read in a transaction of its own and checked again when the rows are
    written, so a concurrent upload cannot pass it; ``in_transaction``: in the caller's, for
    a case it has not committed yet.) Someone who may not attach files is refused here,
    before any byte is written."""
    await AddAttachmentsActivity(ctx, limits).check_permission()
    if in_transaction:
        await ctx.uow.cases.get(case_id)
        used = await ctx.uow.attachments.used_bytes()
        tenant = await ctx.uow.tenants.get(ctx.tenant_id)
    else:
        async with UnitOfWork(ctx.uow.database, ctx.tenant_id) as reads:
            await reads.cases.get(case_id)  # another tenant's case is unknown here: 404
            used = await reads.attachments.used_bytes()
            tenant = await reads.tenants.get(ctx.tenant_id)
    limits = limits.for_tenant(tenant.attachment_max_bytes, tenant.attachment_quota_bytes)
    accepted: list[PlannedFile] = []
    refused: list[RefusedFile] = []
    for incoming in files:
        name, size = sanitise_filename(incoming.filename), incoming.size()
        refusal = limits.refusal(size, used)
        if refusal is not None:
            refused.append(RefusedFile.of(limits, refusal, name, size, used))
            continue
        used += size
        accepted.append(PlannedFile(incoming, name, size))
    return Plan(case_id, comment_id, accepted, refused, limits)


async def store_planned(
    ctx: ActivityContext,
    blobs: BlobStore,
    plan: Plan,
    missing: Sequence[MissingFile] = (),
) -> AttachOutcome:
    """Put the accepted files' bytes in the blob store, then attach them to the case;
    ``missing``: files that could not be had, named in the history with them."""
    limits = plan.limits
    stored: list[StoredFile] = []
    refused = list(plan.refused)
    for planned in plan.accepted:
        try:
            stored.append(await anyio.to_thread.run_sync(_put, blobs, limits, planned))
        except BlobTooLarge:  # the file grew since it was weighed
            refusal = Refusal.TOO_LARGE
            refused.append(RefusedFile.of(limits, refusal, planned.filename, planned.size, 0))
    params = AttachParams(plan.case_id, plan.comment_id, stored, refused, missing)
    return await AddAttachmentsActivity(ctx, limits).run(params)


async def store_attachments(
    ctx: ActivityContext,
    blobs: BlobStore,
    limits: AttachmentLimits,
    case_id: uuid.UUID,
    comment_id: uuid.UUID | None,
    files: list[IncomingFile],
    *,
    in_transaction: bool = False,
    missing: Sequence[MissingFile] = (),
) -> AttachOutcome:
    """Attach what fits, refuse the rest: a channel's message keeps its text and every
    file within the limits. ``missing``: the files it named that could not be fetched."""
    plan = await plan_attachments(
        ctx, limits, case_id, comment_id, files, in_transaction=in_transaction
    )
    return await store_planned(ctx, blobs, plan, missing)


@dataclass(frozen=True, slots=True)
class Attacher:
    """Where a channel message's files go: the blob store, within the attachment limits."""

    blobs: BlobStore
    limits: AttachmentLimits

    async def attach(
        self, context: ActivityContext, outcome: dict[str, Any], parts: list[AttachedPart]
    ) -> list[dict[str, Any]]:
        """A mail's files on its case (a new case) or on its comment, in the mail's
        transaction; a file over a limit is refused and named, the rest kept."""
        if not parts or outcome.get("case_id") is None:
            return [part.metadata() for part in parts]
        files = [
            IncomingFile(
                part.filename, part.content_type, part.content, part.content_id, part.inline
            )
            for part in parts
        ]
        return await self.attach_files(context, outcome, files)

    async def attach_files(
        self,
        context: ActivityContext,
        outcome: dict[str, Any],
        files: list[IncomingFile],
        missing: Sequence[MissingFile] = (),
    ) -> list[dict[str, Any]]:
        """The files on the case or comment ``outcome`` (of ``channels.receive``) names, in
        its transaction: what fits is kept, the rest refused and named with the ``missing``
        ones; what the outcome shows of each."""
        comment_id = outcome.get("comment_id")
        done = await store_attachments(
            context,
            self.blobs,
            self.limits,
            uuid.UUID(outcome["case_id"]),
            None if comment_id is None else uuid.UUID(comment_id),
            files,
            in_transaction=True,
            missing=missing,
        )
        kept = [
            {
                "id": str(a.id),
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
            }
            for a in done.added
        ]
        refused = [
            {"filename": r.filename, "size": r.size, "refused": r.detail} for r in done.refused
        ]
        noted = [{"filename": m.filename, "not_fetched": m.note} for m in missing]
        return kept + refused + noted


def _put(blobs: BlobStore, limits: AttachmentLimits, planned: PlannedFile) -> StoredFile:
    source = planned.file.reader()
    start = source.tell()
    head = source.read(SNIFF_BYTES)
    source.seek(start)
    blob = blobs.put(source, limit=limits.max_bytes)
    return StoredFile(
        filename=planned.filename,
        declared_type=_declared(planned.file.declared_type),
        content_type=sniff_content_type(head),
        sha256=blob.sha256,
        size=blob.size,
        content_id=planned.file.content_id,
        inline=planned.file.inline,
    )


def _declared(value: str | None) -> str | None:
    text = (value or "").split(";", 1)[0].strip().lower()
    return text[:127] or None


class AddAttachmentsActivity(Activity[AttachParams, AttachOutcome]):
    name = "attachment.add"

    def __init__(self, context: ActivityContext, limits: AttachmentLimits) -> None:
        super().__init__(context)
        self.limits = limits

    async def execute(self, params: AttachParams) -> AttachOutcome:
        # Locked: two uploads to a case take turns, so the quota is checked against the other's.
        case = self.case = await self.load_case(params.case_id, lock=True)
        comment = None
        if params.comment_id is not None:
            comment = await self.uow.comments.find(params.comment_id)
            if comment is None or comment.case_id != case.id:
                raise NotFound(f"comment {params.comment_id} not found on this case")
        used = await self.uow.attachments.used_bytes()
        refused = list(params.refused)
        rows: list[Attachment] = []
        operator = self.ctx.operator
        for stored in params.files:
            refusal = self.limits.refusal(stored.size, used)
            if refusal is not None:
                refused.append(
                    RefusedFile.of(self.limits, refusal, stored.filename, stored.size, used)
                )
                continue
            used += stored.size
            rows.append(
                Attachment(
                    id=uuid7(),
                    tenant_id=self.ctx.tenant_id,
                    case_id=case.id,
                    comment_id=params.comment_id,
                    filename=stored.filename,
                    content_type=stored.content_type,
                    declared_type=stored.declared_type,
                    size=stored.size,
                    sha256=stored.sha256,
                    inline=stored.inline,
                    content_id=stored.content_id,
                    uploaded_by_type=operator.type,
                    uploaded_by_id=operator.id,
                    uploaded_by_name=operator.name,
                )
            )
        if rows:
            await self.insert(*rows)
        if comment is not None:
            comment.attachment_count += len(rows)
        memo = _memo(params.comment_id, rows, refused)
        if params.missing:
            memo["not_fetched"] = [{"filename": m.filename, "note": m.note} for m in params.missing]
        self.record(case, "attachment.add", memo)
        for row in rows:
            self.emit("attachment.added", case, _event_data(row))
        return AttachOutcome(rows, refused)


def _memo(
    comment_id: uuid.UUID | None, rows: list[Attachment], refused: list[RefusedFile]
) -> dict[str, object]:
    return {
        **({"comment_id": str(comment_id)} if comment_id else {}),
        "attachments": [
            {"id": str(row.id), "filename": row.filename, "size": row.size} for row in rows
        ],
        **(
            {
                "refused": [
                    {"filename": r.filename, "size": r.size, "reason": r.reason.value}
                    for r in refused
                ]
            }
            if refused
            else {}
        ),
    }


def _event_data(row: Attachment) -> dict[str, object]:
    return {
        "attachment_id": str(row.id),
        "comment_id": str(row.comment_id) if row.comment_id else None,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
    }
