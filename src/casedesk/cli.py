"""The ``casedesk`` command: serve, migrate, and manage tenants, users and API keys."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import signal
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy.exc import InterfaceError, OperationalError

from casedesk.activities import identity, portal, sign_in
from casedesk.activities.connectors import connector_problems
from casedesk.activities.secrets import (
    BATCH_SIZE,
    Rotation,
    count_stored_secrets,
    rotate_stored_secrets,
)
from casedesk.bootstrap import (
    Container,
    NotMigrated,
    background,
    blob_sweeper,
    build,
    ensure_migrated,
    start_database,
    trace_work,
)
from casedesk.config import Settings, SettingsError, get_settings
from casedesk.domain.attachments import AttachmentLimits
from casedesk.domain.identity.roles import Role
from casedesk.integrations.catalogue import builtin
from casedesk.integrations.manifests import ManifestInvalid, parse_manifest, read_document
from casedesk.kit.aio import run_on
from casedesk.kit.errors import CasedeskError, NotFound
from casedesk.kit.logging import configure_logging
from casedesk.store import migrate
from casedesk.store.blob_sweep import SweepResult
from casedesk.store.bus.base import BusUnavailable
from casedesk.store.models import Tenant
from casedesk.store.unit_of_work import UnitOfWork
from casedesk.worker.search_index import reindex

T = TypeVar("T")

app = typer.Typer(
    help="casedesk: customer-service cases with a built-in integration platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
user_app = typer.Typer(help="Users of a tenant.", no_args_is_help=True)
portal_app = typer.Typer(help="The customer portal.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
secrets_app = typer.Typer(help="Stored secrets and the keys that seal them.", no_args_is_help=True)
connector_app = typer.Typer(help="Connector manifests.", no_args_is_help=True)
attachments_app = typer.Typer(help="Attachments and their stored bytes.", no_args_is_help=True)
search_app = typer.Typer(help="The search index of cases.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(portal_app, name="portal")
app.add_typer(apikey_app, name="apikey")
app.add_typer(secrets_app, name="secrets")
app.add_typer(connector_app, name="connector")
app.add_typer(attachments_app, name="attachments")
app.add_typer(search_app, name="search")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEMO_SLUG = "demo"
DEMO_ADMIN = "admin@demo.casedesk.local"


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise fail(str(exc), code=2) from None


def run(work: Callable[[Container], Awaitable[T]]) -> T:
    """Build the container, run one piece of async work on it, and turn errors into exits."""
    settings = settings_or_exit()
    configure_logging("warning", "console")
    container = build(settings)

    async def main() -> T:
        try:
            return await work(container)
        finally:
            await container.close()

    try:
        return asyncio.run(main())
    except NotMigrated as exc:
        raise fail(str(exc)) from None
    except CasedeskError as exc:
        raise fail(exc.detail) from None
    except (OSError, InterfaceError, OperationalError) as exc:
        raise fail(
            f"cannot use the database ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
            "check CASEDESK_DATABASE_URL and that the server is up"
        ) from None


async def _tenant(container: Container, slug: str) -> Tenant:
    async with container.unit_of_work() as uow:
        tenant = await uow.tenants.by_slug(slug)
    if tenant is None:
        raise NotFound(f"no tenant with slug {slug!r}; `casedesk tenant list` shows them")
    return tenant


async def _tenant_work(container: Container, slug: str) -> UnitOfWork:
    tenant = await _tenant(container, slug)
    return container.unit_of_work(tenant.id)


def _migrated(work: Callable[[Container], Awaitable[T]]) -> Callable[[Container], Awaitable[T]]:
    async def guarded(container: Container) -> T:
        await ensure_migrated(container)
        return await work(container)

    return guarded


# --- serve -------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address [CASEDESK_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="port [CASEDESK_PORT]")] = None,
    workers: Annotated[int | None, typer.Option(help="processes [CASEDESK_WORKERS]")] = None,
) -> None:
    """Serve the HTTP API."""
    import uvicorn

    from casedesk.api.server import uvicorn_options

    settings = settings_or_exit()
    try:
        settings.refuse_insecure_secret_key(host=host or settings.host)
    except SettingsError as exc:
        raise fail(str(exc), code=2) from None
    run(start_database)
    worker_count = workers or settings.workers
    if worker_count > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="casedesk-metrics-")
    bind_host, bind_port = host or settings.host, port or settings.port
    err.print(
        f"casedesk serving on http://{bind_host}:{bind_port} ({worker_count} worker(s), "
        f"{settings.server_loop})"
    )
    uvicorn.run(**uvicorn_options(bind_host, bind_port, worker_count, settings.server_loop))


@app.command()
def worker() -> None:
    """Run the outbox relay and the event consumers until SIGTERM or Ctrl-C."""
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)

    async def main() -> dict[str, str]:
        container = build(settings)
        await start_database(container)
        work = background(container)
        traces = trace_work(container, persist=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await traces.start()
            await work.start()
            err.print("casedesk worker running (relay, consumers, trace store); SIGTERM stops it")
            await _first_of(stop.wait(), work.failed.wait())
        finally:
            await work.stop()
            await traces.stop()
            await container.close()
        return work.stopped()

    try:
        stopped = run_on(settings.server_loop, main())
    except NotMigrated as exc:
        raise fail(str(exc)) from None
    except BusUnavailable as exc:
        raise fail(f"{exc}; check CASEDESK_BROKER_URL and that the broker is up") from None
    if stopped:
        loops = "; ".join(f"{loop}: {why}" for loop, why in stopped.items())
        raise fail(f"background work stopped ({loops}); the worker exits so it can be restarted")


async def _first_of(*waits: Coroutine[Any, Any, Any]) -> None:
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


# --- db ----------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""

    async def work(container: Container) -> migrate.MigrationState:
        with out.status(f"migrating {container.database.url.render_as_string()} ..."):
            await migrate.upgrade(container.database.engine, revision)
        return await migrate.migration_state(container.database.engine)

    state = run(work)
    out.print(
        f"[green]database at {', '.join(state.current) or 'empty'}[/] "
        f"(latest: {', '.join(state.heads)})"
    )


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="target, e.g. -1 or base")]) -> None:
    """Revert migrations down to REVISION."""

    async def work(container: Container) -> None:
        await migrate.downgrade(container.database.engine, revision)

    run(work)
    out.print(f"[yellow]database downgraded to {revision}[/]")


@db_app.command("current")
def db_current() -> None:
    """Show the applied and the latest revision."""
    state = run(lambda container: migrate.migration_state(container.database.engine))
    marker = (
        "[green]up to date[/]" if state.up_to_date else "[yellow]needs `casedesk db upgrade`[/]"
    )
    current, heads = ", ".join(state.current) or "empty", ", ".join(state.heads)
    out.print(f"current: {current}  latest: {heads}  {marker}")


# --- tenants -----------------------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Argument(help="short unique name, e.g. acme")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    edition: Annotated[str, typer.Option(help="business edition")] = "standard",
) -> None:
    """Create a tenant."""

    async def work(container: Container) -> Tenant:
        async with container.unit_of_work() as uow:
            return await identity.create_tenant(uow, slug=slug, name=name or slug, edition=edition)

    tenant = run(_migrated(work))
    out.print(f"[green]tenant {tenant.slug}[/] created (id {tenant.id}, edition {tenant.edition})")


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants."""

    async def work(container: Container) -> list[Tenant]:
        async with container.unit_of_work() as uow:
            return await uow.tenants.all()

    table = Table("slug", "name", "edition", "enabled", "id")
    for tenant in run(_migrated(work)):
        table.add_row(tenant.slug, tenant.name, tenant.edition, str(tenant.enabled), str(tenant.id))
    out.print(table)


