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

from backend.auth.keys import VerificationKey, key_from_jwk

logger = logging.getLogger(__name__)


class JwksUnavailable(Exception):
    """No keys could be fetched and none are cached."""


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
        self._generation = 0
        self.fetch_count = 0

    async def keys_for(self, kid: str | None, alg: str) -> list[VerificationKey]:
        """The cached keys that may verify a token with this `kid` and `alg`."""
        keys = await self._current_keys()
        matches = [key for key in keys if key.accepts(kid, alg)]
        if matches or kid is None or any(key.kid == kid for key in keys):
            return matches
        if not self._may_force_refresh():
            return []
        keys = await self._refresh(self._generation, forced=True)
        return [key for key in keys if key.accepts(kid, alg)]

    def _may_force_refresh(self) -> bool:
        return (
            self._last_forced is None or self._clock() - self._last_forced >= self._refresh_interval
        )

    async def _current_keys(self) -> tuple[VerificationKey, ...]:
        if self._keys is not None and self._clock() < self._expires_at:
            return self._keys
        return await self._refresh(self._generation, forced=False)

    async def _refresh(self, seen_generation: int, *, forced: bool) -> tuple[VerificationKey, ...]:
        async with self._lock:
            # Someone else refreshed while we waited for the lock: use their result.
            if self._generation != seen_generation and self._keys is not None:
                return self._keys
            if not forced and self._keys is not None and self._clock() < self._expires_at:
                return self._keys
            if forced:
                if not self._may_force_refresh():
                    return self._keys or ()
                self._last_forced = self._clock()
            try:
                self._keys = await self._fetch()
            except (httpx.HTTPError, ValueError) as exc:
                if self._keys is None:
                    raise JwksUnavailable(str(exc)) from exc
                logger.warning("JWKS refresh failed, serving cached keys: %s", exc)
                # Don't retry on every request while the endpoint is down.
                self._expires_at = self._clock() + min(self._ttl, max(self._refresh_interval, 1))
                return self._keys
            self._expires_at = self._clock() + self._ttl
            self._generation += 1
            return self._keys

    async def _fetch(self) -> tuple[VerificationKey, ...]:
        self.fetch_count += 1
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
