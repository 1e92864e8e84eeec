"""The cache of verified tokens: it saves the signature check on repeated tokens, and never
lets an expired or failed token through."""

import pytest

from backend.auth.keys import VerificationKey
from backend.auth.verifier import InvalidToken, StaticKeys, TokenVerifier, VerifiedTokens
from tests.auth.helpers import SigningKey, make_claims


class CountingKeys(StaticKeys):
    """Real keys that count how often verification had to look them up."""

    lookups = 0

    async def keys_for(self, kid: str | None, alg: str) -> list[VerificationKey]:
        self.lookups += 1
        return await super().keys_for(kid, alg)


class Clock:
    now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate("EdDSA")


def verifier_for(key: SigningKey, clock: Clock | None = None) -> tuple[TokenVerifier, CountingKeys]:
    keys = CountingKeys(
        VerificationKey(kid=key.kid, algorithms=frozenset({"EdDSA"}), key=key.public_key)
    )
    cache = VerifiedTokens(max_size=2, clock=clock or Clock())
    return TokenVerifier(keys, leeway=0, cache=cache), keys


async def test_a_repeated_token_is_verified_once(key: SigningKey) -> None:
    verifier, keys = verifier_for(key)
    token = key.sign(make_claims())
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert keys.lookups == 1


async def test_a_cached_token_is_dropped_at_its_expiry(key: SigningKey) -> None:
    clock = Clock()
    verifier, keys = verifier_for(key, clock)
    claims = make_claims()
    token = key.sign(claims)
    await verifier.verify(token)
    clock.now = claims["exp"] + 1  # past exp for the cache: it must verify again
    await verifier.verify(token)  # PyJWT (real time) still accepts it, so it is re-added
    assert keys.lookups == 2


async def test_failures_are_not_cached(key: SigningKey) -> None:
    verifier, keys = verifier_for(key)
    forged = key.sign(make_claims())[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(InvalidToken):
            await verifier.verify(forged)
    assert keys.lookups == 2


async def test_the_cache_is_bounded(key: SigningKey) -> None:
    verifier, keys = verifier_for(key)
    tokens = [key.sign(make_claims()) for _ in range(3)]
    for token in tokens:
        await verifier.verify(token)
    await verifier.verify(tokens[0])  # evicted by the third (max_size=2): verified again
    assert keys.lookups == 4