_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
_UNITS |= {"kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_MAX_SIZE = 2**62
"""Beyond any store, and within the 64-bit columns that keep a tenant's limits."""


def _size_of(text: str, option: str) -> int:
    """``25MiB``, ``10 MB``, ``5GiB``, ``0`` as bytes; anything else a clear refusal."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = found.group(2).lower() if found else ""
    if found is None or unit not in _UNITS:
        raise typer.BadParameter(
            f"{text!r} is no size; write bytes or a number with KiB, MiB, GiB (or KB, MB, GB), "
            "for example 25MiB",
            param_hint=option,
        )
    size = int(float(found.group(1)) * _UNITS[unit])
    if size > _MAX_SIZE:
        raise typer.BadParameter(f"{text!r} is more than any store holds", param_hint=option)
    return size


@tenant_app.command("limits")
def tenant_limits(
    slug: Annotated[str, typer.Argument(help="the tenant's slug")],
    max_file: Annotated[
        str | None,
        typer.Option(help="the largest file it may attach, e.g. 10MiB (at most the deployment's)"),
    ] = None,
    quota: Annotated[
        str | None, typer.Option(help="what its files may add up to, e.g. 5GiB; 0: no quota")
    ] = None,
    reset: Annotated[bool, typer.Option("--reset", help="back to the deployment's limits")] = False,
) -> None:
    """Show a tenant's attachment limits and use, or set its own."""
    max_bytes = None if max_file is None else _size_of(max_file, "--max-file")
    if max_bytes == 0:
        raise typer.BadParameter("a file limit is at least one byte", param_hint="--max-file")
    quota_bytes = None if quota is None else _size_of(quota, "--quota")

    async def work(container: Container) -> tuple[Tenant, int, AttachmentLimits]:
        found = await _tenant(container, slug)
        async with container.unit_of_work(found.id) as uow:
            await uow.begin_write()
            tenant = await uow.tenants.get(found.id)
            if reset:
                tenant.attachment_max_bytes = tenant.attachment_quota_bytes = None
            if max_bytes is not None:
                tenant.attachment_max_bytes = max_bytes
            if quota_bytes is not None:
                tenant.attachment_quota_bytes = quota_bytes
            used = await uow.attachments.used_bytes()
            await uow.commit()
        limits = container.attachment_limits.for_tenant(
            tenant.attachment_max_bytes, tenant.attachment_quota_bytes
        )
        return tenant, used, limits

    tenant, used, limits = run(_migrated(work))
    ceiling = settings_or_exit().attachment_max_bytes
    own = "its own" if tenant.attachment_max_bytes is not None else "the deployment's"
    out.print(
        f"[bold]{tenant.slug}[/]: attachments up to {limits.max_bytes:,} bytes a file ({own})"
    )
    if tenant.attachment_max_bytes is not None and tenant.attachment_max_bytes > ceiling:
        out.print(
            f"[yellow]its limit of {tenant.attachment_max_bytes:,} bytes is above the "
            f"deployment's CASEDESK_ATTACHMENT_MAX_BYTES ({ceiling:,}); that one applies[/]"
        )
    shown = "no quota" if not limits.quota_bytes else f"a quota of {limits.quota_bytes:,} bytes"
    own = "its own" if tenant.attachment_quota_bytes is not None else "the deployment's"
    out.print(f"{shown} ({own}); its files use {used:,} bytes")


# --- users -------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    email: Annotated[str, typer.Option(help="e-mail address, unique in the tenant")],
    name: Annotated[str | None, typer.Option(help="display name")] = None,
    role: Annotated[Role, typer.Option(help="admin, agent or viewer")] = Role.AGENT,
) -> None:
    """Create a user in a tenant."""

    async def work(container: Container) -> Any:
        async with await _tenant_work(container, tenant) as uow:
            return await identity.create_user(
                uow, None, email=email, name=name or email.split("@")[0], role=role
            )

    user = run(_migrated(work))
    out.print(f"[green]user {user.email}[/] created in {tenant} as {user.role} (id {user.id})")
    out.print(
        f"for a link to set their password: {_this_command()} user password-link "
        f"--tenant {tenant} --email {user.email}",
        soft_wrap=True,
        highlight=False,
    )


