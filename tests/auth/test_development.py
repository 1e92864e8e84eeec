"""Development mode: with no AUTH_* configured (and never in production) the API verifies
tokens from a local key in DATA_DIR, and `todo-api token EMAIL` mints them. Production
refuses to start without a real configuration."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.cli import main
from backend.main import create_app
from backend.settings import ConfigurationError, get_settings
from tests.auth.helpers import assert_invalid_token
from tests.support import TEST_SECRET, make_settings, me, running


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The environment of a fresh checkout: no AUTH_*, development, DATA_DIR in tmp_path (and
    no `.env` in the working directory). Yields the data directory."""
    for name in list(os.environ):
        if name.startswith("AUTH_") or name in {"ENVIRONMENT", "DATA_DIR"}:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.fixture
def mint(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> Callable[[str], str]:
    """`todo-api token EMAIL`, in process; returns what it printed."""

    def run(email: str) -> str:
        assert main(["token", email]) == 0
        return capsys.readouterr().out.strip()

    return run


async def test_cli_token_is_accepted_by_the_development_app(
    cli_env: Path,
    mint: Callable[[str], str],
    database_url: str,
    connection: AsyncConnection,
) -> None:
    ada, ada_again, ada_shouting, bob = (
        mint(email)
        for email in ("ada@example.com", "ada@example.com", "ADA@example.com", "bob@example.com")
    )
    settings = make_settings(database_url, cli_env, auth_secret=None)
    assert settings.uses_development_auth

    async with running(settings, connection) as api:
        first = await me(api, ada)
        assert first.status_code == 200, first.text
        assert first.json()["email"] == "ada@example.com"
        assert first.json()["name"] == "ada"
        # The same e-mail (in any case) is the same user; another e-mail another one.
        assert (await me(api, ada_again)).json()["id"] == first.json()["id"]
        assert (await me(api, ada_shouting)).json()["id"] == first.json()["id"]
        assert (await me(api, bob)).json()["id"] != first.json()["id"]


async def test_development_app_rejects_tokens_of_another_key(
    cli_env: Path,
    mint: Callable[[str], str],
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    connection: AsyncConnection,
) -> None:
    token = mint("ada@example.com")
    elsewhere = tmp_path_factory.mktemp("other-checkout")
    async with running(make_settings(database_url, elsewhere, auth_secret=None), connection) as api:
        assert_invalid_token(await me(api, token))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ENVIRONMENT", "production"),
        ("AUTH_SECRET", TEST_SECRET),
        ("AUTH_JWKS_URL", "http://localhost:3000/api/auth/jwks"),
    ],
)
def test_cli_token_refuses_outside_development_mode(
    variable: str,
    value: str,
    cli_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(["token", "ada@example.com"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "development mode" in captured.err
    assert not cli_env.exists()  # no key was created either


class TestProductionRefusesToStart:
    @pytest.mark.parametrize(
        ("missing", "reason"),
        [
            ("auth_secret", "AUTH_JWKS_URL or AUTH_SECRET"),  # development auth
            ("database_url", "DATABASE_URL"),  # would start an embedded PostgreSQL
        ],
        ids=["no-auth-configuration", "no-database-url"],
    )
    async def test_without_a_real_configuration(
        self, missing: str, reason: str, database_url: str, data_dir: Path
    ) -> None:
        values: dict[str, Any] = {"database_url": database_url, "auth_secret": TEST_SECRET}
        values[missing] = None
        settings = make_settings(
            values.pop("database_url"), data_dir, environment="production", **values
        )
        with pytest.raises(ConfigurationError, match=reason):
            async with LifespanManager(create_app(settings)):
                pass

    @pytest.mark.parametrize(
        "overrides",
        [{}, {"auth_secret": None, "auth_jwks_url": "http://127.0.0.1:9/jwks"}],
        ids=["shared-secret", "jwks"],
    )
    async def test_with_database_and_auth_configured_it_starts(
        self, overrides: dict[str, object], database_url: str, data_dir: Path
    ) -> None:
        settings = make_settings(database_url, data_dir, environment="production", **overrides)
        async with LifespanManager(create_app(settings)) as manager:
            assert manager.app is not None
