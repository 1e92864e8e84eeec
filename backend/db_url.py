"""Turn any libpq-style PostgreSQL URL into what asyncpg (and SQLAlchemy, for Alembic) accept.

SQLAlchemy's asyncpg dialect passes URL query parameters to `asyncpg.connect()` as keyword
arguments, so libpq options such as `sslmode` or `channel_binding` (present in every URL Neon's
dashboard hands out) fail with a TypeError. They are translated here instead.
"""

import logging
import ssl
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url

logger = logging.getLogger(__name__)

_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}
# Options asyncpg understands under the same name; everything else is libpq-only.
_PASSTHROUGH = {"host", "port"}
_SSL_MODES = {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

_warned: set[str] = set()


class DatabaseURLError(ValueError):
    """The URL cannot be used; the message says why without echoing credentials."""


@dataclass(frozen=True)
class DatabaseTarget:
    """An asyncpg URL for SQLAlchemy plus the connect() arguments the query string carried."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    def asyncpg_arguments(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect()` and `asyncpg.create_pool()`."""
        url = self.url
        params: dict[str, Any] = {
            "user": url.username,
            "password": url.password,
            "database": url.database,
            "host": url.query.get("host") or url.host,  # ?host=/socket/dir for unix sockets
            "port": int(port) if isinstance(port := url.query.get("port"), str) else url.port,
        }
        return {k: v for k, v in params.items() if v is not None} | self.connect_args


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


def _ssl_context(mode: str, root_cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(
        cafile=None if root_cert in (None, "system") else root_cert
    )
    if mode == "require" and root_cert is None:
        # libpq's `require` encrypts without checking who answers.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif mode in ("require", "verify-ca"):
        # With a root certificate libpq upgrades `require` to `verify-ca`.
        context.check_hostname = False
    return context


def _ssl_argument(mode: str, query: dict[str, str]) -> ssl.SSLContext | str | bool:
    if mode not in _SSL_MODES:
        raise DatabaseURLError(f"unsupported sslmode {mode!r}; use one of {sorted(_SSL_MODES)}")
    if mode == "disable":
        return False
    if mode in ("allow", "prefer"):
        return mode  # asyncpg tries TLS and falls back to plain text, like libpq.
    context = _ssl_context(mode, query.get("sslrootcert"))
    if "sslcert" in query:
        context.load_cert_chain(query["sslcert"], query.get("sslkey"))
    return context


def parse_database_url(raw: str) -> DatabaseTarget:
    """Normalise `raw` (postgres://, postgresql://, with libpq options) for asyncpg."""
    try:
        url = make_url(raw.strip())
    except Exception:
        # `from None`: make_url's error may quote part of the URL, the password included
        # (`postgresql://user:secret/db` fails as "invalid literal for int(): 'secret'"), and a
        # chained cause is printed with the traceback.
        raise DatabaseURLError("DATABASE_URL is not a valid URL") from None
    if url.drivername not in _DRIVERS:
        raise DatabaseURLError(f"DATABASE_URL must be a PostgreSQL URL, not {url.drivername!r}")

    query = {
        key: value if isinstance(value, str) else value[-1] for key, value in url.query.items()
    }
    connect_args: dict[str, Any] = {}

    if "sslmode" in query:
        connect_args["ssl"] = _ssl_argument(query["sslmode"], query)
    if query.get("channel_binding", "disable") != "disable":
        _warn_once(
            "channel_binding",
            "DATABASE_URL sets channel_binding, which asyncpg does not support; it is ignored. "
            "Use sslmode=verify-full to authenticate the server by its certificate instead.",
        )
    if "connect_timeout" in query:
        try:
            connect_args["timeout"] = float(query["connect_timeout"])
        except ValueError as exc:
            raise DatabaseURLError("connect_timeout must be a number of seconds") from exc
    if "application_name" in query:
        connect_args["server_settings"] = {"application_name": query["application_name"]}

    handled = {"sslmode", "sslrootcert", "sslcert", "sslkey", "channel_binding"}
    handled |= {"connect_timeout", "application_name"}
    ignored = sorted(set(query) - handled - _PASSTHROUGH)
    if ignored:
        _warn_once(
            "ignored:" + ",".join(ignored),
            f"DATABASE_URL options not supported by asyncpg are ignored: {', '.join(ignored)}",
        )
    kept = {key: value for key, value in query.items() if key in _PASSTHROUGH}
    return DatabaseTarget(
        url=url.set(drivername="postgresql+asyncpg", query=kept), connect_args=connect_args
    )
