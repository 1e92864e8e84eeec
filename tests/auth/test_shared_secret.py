"""Shared-secret mode (AUTH_SECRET, HS256): for frontends that mint their own tokens. The
shared `client` fixture runs in this mode with `tests.conftest.TEST_SECRET`."""

from pathlib import Path

import httpx
import jwt
import pytest
from pydantic import ValidationError

from tests.auth.helpers import SigningKey, assert_invalid_token, make_claims, unsigned
from tests.support import TEST_SECRET, TokenFactory, make_settings, me


async def test_hs256_token_with_the_secret_is_accepted(
    client: httpx.AsyncClient, tokens: TokenFactory
) -> None:
    response = await me(client, tokens("hs-user"))
    assert response.status_code == 200
    assert response.json()["id"] == "hs-user"


async def test_token_signed_with_another_secret_is_rejected(client: httpx.AsyncClient) -> None:
    assert_invalid_token(await me(client, TokenFactory("another-secret-" + "y" * 40)()))


@pytest.mark.filterwarnings("ignore:The HMAC key is .* bytes long")
@pytest.mark.parametrize("alg", ["HS384", "HS512"])
async def test_other_hmac_algorithms_are_rejected(alg: str, client: httpx.AsyncClient) -> None:
    token = jwt.encode(make_claims(), TEST_SECRET, algorithm=alg)
    assert_invalid_token(await me(client, token))


@pytest.mark.parametrize("alg", ["EdDSA", "RS256"])
async def test_asymmetric_tokens_are_rejected(
    alg: str, signing_keys: dict[str, SigningKey], client: httpx.AsyncClient
) -> None:
    assert_invalid_token(await me(client, signing_keys[alg].sign()))


async def test_unsigned_token_is_rejected(client: httpx.AsyncClient) -> None:
    assert_invalid_token(await me(client, unsigned(make_claims())))


def test_secret_shorter_than_32_bytes_is_refused(database_url: str, data_dir: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        make_settings(database_url, data_dir, auth_secret="s" * 31)
    assert make_settings(database_url, data_dir, auth_secret="s" * 32).auth_secret is not None


def test_secret_and_jwks_url_together_are_refused(database_url: str, data_dir: Path) -> None:
    with pytest.raises(ValidationError, match="not both"):
        make_settings(
            database_url,
            data_dir,
            auth_secret=TEST_SECRET,
            auth_jwks_url="http://localhost:3000/api/auth/jwks",
        )
