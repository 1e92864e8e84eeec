"""Every token that must not pass gets the same 401: `WWW-Authenticate: Bearer
error="invalid_token"` and one problem+json body that never says which check failed."""

import json
import time
from collections.abc import Callable

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.auth.conftest import ApiFactory
from tests.auth.helpers import (
    INVALID_TOKEN_BODY,
    JwksServer,
    SigningKey,
    assert_invalid_token,
    b64url,
    b64url_json,
    forge_hs256,
    make_claims,
    unsigned,
)
from tests.support import me

type Keys = dict[str, SigningKey]


def _now() -> int:
    return int(time.time())


def _tampered(keys: Keys) -> str:
    """A valid token whose payload was swapped for another user's after signing."""
    header, _, signature = keys["EdDSA"].sign(make_claims("victim")).split(".")
    return f"{header}.{b64url_json(make_claims('attacker'))}.{signature}"


def _with_header(token: str, header: dict[str, object]) -> str:
    _, payload, signature = token.split(".")
    return f"{b64url_json(header)}.{payload}.{signature}"


def _wrong_key_same_kid(keys: Keys) -> str:
    impostor = SigningKey.generate("EdDSA")
    return impostor.sign(kid=keys["EdDSA"].kid)


def _public_bytes(key: SigningKey) -> bytes:
    return bytes(
        key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )


