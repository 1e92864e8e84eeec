"""A JWKS cache for the Better Auth `jwt` plugin's key endpoint.

- Fetched with httpx (never blocking the event loop), one fetch at a time (single-flight).
- Kept for `ttl` seconds; when a refresh fails, the keys already held keep working.
- A token naming an unknown `kid` forces a refetch, at most once per `refresh_interval`
  counted from the last forced refetch: a key rotation is picked up at once, while a flood of
  made-up kids costs one fetch per interval.
"""

import asyncio
import logging
import time
from collections.abc import Callable

import httpx
from prometheus_client import Counter

from backend.auth.keys import VerificationKey, key_from_jwk
from backend.errors import ServiceUnavailable

# Exported at /metrics with the process's other metrics.
JWKS_FETCHES = Counter("jwks_fetches_total", "JWKS document fetches.", ["outcome"])

logger = logging.getLogger(__name__)


class JwksUnavailable(ServiceUnavailable):
    """No keys could be fetched and none are cached: 503, the client may retry."""

    def __init__(self) -> None:
        super().__init__("The token signing keys are unavailable; retry shortly.")


class JwksCache:
    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl: float,
        refresh_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._client = client
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._keys: tuple[VerificationKey, ...] | None = None
        self._expires_at = 0.0
        self._last_forced: float | None = None
        self._lock = asyncio.Lock()
        self._attempts = 0  # fetches finished, successful or not

    async def keys_for(self, kid: str | None, alg: str) -> list[VerificationKey]:
        """The cached keys that may verify a token with this `kid` and `alg`."""
        keys = await self._current_keys()
        matches = [key for key in keys if key.accepts(kid, alg)]
        if matches or kid is None or any(key.kid == kid for key in keys):
            return matches
        # An unknown kid: refetch, or share the fetch already in flight (tokens with a freshly
        # rotated kid often arrive together); within the interval, the cached keys stand.
        keys = await self._refresh(forced=True)
        return [key for key in keys if key.accepts(kid, alg)]

    def _may_force_refresh(self) -> bool:
        return (
            self._last_forced is None or self._clock() - self._last_forced >= self._refresh_interval
        )

    async def _current_keys(self) -> tuple[VerificationKey, ...]:
        if self._keys is not None and self._clock() < self._expires_at:
            return self._keys
        return await self._refresh(forced=False)

    async def _refresh(self, *, forced: bool) -> tuple[VerificationKey, ...]:
        seen_attempts = self._attempts
        async with self._lock:
            # Someone else fetched while we waited for the lock: share their outcome, even a
            # failure (a cold cache facing a dead endpoint costs one fetch per wave, not per
            # waiting request).
            if self._attempts != seen_attempts:
                if self._keys is None:
                    raise JwksUnavailable()
                return self._keys
            if forced:
                if not self._may_force_refresh():
                    return self._keys or ()
                self._last_forced = self._clock()
            try:
                keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                self._attempts += 1
                if self._keys is None:
                    logger.warning("JWKS fetch failed and no keys are cached: %r", exc)
                    raise JwksUnavailable() from exc
                logger.warning("JWKS refresh failed, serving cached keys: %r", exc)
                # Don't retry on every request while the endpoint is down.
                self._expires_at = self._clock() + min(self._ttl, max(self._refresh_interval, 1))
                return self._keys
            self._attempts += 1
            self._keys = keys
            self._expires_at = self._clock() + self._ttl
            return keys

    async def _fetch(self) -> tuple[VerificationKey, ...]:
        try:
            keys = await self._fetch_keys()
        except Exception:
            JWKS_FETCHES.labels("error").inc()
            raise
        JWKS_FETCHES.labels("ok").inc()
        return keys

    async def _fetch_keys(self) -> tuple[VerificationKey, ...]:
        response = await self._client.get(self.url, headers={"Accept": "application/json"})
        response.raise_for_status()
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise ValueError("JWKS document has no 'keys' list")
        keys = tuple(
            key for entry in entries if isinstance(entry, dict) and (key := key_from_jwk(entry))
        )
        logger.info("fetched %d usable keys from %s", len(keys), self.url)
        return keys
