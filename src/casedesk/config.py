"""Settings, read from ``CASEDESK_*`` environment variables.

The defaults are the embedded mode: a SQLite file next to the working directory,
no Redis, no broker. A wrong value fails at start with the variable named.
"""

from __future__ import annotations

from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_interface
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

ENV_PREFIX = "CASEDESK_"
INSECURE_SECRET_KEY = "casedesk-embedded-insecure-secret-change-me"  # noqa: S105 - public on purpose
"""The default key: fine for trying casedesk on one machine, refused anywhere else."""

_DATABASE_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "mysql": "mysql+asyncmy",
    "mariadb": "mysql+asyncmy",
    "mysql+asyncmy": "mysql+asyncmy",
    "mariadb+asyncmy": "mysql+asyncmy",
    "mysql+aiomysql": "mysql+aiomysql",
}


def _parse_networks(value: str) -> tuple[IPv4Network | IPv6Network, ...]:
    """Comma-separated CIDRs (``10.0.0.0/8,::1/128``); a bare address means just that address."""
    return tuple(_parse_network(part.strip()) for part in value.split(",") if part.strip())


def _parse_network(text: str) -> IPv4Network | IPv6Network:
    try:
        interface = ip_interface(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an IP network in CIDR notation, e.g. 10.0.0.0/8 or ::1/128"
        ) from None
    if interface.ip != interface.network.network_address:
        raise ValueError(f"{text!r} has host bits set; did you mean {interface.network}?")
    return interface.network


