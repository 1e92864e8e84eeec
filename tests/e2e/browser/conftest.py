"""Fixtures of the browser tests: a real Better Auth (jwt plugin) that also serves the test page,
the API in JWKS mode trusting it with CORS_ORIGINS set to the page's origin, the typed client
compiled against the API's live /openapi.json, and a headless Chromium.

Two origins reach the same Better Auth server: `http://localhost:<port>` is its base URL (the
JWTs' issuer) and the origin the API allows; `http://127.0.0.1:<port>` is another origin for the
browser, one the API does not allow. The API is `http://127.0.0.1:<another port>`.
"""

import asyncio
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from backend import migrations
from backend.main import create_app
from tests.better_auth import harness
from tests.better_auth.harness import BetterAuthServer
from tests.e2e.browser import typed_client
from tests.e2e.browser.chromium import Chromium
from tests.e2e.browser.stack import CHROMIUM, Stack, serving
from tests.support import make_settings, scratch_database

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="package")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What Better Auth serves under /e2e/: the page (page/*: index.html, events.js), and
    (once compiled) dist/*.js."""
    directory = tmp_path_factory.mktemp("www")
    for file in (HERE / "page").iterdir():
        shutil.copy2(file, directory / file.name)
    return directory


@pytest.fixture(scope="package")
def client_installed() -> None:
    typed_client.install()


@pytest.fixture(scope="package")
async def better_auth(database_url: str, www: Path) -> AsyncIterator[BetterAuthServer]:
    await asyncio.to_thread(harness.ensure_installed)
    async with scratch_database(database_url, "browser_ba_" + secrets.token_hex(4)) as url:
        server = BetterAuthServer(url, host="localhost", static_dir=www)
        await asyncio.to_thread(server.start)
        try:
            yield server
        finally:
            await asyncio.to_thread(server.stop)


@pytest.fixture(scope="package")
async def stack(
    database_url: str, data_dir: Path, better_auth: BetterAuthServer
) -> AsyncIterator[Stack]:
    async with scratch_database(database_url, "browser_api_" + secrets.token_hex(4)) as url:
        settings = make_settings(
            url,
            data_dir,
            auth_secret=None,
            auth_jwks_url=better_auth.jwks_url,
            auth_issuer=better_auth.issuer,
            auth_audience=better_auth.audience,
            cors_origins=[better_auth.base_url],
        )
        await migrations.upgrade(url, settings)
        async with serving(create_app(settings)) as api:
            yield Stack(better_auth, settings, api)


@pytest.fixture(scope="package")
def generator(client_installed: None) -> Iterator[typed_client.Generator]:
    generator = typed_client.Generator().start()
    yield generator
    generator.stop()


@pytest.fixture(scope="package")
async def client_build(
    generator: typed_client.Generator,  # first: it loads while the servers start
    stack: Stack,
    www: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> typed_client.ClientBuild:
    """The client's types generated from the live /openapi.json (and from altered copies),
    type-checked; and the live variant compiled into www/dist/, which the page loads."""
    url = f"{stack.api.base_url}/openapi.json"
    async with httpx.AsyncClient(trust_env=False) as client:
        schema = (await client.get(url)).raise_for_status().json()
    root = tmp_path_factory.mktemp("client-build")
    variants = await asyncio.to_thread(typed_client.Variants.build, root, url, schema, generator)
    # Two tsc processes side by side: the check of every variant, the live one's compilation.
    type_check, compiled = await asyncio.gather(
        asyncio.to_thread(variants.type_check),
        asyncio.to_thread(variants.compile_live, www / "dist"),
    )
    return typed_client.ClientBuild(type_check, compiled)


@pytest.fixture(scope="package")
def compiled(client_build: typed_client.ClientBuild) -> None:
    result = client_build.compiled
    if result.returncode != 0:
        pytest.fail(f"tsc failed on the client:\n{result.stdout}{result.stderr}")


@pytest.fixture(scope="package")
async def browser() -> AsyncIterator[Chromium]:
    assert CHROMIUM is not None
    async with Chromium(CHROMIUM) as browser:
        yield browser