async def _password_link(container: Container, tenant: str, email: str) -> tuple[str, str]:
    """A one-time link for the user to set a password, and what it is (invite, reset)."""
    async with await _tenant_work(container, tenant) as uow:
        user = await uow.users.by_email(email.strip().lower())
    if user is None:
        raise NotFound(f"no user {email} in tenant {tenant}")
    async with await _tenant_work(container, tenant) as uow:
        issued = await sign_in.issue_link(uow, None, user_id=user.id)
    base = container.settings.public_url or (
        f"http://{container.settings.host}:{container.settings.port}"
    )
    return f"{base}/set-password/{issued.token}", issued.link.purpose


@user_app.command("password-link")
def user_password_link(
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    email: Annotated[str, typer.Option(help="the user's e-mail address")],
) -> None:
    """Print a one-time link with which the user sets a password (an invitation for a user
    without one, a reset otherwise); earlier unused links stop working."""

    link, purpose = run(_migrated(lambda container: _password_link(container, tenant, email)))
    lasts = "7 days" if purpose == "invite" else "2 hours"
    out.print(f"{purpose} link for {email} ({tenant}), valid once for {lasts}:", highlight=False)
    out.print(link, soft_wrap=True, highlight=False)


@portal_app.command("link")
def portal_link(
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    email: Annotated[str, typer.Option(help="the customer's e-mail address")],
) -> None:
    """Print a one-time link that signs the customer in to the tenant's portal (made a
    customer if the address is new); their earlier unused links stop working."""

    async def work(container: Container) -> str:
        async with await _tenant_work(container, tenant) as uow:
            issued = await portal.issue_link(uow, None, email=email, throttled=False)
        return portal.link_url(container.settings.external_url, tenant, issued.token)

    link = run(_migrated(work))
    out.print(f"portal sign-in link for {email} ({tenant}), valid once for 30 minutes:")
    out.print(link, soft_wrap=True, highlight=False)