def _public_pem(key: SigningKey) -> bytes:
    return bytes(
        key.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# Each builder gets the keys the JWKS endpoint serves and returns a token that must fail.
REJECTED_TOKENS: dict[str, Callable[[Keys], str]] = {
    "expired": lambda keys: keys["EdDSA"].sign(make_claims(exp=_now() - 120)),
    "not-yet-valid": lambda keys: keys["EdDSA"].sign(make_claims(nbf=_now() + 120)),
    "issued-in-the-future": lambda keys: keys["EdDSA"].sign(make_claims(iat=_now() + 120)),
    "wrong-issuer": lambda keys: keys["EdDSA"].sign(make_claims(iss="https://evil.test")),
    "wrong-audience": lambda keys: keys["EdDSA"].sign(make_claims(aud="https://other.test")),
    "missing-sub": lambda keys: keys["EdDSA"].sign(make_claims(sub="x") | {"sub": None}),
    "empty-sub": lambda keys: keys["EdDSA"].sign(make_claims(sub="x") | {"sub": ""}),
    "sub-with-whitespace": lambda keys: keys["EdDSA"].sign(make_claims(sub="a b")),
    "missing-exp": lambda keys: keys["EdDSA"].sign(
        {k: v for k, v in make_claims().items() if k != "exp"}
    ),
    "bad-signature": _wrong_key_same_kid,
    "truncated-signature": lambda keys: keys["ES256"].sign()[:-4],
    "tampered-payload": _tampered,
    "alg-none": lambda keys: unsigned(make_claims(), kid=keys["EdDSA"].kid),
    "alg-none-without-kid": lambda keys: unsigned(make_claims()),
    # HS256 "verified" with the public key as the HMAC secret (PITFALLS D.22).
    "hs256-with-raw-x-as-secret": lambda keys: forge_hs256(
        make_claims(), keys["EdDSA"].jwk()["x"].encode(), kid=keys["EdDSA"].kid
    ),
    "hs256-with-raw-public-bytes-as-secret": lambda keys: forge_hs256(
        make_claims(), _public_bytes(keys["EdDSA"])
    ),
    "hs256-with-pem-as-secret": lambda keys: forge_hs256(
        make_claims(), _public_pem(keys["EdDSA"]), kid=keys["EdDSA"].kid
    ),
    "hs256-with-rsa-pem-as-secret": lambda keys: forge_hs256(
        make_claims(), _public_pem(keys["RS256"]), kid=keys["RS256"].kid
    ),
    "hs256-with-jwk-json-as-secret": lambda keys: forge_hs256(
        make_claims(), json.dumps(keys["EdDSA"].jwk(with_alg=False)).encode(), kid=keys["EdDSA"].kid
    ),
    "hs256-with-compact-jwk-json-as-secret": lambda keys: forge_hs256(
        make_claims(),
        json.dumps(keys["EdDSA"].jwk(with_alg=False), separators=(",", ":")).encode(),
    ),
    # A P-256 signature presented under the Ed25519 key's kid: the key decides the algorithm.
    "es256-header-with-ed25519-kid": lambda keys: keys["ES256"].sign(kid=keys["EdDSA"].kid),
    "unknown-kid": lambda keys: SigningKey.generate("EdDSA").sign(),
    "unknown-key-without-kid": lambda keys: SigningKey.generate("EdDSA").sign(kid=None),
    "better-auth-session-token": lambda keys: "abc123.def456",
    "not-a-jwt": lambda keys: "garbage",
    "header-not-json": lambda keys: f"{b64url(b'{nope')}.{b64url_json(make_claims())}.c2ln",
    "non-string-kid": lambda keys: _with_header(keys["EdDSA"].sign(), {"alg": "EdDSA", "kid": 7}),
    "no-alg": lambda keys: _with_header(keys["EdDSA"].sign(), {"kid": keys["EdDSA"].kid}),
}


@pytest.mark.parametrize("build", REJECTED_TOKENS.values(), ids=REJECTED_TOKENS.keys())
async def test_token_is_rejected(
    build: Callable[[Keys], str],
    signing_keys: Keys,
    api: httpx.AsyncClient,
) -> None:
    assert_invalid_token(await me(api, build(signing_keys)))


async def test_key_decides_the_algorithm_without_a_refetch(
    signing_keys: Keys, api: httpx.AsyncClient, jwks_server: JwksServer
) -> None:
    """A known kid with an algorithm that doesn't fit it is refused outright: no JWKS fetch."""
    assert (await me(api, signing_keys["EdDSA"].sign())).status_code == 200
    assert_invalid_token(await me(api, signing_keys["ES256"].sign(kid=signing_keys["EdDSA"].kid)))
    assert jwks_server.requests == 1


async def test_stated_alg_narrows_an_rsa_key_to_that_algorithm(
    signing_keys: Keys, jwks_server: JwksServer, make_api: ApiFactory
) -> None:
    rsa_key = signing_keys["RS256"]
    jwks_server.publish(rsa_key, with_alg=True)  # "alg": "RS256"
    async with make_api() as api:
        assert (await me(api, rsa_key.sign())).status_code == 200
        assert_invalid_token(await me(api, rsa_key.sign(alg="PS256")))


MALFORMED_AUTHORIZATION = {
    "bearer-without-token": "Bearer",
    "bearer-with-blank-token": "Bearer    ",
    "basic": "Basic dXNlcjpwYXNzd29yZA==",
    "garbage": "garbage",
    "two-tokens": "Bearer aaa.bbb.ccc ddd.eee.fff",
    "better-auth-session-token": "Bearer abc123.def456",
    "empty": "",
}


@pytest.mark.parametrize(
    "authorization", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys()
)
async def test_malformed_authorization_header_is_rejected(
    authorization: str, api: httpx.AsyncClient
) -> None:
    assert_invalid_token(await api.get("/users/me", headers={"Authorization": authorization}))


async def test_valid_token_under_another_scheme_is_rejected(
    eddsa_key: SigningKey, api: httpx.AsyncClient
) -> None:
    token = eddsa_key.sign()
    assert (await me(api, token)).status_code == 200
    assert_invalid_token(await api.get("/users/me", headers={"Authorization": f"Token {token}"}))


async def test_scheme_is_case_insensitive(eddsa_key: SigningKey, api: httpx.AsyncClient) -> None:
    response = await api.get("/users/me", headers={"Authorization": f"bearer {eddsa_key.sign()}"})
    assert response.status_code == 200


async def test_missing_header_asks_for_credentials_without_an_error_code(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/users/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401
    assert response.json() != INVALID_TOKEN_BODY


class TestLeeway:
    """Clocks drift: 30 s of leeway by default (AUTH_LEEWAY), and not a second more."""

    async def test_token_expired_5_seconds_ago_passes(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient
    ) -> None:
        response = await me(api, eddsa_key.sign(make_claims(exp=_now() - 5, iat=_now() - 900)))
        assert response.status_code == 200

    async def test_token_valid_from_5_seconds_ahead_passes(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient
    ) -> None:
        response = await me(api, eddsa_key.sign(make_claims(nbf=_now() + 5, iat=_now() + 5)))
        assert response.status_code == 200

    async def test_token_expired_120_seconds_ago_fails(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient
    ) -> None:
        assert_invalid_token(await me(api, eddsa_key.sign(make_claims(exp=_now() - 120))))

    async def test_leeway_is_configurable(
        self, eddsa_key: SigningKey, make_api: ApiFactory
    ) -> None:
        async with make_api(auth_leeway=0) as api:
            assert_invalid_token(await me(api, eddsa_key.sign(make_claims(exp=_now() - 5))))


async def test_issuer_and_audience_are_only_checked_when_configured(
    eddsa_key: SigningKey, make_api: ApiFactory
) -> None:
    # Better Auth always sets aud; with no AUTH_AUDIENCE there is nothing to compare it with.
    token = eddsa_key.sign(make_claims(iss="https://anyone.test", aud="https://anything.test"))
    async with make_api(auth_issuer=None, auth_audience=None) as api:
        assert (await me(api, token)).status_code == 200
