"""Choose the token verifier from the settings (docs/auth.md: JWKS, shared secret, development)."""

import httpx

from backend.auth.development import DEV_AUDIENCE, DEV_ISSUER, DevelopmentKey
from backend.auth.jwks import JwksCache
from backend.auth.keys import VerificationKey
from backend.auth.verifier import KeySource, StaticKeys, TokenVerifier
from backend.settings import Settings


def build_verifier(settings: Settings, http_client: httpx.AsyncClient) -> TokenVerifier:
    settings.check_production_ready()

    def configured(keys: KeySource) -> TokenVerifier:
        return TokenVerifier(
            keys,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            leeway=settings.auth_leeway,
        )

    if settings.auth_jwks_url is not None:
        jwks = JwksCache(
            settings.auth_jwks_url,
            http_client,
            ttl=settings.auth_jwks_cache_ttl,
            refresh_interval=settings.auth_jwks_refresh_interval,
        )
        return configured(jwks)
    if settings.auth_secret is not None:
        secret = settings.auth_secret.get_secret_value().encode()
        key = VerificationKey(kid=None, algorithms=frozenset({"HS256"}), key=secret)
        return configured(StaticKeys(key))
    development = DevelopmentKey.load_or_create(settings.data_dir)
    return TokenVerifier(
        StaticKeys(development.verification_key),
        issuer=DEV_ISSUER,
        audience=DEV_AUDIENCE,
        leeway=settings.auth_leeway,
    )
