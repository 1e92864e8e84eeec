"""Every algorithm Better Auth can sign with verifies, whether or not the JWKS entry states
its `alg` (docs/auth.md: inferred from kty/crv when absent)."""

import httpx
import pytest

from tests.auth.conftest import ApiFactory
from tests.auth.helpers import ALGORITHMS, JwksServer, SigningKey, make_claims
from tests.support import me


@pytest.mark.parametrize("with_alg", [True, False], ids=["jwk-with-alg", "jwk-without-alg"])
@pytest.mark.parametrize("alg", ALGORITHMS)
async def test_token_signed_with_each_algorithm_is_accepted(
    alg: str,
    with_alg: bool,
    signing_keys: dict[str, SigningKey],
    jwks_server: JwksServer,
    make_api: ApiFactory,
) -> None:
    key = signing_keys[alg]
    jwks_server.publish(key, with_alg=with_alg)
    claims = make_claims(email=f"{alg.lower()}@example.com")

    async with make_api() as api:
        response = await me(api, key.sign(claims))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == claims["sub"]


async def test_token_without_kid_is_tried_against_keys_of_its_type(
    signing_keys: dict[str, SigningKey], api: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    # Several keys fit RS256 (both RSA keys); only the right one verifies.
    response = await me(api, signing_keys["PS256"].sign(kid=None, alg="RS256"))
    assert response.status_code == 200, response.text
    response = await me(api, signing_keys["EdDSA"].sign(kid=None))
    assert response.status_code == 200, response.text
    assert jwks_server.requests == 1  # no kid, nothing to refetch for
