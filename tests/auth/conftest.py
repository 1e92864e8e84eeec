"""Fixtures for the authentication tests: signing keys, a live JWKS endpoint, and apps
configured for JWKS mode whose requests run inside the test's rolled-back transaction."""

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from backend.settings import Settings
from tests.auth.helpers import ALGORITHMS, AUDIENCE, ISSUER, JwksServer, SigningKey
from tests.support import make_settings, running

type ApiFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(scope="session")
def signing_keys() -> dict[str, SigningKey]:
    """One key per supported algorithm (RSA generation is slow: once per session)."""
    return {alg: SigningKey.generate(alg) for alg in ALGORITHMS}


@pytest.fixture
def eddsa_key(signing_keys: dict[str, SigningKey]) -> SigningKey:
    """Better Auth's default key type."""
    return signing_keys["EdDSA"]


@pytest.fixture
def jwks_server(signing_keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    """Serves every key of `signing_keys`, without `alg`, as Better Auth does."""
    server = JwksServer()
    server.publish(*signing_keys.values(), with_alg=False)
    yield server
    server.stop()


@pytest.fixture
def jwks_settings(
    database_url: str, data_dir: Path, jwks_server: JwksServer
) -> Callable[..., Settings]:
    def settings(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "auth_secret": None,
            "auth_jwks_url": jwks_server.url,
            "auth_issuer": ISSUER,
            "auth_audience": AUDIENCE,
        }
        values.update(overrides)
        return make_settings(database_url, data_dir, **values)

    return settings


@pytest.fixture
def make_api(jwks_settings: Callable[..., Settings], connection: asyncpg.Connection) -> ApiFactory:
    """`async with make_api(**settings) as api`: a fresh JWKS-mode app (cold key cache)."""

    def make(**overrides: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return running(jwks_settings(**overrides), connection)

    return make


@pytest.fixture
async def api(make_api: ApiFactory) -> AsyncIterator[httpx.AsyncClient]:
    """A JWKS-mode app with the default settings (issuer and audience configured)."""
    async with make_api() as client:
        yield client