# --- API keys ----------------------------------------------------------------------------


@apikey_app.command("create")
def apikey_create(
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    user: Annotated[str, typer.Option(help="e-mail of the key's user")],
    name: Annotated[str, typer.Option(help="what the key is for")] = "cli",
) -> None:
    """Create an API key; it is printed once and never shown again."""

    async def work(container: Container) -> identity.CreatedKey:
        async with await _tenant_work(container, tenant) as uow:
            owner = await uow.users.by_email(user.strip().lower())
        if owner is None:
            raise NotFound(f"no user {user} in tenant {tenant}")
        async with await _tenant_work(container, tenant) as uow:
            return await identity.create_api_key(uow, None, name=name, user_id=owner.id)

    created = run(_migrated(work))
    out.print(
        f"API key {created.key.id} for {user} ({tenant}); store it now, it is not shown again:"
    )
    out.print(created.plaintext, soft_wrap=True, highlight=False)


@apikey_app.command("revoke")
def apikey_revoke(
    tenant: Annotated[str, typer.Option(help="tenant slug")],
    key_id: Annotated[str, typer.Argument(help="the key's id")],
) -> None:
    """Revoke an API key: requests with it get 401 from now on."""
    try:
        parsed = uuid.UUID(key_id)
    except ValueError:
        raise fail(f"{key_id!r} is not a key id; `casedesk apikey list` shows them") from None

    async def work(container: Container) -> None:
        async with await _tenant_work(container, tenant) as uow:
            await identity.revoke_api_key(uow, None, parsed)

    run(_migrated(work))
    out.print(f"[yellow]API key {parsed} revoked[/]")


@apikey_app.command("list")
def apikey_list(tenant: Annotated[str, typer.Option(help="tenant slug")]) -> None:
    """List a tenant's API keys (never the keys themselves)."""

    async def work(container: Container) -> list[Any]:
        async with await _tenant_work(container, tenant) as uow:
            page = await uow.api_keys.list_page(limit=1000, cursor=None)
            return list(page.items)

    table = Table("id", "prefix", "name", "user", "last used", "revoked")
    for key in run(_migrated(work)):
        table.add_row(
            str(key.id),
            key.prefix,
            key.name,
            str(key.user_id),
            str(key.last_used_at or "-"),
            str(key.revoked_at or "-"),
        )
    out.print(table)


# --- secrets -----------------------------------------------------------------------------


@secrets_app.command("generate-key")
def secrets_generate_key() -> None:
    """Print a new random key for CASEDESK_SECRET_KEY."""
    out.print(secrets.token_urlsafe(32), highlight=False)