class SettingsError(Exception):
    """A setting is wrong; the message names each variable and what to do."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    database_url: str = Field(
        default="sqlite+aiosqlite:///./casedesk.db",
        description="SQLAlchemy URL: sqlite:///path, postgresql://..., mysql:// or mariadb://...",
    )
    database_pool_size: int = Field(
        default=10,
        ge=1,
        le=500,
        description="connections a process keeps open: on PostgreSQL and MariaDB with as"
        " many again in overflow; on SQLite more are opened whenever all are busy",
    )
    redis_url: str | None = Field(default=None, description="redis://host:port/db; off when unset")
    broker_url: str | None = Field(
        default=None, description="amqp://user:pass@host/; off when unset"
    )
    broker_namespace: str = Field(
        default="casedesk",
        pattern=r"^[a-z][a-z0-9_.-]{0,62}$",
        description="prefix of the exchange and queue names, so deployments can share a broker",
    )
    secret_key: str = Field(
        default=INSECURE_SECRET_KEY,
        min_length=16,
        description="Key for signing and encrypting stored secrets; set a long random value",
    )
    previous_secret_keys: str = Field(
        default="",
        description="comma-separated keys used before CASEDESK_SECRET_KEY: what they sealed "
        "still opens, and `casedesk secrets rotate` re-seals it with the newest key",
    )
    host: str = "127.0.0.1"
    public_url: str | None = Field(
        default=None,
        description="the address users and third parties reach casedesk at, e.g. "
        "https://desk.example.com: hook URLs and OAuth2 redirect URIs are made from it "
        "(unset: http://HOST:PORT for hook URLs, each request's own address for redirects)",
    )
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    server_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="the event loop of `casedesk serve` and `casedesk worker`: uvloop (the "
        "faster; uvicorn[standard] installs it) or the standard library's asyncio",
    )
    separate_workers: bool = Field(
        default=False,
        description="true when `casedesk worker` processes run the relay and consumers, "
        "so that `casedesk serve` does not",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="largest request body")
    attachments_dir: str | None = Field(
        default=None,
        description="the folder attachments are stored in, by content (SHA-256); unset: an"
        " `attachments` folder next to the SQLite file, or in the working directory with a"
        " database server",
    )
    blob_url: str | None = Field(
        default=None,
        description="where attachments' bytes go instead of CASEDESK_ATTACHMENTS_DIR:"
        " s3://bucket/prefix for an S3-compatible store (needs the s3 extra; credentials from"
        " AWS_*), or file:///path",
    )
    blob_endpoint_url: str | None = Field(
        default=None,
        description="the S3 endpoint of a store other than AWS, e.g. http://minio:9000",
    )
    attachment_max_bytes: int = Field(
        default=26_214_400,
        ge=1,
        le=4_294_967_296,
        description="largest attachment (25 MiB): a larger upload is refused with 413, a"
        " larger file of a channel message is left out and noted on its comment",
    )
    attachment_quota_bytes: int = Field(
        default=0,
        ge=0,
        description="total bytes of attachments a tenant may keep; 0: no quota",
    )
    blob_sweep_grace_hours: int = Field(
        default=24,
        ge=1,
        le=8760,
        description="the blob sweep never deletes bytes written in the last this many hours"
        " (an upload whose row is not committed yet keeps its bytes)",
    )
    blob_sweep_interval_hours: int = Field(
        default=24,
        ge=0,
        le=8760,
        description="how often housekeeping sweeps blobs no attachment refers to; 0: only"
        " `casedesk attachments sweep`",
    )
    api_key_touch_seconds: int = Field(
        default=60, ge=0, description="how often an API key's last-used time is written"
    )
    auth_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=300,
        description="how long a server process keeps the caller behind an API key before "
        "reading the key again: a key revoked, a user deactivated or changed, a tenant "
        "disabled by another process takes effect within this time (0: read every request)",
    )
    portal_links_on_screen: bool | None = Field(
        default=None,
        description="show a customer's portal sign-in link on the screen when the tenant has "
        "no mailbox that sends its mail (with one, the link is mailed): unset means yes in "
        "the embedded mode (SQLite), where the portal is tried on one machine, and no with "
        "a database server, where the link reaches the customer through an agent "
        "(`casedesk portal link` or the API)",
    )
    outbound_allowed_networks: str = Field(
        default="",
        description="comma-separated CIDRs that outbound calls may reach although they are "
        "private, loopback or link-local, e.g. 127.0.0.0/8,::1/128; empty allows none",
    )
    outbound_timeout_seconds: float = Field(
        default=30.0, gt=0, le=3600, description="longest one outbound call attempt may take"
    )
    outbound_max_attempts: int = Field(
        default=4, ge=1, le=20, description="attempts per outbound call, the first included"
    )
    outbound_max_response_bytes: int = Field(
        default=10_485_760,
        ge=1024,
        le=1_073_741_824,
        description="largest response body an outbound call reads; a larger one fails the call",
    )
    trace_body_limit_bytes: int = Field(
        default=65_536,
        ge=0,
        le=16_777_216,
        description="request/response body bytes kept per trace",
    )
    trace_buffer_size: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="trace records held in memory before the oldest are dropped",
    )
    trace_hot_hours: float = Field(
        default=24, gt=0, le=720, description="how long trace records stay in the hot tier"
    )
    trace_retention_days: float = Field(
        default=7, gt=0, le=3650, description="how long trace records are kept in SQL"
    )
    trace_persist_rate: float = Field(
        default=20_000,
        gt=0,
        le=1_000_000,
        description="most trace records written to SQL per second; bursts wait in the queue",
    )
    event_retention_days: float = Field(
        default=30,
        ge=0,
        le=3650,
        description="days delivered events, consumers' claims and finished webhook deliveries"
        " are kept; 0: forever",
    )
    webhook_disable_after_days: float = Field(
        default=5,
        ge=0,
        le=365,
        description="a webhook whose every attempt failed for this long is disabled; 0: never",
    )
    job_lease_seconds: float = Field(
        default=60,
        ge=1,
        le=3600,
        description="how long a worker's claim on a scheduled job lasts without renewal; it"
        " renews it every third of that while it works",
    )
    worker_concurrency: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="scheduled jobs (polls, webhook attempts, workflow runs) a worker process"
        " runs at a time; by default 8, or 2 on SQLite, whose writers take turns",
    )
    idempotency_hours: float = Field(
        default=24,
        gt=0,
        le=8760,
        description="hours an Idempotency-Key's stored response is kept at least; a key"
        " reused after its record was deleted is a new request",
    )
    poll_failing_after: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="failed runs in a row after which a polling subscription is failing, with"
        " a subscription.failing event; it keeps trying",
    )
    imap_allow_plain: bool = Field(
        default=False,
        description="whether a mailbox may use an unencrypted IMAP connection (security none)"
        " to a host other than this machine; passwords then cross the network in clear",
    )
    imap_idle: bool = Field(
        default=True,
        description="whether workers wait in IMAP IDLE on every enabled mailbox whose server"
        " offers it, polling a mailbox as soon as new mail arrives (the polls go on besides)",
    )
    imap_timeout_seconds: float = Field(
        default=30,
        ge=1,
        le=600,
        description="how long each step of a mailbox's IMAP session (connect, log in, select,"
        " search, fetch, store, move) or SMTP session may wait for the server",
    )
    poll_max_backoff_seconds: float = Field(
        default=3600,
        ge=10,
        le=86_400,
        description="the longest a failing polling subscription waits between runs (the"
        " backoff doubles from its interval); a Retry-After may ask for longer, up to a day",
    )

    @field_validator("database_url")
    @classmethod
    def _normalise_database_url(cls, value: str) -> str:
        scheme, sep, rest = value.partition("://")
        if not sep:
            raise ValueError("must look like scheme://..., e.g. sqlite:///./casedesk.db")
        driver = _DATABASE_DRIVERS.get(scheme.lower())
        if driver is None:
            known = "sqlite, postgresql, mysql, mariadb"
            raise ValueError(f"unsupported database scheme {scheme!r}; use one of {known}")
        return f"{driver}://{rest}"

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("broker_url")
    @classmethod
    def _check_broker_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("amqp://", "amqps://")):
            raise ValueError("must start with amqp:// or amqps://")
        return value

    @field_validator("blob_url")
    @classmethod
    def _check_blob_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        scheme, sep, rest = value.partition("://")
        if scheme not in ("s3", "file") or not sep or not rest.strip("/"):
            raise ValueError("must be s3://bucket/prefix or file:///path")
        return value

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")) or "?" in value or "#" in value:
            raise ValueError("must be an http:// or https:// address without query or fragment")
        return value.rstrip("/")

    @property
    def external_url(self) -> str:
        """Where third parties reach this casedesk: ``public_url``, else this server."""
        return self.public_url or f"http://{self.host}:{self.port}"

    @field_validator("previous_secret_keys")
    @classmethod
    def _check_previous_secret_keys(cls, value: str) -> str:
        keys = [key.strip() for key in value.split(",") if key.strip()]
        short = [number for number, key in enumerate(keys, 1) if len(key) < 16]
        if short:
            raise ValueError(f"every key needs at least 16 characters; key {short[0]} has fewer")
        return ",".join(keys)

    @property
    def shows_portal_links(self) -> bool:
        if self.portal_links_on_screen is not None:
            return self.portal_links_on_screen
        return self.database_dialect == "sqlite"

    @property
    def secret_keys(self) -> tuple[str, ...]:
        """Every key that opens stored secrets, the newest (the one that seals) first."""
        previous = self.previous_secret_keys.split(",") if self.previous_secret_keys else []
        return (self.secret_key, *previous)

    def refuse_insecure_secret_key(self, *, host: str | None = None) -> None:
        """Raise ``SettingsError`` when the default key would seal secrets beyond the
        embedded mode: with a database server, or a server listening on ``host`` (default:
        ``CASEDESK_HOST``) beyond this machine."""
        if self.secret_key != INSECURE_SECRET_KEY:
            return
        host = self.host if host is None else host
        if self.database_dialect != "sqlite":
            where = f"with a {self.database_dialect} database"
        elif not _is_loopback(host):
            where = f"when casedesk serve listens on {host}, beyond this machine"
        else:
            return
        raise SettingsError(
            f"invalid configuration:\n  {ENV_PREFIX}SECRET_KEY: the insecure development "
            f"default is refused {where}. Generate a key with `casedesk secrets "
            f"generate-key` (or: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'),"
            f" set it as {ENV_PREFIX}SECRET_KEY and keep it: it seals stored secrets. Secrets "
            f"sealed with the default so far: also set {ENV_PREFIX}PREVIOUS_SECRET_KEYS to the "
            "default and run `casedesk secrets rotate`"
        )

    @field_validator("outbound_allowed_networks")
    @classmethod
    def _normalise_outbound_networks(cls, value: str) -> str:
        return ",".join(str(network) for network in _parse_networks(value))

    @property
    def job_concurrency(self) -> int:
        """The jobs a worker runs at a time: ``worker_concurrency``, or the default of the
        database."""
        if self.worker_concurrency is not None:
            return self.worker_concurrency
        return 2 if self.database_dialect == "sqlite" else 8

    @property
    def outbound_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return _parse_networks(self.outbound_allowed_networks)

    @property
    def attachments_path(self) -> Path:
        if self.blob_url and self.blob_url.startswith("file://"):
            return Path(self.blob_url.removeprefix("file://"))
        if self.attachments_dir:
            return Path(self.attachments_dir)
        database = (
            make_url(self.database_url).database if self.database_dialect == "sqlite" else None
        )
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).parent / "attachments"
        return Path("attachments")

    @property
    def database_dialect(self) -> str:
        return self.database_url.split("+", 1)[0].split(":", 1)[0]


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ip_address(name).is_loopback
    except ValueError:  # a name: it may resolve anywhere
        return False


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation errors into one message per variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        settings.refuse_insecure_secret_key()
        return settings
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"])
            variable = f"{ENV_PREFIX}{field.upper()}"
            lines.append(f"{variable}: {error['msg']}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
