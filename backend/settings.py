"""Runtime configuration: one Settings class, read from the environment and `.env`.

Every field is documented in `.env.example`; keep the two in step.
"""

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Words of the placeholders people paste from templates ("change-me-to-a-long-random-secret").
PLACEHOLDER_WORDS = ("change", "replace", "your-secret", "your_secret", "example", "placeholder")
MIN_SECRET_BYTES = 32


class ConfigurationError(RuntimeError):
    """The configuration cannot run the service safely."""


class Settings(BaseSettings):
    # env_ignore_empty: `AUTH_ISSUER=` (as compose files and .env templates write it) means
    # unset, not "the issuer must be the empty string".
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", frozen=True, env_ignore_empty=True
    )

    environment: Literal["development", "production"] = "development"

    # Database. Unset means: start the embedded PostgreSQL in `data_dir`.
    database_url: SecretStr | None = None
    # The direct (unpooled) host of the same database, for the one LISTEN connection per
    # process that carries changes between instances to their event streams (a
    # transaction-mode pooler cannot carry LISTEN). Unset: instances poll instead.
    database_direct_url: SecretStr | None = None
    data_dir: Path = Path(".data")
    # A fixed pool per process: every connection is opened at start-up and reused, never
    # opened and closed per burst (PostgreSQL forks a backend for each new one).
    db_pool_size: int = Field(default=10, ge=1, le=200)
    # Bounds on each step of a request's database work. Together they keep a request's answer
    # within 5 s even while the database is down behind a pooler (which accepts the query
    # and holds it): at most 1 s waiting for a pooled connection, then 4 s for the statement.
    db_pool_timeout: float = Field(default=1.0, gt=0, le=120)
    db_connect_timeout: float = Field(default=4.0, gt=0, le=120)
    db_statement_timeout: float = Field(default=4.0, gt=0, le=600)
    # A pooled connection idle this many seconds is pinged before use (busy ones are not).
    db_ping_after_idle: float = Field(default=5.0, ge=0, le=3600)
    # Prepared statements cached per connection: one round trip per query. 0 makes every query
    # prepare-then-execute on PostgreSQL's unnamed statement (two round trips), which is what a
    # transaction-mode pooler without prepared-statement support (PgBouncer < 1.21, or
    # max_prepared_statements = 0) needs.
    db_statement_cache_size: int = Field(default=512, ge=0, le=10_000)
    # Apply migrations at start-up; defaults to on in development, off in production.
    auto_migrate: bool | None = None

    # HTTP
    cors_origins: Annotated[list[str], NoDecode] = []
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # `todo-api serve`: all request headers together, in bytes (431 above it); connections
    # (and requests) a worker handles at once (503 above it); seconds an idle keep-alive
    # connection is kept.
    http_max_header_bytes: int = Field(default=32_768, ge=8_192, le=1_048_576)
    http_limit_concurrency: int = Field(default=1_000, ge=1, le=100_000)
    http_keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    # On SIGTERM: /readyz answers 503 at once, requests are still served for this many seconds
    # (so that a load balancer stops routing here), then the server stops accepting and
    # finishes what it received. Default: 0 in development, 5 in production.
    shutdown_drain_seconds: float | None = Field(default=None, ge=0, le=300)
    # /metrics: public in development; in production only with this bearer token (and not
    # served at all without one).
    metrics_token: SecretStr | None = None
    # How often a running API deletes expired Idempotency-Key records and change-log entries
    # older than CHANGES_RETENTION_DAYS (one instance at a time).
    idempotency_prune_seconds: float = Field(default=3600.0, ge=10, le=86_400)

    # Sync (GET /todos/changes, GET /events). Tombstones of deleted todos and fired reminders
    # are kept this many days; a sync token older than that gets 410 (sync from scratch).
    changes_retention_days: int = Field(default=30, ge=30, le=3650)
    # How often each instance checks the logs of the users with a stream open on it (the
    # only way changes from other instances arrive without DATABASE_DIRECT_URL, a safety net
    # with it) and fires their due reminders.
    events_poll_seconds: float = Field(default=1.0, ge=0.05, le=60)
    events_heartbeat_seconds: float = Field(default=15.0, ge=1, le=300)
    events_max_streams_per_user: int = Field(default=5, ge=1, le=1_000)  # per process; 429 above

    # Authentication (see README "Authentication").
    auth_jwks_url: str | None = None
    auth_issuer: str | None = None
    auth_audience: str | None = None
    auth_secret: SecretStr | None = None
    auth_leeway: float = Field(default=30.0, ge=0, le=300)
    auth_jwks_cache_ttl: float = Field(default=300.0, gt=0)
    auth_jwks_refresh_interval: float = Field(default=30.0, ge=1)
    auth_jwks_timeout: float = Field(default=5.0, gt=0, le=60)

    # Tracing (OpenTelemetry, docs/tracing.md): off unless an OTLP endpoint or an exporter is
    # set. The standard OTEL_* names, read here so that `.env` works too; the SDK reads the
    # other OTEL_* variables (sampler, timeout, resource attributes) from the environment.
    otel_sdk_disabled: bool = False
    otel_traces_exporter: Literal["otlp", "console", "none"] | None = None
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_exporter_otlp_protocol: str | None = None  # only http/protobuf is installed
    otel_exporter_otlp_headers: SecretStr | None = None
    otel_service_name: str = "todo-api"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, origins: list[str]) -> list[str]:
        # Credentials are allowed, so a wildcard would echo any Origin back.
        if "*" in origins:
            raise ValueError("CORS_ORIGINS must list explicit origins, not '*'")
        return origins

    @model_validator(mode="after")
    def _check_auth(self) -> Self:
        if self.auth_secret is not None:
            secret = self.auth_secret.get_secret_value()
            if len(secret.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"AUTH_SECRET must be at least {MIN_SECRET_BYTES} bytes")
            lowered = secret.lower()
            if any(word in lowered for word in PLACEHOLDER_WORDS):
                raise ValueError("AUTH_SECRET looks like a placeholder; use a random value")
        if self.auth_jwks_url is not None and self.auth_secret is not None:
            raise ValueError("configure either AUTH_JWKS_URL or AUTH_SECRET, not both")
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def should_auto_migrate(self) -> bool:
        return self.auto_migrate if self.auto_migrate is not None else not self.is_production

    @property
    def drain_seconds(self) -> float:
        if self.shutdown_drain_seconds is not None:
            return self.shutdown_drain_seconds
        return 5.0 if self.is_production else 0.0

    @property
    def uses_development_auth(self) -> bool:
        return self.auth_jwks_url is None and self.auth_secret is None

    def check_production_ready(self) -> None:
        """Refuse to start production on defaults meant for a laptop."""
        if not self.is_production:
            return
        if self.database_url is None:
            raise ConfigurationError("ENVIRONMENT=production requires DATABASE_URL")
        if self.uses_development_auth:
            raise ConfigurationError("ENVIRONMENT=production requires AUTH_JWKS_URL or AUTH_SECRET")


@lru_cache
def get_settings() -> Settings:
    return Settings()