@secrets_app.command("rotate")
def secrets_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="secrets re-sealed per transaction")
    ] = BATCH_SIZE,
) -> None:
    """Re-seal every stored secret with the newest key, CASEDESK_SECRET_KEY.

    Rotate a key by setting the new one as CASEDESK_SECRET_KEY and the old one in
    CASEDESK_PREVIOUS_SECRET_KEYS, restarting, running this, and then dropping the old key.
    Running it again changes nothing.
    """

    async def work(container: Container) -> tuple[Rotation, str]:
        total = await count_stored_secrets(container.database)
        columns = (TextColumn("re-sealing"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("re-sealing", total=total)
            rotation = await rotate_stored_secrets(
                container.database,
                container.box,
                batch_size=batch_size,
                on_batch=lambda done: progress.advance(task, done),
            )
        return rotation, container.box.key_id

    rotation, key_id = run(_migrated(work))
    out.print(
        f"[green]{rotation.resealed} re-sealed[/] with key {key_id}, "
        f"{rotation.current} already sealed with it, {len(rotation.unreadable)} unreadable"
    )
    if rotation.unreadable:
        raise fail(
            "no configured key opens: "
            + ", ".join(rotation.unreadable)
            + "; add the key they were sealed with to CASEDESK_PREVIOUS_SECRET_KEYS and run "
            "this again, or set those secrets anew"
        )


# --- attachments -------------------------------------------------------------------------


def _bytes(size: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


@search_app.command("reindex")
def search_reindex(
    tenant: Annotated[
        str | None, typer.Option(help="the tenant's slug (default: every tenant)")
    ] = None,
) -> None:
    """Rebuild the search documents of every case (of one tenant), in batches, while casedesk
    runs: searches go on finding what was indexed, and the indexer goes on with new changes.
    Needed after restoring a database without its index, or to index cases made before
    search existed."""

    async def work(container: Container) -> int:
        tenant_id = None if tenant is None else (await _tenant(container, tenant)).id
        columns = (TextColumn("indexing cases"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("indexing", total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return await reindex(container.database, tenant_id=tenant_id, progress=advance)

    written = run(_migrated(work))
    scope = f"tenant {tenant}" if tenant else "every tenant"
    out.print(f"[green]indexed {written} case(s) of {scope}[/]")


@attachments_app.command("sweep")
def attachments_sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="count what would be deleted, delete nothing")
    ] = False,
) -> None:
    """Delete the stored bytes no attachment refers to any more (after a case or tenant was
    deleted, or a write whose transaction failed), in the folder or the S3 bucket.

    Bytes written in the last CASEDESK_BLOB_SWEEP_GRACE_HOURS (24) are kept, so an upload
    under way never loses its file. Safe to run at any time and again.
    """

    async def work(container: Container) -> SweepResult:
        columns = (
            TextColumn("checking blobs"),
            BarColumn(),
            TextColumn("{task.completed} examined"),
        )
        with Progress(*columns, console=out, transient=True) as progress:
            task = progress.add_task("checking", total=None)
            return await blob_sweeper(container).sweep(
                dry_run=dry_run, on_examined=lambda done: progress.advance(task, done)
            )

    result = run(_migrated(work))
    verb = "would delete" if result.dry_run else "deleted"
    out.print(
        f"[green]{verb} {result.deleted} unreferenced file(s), {_bytes(result.deleted_bytes)}[/]"
        f" of {result.examined} examined; kept {result.referenced} in use and {result.recent} "
        f"written in the grace period"
    )
    if result.leftovers:
        out.print(
            f"{verb} {result.leftovers} unfinished temporary file(s), "
            f"{_bytes(result.leftover_bytes)}"
        )


# --- connectors --------------------------------------------------------------------------


@connector_app.command("validate")
def connector_validate(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a manifest, YAML or JSON")
    ],
) -> None:
    """Check a connector manifest as publishing it would: exit 0 with a summary, or exit 2
    listing every problem with its path."""
    try:
        document = read_document(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"cannot read {file}: {exc}", code=2) from None
    except ManifestInvalid as invalid:
        document, problems = None, invalid.problems
    else:
        problems = connector_problems(document)
    if problems:
        err.print(f"{file}: {len(problems)} problem(s)", style="bold red", markup=False)
        for problem in problems:
            message = " ".join(problem.message.split())  # one line per problem
            err.print(f"  {problem.path or '(document)'}: {message}", markup=False)
        raise typer.Exit(2)
    manifest = parse_manifest(document)
    out.print(
        f"{file}: valid connector {manifest.id} version {manifest.version} "
        f"({manifest.name}), auth {manifest.auth.type}",
        markup=False,
        highlight=False,
    )
    for kind, names in (
        ("triggers", [f"{name} ({t.kind})" for name, t in manifest.triggers.items()]),
        ("actions", list(manifest.actions)),
        ("enrichers", list(manifest.enrichers)),
    ):
        out.print(f"  {kind}: {', '.join(names) or 'none'}", markup=False, highlight=False)
    if builtin(manifest.id) is not None:
        out.print(
            f"  note: {manifest.id} is a built-in connector's id; as a tenant's own connector"
            " it would be refused",
            highlight=False,
        )


# --- demo --------------------------------------------------------------------------------


@app.command()
def demo() -> None:
    """Create the demo tenant with an admin and an API key (once; later runs change nothing)."""

    async def work(container: Container) -> str | None:
        async with container.unit_of_work() as uow:
            if await uow.tenants.by_slug(DEMO_SLUG) is not None:
                return None
        async with container.unit_of_work() as uow:
            tenant = await identity.create_tenant(
                uow, slug=DEMO_SLUG, name="Demo", edition="standard"
            )
        async with container.unit_of_work(tenant.id) as uow:
            admin = await identity.create_user(
                uow, None, email=DEMO_ADMIN, name="Demo Admin", role=Role.ADMIN
            )
        async with container.unit_of_work(tenant.id) as uow:
            created = await identity.create_api_key(uow, None, name="demo", user_id=admin.id)
        return created.plaintext

    async def link(container: Container) -> str:
        async with container.unit_of_work() as uow:
            tenant = await uow.tenants.by_slug(DEMO_SLUG)
        assert tenant is not None
        async with container.unit_of_work(tenant.id) as uow:
            admin = await uow.users.by_email(DEMO_ADMIN)
        if admin is not None and admin.has_password:
            return ""
        return (await _password_link(container, DEMO_SLUG, DEMO_ADMIN))[0]

    key = run(_migrated(work))
    settings = settings_or_exit()
    workbench = settings.public_url or f"http://{settings.host}:{settings.port}"
    if key is None:
        out.print(
            f"demo tenant exists; its admin is {DEMO_ADMIN}. For a new key: "
            f"{_this_command()} apikey create --tenant {DEMO_SLUG} --user {DEMO_ADMIN}",
            soft_wrap=True,
            highlight=False,
        )
    first_link = run(_migrated(link))
    _print_workbench(workbench, first_link)
    if key is None:
        return
    out.print(f"[green]demo tenant created[/]; admin {DEMO_ADMIN}. Its API key, shown once:")
    out.print(key, soft_wrap=True, highlight=False)
    out.print("in another terminal:", highlight=False)
    out.print(f"  export KEY={key}", soft_wrap=True, highlight=False)
    out.print(
        f'  curl -H "Authorization: Bearer $KEY" http://{settings.host}:{settings.port}/api/v1/me',
        soft_wrap=True,
        highlight=False,
    )


def _print_workbench(workbench: str, first_link: str) -> None:
    out.print(f"[bold]workbench:[/] {workbench}/ — workspace [bold]{DEMO_SLUG}[/], {DEMO_ADMIN}")
    if first_link:
        out.print("set the admin's password first, with this one-time link:", highlight=False)
        out.print(f"  {first_link}", soft_wrap=True, highlight=False)
    else:
        out.print(
            f"a new password link: {_this_command()} user password-link --tenant {DEMO_SLUG} "
            f"--email {DEMO_ADMIN}",
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        f"[bold]customer portal:[/] {workbench}/portal/{DEMO_SLUG}/ — customers sign in by a "
        "one-time link to their address (shown on the screen in this embedded mode)",
        soft_wrap=True,
    )


def _this_command() -> str:
    """How to run casedesk again as this process was run: ``.venv/bin/casedesk`` from
    ``make run``, ``casedesk`` when it is on the PATH."""
    invoked = sys.argv[0]
    if os.path.basename(invoked) == "casedesk":
        return invoked
    return f"{sys.executable} -m casedesk"


def main() -> None:
    app()
