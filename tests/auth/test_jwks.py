"""The JWKS key cache (docs/auth.md): keys are fetched once and cached; a rotation is picked up on
the first token with the new kid; made-up kids cost at most one fetch per refresh interval;
an unreachable endpoint is survivable with cached keys and a 503 without them."""

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from backend.auth.jwks import JwksCache
from backend.auth.verifier import InvalidToken, TokenVerifier
from backend.errors import ServiceUnavailable
from backend.settings import Settings
from backend.users.models import User
from tests.auth.conftest import ApiFactory
from tests.auth.helpers import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    SigningKey,
    assert_invalid_token,
    forge_hs256,
    make_claims,
)
from tests.support import me, running


def assert_service_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["status"] == 503
    assert "127.0.0.1" not in response.text  # no internal address or error text


async def fetches_metric(api: httpx.AsyncClient) -> float:
    """`jwks_fetches_total{outcome="ok"}` as /metrics reports it (0 before the first)."""
    for line in (await api.get("/metrics")).text.splitlines():
        if line.startswith('jwks_fetches_total{outcome="ok"}'):
            return float(line.split()[-1])
    return 0.0


class TestThroughTheApi:
    async def test_keys_are_fetched_once_for_many_requests(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        for _ in range(20):
            assert (await me(api, eddsa_key.sign())).status_code == 200
        assert jwks_server.requests == 1

    async def test_fetches_are_counted_in_the_metrics(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient
    ) -> None:
        before = await fetches_metric(api)
        assert (await me(api, eddsa_key.sign())).status_code == 200  # cold cache: one fetch
        assert await fetches_metric(api) == before + 1

    async def test_concurrent_first_requests_share_one_fetch(
        self,
        eddsa_key: SigningKey,
        jwks_settings: Callable[..., Settings],
        jwks_server: JwksServer,
        engine: AsyncEngine,
    ) -> None:
        # Concurrent requests need connections of their own: this app commits for real.
        jwks_server.delay = 0.2  # every request arrives while the first fetch is in flight
        claims = make_claims("jwks-single-flight")
        try:
            async with running(jwks_settings()) as api:
                responses = await asyncio.gather(
                    *(me(api, eddsa_key.sign(claims)) for _ in range(20))
                )
            assert [r.status_code for r in responses] == [200] * 20
            assert jwks_server.requests == 1
        finally:
            async with engine.begin() as connection:
                await connection.execute(delete(User).where(col(User.id) == claims["sub"]))

    async def test_rotated_key_is_picked_up_on_its_first_token(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        assert (await me(api, eddsa_key.sign())).status_code == 200
        rotated = SigningKey.generate("EdDSA")
        jwks_server.add(rotated, with_alg=False)

        assert (await me(api, rotated.sign())).status_code == 200
        assert (await me(api, eddsa_key.sign())).status_code == 200
        assert jwks_server.requests == 2

    async def test_flood_of_unknown_kids_costs_at_most_one_fetch(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        assert (await me(api, eddsa_key.sign())).status_code == 200
        strangers = [SigningKey.generate("EdDSA").sign() for _ in range(50)]

        responses = await asyncio.gather(*(me(api, token) for token in strangers))
        for response in responses:
            assert_invalid_token(response)
        for token in strangers[:10]:  # and again, one by one
            assert_invalid_token(await me(api, token))

        assert jwks_server.requests == 2
        assert (await me(api, eddsa_key.sign())).status_code == 200

    async def test_endpoint_down_with_warm_cache_keeps_verifying(
        self, eddsa_key: SigningKey, make_api: ApiFactory, jwks_server: JwksServer
    ) -> None:
        async with make_api(auth_jwks_cache_ttl=0.05) as api:
            assert (await me(api, eddsa_key.sign())).status_code == 200

            jwks_server.status = 500
            await asyncio.sleep(0.06)  # the cache is stale: the next request refetches
            assert (await me(api, eddsa_key.sign())).status_code == 200
            assert jwks_server.requests == 2  # it did try

            jwks_server.stop()
            await asyncio.sleep(0.06)
            assert (await me(api, eddsa_key.sign())).status_code == 200
            assert_invalid_token(await me(api, SigningKey.generate("EdDSA").sign()))

    @pytest.mark.parametrize(
        "outage", ["connection-refused", "http-500", "html-page", "json-without-keys"]
    )
    async def test_endpoint_down_with_cold_cache_is_503(
        self, outage: str, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        match outage:
            case "connection-refused":
                jwks_server.stop()
            case "http-500":
                jwks_server.status = 500
            case "html-page":  # e.g. AUTH_JWKS_URL pointing at the frontend
                jwks_server.body = b"<!doctype html><title>Sign in</title>"
            case "json-without-keys":
                jwks_server.body = b'{"error": "not found"}'
        assert_service_unavailable(await me(api, eddsa_key.sign()))

    async def test_cold_outage_is_not_cached(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        jwks_server.status = 500
        assert_service_unavailable(await me(api, eddsa_key.sign()))
        jwks_server.status = 200
        assert (await me(api, eddsa_key.sign())).status_code == 200

    async def test_concurrent_requests_share_one_failed_fetch(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        jwks_server.status, jwks_server.delay = 500, 0.2
        token = eddsa_key.sign()
        for response in await asyncio.gather(*(me(api, token) for _ in range(10))):
            assert_service_unavailable(response)
        assert jwks_server.requests == 1

    async def test_unusable_entries_are_skipped_and_the_rest_verify(
        self, eddsa_key: SigningKey, api: httpx.AsyncClient, jwks_server: JwksServer
    ) -> None:
        secret = b"k" * 32
        jwks_server.publish(eddsa_key, with_alg=False)
        jwks_server.keys += [
            {"kty": "OKP", "crv": "Ed25519", "kid": "no-x"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "bad-x", "x": "!!"},
            {"kty": "RSA", "kid": "no-modulus", "e": "AQAB"},
            {"kty": "EC", "crv": "P-256", "kid": "short", "x": "AAAA", "y": "AAAA"},
            {"kty": "EC", "crv": ["P-256"], "kid": "odd-curve", "x": "AA", "y": "AA"},
            {"kty": "OKP", "crv": "X25519", "kid": "not-for-signing", "x": "AA"},
            {"kty": "oct", "kid": "symmetric", "k": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"},
            {**SigningKey.generate("EdDSA").jwk(), "use": "enc", "kid": "encryption"},
            "not-an-object",
        ]
        assert (await me(api, eddsa_key.sign())).status_code == 200
        assert jwks_server.requests == 1
        # A symmetric key in a public key set must never turn into an HMAC secret.
        assert_invalid_token(await me(api, forge_hs256(make_claims(), secret, kid="symmetric")))


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2) as client:
        yield client


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def verifier(
    jwks_server: JwksServer, http_client: httpx.AsyncClient, clock: FakeClock
) -> TokenVerifier:
    cache = JwksCache(jwks_server.url, http_client, ttl=300, refresh_interval=30, clock=clock)
    return TokenVerifier(cache, issuer=ISSUER, audience=AUDIENCE)


async def rejects(verifier: TokenVerifier, token: str) -> bool:
    try:
        await verifier.verify(token)
    except InvalidToken:
        return True
    return False


class TestSingleFlight:
    """Concurrency, on the verifier itself: requests through the test app would share one
    database connection."""

    async def test_concurrent_first_verifications_share_one_fetch(
        self,
        signing_keys: dict[str, SigningKey],
        verifier: TokenVerifier,
        jwks_server: JwksServer,
    ) -> None:
        jwks_server.delay = 0.2  # every verification starts while the first fetch is in flight
        tokens = [key.sign() for key in signing_keys.values()] * 4
        claims = await asyncio.gather(*(verifier.verify(token) for token in tokens))
        assert len(claims) == 20
        assert jwks_server.requests == 1

    async def test_concurrent_unknown_kids_share_one_forced_fetch(
        self, eddsa_key: SigningKey, verifier: TokenVerifier, jwks_server: JwksServer
    ) -> None:
        await verifier.verify(eddsa_key.sign())
        jwks_server.delay = 0.1
        rotated = SigningKey.generate("EdDSA")
        jwks_server.add(rotated)
        tokens = [rotated.sign() for _ in range(10)]
        assert len(await asyncio.gather(*(verifier.verify(token) for token in tokens))) == 10
        assert jwks_server.requests == 2


class TestRefreshTiming:
    """JwksCache with a fake clock: TTL and refresh interval, to the second."""

    async def test_forced_refetch_right_after_startup_is_allowed(
        self,
        eddsa_key: SigningKey,
        verifier: TokenVerifier,
        jwks_server: JwksServer,
        clock: FakeClock,
    ) -> None:
        await verifier.verify(eddsa_key.sign())
        clock.now += 0.001
        rotated = SigningKey.generate("EdDSA")
        jwks_server.add(rotated)
        assert (await verifier.verify(rotated.sign())).sub
        assert jwks_server.requests == 2

    async def test_interval_counts_from_the_last_forced_refetch_not_the_first_load(
        self,
        eddsa_key: SigningKey,
        verifier: TokenVerifier,
        jwks_server: JwksServer,
        clock: FakeClock,
    ) -> None:
        await verifier.verify(eddsa_key.sign())  # t=0: first load
        clock.now += 1
        assert await rejects(verifier, SigningKey.generate("EdDSA").sign())  # t=1: forced
        assert jwks_server.requests == 2

        clock.now += 29.5  # t=30.5: 30 s after the first load, 29.5 s after the forced one
        assert await rejects(verifier, SigningKey.generate("EdDSA").sign())
        assert jwks_server.requests == 2

        clock.now += 0.5  # t=31: the interval since the forced refetch has passed
        rotated = SigningKey.generate("EdDSA")
        jwks_server.add(rotated)
        assert (await verifier.verify(rotated.sign())).sub
        assert jwks_server.requests == 3

    async def test_cached_keys_expire_after_the_ttl(
        self,
        eddsa_key: SigningKey,
        verifier: TokenVerifier,
        jwks_server: JwksServer,
        clock: FakeClock,
    ) -> None:
        await verifier.verify(eddsa_key.sign())
        jwks_server.publish()  # the key is withdrawn
        clock.now += 299
        await verifier.verify(eddsa_key.sign())
        assert jwks_server.requests == 1
        clock.now += 1
        assert await rejects(verifier, eddsa_key.sign())
        # The TTL refresh, then one forced refetch for the kid that is now unknown.
        assert jwks_server.requests == 3

    async def test_failed_refresh_with_cached_keys_is_not_retried_on_every_request(
        self,
        eddsa_key: SigningKey,
        verifier: TokenVerifier,
        jwks_server: JwksServer,
        clock: FakeClock,
    ) -> None:
        await verifier.verify(eddsa_key.sign())
        jwks_server.status = 500
        clock.now += 300
        for _ in range(5):
            await verifier.verify(eddsa_key.sign())
        assert jwks_server.requests == 2

    async def test_cold_cache_outage_raises_service_unavailable(
        self, eddsa_key: SigningKey, verifier: TokenVerifier, jwks_server: JwksServer
    ) -> None:
        jwks_server.stop()
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(eddsa_key.sign())
